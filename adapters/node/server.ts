/**
 * One meshraft member on Node: file storage, the WebSocket mesh, the Raft node, the KV state
 * machine and the HTTP API on one port (the peer socket is `/raft` on the same port).
 */
import type { AddressInfo } from "node:net";
import { serve, upgradeWebSocket } from "@hono/node-server";
import { KvStateMachine, type KvResult } from "../../src/kv/kv.ts";
import { RaftNode } from "../../src/node.ts";
import { createApp } from "../../src/http/app.ts";
import type { MeshLogLevel } from "../../src/transport/mesh.ts";
import { FileStorage } from "./file-storage.ts";
import { createNodeMesh, createPeerSocketServer } from "./mesh.ts";
import type { StartArgs } from "./cli-args.ts";

export interface Logger {
  (level: MeshLogLevel, message: string, fields?: Record<string, unknown>): void;
}

const LEVELS: Record<string, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One line per event on stderr: `time level id message key=value ...`. */
export function stderrLogger(id: string, minLevel: StartArgs["logLevel"]): Logger {
  return (level, message, fields = {}) => {
    if (LEVELS[level] < LEVELS[minLevel]) return;
    const kv = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(" ");
    process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${id} ${message}${kv ? ` ${kv}` : ""}\n`);
  };
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
  const members = [{ id: args.id, url: args.url }, ...args.peers];
  const mesh = createNodeMesh({
    id: args.id,
    clusterId: args.clusterId,
    peers: args.peers,
    secret: args.secret,
    logger: (level, message, fields) => log(level, message, fields),
  });
  const kv = new KvStateMachine();
  const node = new RaftNode<KvResult>({
    id: args.id,
    members,
    storage,
    transport: mesh,
    stateMachine: kv,
    electionTimeoutMs: args.electionTimeoutMs,
    heartbeatIntervalMs: args.heartbeatIntervalMs,
    onError: (error) => log("error", "node failed and stopped", { error: error instanceof Error ? error.message : String(error) }),
  });
  node.on((e) => {
    if (e.type === "role") log("info", `role ${e.role}`, { term: e.term, leader: e.leaderId ?? "none" });
  });
  const wss = createPeerSocketServer();
  const app = createApp({
    node,
    kv,
    selfUrl: args.url,
    apiToken: args.token,
    raftSocket: { upgradeWebSocket, handlers: () => mesh.inboundHandlers() },
    logger: { warn: (m: string) => log("warn", m), error: (m: string) => log("error", m) },
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve(
      { fetch: (req, env) => app.fetch(req, env), hostname: args.listen.host, port: args.listen.port, websocket: { server: wss } },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  await node.start();
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
