/**
 * One meshraft member on Node: file storage, the WebSocket mesh, the Raft node, the KV state
 * machine and the HTTP API on one port (the peer socket is `/raft` on the same port).
 */
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, upgradeWebSocket } from "@hono/node-server";
import type { KvResult, KvStateMachine } from "../../src/kv/kv.ts";
import type { RaftNode } from "../../src/node.ts";
import { MeshraftError } from "../../src/errors.ts";
import { createMember, lineLogger, type Member, type MemberLogger } from "../../src/member.ts";
import type { WebSocketMesh } from "../../src/transport/mesh.ts";
import { FileStorage } from "./file-storage.ts";
import { createNodeMesh, createPeerSocketServer } from "./mesh.ts";
import { portHolder } from "./port-holder.ts";
import type { StartArgs } from "./cli-args.ts";

export type Logger = MemberLogger;

/** The --listen address is taken; names the process holding it when the system says. */
export class PortInUseError extends MeshraftError {
  constructor(host: string, port: number) {
    const holder = portHolder(port);
    const who = holder ? ` by process ${holder.pid}${holder.command ? ` (${holder.command})` : ""}` : "";
    super("PORT_IN_USE", `${host}:${port} is already in use${who}; choose another --listen port or stop that process`);
  }
}

/** One line per event on stderr: `time level id message key=value ...`. */
export function stderrLogger(id: string, minLevel: StartArgs["logLevel"]): Logger {
  return lineLogger(id, minLevel, (line) => process.stderr.write(`${line}\n`));
}

/**
 * What a slow or abusive client may hold of a Node member's HTTP server. A connection that has
 * not sent its request headers within `headersTimeoutMs` (an idle connection that never sends a
 * request included) or its whole request within `requestTimeoutMs` is closed (408), an idle
 * keep-alive connection after `keepAliveTimeoutMs`; beyond `maxConnections` open connections (peer
 * sockets included) new ones are dropped at once.
 */
export interface HttpServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

export const DEFAULT_HTTP_SERVER_LIMITS: Readonly<HttpServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 2_048,
});

/** node:http options for `limits`; `maxConnections` is set on the server once it exists. */
function serverOptions(limits: HttpServerLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // node:http checks those timeouts this often (default 30 s, which would stretch them).
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  };
}

export interface RunningNode {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  url: string;
  port: number;
  /** The member's WebSocket mesh (the local demo's controls cut its links). */
  mesh: WebSocketMesh;
  /** Resolves with the reason if the node failed and stopped by itself (see Member.failed). */
  failed: Promise<Error>;
  /** Stop serving, finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

export async function startNode(
  args: StartArgs,
  log: Logger = stderrLogger(args.id, args.logLevel),
  httpLimits: Partial<HttpServerLimits> = {},
): Promise<RunningNode> {
  const limits: HttpServerLimits = { ...DEFAULT_HTTP_SERVER_LIMITS, ...httpLimits };
  // The port first: a port in use must fail the start before the data directory is touched
  // (no lock, no log segment left behind). Requests that arrive before the member is assembled
  // get 503, which clients retry.
  let member: Member | null = null;
  const wss = createPeerSocketServer();
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve(
      {
        fetch: (req, env) => member?.app.fetch(req, env) ?? new Response("starting", { status: 503, headers: { "Retry-After": "1" } }),
        hostname: args.listen.host,
        port: args.listen.port,
        websocket: { server: wss },
        serverOptions: serverOptions(limits),
      },
      () => resolve(s),
    );
    s.maxConnections = limits.maxConnections;
    s.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "EADDRINUSE" ? new PortInUseError(args.listen.host, args.listen.port) : err));
  });
  let storage: FileStorage;
  try {
    storage = await FileStorage.open(args.dataDir, { log: (line) => log("warn", line) });
  } catch (err) {
    await new Promise<void>((done) => server.close(() => done()));
    throw err;
  }
  const mesh = createNodeMesh({
    id: args.id,
    clusterId: args.clusterId,
    url: args.url,
    peers: args.peers,
    secret: args.secret,
    // Members that join dial in before this node has learned of them from the log.
    acceptUnknownPeers: true,
    logger: (level, message, fields) => log(level, message, fields),
  });
  member = createMember({
    id: args.id,
    url: args.url,
    peers: args.peers,
    storage,
    transport: mesh,
    raftSocket: { upgradeWebSocket, handlers: () => mesh.inboundHandlers() },
    apiToken: args.token,
    adminToken: args.adminToken,
    publicStatus: !args.privateStatus,
    join: args.join && args.join.length > 0 ? args.join : undefined,
    learner: args.learner,
    electionTimeoutMs: args.electionTimeoutMs,
    heartbeatIntervalMs: args.heartbeatIntervalMs,
    readMode: args.readMode,
    snapshotEvery: args.snapshotEvery,
    snapshotBytes: args.snapshotBytes,
    snapshotMargin: args.snapshotMargin,
    linkTimeoutMs: args.linkTimeoutMs,
    limits: { maxKeyBytes: args.maxKeyBytes, maxValueBytes: args.maxValueBytes },
    log,
    // @hono/node-server hands the Node request over as `env.incoming`.
    remoteAddress: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
  });
  const { node, kv } = member;
  const port = (server.address() as AddressInfo).port;
  try {
    await member.start();
  } catch (err) {
    // Joining failed: release the port, the mesh and the data directory before saying why.
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((done) => server.close(() => done()));
    await node.stop();
    throw err;
  }
  log("info", "started", { url: args.url, listen: `${args.listen.host}:${port}`, peers: args.peers.map((p) => p.id).join(",") || "none", data: args.dataDir });
  let stopping: Promise<void> | null = null;
  return {
    node,
    kv,
    url: args.url,
    port,
    mesh,
    failed: member.failed,
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((done) => {
          for (const client of wss.clients) client.terminate();
          server.close(() => done());
          // Idle keep-alive connections would hold close() open; upgraded sockets were ended above.
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await node.stop();
        log("info", "stopped");
      })()),
  };
}
