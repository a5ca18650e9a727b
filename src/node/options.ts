import type { Clock } from "../clock.ts";
import { Raft, type RaftConfig } from "../core/raft.ts";
import { SeededRandom, type Random } from "../core/random.ts";
import type { NodeId } from "../core/types.ts";
import type { StateMachine } from "../statemachine.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import { bootstrapMembers } from "./bootstrap.ts";

export interface Member {
  id: NodeId;
  /** Base URL clients and peers use to reach this member (for redirects). */
  url?: string;
}

/**
 * The core's settings a RaftNode hands to Raft as they are. Declared once, in RaftConfig
 * (src/core/raft.ts), where each is documented; `RaftNodeOptions` takes them under the same names.
 */
export type RaftCoreOptions = Pick<
  RaftConfig,
  | "preVote"
  | "checkQuorum"
  | "readMode"
  | "leaseDriftTicks"
  | "forwardProposals"
  | "maxMsgBytes"
  | "maxInflightMsgs"
  | "maxInflightBytes"
  | "snapshotChunkBytes"
  | "promoteLagEntries"
>;

/** `RaftCoreOptions`' keys, to pass them on without naming each twice. */
const CORE_OPTIONS = [
  "preVote",
  "checkQuorum",
  "readMode",
  "leaseDriftTicks",
  "forwardProposals",
  "maxMsgBytes",
  "maxInflightMsgs",
  "maxInflightBytes",
  "snapshotChunkBytes",
  "promoteLagEntries",
] as const satisfies readonly (keyof RaftCoreOptions)[];

/**
 * A RaftNode's options: its own (storage, transport, timeouts in ms, request limits, the snapshot
 * policy) and the core's (`RaftCoreOptions`), one flat object.
 */
export interface RaftNodeOptions<Result> extends RaftCoreOptions {
  id: NodeId;
  /**
   * The voters of a brand-new cluster, this node included. Empty with `join`. Used only when
   * storage holds nothing yet, and stored with the node's first write (a configuration record: a
   * snapshot at index 0 without data, as etcd stores its initial ConfState), so a restarted node
   * recovers membership from its own state, never from these. On a later start they must name
   * the same voters (and URLs) as the stored record, or only this node (what `meshraft start`
   * without `--peer` passes: "use what is stored"); anything else is a BootstrapConflictError.
   * A node that joined (`join`) stored an empty record: members given later contradict it.
   */
  members: (Member | NodeId)[];
  /**
   * Start with no configuration: this node does not campaign and waits for a leader to add it
   * (`changeMembership` on the leader; `meshraft start --join` does both ends). It learns the
   * configuration from the log or a snapshot.
   */
  join?: boolean;
  storage: Storage;
  transport: Transport;
  stateMachine: StateMachine<Result>;
  /** Defaults to the real clock. */
  clock?: Clock;
  /** Source of election jitter; defaults to a generator seeded from crypto.getRandomValues. */
  random?: Random;
  /** Length of one core tick in ms. Default 25. */
  tickMs?: number;
  /** Base election timeout in ms (randomized in [t, 2t)). Default 300. */
  electionTimeoutMs?: number;
  /** Leader heartbeat interval in ms. Default 50. */
  heartbeatIntervalMs?: number;
  /** A proposal not applied within this many ms fails with OUTCOME_UNKNOWN. Default 10000. */
  proposalTimeoutMs?: number;
  /** A read not confirmed within this many ms fails with READ_TIMEOUT. Default 5000. */
  readTimeoutMs?: number;
  /**
   * Proposals this node holds at once (queued, forwarded, or appended and not yet applied); one
   * more is refused with OverloadedError, nothing proposed. Default 4096.
   */
  maxPendingProposals?: number;
  /** Reads this node holds at once (awaiting confirmation or apply); one more: OverloadedError. Default 4096. */
  maxPendingReads?: number;
  /**
   * Take a snapshot of the state machine once this many entries were applied since the last one,
   * then compact the log. Default 10000; 0: not by count.
   */
  snapshotEveryEntries?: number;
  /**
   * Take one also once the entries applied since the last snapshot hold this many bytes of data,
   * so that a log of large entries is compacted before it holds 10000 of them. Default 64 MiB;
   * 0: not by size. With both at 0 no snapshot is taken.
   */
  snapshotEveryBytes?: number;
  /** Entries kept below a snapshot for followers that are slightly behind. Default 1000. */
  snapshotMarginEntries?: number;
  /** Called when the node fails (storage error, broken invariant); the node is stopped. */
  onError?: (error: unknown) => void;
}

/** The settings a RaftNode checks when it is constructed, with their defaults filled in. */
export interface NodeSettings {
  tickMs: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  maxPendingProposals: number;
  maxPendingReads: number;
  snapshotEveryEntries: number;
  snapshotEveryBytes: number;
  snapshotMarginEntries: number;
}

/** Fill in defaults and check the settings; throws RangeError naming the first bad one. */
export function nodeSettings<R>(options: RaftNodeSettings<R>): NodeSettings {
  return {
    tickMs: positive("tickMs", options.tickMs ?? 25),
    proposalTimeoutMs: positive("proposalTimeoutMs", options.proposalTimeoutMs ?? 10_000),
    readTimeoutMs: positive("readTimeoutMs", options.readTimeoutMs ?? 5_000),
    maxPendingProposals: positive("maxPendingProposals", options.maxPendingProposals ?? 4096),
    maxPendingReads: positive("maxPendingReads", options.maxPendingReads ?? 4096),
    snapshotEveryEntries: nonNegativeInt("snapshotEveryEntries", options.snapshotEveryEntries ?? 10_000),
    snapshotEveryBytes: nonNegativeInt("snapshotEveryBytes", options.snapshotEveryBytes ?? 64 * 1024 * 1024),
    snapshotMarginEntries: nonNegativeInt("snapshotMarginEntries", options.snapshotMarginEntries ?? 1_000),
  };
}

/**
 * The core's configuration: timeouts in ms become ticks of `tickMs`. Checked when the node
 * starts (a bad election timeout fails start(), not the constructor).
 */
export function coreConfig<R>(id: NodeId, o: RaftNodeSettings<R>, tickMs: number): { config: RaftConfig; electionTimeoutMs: number } {
  const electionTimeoutMs = positive("electionTimeoutMs", o.electionTimeoutMs ?? 300);
  const heartbeatIntervalMs = positive("heartbeatIntervalMs", o.heartbeatIntervalMs ?? 50);
  const core = Object.fromEntries(CORE_OPTIONS.map((key) => [key, o[key]])) as RaftCoreOptions;
  const config: RaftConfig = {
    ...core,
    id,
    electionTicks: Math.max(2, Math.round(electionTimeoutMs / tickMs)),
    heartbeatTicks: Math.max(1, Math.round(heartbeatIntervalMs / tickMs)),
    random: o.random ?? cryptoSeededRandom(),
  };
  return { config, electionTimeoutMs };
}

/** RaftNodeOptions without the parts a RaftNode opens and runs: what validateRaftNodeOptions checks. */
export type RaftNodeSettings<R = unknown> = Omit<RaftNodeOptions<R>, "storage" | "transport" | "stateMachine">;

/**
 * Throw the RangeError a RaftNode would throw for these options, when it is constructed or when
 * it starts, without constructing one or opening anything: the members (or `join`), every
 * duration and limit, and the core's own rules (heartbeat shorter than the election timeout in
 * ticks, a lease only with checkQuorum, the lease drift). Options it accepts start a node.
 */
export function validateRaftNodeOptions<R>(options: RaftNodeSettings<R>): void {
  bootstrapMembers(options.id, options.members, !!options.join);
  const { tickMs } = nodeSettings(options);
  // A throwaway random: the core draws from it when constructed, and the caller's must stay untouched.
  const { config } = coreConfig(options.id, { ...options, random: new SeededRandom(0) }, tickMs);
  new Raft(config, {
    hardState: { term: 0, votedFor: null, commit: 0 },
    snapshot: null,
    entries: [],
    conf: { voters: [options.id], learners: [], votersOutgoing: [] },
  });
}

export function positive(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}

function nonNegativeInt(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`${name} must be a whole number >= 0, got ${value}`);
  return value;
}

function cryptoSeededRandom(): Random {
  const buf = new Uint32Array(1);
  crypto.getRandomValues(buf);
  return new SeededRandom(buf[0]);
}
