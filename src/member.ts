/**
 * A whole meshraft member from its parts: the Raft node, the built-in KV state machine and the
 * HTTP API (with the peer socket), wired the same way on every runtime. The runtime adapters
 * supply only what differs: the storage, the mesh's WebSocket, the server that serves `app`.
 */
import type { Hono } from "hono";
import { MeshraftClient, MeshraftHttpError } from "./client/client.ts";
import { isMember } from "./core/membership.ts";
import { logText } from "./log-text.ts";
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
      .map(([k, v]) => `${logText(k)}=${typeof v === "string" && !/\s/.test(v) ? logText(v) : logText(JSON.stringify(v) ?? String(v))}`)
      .join(" ");
    // Messages and fields carry text from the wire: escaped, so each event stays one line.
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${id} ${logText(message)}${kv ? ` ${kv}` : ""}`);
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
  snapshotBytes?: number;
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
    snapshotEveryBytes: o.snapshotBytes,
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
      const member = isMember(c, o.id);
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
 * `POST /admin/members {id, url, role}` through MeshraftClient (which finds the leader among the
 * seeds, follows 307s and retries 503s and connection errors) until the leader accepts it. A
 * change already in flight (409) or an unknown outcome (504) is asked again after a pause:
 * adding a member that is already there answers 200. Any other refusal throws.
 */
export async function joinCluster(o: JoinOptions): Promise<AdminMembersBody> {
  if (o.seeds.length === 0) throw new Error("joining needs at least one member URL");
  const timeoutMs = o.timeoutMs ?? 120_000;
  const deadline = realClock.now() + timeoutMs;
  const client = new MeshraftClient({ urls: o.seeds, adminToken: o.adminToken, retryBudgetMs: Math.min(10_000, timeoutMs) });
  let lastProblem = "stopped";
  for (let attempt = 0; realClock.now() < deadline && !o.stopped?.(); attempt++) {
    try {
      const answer = await client.addMember(o.id, o.url, o.role);
      o.log("info", `joined the cluster as ${o.role}`, { leader: answer.leader, members: answer.members.map((m) => `${m.id}:${m.role}`).join(",") });
      return answer;
    } catch (err) {
      const retry = err instanceof MeshraftHttpError && (err.status === 0 || err.status === 409 || err.status === 503 || err.status === 504);
      if (!retry) throw new Error(`joining the cluster failed: ${err instanceof Error ? err.message : String(err)}`);
      lastProblem = err.message;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 4)));
    }
  }
  throw new Error(`could not join the cluster within ${timeoutMs} ms; last problem: ${lastProblem}`);
}
