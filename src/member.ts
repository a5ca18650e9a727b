/**
 * A whole meshraft member from its parts: the Raft node, the built-in KV state machine and the
 * HTTP API (with the peer socket), wired the same way on every runtime. The runtime adapters
 * supply only what differs: the storage, the mesh's WebSocket, the server that serves `app`.
 */
import type { Hono } from "hono";
import { realClock } from "./clock.ts";
import { createApp, type RaftSocketOptions } from "./http/app.ts";
import type { AdminMembersBody } from "./http/protocol.ts";
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
  /** Token of the `/admin/*` routes (default: the API token). Also sent when joining. */
  adminToken?: string;
  /**
   * Base URLs of members to join through (`--join`): a node that knows no configuration yet
   * asks them to add it, as a voter (caught up as a learner first) or, with `learner`, as a
   * learner only. A node whose storage already holds a configuration ignores them.
   */
  join?: string[];
  learner?: boolean;
  followerReads?: boolean;
  electionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  snapshotEvery?: number;
  snapshotMargin?: number;
  log: MemberLogger;
}

export interface Member {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  /** The HTTP API and the peer socket (`/raft`). */
  app: Hono;
  /**
   * Start the node; with `join` and no configuration in storage, then ask the cluster to add
   * it and resolve once the leader did (the node catches up by itself afterwards).
   */
  start(): Promise<void>;
}

export function createMember(o: MemberOptions): Member {
  const kv = new KvStateMachine();
  const node = new RaftNode<KvResult>({
    id: o.id,
    members: o.join ? [] : [{ id: o.id, url: o.url }, ...o.peers],
    join: o.join !== undefined,
    storage: o.storage,
    transport: o.transport,
    stateMachine: kv,
    electionTimeoutMs: o.electionTimeoutMs,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    snapshotEveryEntries: o.snapshotEvery,
    snapshotMarginEntries: o.snapshotMargin,
    onError: (error) => o.log("error", "node failed and stopped", { error: error instanceof Error ? error.message : String(error) }),
  });
  let wasMember = false;
  node.on((e) => {
    if (e.type === "role") o.log("info", `role ${e.role}`, { term: e.term, leader: e.leaderId ?? "none" });
    if (e.type === "snapshot-restored") o.log("info", "state restored from a snapshot", { index: e.index, term: e.term });
    if (e.type === "membership") {
      const c = e.conf;
      const fields: Record<string, unknown> = { voters: c.voters.join(",") || "none", learners: c.learners.join(",") || "none" };
      if (c.votersOutgoing.length > 0) fields.outgoing = c.votersOutgoing.join(",");
      const member = c.voters.includes(o.id) || c.learners.includes(o.id) || c.votersOutgoing.includes(o.id);
      o.log("info", wasMember && !member ? "membership: this node was removed from the cluster" : "membership", fields);
      wasMember ||= member;
    }
  });
  const app = createApp({
    node,
    kv,
    selfUrl: o.url,
    apiToken: o.apiToken,
    adminToken: o.adminToken,
    followerReads: o.followerReads,
    raftSocket: o.raftSocket,
    logger: { warn: (m: string) => o.log("warn", m), error: (m: string) => o.log("error", m) },
  });
  const start = async (): Promise<void> => {
    await node.start();
    const c = node.membership();
    if (!o.join || c.voters.length + c.learners.length > 0) return;
    const joined = await joinCluster({ id: o.id, url: o.url, seeds: o.join, role: o.learner ? "learner" : "voter", adminToken: o.adminToken ?? o.apiToken, log: o.log, stopped: () => node.stopped });
    // Link to the members now; the configuration the node learns from the log takes over.
    o.transport.setPeers?.(joined.members.filter((m) => m.id !== o.id && m.url).map((m) => ({ id: m.id, url: m.url! })));
  };
  return { node, kv, app, start };
}

export interface JoinOptions {
  id: string;
  url: string;
  /** Base URLs of any members; each is tried in turn, redirects to the leader are followed. */
  seeds: string[];
  role: "voter" | "learner";
  adminToken?: string;
  log: MemberLogger;
  /** Give up after this long, in ms. Default 120000. */
  timeoutMs?: number;
  stopped?: () => boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => realClock.setTimer(ms, resolve));

/**
 * `POST /admin/members {id, url, role}` through the seeds until the leader answers 200. Retries
 * (with the next seed, or after a pause) on connection errors, 503 and 409 (another change in
 * flight); follows 307s itself so the JSON body is resent. Throws on any other answer.
 */
export async function joinCluster(o: JoinOptions): Promise<AdminMembersBody> {
  if (o.seeds.length === 0) throw new Error("joining needs at least one member URL");
  const deadline = realClock.now() + (o.timeoutMs ?? 120_000);
  const body = JSON.stringify({ id: o.id, url: o.url, role: o.role });
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (o.adminToken) headers.Authorization = `Bearer ${o.adminToken}`;
  let seed = 0;
  let target = `${o.seeds[0].replace(/\/+$/, "")}/admin/members`;
  let lastProblem = "";
  for (let attempt = 0; realClock.now() < deadline && !o.stopped?.(); attempt++) {
    let res: Response;
    try {
      res = await fetch(target, { method: "POST", headers, body, redirect: "manual" });
    } catch (err) {
      lastProblem = `${target}: ${err instanceof Error ? err.message : String(err)}`;
      seed = (seed + 1) % o.seeds.length;
      target = `${o.seeds[seed].replace(/\/+$/, "")}/admin/members`;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 4)));
      continue;
    }
    const text = await res.text();
    if (res.status === 200) {
      const answer = JSON.parse(text) as AdminMembersBody;
      o.log("info", `joined the cluster as ${o.role}`, { leader: answer.leader, members: answer.members.map((m) => `${m.id}:${m.role}`).join(",") });
      return answer;
    }
    if (res.status === 307 || res.status === 308) {
      const location = res.headers.get("Location");
      if (location) {
        target = location;
        continue;
      }
    }
    if (res.status === 503 || res.status === 409 || res.status === 504) {
      // No leader yet, another change in flight, or the change's outcome unknown: ask again
      // (adding a member that is already there answers 200).
      lastProblem = `${target}: ${res.status} ${text.slice(0, 200)}`;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 4)));
      continue;
    }
    throw new Error(`joining through ${target} failed: ${res.status} ${text.slice(0, 500)}`);
  }
  throw new Error(`could not join the cluster within ${o.timeoutMs ?? 120_000} ms; last problem: ${lastProblem || "stopped"}`);
}
