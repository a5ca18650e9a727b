/**
 * A whole meshraft member from its parts: the Raft node, the built-in KV state machine and the
 * HTTP API (with the peer socket), wired the same way on every runtime. The runtime adapters
 * supply only what differs: the storage, the mesh's WebSocket, the server that serves `app`.
 */
import type { Hono } from "hono";
import { createApp, type RaftSocketOptions } from "./http/app.ts";
import { KvStateMachine, type KvResult } from "./kv/kv.ts";
import { RaftNode } from "./node.ts";
import type { Storage } from "./storage/storage.ts";
import type { PeerAddress, Transport } from "./transport/transport.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type MemberLogger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One line per event, `time level id message key=value ...`, handed to `write`. */
export function lineLogger(id: string, minLevel: LogLevel, write: (line: string) => void): MemberLogger {
  return (level, message, fields = {}) => {
    if (LEVELS[level] < LEVELS[minLevel]) return;
    const kv = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(" ");
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${id} ${message}${kv ? ` ${kv}` : ""}`);
  };
}

export interface MemberOptions {
  id: string;
  /** The URL others reach this member at. */
  url: string;
  peers: PeerAddress[];
  storage: Storage;
  transport: Transport;
  raftSocket: RaftSocketOptions;
  apiToken?: string;
  followerReads?: boolean;
  electionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  log: MemberLogger;
}

export interface Member {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  /** The HTTP API and the peer socket (`/raft`). */
  app: Hono;
}

export function createMember(o: MemberOptions): Member {
  const kv = new KvStateMachine();
  const node = new RaftNode<KvResult>({
    id: o.id,
    members: [{ id: o.id, url: o.url }, ...o.peers],
    storage: o.storage,
    transport: o.transport,
    stateMachine: kv,
    electionTimeoutMs: o.electionTimeoutMs,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    onError: (error) => o.log("error", "node failed and stopped", { error: error instanceof Error ? error.message : String(error) }),
  });
  node.on((e) => {
    if (e.type === "role") o.log("info", `role ${e.role}`, { term: e.term, leader: e.leaderId ?? "none" });
  });
  const app = createApp({
    node,
    kv,
    selfUrl: o.url,
    apiToken: o.apiToken,
    followerReads: o.followerReads,
    raftSocket: o.raftSocket,
    logger: { warn: (m: string) => o.log("warn", m), error: (m: string) => o.log("error", m) },
  });
  return { node, kv, app };
}
