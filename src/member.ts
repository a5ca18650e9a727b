/**
 * A whole meshraft member from its parts: the Raft node, the built-in KV state machine and the
 * HTTP API (with the peer socket), wired the same way on every runtime. The runtime adapters
 * supply only what differs: the storage, the mesh's WebSocket, the server that serves `app`.
 */
import type { Context, Hono } from "hono";
import { MeshraftClient, MeshraftHttpError } from "./client/client.ts";
import { isMember } from "./core/membership.ts";
import { logText } from "./log-text.ts";
import { realClock } from "./clock.ts";
import { MeshraftError } from "./errors.ts";
import type { EventLoopDelaySource } from "./event-loop-delay.ts";
import { type AppOptions, createApp, type HttpLimits, type RaftSocketOptions } from "./http/app.ts";
import type { AdminMembersBody } from "./http/protocol.ts";
import { KvStateMachine, type KvResult } from "./kv/kv.ts";
import { RaftNode, type RaftNodeOptions } from "./node.ts";
import type { Storage } from "./storage/storage.ts";
import { NodeInstruments } from "./http/metrics-instruments.ts";
import type { PeerAddress, Transport } from "./transport/transport.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
/** The one logger shape of a member, on every runtime: its node, mesh, HTTP API and storage log through it. */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;
/** @deprecated The same type: `Logger`. */
export type MemberLogger = Logger;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One line per event, `time level id message key=value ...`, handed to `write`. */
export function lineLogger(id: string, minLevel: LogLevel, write: (line: string) => void): Logger {
  return (level, message, fields = {}) => {
    if (LEVELS[level] < LEVELS[minLevel]) return;
    const kv = Object.entries(fields)
      .map(([k, v]) => `${logText(k)}=${typeof v === "string" && !/\s/.test(v) ? logText(v) : logText(JSON.stringify(v) ?? String(v))}`)
      .join(" ");
    // Messages and fields carry text from the wire: escaped, so each event stays one line.
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${id} ${logText(message)}${kv ? ` ${kv}` : ""}`);
  };
}

/** The members' default logger on every runtime: `lineLogger` lines on stderr (`console.error`). */
export function stderrLogger(id: string, minLevel: LogLevel): Logger {
  return lineLogger(id, minLevel, (line) => console.error(line));
}

/**
 * The Raft node settings a member passes through to its RaftNode as they are, under their
 * RaftNodeOptions names (the CLI's `StartArgs.node`).
 */
export type MemberNodeOptions = Pick<
  RaftNodeOptions<KvResult>,
  "electionTimeoutMs" | "heartbeatIntervalMs" | "readMode" | "snapshotEveryEntries" | "snapshotEveryBytes" | "snapshotMarginEntries"
>;

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
  /** Serve `/status` without the API token (default true; see AppOptions.publicStatus). */
  publicStatus?: boolean;
  /**
   * Base URLs of members to join through (`--join`): a node that knows no configuration yet
   * asks them to add it, as a voter (caught up as a learner first) or, with `learner`, as a
   * learner only. A node whose storage already holds a configuration ignores them.
   */
  join?: string[];
  learner?: boolean;
  followerReads?: boolean;
  /** The node's settings (RaftNodeOptions); unset ones take the node's defaults. */
  node?: MemberNodeOptions;
  /**
   * With a transport that reports its links (`Transport.linked`): a joining node that completes
   * no handshake with any member within this many ms fails its start(), and a leader removes a
   * learner it had no link with for this long. Default 30000.
   */
  linkTimeoutMs?: number;
  /** Limits of the client API (keys, values); defaults are the state machine's own. */
  limits?: HttpLimits;
  log: Logger;
  /** The client's address as the runtime's server reports it, for the admin audit log. */
  remoteAddress?: (c: Context) => string | undefined;
  /** Event-loop delay for `/metrics` (see AppOptions.eventLoopDelay). */
  eventLoopDelay?: EventLoopDelaySource;
  /** With TLS: the served certificate's expiry, for /status (AppOptions.tlsStatus). */
  tlsStatus?: AppOptions["tlsStatus"];
  /** What joining calls the seeds with (with TLS: one that trusts the cluster's CA). Default the global fetch. */
  fetch?: typeof fetch;
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
  /**
   * Resolves with the reason if the node failed and stopped by itself (a storage error it cannot
   * go on after). A failed member never recovers in place: the CLIs exit non-zero on it, so a
   * supervisor sees the failure and can restart the process (which recovers from storage).
   */
  failed: Promise<Error>;
}

export function createMember(o: MemberOptions): Member {
  const kv = new KvStateMachine();
  let reportFailure: (error: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  // Save, apply and snapshot timings for /metrics, measured around the parts the node is handed.
  const instruments = new NodeInstruments();
  const node = new RaftNode<KvResult>({
    ...o.node,
    id: o.id,
    members: o.join ? [] : [{ id: o.id, url: o.url }, ...o.peers],
    join: o.join !== undefined,
    storage: instruments.storage(o.storage),
    transport: instruments.transport(o.transport),
    stateMachine: instruments.stateMachine(kv),
    onError: (error) => {
      o.log("error", "node failed and stopped", { error: error instanceof Error ? error.message : String(error) });
      reportFailure(error instanceof Error ? error : new Error(String(error)));
    },
  });
  let wasMember = false;
  node.on((e) => {
    if (e.type === "role") o.log("info", `role ${e.role}`, { term: e.term, leader: e.leaderId ?? "none" });
    if (e.type === "snapshot-restored") o.log("info", "state restored from a snapshot", { index: e.index, term: e.term });
    if (e.type === "snapshot-deferred") {
      o.log("warn", "snapshot failed; retrying later", { index: e.index, retryInMs: e.retryInMs, error: e.error instanceof Error ? e.error.message : String(e.error) });
    }
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
    announcedUrl: o.transport.announcedUrl ? (id) => o.transport.announcedUrl!(id) : undefined,
    linkStats: o.transport.linkStats ? () => o.transport.linkStats!() : undefined,
    instruments,
    apiToken: o.apiToken,
    adminToken: o.adminToken,
    publicStatus: o.publicStatus,
    followerReads: o.followerReads,
    limits: o.limits,
    raftSocket: o.raftSocket,
    logger: { info: (m: string) => o.log("info", m), warn: (m: string) => o.log("warn", m), error: (m: string) => o.log("error", m) },
    remoteAddress: o.remoteAddress,
    eventLoopDelay: o.eventLoopDelay,
    tlsStatus: o.tlsStatus,
  });
  const linkTimeoutMs = o.linkTimeoutMs ?? 30_000;
  const start = async (): Promise<void> => {
    await node.start();
    removeUnlinkedLearners(node, o.transport, linkTimeoutMs, o.log);
    const c = node.membership();
    if (!o.join || c.voters.length + c.learners.length > 0) return;
    const joined = await joinCluster({ id: o.id, url: o.url, seeds: o.join, role: o.learner ? "learner" : "voter", adminToken: o.adminToken ?? o.apiToken, log: o.log, stopped: () => node.stopped, fetch: o.fetch });
    // Link to the members now; the configuration the node learns from the log takes over.
    const others = joined.members.filter((m) => m.id !== o.id && m.url);
    o.transport.setPeers?.(others.map((m) => ({ id: m.id, url: m.url! })));
    await awaitFirstLink(o.transport, others.map((m) => m.id), linkTimeoutMs, () => node.stopped);
  };
  return { node, kv, app, start, failed };
}

/** A joined node completed no mesh handshake with any member in time (code NO_LINK). */
export class JoinLinkError extends MeshraftError {
  constructor(message: string) {
    super("NO_LINK", message);
  }
}

/**
 * A joined node proves it can hold a link: some member completes a handshake with it within
 * `timeoutMs`, or start() fails. Without it (a wrong --secret or --cluster-id, a firewall) the
 * node would sit in the configuration as a learner that never catches up; the leader removes it
 * (removeUnlinkedLearners), and the process says why instead of retrying forever.
 */
async function awaitFirstLink(transport: Transport, members: string[], timeoutMs: number, stopped: () => boolean): Promise<void> {
  const linked = transport.linked?.bind(transport);
  if (!linked) return;
  const deadline = realClock.now() + timeoutMs;
  while (!members.some(linked)) {
    if (stopped()) return;
    if (realClock.now() >= deadline) {
      throw new JoinLinkError(
        `joined the cluster, but no authenticated link to any member within ${timeoutMs} ms: check --secret and --cluster-id ` +
          `against the members' (the mesh log lines above say why each link failed); the leader removes this member again`,
      );
    }
    await sleep(100);
  }
}

/**
 * On the leader, every second: a learner that no link has been opened with for `timeoutMs`
 * (counted from when this node first saw it unlinked while leading) is removed from the
 * configuration, with a warning. A member that never completed a handshake can never catch up,
 * and otherwise stays in the configuration, and in every member's dial loop, until removed by
 * hand. Voters are left alone: removing one changes the quorum, which is the operator's call.
 */
function removeUnlinkedLearners(node: RaftNode<KvResult>, transport: Transport, timeoutMs: number, log: Logger): void {
  const linked = transport.linked?.bind(transport);
  if (!linked) return;
  const unlinkedSince = new Map<string, number>();
  const check = (): void => {
    if (node.stopped) return;
    if (!node.isLeader) {
      unlinkedSince.clear();
    } else {
      const now = realClock.now();
      const learners = node.membership().learners;
      for (const id of unlinkedSince.keys()) if (!learners.includes(id)) unlinkedSince.delete(id);
      for (const id of learners) {
        // A learner that acknowledged entries is reachable, whatever carried them (a relay, say).
        if (linked(id) || (node.progress(id)?.match ?? 0) > 0) {
          unlinkedSince.delete(id);
          continue;
        }
        const since = unlinkedSince.get(id) ?? now;
        unlinkedSince.set(id, since);
        if (now - since < timeoutMs) continue;
        unlinkedSince.delete(id);
        log("warn", `removing learner ${id}: no authenticated link within ${timeoutMs} ms of joining (a wrong --secret or --cluster-id, or unreachable at ${node.urlOf(id) ?? "an unknown URL"})`, { peer: id });
        node.removeMember(id).catch((err) => log("warn", `removing learner ${id} failed; tried again later`, { error: err instanceof Error ? err.message : String(err) }));
      }
    }
    realClock.setTimer(1_000, check);
  };
  realClock.setTimer(1_000, check);
}

export interface JoinOptions {
  id: string;
  url: string;
  /** Base URLs of any members; each is tried in turn, redirects to the leader are followed. */
  seeds: string[];
  role: "voter" | "learner";
  adminToken?: string;
  log: Logger;
  /** Give up after this long, in ms. Default 120000. */
  timeoutMs?: number;
  stopped?: () => boolean;
  /** Default the global fetch (with TLS: one that trusts the cluster's CA). */
  fetch?: typeof fetch;
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
  const client = new MeshraftClient({ urls: o.seeds, adminToken: o.adminToken, retryBudgetMs: Math.min(10_000, timeoutMs), fetch: o.fetch });
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
