/**
 * A whole member from `meshraft start`'s arguments, the same on every runtime: storage, mesh,
 * Raft node, KV state machine and HTTP API (with the peer socket `/raft`) on one port. A runtime
 * adapter supplies a MemberRuntime — how to open its storage, build its mesh, upgrade `/raft`,
 * read a client's address, and serve — and exports `createMember` and `startMember` bound to it
 * (adapters/node/member.ts, adapters/deno/member.ts), under the same names everywhere.
 */
import type { Context, Hono } from "hono";
import type { StartArgs } from "../cli-args.ts";
import type { EventLoopDelaySource } from "../event-loop-delay.ts";
import type { RaftSocketOptions } from "../http/app.ts";
import type { KvResult, KvStateMachine } from "../kv/kv.ts";
import { createMember as assembleMember, type Logger } from "../member.ts";
import type { RaftNode } from "../node.ts";
import type { Storage } from "../storage/storage.ts";
import type { TlsExpiry } from "../tls.ts";
import type { WebSocketMesh, WebSocketMeshOptions } from "../transport/mesh.ts";
import type { Transport } from "../transport/transport.ts";

/** What `startMember` takes: `meshraft start`'s arguments, plus what only an embedder sets. */
export interface MemberArgs extends StartArgs {
  /** Serve linearizable reads on followers (ReadIndex through the leader) instead of redirecting. */
  followerReads?: boolean;
  /** Mesh liveness: ping interval and idle timeout, in ms (the mesh's defaults: 5000 and 15000). */
  pingIntervalMs?: number;
  idleTimeoutMs?: number;
}

/**
 * What `createMember` takes: a member that does not listen by itself (Deno Deploy serves its
 * app) has no `listen` and no `insecure`.
 */
export type CreateMemberArgs<A extends MemberArgs = MemberArgs> = Omit<A, "listen" | "insecure">;

/** The storage a runtime opened for a member. */
export interface OpenedStorage {
  storage: Storage;
  /** Where the data lives, for the "started" log line. */
  where: string;
  /** Wraps the mesh before the node gets it (Deno KV: send nothing while the lease is not held). */
  fence?: (transport: Transport) => Transport;
}

/** What differs per runtime in assembling a member. */
export interface MemberRuntime<A extends MemberArgs = MemberArgs> {
  /**
   * Opens (and locks) the member's storage. `fail` ends the member from outside its node (Deno
   * KV: its lease was lost to another instance).
   */
  openStorage(args: CreateMemberArgs<A>, log: Logger, fail: (error: Error) => void): Promise<OpenedStorage>;
  createMesh(options: Omit<WebSocketMeshOptions, "WebSocket">): WebSocketMesh;
  /** The `/raft` upgrade into `mesh`. */
  raftSocket(mesh: WebSocketMesh, args: CreateMemberArgs<A>): RaftSocketOptions;
  /** The client's address as the runtime's server hands it to the app (`c.env`). */
  remoteAddress(c: Context): string | undefined;
  /** Starts measuring the event-loop delay for `/metrics`, where the runtime can (Node). */
  eventLoopDelay?(): EventLoopDelaySource;
  /** With TLS (`args.tls`): the served certificate's expiry for /status. */
  tlsStatus?: () => TlsExpiry | null;
  /** With TLS: fetch trusting the cluster's CA, for joining. */
  fetch?: typeof fetch;
}

/** A server a runtime started for a member. */
export interface MemberServer {
  port: number;
  /** Stops serving and ends the connections still open, peer sockets included. */
  close(): Promise<void>;
  /**
   * Whether `close` goes before the node stops (Node: its server ends the peer sockets itself)
   * or after (Deno: `shutdown` waits for the peer sockets, which only closing the mesh ends).
   */
  closeBeforeNode: boolean;
}

export type Fetch = (request: Request, env: unknown) => Response | Promise<Response>;

export interface ServingRuntime<A extends MemberArgs = MemberArgs> extends MemberRuntime<A> {
  /** Listens on `listen` and hands every request to `fetch`; rejects if the port is taken. */
  serve(listen: StartArgs["listen"], fetch: Fetch): Promise<MemberServer>;
}

/** A member assembled but not yet started: serve `app`, then `start()`. */
export interface AssembledMember {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  /** The HTTP API and the peer socket (`/raft`). */
  app: Hono;
  /** Where the data lives (a directory, a Deno KV database). */
  where: string;
  /** Resolves if the member had to stop by itself: its node failed, or (Deno KV) its lease was lost. */
  failed: Promise<Error>;
  start(): Promise<void>;
  /** Finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

/** A member serving on its port, started. */
export interface RunningMember {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  url: string;
  port: number;
  /** Resolves with the reason if the member had to stop by itself (see AssembledMember.failed). */
  failed: Promise<Error>;
  /** Stop serving, finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

/**
 * Opens the storage (taking its lock or lease) and builds the mesh, the Raft node and the HTTP
 * app. Nothing listens yet.
 */
export async function createRuntimeMember<A extends MemberArgs>(runtime: MemberRuntime<A>, args: CreateMemberArgs<A>, log: Logger): Promise<AssembledMember> {
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  const opened = await runtime.openStorage(args, log, (error) => reportFailure(error));
  const eventLoopDelay = runtime.eventLoopDelay?.();
  const mesh = runtime.createMesh({
    id: args.id,
    clusterId: args.clusterId,
    url: args.url,
    peers: args.peers,
    secret: args.secret,
    // Members that join dial in before this node has learned of them from the log.
    acceptUnknownPeers: true,
    pingIntervalMs: args.pingIntervalMs,
    idleTimeoutMs: args.idleTimeoutMs,
    logger: log,
  });
  const member = assembleMember({
    id: args.id,
    url: args.url,
    peers: args.peers,
    storage: opened.storage,
    transport: opened.fence ? opened.fence(mesh) : mesh,
    raftSocket: runtime.raftSocket(mesh, args),
    apiToken: args.token,
    adminToken: args.adminToken,
    publicStatus: !args.privateStatus,
    join: args.join && args.join.length > 0 ? args.join : undefined,
    learner: args.learner,
    followerReads: args.followerReads,
    node: args.node,
    linkTimeoutMs: args.linkTimeoutMs,
    limits: args.limits,
    log,
    remoteAddress: (c) => runtime.remoteAddress(c),
    eventLoopDelay,
    tlsStatus: runtime.tlsStatus ? () => runtime.tlsStatus!() ?? undefined : undefined,
    fetch: runtime.fetch,
  });
  // The node's own failure (a storage error it cannot go on after) ends the member too.
  void member.failed.then(reportFailure);
  const { node, kv, app } = member;
  return { node, kv, app, where: opened.where, failed, start: () => member.start(),
    stop: async () => {
      await node.stop();
      eventLoopDelay?.stop();
    },
  };
}

/**
 * The answer of a member that is not assembled yet: 503, which clients retry. It carries CORS
 * headers for whatever origin asks (and answers a preflight), as the app would for a dashboard
 * page served by another member: otherwise that page sees a CORS failure, not "starting", during
 * a restart. Nothing is exposed: the body only says "starting".
 */
export function startingResponse(request: Request): Response {
  const origin = request.headers.get("Origin");
  const cors: Record<string, string> = origin === null ? {} : { "Access-Control-Allow-Origin": origin, Vary: "Origin" };
  if (origin !== null && request.method === "OPTIONS" && request.headers.has("Access-Control-Request-Method")) {
    return new Response(null, {
      status: 204,
      headers: { ...cors, "Access-Control-Allow-Methods": "GET, PUT, POST, DELETE", "Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "0" },
    });
  }
  return new Response("starting", { status: 503, headers: { ...cors, "Retry-After": "1", "Access-Control-Expose-Headers": "Retry-After" } });
}

/**
 * A whole member on `args.listen`, started. The port comes first: a port in use fails the start
 * before the storage is touched (no lock, no log segment left behind). Requests that arrive
 * before the member is assembled get 503, which clients retry.
 */
export async function startRuntimeMember<A extends MemberArgs>(runtime: ServingRuntime<A>, args: A, log: Logger): Promise<RunningMember> {
  let member: AssembledMember | null = null;
  const server = await runtime.serve(
    args.listen,
    (request, env) => member?.app.fetch(request, env) ?? startingResponse(request),
  );
  try {
    member = await createRuntimeMember(runtime, args, log);
  } catch (err) {
    await server.close();
    throw err;
  }
  const running = member;
  const stopBoth = async (): Promise<void> => {
    if (server.closeBeforeNode) await server.close();
    await running.stop();
    if (!server.closeBeforeNode) await server.close();
  };
  try {
    await running.start();
  } catch (err) {
    // Joining failed: release the port, the mesh and the storage before saying why.
    await stopBoth();
    throw err;
  }
  log("info", "started", {
    url: args.url,
    listen: `${args.listen.host}:${server.port}`,
    peers: args.peers.map((p) => p.id).join(",") || "none",
    data: running.where,
  });
  let stopping: Promise<void> | null = null;
  return {
    node: running.node,
    kv: running.kv,
    url: args.url,
    port: server.port,
    failed: running.failed,
    stop: () =>
      (stopping ??= (async () => {
        await stopBoth();
        log("info", "stopped");
      })()),
  };
}
