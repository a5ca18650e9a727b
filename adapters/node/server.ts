/**
 * One meshraft member on Node: file storage, the WebSocket mesh, the Raft node, the KV state
 * machine and the HTTP API on one port (the peer socket is `/raft` on the same port).
 */
import type { AddressInfo } from "node:net";
import { serve, upgradeWebSocket } from "@hono/node-server";
import type { KvResult, KvStateMachine } from "../../src/kv/kv.ts";
import type { RaftNode } from "../../src/node.ts";
import { createMember, lineLogger, type MemberLogger } from "../../src/member.ts";
import { FileStorage } from "./file-storage.ts";
import { createNodeMesh, createPeerSocketServer } from "./mesh.ts";
import type { StartArgs } from "./cli-args.ts";

export type Logger = MemberLogger;

/** One line per event on stderr: `time level id message key=value ...`. */
export function stderrLogger(id: string, minLevel: StartArgs["logLevel"]): Logger {
  return lineLogger(id, minLevel, (line) => process.stderr.write(`${line}\n`));
}

export interface RunningNode {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  url: string;
  port: number;
  /** Stop serving, finish the write in flight, close the mesh and the storage. */
  stop(): Promise<void>;
}

export async function startNode(args: StartArgs, log: Logger = stderrLogger(args.id, args.logLevel)): Promise<RunningNode> {
  const storage = await FileStorage.open(args.dataDir, { log: (line) => log("warn", line) });
  const mesh = createNodeMesh({
    id: args.id,
    clusterId: args.clusterId,
    peers: args.peers,
    secret: args.secret,
    // Members that join dial in before this node has learned of them from the log.
    acceptUnknownPeers: true,
    logger: (level, message, fields) => log(level, message, fields),
  });
  const wss = createPeerSocketServer();
  const member = createMember({
    id: args.id,
    url: args.url,
    peers: args.peers,
    storage,
    transport: mesh,
    raftSocket: { upgradeWebSocket, handlers: () => mesh.inboundHandlers() },
    apiToken: args.token,
    adminToken: args.adminToken,
    join: args.join && args.join.length > 0 ? args.join : undefined,
    learner: args.learner,
    electionTimeoutMs: args.electionTimeoutMs,
    heartbeatIntervalMs: args.heartbeatIntervalMs,
    readMode: args.readMode,
    snapshotEvery: args.snapshotEvery,
    snapshotMargin: args.snapshotMargin,
    log,
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve(
      { fetch: (req, env) => member.app.fetch(req, env), hostname: args.listen.host, port: args.listen.port, websocket: { server: wss } },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  const { node, kv } = member;
  const port = (server.address() as AddressInfo).port;
  await member.start();
  log("info", "started", { url: args.url, listen: `${args.listen.host}:${port}`, peers: args.peers.map((p) => p.id).join(",") || "none", data: args.dataDir });
  let stopping: Promise<void> | null = null;
  return {
    node,
    kv,
    url: args.url,
    port,
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
