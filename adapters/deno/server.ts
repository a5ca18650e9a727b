/**
 * One meshraft member on Deno: storage (files, or Deno KV), the WebSocket mesh, the Raft node,
 * the KV state machine and the HTTP API served by `Deno.serve` on one port (the peer socket is
 * `/raft` on the same port), the same hono app as on Node.
 */
import type { Hono } from "hono";
import type { StartArgs } from "../../src/cli-args.ts";
import { createMember, lineLogger, type MemberLogger } from "../../src/member.ts";
import type { KvResult, KvStateMachine } from "../../src/kv/kv.ts";
import type { RaftNode } from "../../src/node.ts";
import type { Transport } from "../../src/transport/transport.ts";
import type { Message } from "../../src/core/types.ts";
import { FileStorage } from "./file-storage.ts";
import { DenoKvStorage, type LeaseLostError } from "./kv-storage.ts";
import { createDenoMesh, raftSocketFor } from "./mesh.ts";

/** What `startDenoNode` takes: the `meshraft start` arguments, plus where Deno KV storage lives. */
export interface DenoStartArgs extends StartArgs {
  /**
   * Store the node's state in Deno KV instead of files under `dataDir`: a path for
   * `Deno.openKv`, or an open `Deno.Kv` (on Deno Deploy, `await Deno.openKv()`).
   */
  kv?: string | Deno.Kv;
  /** Lease time of the node identity in Deno KV, in ms. Default 10000. */
  kvLeaseMs?: number;
  /** Mesh liveness: ping interval and idle timeout, in ms (defaults 5000 and 15000). */
  pingIntervalMs?: number;
  idleTimeoutMs?: number;
}

export type Logger = MemberLogger;

/** One line per event on stderr: `time level id message key=value ...` (as on Node). */
export function consoleLogger(id: string, minLevel: StartArgs["logLevel"]): Logger {
  return lineLogger(id, minLevel, (line) => console.error(line));
}

/**
 * A transport that sends nothing while the node's Deno KV lease is not valid: an instance past
 * its lease may have been replaced, and must not answer from memory (see ./kv-lease.ts).
 */
function fenced(transport: Transport, storage: DenoKvStorage): Transport {
  return {
    start: (handler: (message: Message) => void) => transport.start(handler),
    send: (message: Message) => {
      if (storage.leaseValid()) transport.send(message);
    },
    close: () => transport.close(),
    setPeers: (peers) => transport.setPeers?.(peers),
    announcedUrl: transport.announcedUrl && ((id) => transport.announcedUrl!(id)),
    linked: transport.linked && ((id) => transport.linked!(id)),
  };
}

/**
 * What a member needs besides a listening socket (a Deno Deploy app has none of its own): the
 * `meshraft start` arguments without `listen` and `insecure`.
 */
export type DenoMemberArgs = Omit<DenoStartArgs, "listen" | "insecure"> & {
  /** Serve linearizable reads on followers (ReadIndex through the leader) instead of redirecting. */
  followerReads?: boolean;
};

/** A member assembled but not yet started: serve `app` (Deno.serve, Deploy), then `start()`. */
export interface DenoMember {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  /** The HTTP API and the peer socket (`/raft`). */
  app: Hono;
  /** Resolves if the member had to stop by itself: its Deno KV lease was lost, or its node failed. */
  failed: Promise<Error>;
  start(): Promise<void>;
  /** Finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

/**
 * Opens the storage (Deno KV when `args.kv` is set, else files in `args.dataDir`; this takes the
 * node's lease or directory lock), and builds the mesh, the Raft node and the HTTP app.
 */
export async function createDenoMember(args: DenoMemberArgs, log: Logger = consoleLogger(args.id, args.logLevel)): Promise<DenoMember> {
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  const onLeaseLost = (error: LeaseLostError): void => {
    log("error", error.message);
    reportFailure(error);
  };
  // `--kv ./data/n3.kv` creates ./data, as `--data-dir` creates its directory.
  const kvDir = typeof args.kv === "string" ? /^(.*)[\\/][^\\/]+$/.exec(args.kv)?.[1] : undefined;
  if (kvDir) await Deno.mkdir(kvDir, { recursive: true });
  const storage = args.kv !== undefined
    ? await DenoKvStorage.open(args.kv, { nodeId: args.id, leaseTtlMs: args.kvLeaseMs, onLeaseLost })
    : await FileStorage.open(args.dataDir, { log: (line) => log("warn", line) });
  const mesh = createDenoMesh({
    id: args.id,
    clusterId: args.clusterId,
    url: args.url,
    peers: args.peers,
    secret: args.secret,
    // Members that join dial in before this node has learned of them from the log.
    acceptUnknownPeers: true,
    pingIntervalMs: args.pingIntervalMs,
    idleTimeoutMs: args.idleTimeoutMs,
    logger: (level, message, fields) => log(level, message, fields),
  });
  const member = createMember({
    id: args.id,
    url: args.url,
    peers: args.peers,
    storage,
    transport: storage instanceof DenoKvStorage ? fenced(mesh, storage) : mesh,
    raftSocket: raftSocketFor(mesh, { pingIntervalMs: args.pingIntervalMs, idleTimeoutMs: args.idleTimeoutMs }),
    apiToken: args.token,
    adminToken: args.adminToken,
    publicStatus: !args.privateStatus,
    join: args.join && args.join.length > 0 ? args.join : undefined,
    learner: args.learner,
    followerReads: args.followerReads,
    electionTimeoutMs: args.electionTimeoutMs,
    heartbeatIntervalMs: args.heartbeatIntervalMs,
    readMode: args.readMode,
    snapshotEvery: args.snapshotEvery,
    snapshotBytes: args.snapshotBytes,
    snapshotMargin: args.snapshotMargin,
    linkTimeoutMs: args.linkTimeoutMs,
    limits: { maxKeyBytes: args.maxKeyBytes, maxValueBytes: args.maxValueBytes },
    log,
    // startDenoNode hands Deno.serve's handler info over as `env` (Deploy: pass it to app.fetch too).
    remoteAddress: (c) => (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname,
  });
  // The node's own failure (a storage error it cannot go on after) ends the member too.
  void member.failed.then(reportFailure);
  const { node, kv, app } = member;
  return { node, kv, app, failed, start: () => member.start(), stop: () => node.stop() };
}

export interface RunningDenoNode {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  url: string;
  port: number;
  /** Resolves if the member had to stop by itself: its Deno KV lease was lost, or its node failed. */
  failed: Promise<Error>;
  /** Stop serving, finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

/** A whole member on `args.listen`: `createDenoMember` served by `Deno.serve`, started. */
export async function startDenoNode(args: DenoStartArgs, log: Logger = consoleLogger(args.id, args.logLevel)): Promise<RunningDenoNode> {
  const member = await createDenoMember(args, log);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: args.listen.host, port: args.listen.port, onListen: () => {} }, (request, info) => member.app.fetch(request, info));
  } catch (e) {
    await member.stop();
    throw e;
  }
  const port = server.addr.port;
  await member.start();
  const where = args.kv === undefined ? args.dataDir : typeof args.kv === "string" ? `deno kv ${args.kv}` : "deno kv";
  log("info", "started", { url: args.url, listen: `${args.listen.host}:${port}`, peers: args.peers.map((p) => p.id).join(",") || "none", data: where });
  let stopping: Promise<void> | null = null;
  return {
    node: member.node,
    kv: member.kv,
    url: args.url,
    port,
    failed: member.failed,
    stop: () =>
      (stopping ??= (async () => {
        // The node first: closing the mesh ends the peer sockets, which would hold shutdown open.
        await member.stop();
        await server.shutdown();
        log("info", "stopped");
      })()),
  };
}
