import { realClock, type Clock } from "./clock.ts";
import { allMembers } from "./core/quorum.ts";
import { type ConfChangeItem, ConfChangeError, cloneConf, decodeConfEntry, isJoint } from "./core/membership.ts";
import { Raft, type RaftConfig } from "./core/raft.ts";
import type { ProgressState } from "./core/progress.ts";
import { SeededRandom, type Random } from "./core/random.ts";
import type { ConfState, Entry, Index, Message, NodeId, Ready, Role, Snapshot, Term } from "./core/types.ts";
import {
  BootstrapConflictError,
  ConfChangeInProgressError,
  InvalidConfChangeError,
  LearnerBehindError,
  NodeStoppedError,
  NotLeaderError,
  OutcomeUnknownError,
  OverloadedError,
  ProposalDroppedError,
  ReadTimeoutError,
  TransferFailedError,
} from "./errors.ts";
import type { StateMachine } from "./statemachine.ts";
import type { Storage, StoredState } from "./storage/storage.ts";
import type { Transport } from "./transport/transport.ts";

/**
 * RaftNode drives the pure core (src/core/raft.ts): it turns clock time into ticks, hands inbound
 * messages to the core, and performs each Ready in the order that keeps Raft safe:
 *
 *   persist (await storage) -> send messages -> apply committed entries -> advance
 *
 * Only one Ready is processed at a time. Proposals and messages arriving while a Ready is being
 * persisted accumulate in the core and go out together in the next one (group commit).
 */

export interface Member {
  id: NodeId;
  /** Base URL clients and peers use to reach this member (for redirects). */
  url?: string;
}

export interface RaftNodeOptions<Result> {
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
  /** A learner marked for promotion becomes a voter within this many entries of the leader's log. Default 64. */
  promoteLagEntries?: number;
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
  preVote?: boolean;
  checkQuorum?: boolean;
  readMode?: "read-index" | "lease";
  /**
   * readMode "lease": ticks (of tickMs) the leader's lease stops short of the election timeout,
   * covering one tick plus the clock-rate difference between members over an election timeout.
   * Default 1 + ceil(election ticks / 10).
   */
  leaseDriftTicks?: number;
  /** Followers forward proposals to the leader instead of failing with NotLeaderError. */
  forwardProposals?: boolean;
  maxMsgBytes?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
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
  /** Size of one InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Called when the node fails (storage error, broken invariant); the node is stopped. */
  onError?: (error: unknown) => void;
}

export interface NodeStatus {
  id: NodeId;
  role: Role;
  term: Term;
  leaderId: NodeId | null;
  commitIndex: Index;
  appliedIndex: Index;
  lastIndex: Index;
  voters: NodeId[];
  learners: NodeId[];
  /** Non-empty while the cluster is in joint consensus: the voters of the old configuration. */
  votersOutgoing: NodeId[];
}

/** A membership change that took effect. */
export interface MembershipChange {
  /** Index of the entry that made it (for a voter change: the entry that left joint consensus). */
  index: Index;
  conf: ConfState;
}

export interface ProposeOutcome<Result> {
  index: Index;
  term: Term;
  result: Result;
}

export type RaftNodeEvent<Result> =
  | { type: "role"; role: Role; term: Term; leaderId: NodeId | null }
  | { type: "applied"; entry: Entry; result: Result | undefined }
  /** The state machine was replaced by a snapshot (from the leader, or at start). */
  | { type: "snapshot-restored"; index: Index; term: Term }
  /** This node took a snapshot of its state machine and compacted its log. */
  | { type: "snapshot-taken"; index: Index; compactedTo: Index }
  /** Saving a snapshot failed for a passing reason (out of file descriptors); it is retried in `retryInMs`. */
  | { type: "snapshot-deferred"; index: Index; error: unknown; retryInMs: number }
  /** The configuration this node works with changed (a change applied, or a snapshot's). */
  | { type: "membership"; conf: ConfState }
  | { type: "error"; error: unknown };

type Listener<Result> = (event: RaftNodeEvent<Result>) => void;

interface PendingProposal<Result> {
  term: Term;
  deadline: number;
  resolve: (outcome: ProposeOutcome<Result>) => void;
  reject: (error: unknown) => void;
}

interface PendingConfChange {
  term: Term;
  deadline: number;
  resolve: (change: MembershipChange) => void;
  reject: (error: unknown) => void;
}

interface PendingTransfer {
  deadline: number;
  resolve: (leaderId: NodeId) => void;
  reject: (error: unknown) => void;
}

interface PendingRead {
  deadline: number;
  resolve: (index: Index) => void;
  reject: (error: unknown) => void;
}

export class RaftNode<Result = unknown> {
  readonly id: NodeId;
  private readonly opts: RaftNodeOptions<Result>;
  private readonly clock: Clock;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly sm: StateMachine<Result>;
  private readonly urls = new Map<NodeId, string>();
  private readonly bootstrapVoters: NodeId[];
  /**
   * The configuration record (see `members`) of a node that found its storage empty. It goes into
   * the first batch the node saves, atomically with the first state that lets it act on the
   * configuration (a vote, a term, entries): a crash before that loses nothing it acted on.
   */
  private pendingBootstrap: Snapshot | null = null;
  /** The configuration last announced (membership event, transport peers). */
  private knownConf: ConfState | null = null;
  /**
   * The configuration as of the applied index. The transport keeps linking to its members too:
   * a member leaving must still hear the leader (and answer it) until its removal is committed.
   */
  private appliedMembers: ConfState | null = null;
  /** Membership changes proposed here, by index, until applied. */
  private readonly confChanges = new Map<Index, PendingConfChange>();
  /** Voter changes applied in joint form, waiting for the entry that leaves joint consensus. */
  private awaitingLeave: PendingConfChange[] = [];
  private transfers: PendingTransfer[] = [];
  private electionTimeoutMs = 300;
  private readonly tickMs: number;
  private readonly proposalTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly maxPendingProposals: number;
  private readonly maxPendingReads: number;
  private readonly snapshotEvery: number;
  private readonly snapshotEveryBytes: number;
  private readonly snapshotMargin: number;
  /** Index of the last snapshot taken or installed here. */
  private snapshotIndex: Index = 0;
  /** Data bytes of the entries applied since the last snapshot taken or installed (or since start). */
  private bytesSinceSnapshot = 0;
  /** Snapshot saves that failed in a row for a transient reason, and when (`now`) to try again. */
  private snapshotFailures = 0;
  private snapshotRetryAt = 0;

  private raft: Raft | null = null;
  private state: "new" | "starting" | "running" | "stopped" = "new";
  private closed = false;
  private processing = false;
  /** The Ready loop in progress, so stop() can let its storage write finish before closing. */
  private loop: Promise<void> | null = null;
  private cancelTick: (() => void) | null = null;
  private appliedIndex: Index = 0;
  private readonly listeners = new Set<Listener<Result>>();

  /** Proposals appended to the log here, by index; settled when that index is applied. */
  private readonly proposals = new Map<Index, PendingProposal<Result>>();
  /** Proposals made since the last flush into the core; they enter the log as one batch. */
  private queued: { data: Uint8Array; pending: PendingProposal<Result> }[] = [];
  /** Batches forwarded to the leader, by request id, until it says where they landed. */
  private readonly forwarded = new Map<number, PendingProposal<Result>[]>();
  /** The clock's time at the last tick: deadlines need no better precision than a tick. */
  private now = 0;
  /** The clock's time when the core was created: the origin of its lease clock. */
  private startedAt = 0;
  /** When (clock ms, tick-granular) a message from each peer last arrived: progress()'s last contact. */
  private readonly heardAt = new Map<NodeId, number>();
  /** Reads waiting for the leader to confirm a read index, by request id. */
  private readonly reads = new Map<number, PendingRead>();
  /** Confirmed reads waiting for the state machine to reach their index, in index order. */
  private readsAwaitingApply: { index: Index; read: PendingRead }[] = [];

  constructor(options: RaftNodeOptions<Result>) {
    this.opts = options;
    this.id = options.id;
    this.clock = options.clock ?? realClock;
    this.storage = options.storage;
    this.transport = options.transport;
    this.sm = options.stateMachine;
    this.bootstrapVoters = [];
    for (const m of options.members) {
      const member = typeof m === "string" ? { id: m } : m;
      this.bootstrapVoters.push(member.id);
      if (member.url) this.urls.set(member.id, member.url);
    }
    if (options.join) {
      if (this.bootstrapVoters.length > 0) throw new RangeError("a node that joins (join: true) takes no members: it learns them from the cluster");
    } else if (!this.bootstrapVoters.includes(this.id)) {
      throw new RangeError(`members (${this.bootstrapVoters.join(", ")}) must include this node's id "${this.id}"`);
    }
    this.tickMs = positive("tickMs", options.tickMs ?? 25);
    this.proposalTimeoutMs = positive("proposalTimeoutMs", options.proposalTimeoutMs ?? 10_000);
    this.readTimeoutMs = positive("readTimeoutMs", options.readTimeoutMs ?? 5_000);
    this.maxPendingProposals = positive("maxPendingProposals", options.maxPendingProposals ?? 4096);
    this.maxPendingReads = positive("maxPendingReads", options.maxPendingReads ?? 4096);
    this.snapshotEvery = nonNegativeInt("snapshotEveryEntries", options.snapshotEveryEntries ?? 10_000);
    this.snapshotEveryBytes = nonNegativeInt("snapshotEveryBytes", options.snapshotEveryBytes ?? 64 * 1024 * 1024);
    this.snapshotMargin = nonNegativeInt("snapshotMarginEntries", options.snapshotMarginEntries ?? 1_000);
  }

  /** Load durable state, restore the state machine, and join the cluster. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`node ${this.id} was already started`);
    this.state = "starting";
    const stored = await this.storage.load();
    const conf = this.initialConf(stored);
    // A configuration record is not state: the state machine and the core start empty from it.
    const snapshot = stored.snapshot !== null && stored.snapshot.meta.index > 0 ? stored.snapshot : null;
    const o = this.opts;
    const electionTimeoutMs = positive("electionTimeoutMs", o.electionTimeoutMs ?? 300);
    this.electionTimeoutMs = electionTimeoutMs;
    const heartbeatIntervalMs = positive("heartbeatIntervalMs", o.heartbeatIntervalMs ?? 50);
    const config: RaftConfig = {
      id: this.id,
      electionTicks: Math.max(2, Math.round(electionTimeoutMs / this.tickMs)),
      heartbeatTicks: Math.max(1, Math.round(heartbeatIntervalMs / this.tickMs)),
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      readMode: o.readMode,
      leaseDriftTicks: o.leaseDriftTicks,
      forwardProposals: o.forwardProposals,
      maxMsgBytes: o.maxMsgBytes,
      maxInflightMsgs: o.maxInflightMsgs,
      maxInflightBytes: o.maxInflightBytes,
      snapshotChunkBytes: o.snapshotChunkBytes,
      promoteLagEntries: o.promoteLagEntries,
      random: o.random ?? cryptoSeededRandom(),
    };
    if (snapshot) {
      this.sm.restore(snapshot.data);
      this.appliedTo(snapshot.meta.index);
      this.snapshotIndex = snapshot.meta.index;
    }
    this.startedAt = this.clock.now();
    this.raft = new Raft(config, {
      hardState: stored.hardState,
      snapshot,
      entries: stored.entries.filter((e) => e.index > (snapshot?.meta.index ?? 0)),
      conf,
    });
    if (snapshot) this.emit({ type: "snapshot-restored", index: snapshot.meta.index, term: snapshot.meta.term });
    if (this.state !== "starting") return; // stopped while loading
    this.state = "running";
    this.appliedMembers = conf;
    this.noticeConf(this.raft.conf);
    this.now = this.clock.now();
    this.transport.start((m) => this.receive(m));
    this.armTick();
    this.schedule();
  }

  /**
   * The configuration to start from: a snapshot's, else the stored configuration record (checked
   * against `members`), else, for empty storage, `members` (to be stored with the first save).
   * Storage written before configuration records existed (entries, no record) starts from
   * `members`, as it always did: writing a record under its entries would discard them.
   */
  private initialConf(stored: StoredState): ConfState {
    const given: ConfState = { voters: this.bootstrapVoters.slice(), learners: [], votersOutgoing: [] };
    const urls = new Map([...this.urls].filter(([id]) => given.voters.includes(id)));
    if (urls.size > 0) given.urls = Object.fromEntries(urls);
    const snap = stored.snapshot;
    if (snap !== null && snap.meta.index > 0) return snap.meta.conf;
    if (snap !== null) {
      const recorded = snap.meta.conf;
      const onlySelf = given.voters.length === 1 && given.voters[0] === this.id;
      if (!this.opts.join && !onlySelf && !sameVoters(recorded, given)) throw new BootstrapConflictError(this.id, recorded, given);
      return recorded;
    }
    const fresh = stored.entries.length === 0 && stored.hardState.term === 0 && stored.hardState.votedFor === null;
    if (fresh) this.pendingBootstrap = { meta: { index: 0, term: 0, conf: given }, data: new Uint8Array(0) };
    return given;
  }

  /** Stop ticking and talking; reject everything pending. Storage is closed too. */
  async stop(): Promise<void> {
    if (this.state === "stopped" && this.closed) return;
    this.halt(new NodeStoppedError(`node ${this.id} was stopped`));
    this.closed = true;
    // A save in flight completes (or fails) before storage closes under it; nothing of that
    // Ready escapes, since the loop sees the node stopped.
    await this.loop?.catch(() => {});
    await this.transport.close();
    await this.storage.close();
  }

  /**
   * Replicate `data` and resolve with the state machine's result once it is applied here.
   * Rejects with NotLeaderError (nothing proposed), ProposalDroppedError (known not committed)
   * or OutcomeUnknownError (may or may not commit).
   */
  propose(data: Uint8Array): Promise<ProposeOutcome<Result>> {
    return new Promise((resolve, reject) => {
      this.running();
      let pending = this.queued.length + this.proposals.size;
      for (const batch of this.forwarded.values()) pending += batch.length;
      if (pending >= this.maxPendingProposals) {
        reject(new OverloadedError(`${pending} proposals are pending (maxPendingProposals)`));
        return;
      }
      this.queued.push({ data, pending: { term: 0, deadline: this.now + this.proposalTimeoutMs, resolve, reject } });
      this.schedule();
    });
  }

  /**
   * Like `propose`, but place the entry in the log now and say where: `{ index, term }` at once,
   * and `applied`, which settles as `propose` does. Only on the leader; elsewhere it throws
   * NotLeaderError. (Proposals queued by `propose` go first, so order is kept.)
   */
  submit(data: Uint8Array): { index: Index; term: Term; applied: Promise<ProposeOutcome<Result>> } {
    const raft = this.running();
    this.flushProposals(raft);
    const res = raft.propose([{ data }]);
    if (res.status !== "appended") {
      throw this.notLeader(res.status === "rejected" ? res.leaderId : raft.leaderId, res.status === "rejected" && res.reason === "transferring" ? "leadership transfer in progress" : undefined);
    }
    const applied = new Promise<ProposeOutcome<Result>>((resolve, reject) => {
      this.trackAt(res.index, { term: res.term, deadline: this.now + this.proposalTimeoutMs, resolve, reject });
    });
    this.schedule();
    return { index: res.index, term: res.term, applied };
  }

  /** Hand every queued proposal to the core in one call: one log append, one AppendEntries. */
  private flushProposals(raft: Raft): void {
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    const res = raft.propose(batch.map((q) => ({ data: q.data })));
    switch (res.status) {
      case "appended":
        for (let i = 0; i < batch.length; i++) {
          batch[i].pending.term = res.term;
          this.trackAt(res.index + i, batch[i].pending);
        }
        break;
      case "forwarded":
        this.forwarded.set(
          res.requestId,
          batch.map((q) => q.pending),
        );
        break;
      case "rejected": {
        const detail = res.reason === "transferring" ? "leadership transfer in progress" : undefined;
        for (const q of batch) q.pending.reject(this.notLeader(res.leaderId, detail));
        break;
      }
    }
  }

  /**
   * Resolve once a linearizable read may be served from the local state machine: the leader
   * confirmed (with a quorum) that it still leads and this node has applied up to its commit
   * index as of the call. Resolves with that index.
   */
  read(): Promise<Index> {
    return new Promise((resolve, reject) => {
      const raft = this.running();
      const pending = this.reads.size + this.readsAwaitingApply.length;
      if (pending >= this.maxPendingReads) {
        reject(new OverloadedError(`${pending} reads are pending (maxPendingReads)`));
        return;
      }
      // A lease read is decided against the clock as of now, not as of the last tick timer.
      this.observeClock(raft);
      const res = raft.readIndex();
      if (res.status === "rejected") {
        reject(this.notLeader(res.leaderId));
        return;
      }
      this.reads.set(res.requestId, { deadline: this.now + this.readTimeoutMs, resolve, reject });
      this.schedule();
    });
  }

  /** Start an election now. */
  campaign(): void {
    this.running().campaign();
    this.schedule();
  }

  /** Ask the leader (this node) to hand leadership to `to` (default: the most up-to-date voter). */
  transferLeader(to?: NodeId): void {
    this.running().transferLeader(to);
    this.schedule();
  }

  /**
   * Hand leadership to `to` (default: the voter whose log is most complete) and resolve with the
   * new leader's id once this node sees it lead. Rejects with NotLeaderError on a follower and
   * TransferFailedError when no other leader emerged within two election timeouts.
   */
  transferLeadership(to?: NodeId): Promise<NodeId> {
    return new Promise((resolve, reject) => {
      const raft = this.running();
      if (raft.role !== "leader") throw this.notLeader(raft.leaderId);
      if (to !== undefined && (to === this.id || !raft.conf.voters.includes(to))) {
        throw new InvalidConfChangeError(to === this.id ? `${to} already leads` : `${to} is not a voter`);
      }
      this.transfers.push({ deadline: this.now + 2 * this.electionTimeoutMs + this.tickMs, resolve, reject });
      raft.transferLeader(to);
      this.schedule();
    });
  }

  /**
   * Change the membership (leader only) and resolve once the change took effect here: for a
   * change of voters, once joint consensus was entered and left again. Rejects with
   * NotLeaderError (nothing proposed), ConfChangeInProgressError (another change is in flight;
   * retry later), InvalidConfChangeError, or OutcomeUnknownError / ProposalDroppedError as
   * `propose` does.
   */
  changeMembership(changes: ConfChangeItem[]): Promise<MembershipChange> {
    return new Promise((resolve, reject) => {
      const raft = this.running();
      this.flushProposals(raft);
      let res;
      try {
        res = raft.proposeConfChange(changes);
      } catch (err) {
        if (!(err instanceof ConfChangeError)) throw err;
        throw err.kind === "in-progress" ? new ConfChangeInProgressError(err.message) : new InvalidConfChangeError(err.message);
      }
      if (res.status !== "appended") {
        throw this.notLeader(res.leaderId, res.reason === "transferring" ? "leadership transfer in progress" : undefined);
      }
      const previous = this.confChanges.get(res.index);
      previous?.reject(new OutcomeUnknownError(`index ${res.index} was reused by a later term before it committed here`));
      this.confChanges.set(res.index, { term: res.term, deadline: this.now + this.proposalTimeoutMs, resolve, reject });
      this.schedule();
    });
  }

  /** Add `id` as a voter (through joint consensus). Prefer addLearner with promote for a new member. */
  addVoter(id: NodeId, url?: string): Promise<MembershipChange> {
    return this.changeMembership([{ op: "add-voter", id, url }]);
  }

  /**
   * Make learner `id` a voter now, if it has caught up as automatic promotion requires (see
   * `Raft.catchUp`); else reject with LearnerBehindError, which says how far behind it is, and
   * propose nothing. A voter that has not caught up would count towards quorums it cannot help.
   */
  async promoteLearner(id: NodeId, url?: string): Promise<MembershipChange> {
    const raft = this.running();
    const lag = raft.role === "leader" && raft.conf.learners.includes(id) ? raft.catchUp(id) : undefined;
    if (lag && !lag.caughtUp) throw new LearnerBehindError(id, lag.match, lag.lastIndex, lag.maxLagEntries, lag.state);
    return await this.changeMembership([{ op: "add-voter", id, url }]);
  }

  /** Add `id` as a learner; with `promote` the leader makes it a voter once it has caught up. */
  addLearner(id: NodeId, url?: string, options: { promote?: boolean } = {}): Promise<MembershipChange> {
    return this.changeMembership([{ op: "add-learner", id, url, promote: options.promote }]);
  }

  /** Remove `id` (voter or learner). A leader that removes itself steps down once that commits. */
  removeMember(id: NodeId): Promise<MembershipChange> {
    return this.changeMembership([{ op: "remove", id }]);
  }

  /**
   * The leader's view of a member's replication (undefined on followers and for unknown ids):
   * match and next index, probe/replicate/snapshot, AppendEntries in flight, and how long ago
   * (ms) this node last heard from it (null: never since start).
   */
  progress(id: NodeId): { match: Index; next: Index; state: ProgressState; inflight: number; lastContactMs: number | null } | undefined {
    const pr = this.raft?.progress(id);
    if (!pr) return undefined;
    const heard = this.heardAt.get(id);
    return { ...pr, lastContactMs: heard === undefined ? null : Math.max(0, this.clock.now() - heard) };
  }

  /** Index of the last snapshot taken or installed here (0: none). */
  get lastSnapshotIndex(): Index {
    return this.snapshotIndex;
  }

  /** The configuration this node works with: the latest in its log (thesis §4.1). */
  membership(): ConfState {
    return cloneConf(this.raft?.conf ?? { voters: this.bootstrapVoters.slice(), learners: [], votersOutgoing: [] });
  }

  status(): NodeStatus {
    const r = this.raft;
    return {
      id: this.id,
      role: r?.role ?? "follower",
      term: r?.term ?? 0,
      leaderId: r?.leaderId ?? null,
      commitIndex: r?.log.committed ?? 0,
      appliedIndex: this.appliedIndex,
      lastIndex: r?.log.lastIndex() ?? 0,
      voters: r ? r.conf.voters.slice() : this.bootstrapVoters.slice(),
      learners: r ? r.conf.learners.slice() : [],
      votersOutgoing: r ? r.conf.votersOutgoing.slice() : [],
    };
  }

  get isLeader(): boolean {
    return this.raft?.role === "leader" && this.state === "running";
  }

  get stopped(): boolean {
    return this.state === "stopped";
  }

  /** The core, for tests and the simulator's invariant checks. Do not drive it directly. */
  get core(): Raft | null {
    return this.raft;
  }

  urlOf(id: NodeId | null): string | null {
    return id === null ? null : (this.urls.get(id) ?? null);
  }

  /** Subscribe to role changes, applied entries and failures. Returns an unsubscribe function. */
  on(listener: Listener<Result>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolve with the leader's id once this node knows one (at once if it already does); right
   * after start() an election takes about one election timeout. Rejects with NotLeaderError when
   * no leader is known within `timeoutMs` (default: proposalTimeoutMs), and with NodeStoppedError
   * when the node stopped meanwhile. A leader known here may already be deposed: propose() and
   * read() still answer NotLeaderError then, and the caller waits again.
   */
  waitForLeader(timeoutMs: number = this.proposalTimeoutMs): Promise<NodeId> {
    positive("timeoutMs", timeoutMs);
    return new Promise((resolve, reject) => {
      const known = this.raft?.leaderId ?? null;
      if (known !== null && this.state === "running") return resolve(known);
      const settle = (outcome: () => void): void => {
        unsubscribe();
        cancelTimer();
        outcome();
      };
      const unsubscribe = this.on((event) => {
        if (event.type === "role" && event.leaderId !== null) settle(() => resolve(event.leaderId!));
        else if (event.type === "error") settle(() => reject(event.error));
      });
      const cancelTimer = this.clock.setTimer(timeoutMs, () =>
        settle(() =>
          reject(this.stopped ? new NodeStoppedError(`node ${this.id} is stopped`) : this.notLeader(null, `none elected within ${timeoutMs} ms`)),
        ),
      );
    });
  }

  // -------------------------------------------------------------------------------------------

  private running(): Raft {
    if (this.state !== "running" || !this.raft) {
      throw new NodeStoppedError(`node ${this.id} is ${this.state === "stopped" ? "stopped" : "not started"}`);
    }
    return this.raft;
  }

  private notLeader(leaderId: NodeId | null, detail?: string): NotLeaderError {
    return new NotLeaderError(leaderId, this.urlOf(leaderId), detail);
  }

  private receive(m: Message): void {
    if (this.state !== "running" || !this.raft) return;
    if (m.to !== this.id) return;
    // Tick-granular (this.now moves every tick): cheap enough for every message.
    this.heardAt.set(m.from, this.now);
    try {
      if (m.type === "ReadIndex") this.observeClock(this.raft); // as in read()
      this.raft.step(m);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.schedule();
  }

  private armTick(): void {
    this.cancelTick = this.clock.setTimer(this.tickMs, () => {
      if (this.state !== "running" || !this.raft) return;
      try {
        this.raft.tick();
        this.observeClock(this.raft);
      } catch (err) {
        this.fail(err);
        return;
      }
      this.expireRequests();
      this.armTick();
      this.schedule();
    });
  }

  /**
   * Tell the core how much clock time has passed, in ticks: tick timers that fired late (a paused
   * process, a busy event loop) must not stretch a leader's lease past the followers' promise
   * not to vote (see src/core/lease.ts).
   */
  private observeClock(raft: Raft): void {
    this.now = this.clock.now();
    raft.observeClock(Math.floor((this.now - this.startedAt) / this.tickMs));
  }

  private schedule(): void {
    if (this.processing || this.state !== "running") return;
    if (this.queued.length === 0 && !this.raft?.hasReady() && !this.snapshotDue()) return;
    this.processing = true;
    this.loop = Promise.resolve().then(() => this.processReadies());
  }

  private async processReadies(): Promise<void> {
    try {
      while (this.state === "running" && this.raft) {
        const raft = this.raft;
        this.flushProposals(raft);
        if (!raft.hasReady()) {
          // A snapshot put off by a transient failure is retried once due, Ready or not.
          if (this.snapshotDue()) await this.takeSnapshot(raft);
          break;
        }
        const rd = raft.ready();
        if (raft.conf !== this.knownConf) this.noticeConf(raft.conf);
        for (const m of rd.earlyMessages) this.transport.send(m);
        if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
          // A snapshot from the leader supersedes the configuration record.
          const snapshot = rd.snapshot ?? this.pendingBootstrap ?? undefined;
          this.pendingBootstrap = null;
          await this.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot });
          // Stopped (or crashed, in the simulator) while persisting: nothing of this Ready may
          // escape, since the batch may not be durable.
          if (this.state !== "running") return;
        }
        for (const m of rd.messages) this.transport.send(m);
        this.settle(rd);
        raft.advance();
        if (this.snapshotDue()) {
          await this.takeSnapshot(raft);
          if (this.state !== "running") return;
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.processing = false;
    }
    // Input that arrived while the loop was finishing.
    this.schedule();
  }

  private settle(rd: Ready): void {
    if (rd.snapshot) this.restoreSnapshot(rd.snapshot);
    if (rd.softState) {
      const { role, term, leaderId } = rd.softState;
      this.emit({ type: "role", role, term, leaderId });
      if (leaderId !== null && leaderId !== this.id && this.transfers.length > 0) {
        for (const t of this.transfers) t.resolve(leaderId);
        this.transfers = [];
      }
    }
    for (const f of rd.forwardedProposals) {
      const batch = this.forwarded.get(f.requestId);
      if (!batch) continue;
      this.forwarded.delete(f.requestId);
      batch.forEach((p, i) => {
        if (f.index + i <= this.appliedIndex) {
          p.reject(new OutcomeUnknownError(`the leader placed it at index ${f.index + i}, already applied here before the answer arrived`));
        } else {
          p.term = f.term;
          this.trackAt(f.index + i, p);
        }
      });
    }
    this.apply(rd.committedEntries);
    for (const rs of rd.readStates) {
      const read = this.reads.get(rs.requestId);
      if (!read) continue;
      this.reads.delete(rs.requestId);
      if (rs.index <= this.appliedIndex) read.resolve(rs.index);
      else this.awaitApply(rs.index, read);
    }
    for (const rj of rd.rejections) {
      const read = this.reads.get(rj.requestId);
      if (read) {
        this.reads.delete(rj.requestId);
        read.reject(this.notLeader(rj.leaderId, rj.reason));
        continue;
      }
      const batch = this.forwarded.get(rj.requestId);
      if (batch) {
        this.forwarded.delete(rj.requestId);
        for (const p of batch) p.reject(this.notLeader(rj.leaderId, "the node it was forwarded to is not the leader"));
      }
    }
  }

  /** A snapshot from the leader replaces the state machine (it is durable: persisted with this Ready). */
  private restoreSnapshot(snap: Snapshot): void {
    this.sm.restore(snap.data);
    const index = snap.meta.index;
    this.appliedTo(index);
    this.snapshotIndex = Math.max(this.snapshotIndex, index);
    this.bytesSinceSnapshot = 0;
    // Proposals placed at or below the snapshot: whether they are in it is not known here.
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new OutcomeUnknownError(`a snapshot up to index ${index} replaced the log before index ${i} was applied here`));
    }
    for (const [i, c] of this.confChanges) {
      if (i > index) continue;
      this.confChanges.delete(i);
      c.reject(new OutcomeUnknownError(`a snapshot up to index ${index} replaced the log before the change at ${i} was applied here`));
    }
    if (!isJoint(snap.meta.conf)) this.leftJoint(index, snap.meta.conf);
    this.appliedMembers = snap.meta.conf;
    this.updatePeers();
    this.emit({ type: "snapshot-restored", index, term: snap.meta.term });
  }

  /** Enough entries, or entry bytes, were applied since the last snapshot, and no failed attempt asks to wait. */
  private snapshotDue(): boolean {
    const enough =
      (this.snapshotEvery > 0 && this.appliedIndex - this.snapshotIndex >= this.snapshotEvery) ||
      (this.snapshotEveryBytes > 0 && this.bytesSinceSnapshot >= this.snapshotEveryBytes);
    return enough && this.now >= this.snapshotRetryAt;
  }

  /** Snapshot the state machine at the applied index, save it, then compact storage and memory. */
  private async takeSnapshot(raft: Raft): Promise<void> {
    const index = this.appliedIndex;
    const term = raft.log.term(index);
    if (term === undefined) return; // already compacted past it (cannot happen: applied >= offset)
    const snapshot: Snapshot = {
      meta: { index, term, conf: raft.confAt(index) },
      data: this.sm.snapshot(),
    };
    try {
      await this.storage.save({ snapshot });
    } catch (err) {
      // Safety never needs this snapshot (the log still holds everything), so running out of file
      // descriptors for a moment is no reason to stop: put it off, with a growing pause.
      if (!isTransient(err)) throw err;
      this.snapshotFailures++;
      const retryInMs = Math.min(SNAPSHOT_RETRY_MAX_MS, SNAPSHOT_RETRY_MS * 2 ** (this.snapshotFailures - 1));
      this.snapshotRetryAt = this.now + retryInMs;
      this.emit({ type: "snapshot-deferred", index, error: err, retryInMs });
      return;
    }
    this.snapshotFailures = 0;
    this.snapshotRetryAt = 0;
    if (this.state !== "running") return;
    const compactTo = Math.max(0, Math.min(index - this.snapshotMargin, raft.compactionFloor()));
    if (compactTo > 0) await this.storage.compact(compactTo);
    if (this.state !== "running") return;
    raft.snapshotTaken(snapshot, compactTo);
    this.snapshotIndex = index;
    this.bytesSinceSnapshot = 0;
    this.emit({ type: "snapshot-taken", index, compactedTo: compactTo });
  }

  /** Settle the membership change proposed at this entry's index, and any waiting for joint consensus to end. */
  private appliedConf(entry: Entry): void {
    const conf = decodeConfEntry(entry.data).conf;
    this.appliedMembers = conf;
    this.updatePeers();
    const c = this.confChanges.get(entry.index);
    if (c) {
      this.confChanges.delete(entry.index);
      if (c.term !== entry.term) c.reject(new ProposalDroppedError(`index ${entry.index} was taken by an entry of term ${entry.term}`));
      else if (isJoint(conf)) this.awaitingLeave.push(c);
      else c.resolve({ index: entry.index, conf });
    }
    if (!isJoint(conf)) this.leftJoint(entry.index, conf);
  }

  private leftJoint(index: Index, conf: ConfState): void {
    if (this.awaitingLeave.length === 0) return;
    for (const c of this.awaitingLeave) c.resolve({ index, conf: cloneConf(conf) });
    this.awaitingLeave = [];
  }

  /** The core switched configuration: learn URLs, tell the transport whom to link to, tell listeners. */
  private noticeConf(conf: ConfState): void {
    this.knownConf = conf;
    for (const [id, url] of Object.entries(conf.urls ?? {})) this.urls.set(id, url);
    this.updatePeers();
    this.emit({ type: "membership", conf: cloneConf(conf) });
  }

  /** Link to the members of the latest configuration and of the applied one. */
  private updatePeers(): void {
    if (!this.transport.setPeers || !this.knownConf) return;
    const ids = new Set(allMembers(this.knownConf));
    if (this.appliedMembers) for (const id of allMembers(this.appliedMembers)) ids.add(id);
    // A node that joins starts with no configuration: it keeps the links it was given until it learns one.
    if (ids.size === 0) return;
    const peers = [];
    for (const id of ids) {
      const url = this.urls.get(id);
      if (id !== this.id && url) peers.push({ id, url });
    }
    this.transport.setPeers(peers);
  }

  /**
   * Wait for `index` to be applied on behalf of `p`. An earlier proposal waiting on the same index
   * was appended in an older term and since truncated from this log; it is not necessarily dead
   * (another node may still hold it and win an election), so its outcome is unknown.
   */
  private trackAt(index: Index, p: PendingProposal<Result>): void {
    const previous = this.proposals.get(index);
    if (previous) {
      this.proposals.delete(index);
      previous.reject(new OutcomeUnknownError(`index ${index} was reused by a later term before it committed here`));
    }
    this.proposals.set(index, p);
  }

  private apply(entries: Entry[]): void {
    if (entries.length === 0) return;
    const wantEvents = this.listeners.size > 0;
    for (const entry of entries) {
      let result: Result | undefined;
      if (entry.type === "normal") result = this.sm.apply(entry);
      this.appliedTo(entry.index);
      this.bytesSinceSnapshot += entry.data.byteLength;
      if (entry.type === "config") this.appliedConf(entry);
      const p = this.proposals.get(entry.index);
      if (p) {
        this.proposals.delete(entry.index);
        if (p.term === entry.term) p.resolve({ index: entry.index, term: entry.term, result: result as Result });
        else p.reject(new ProposalDroppedError(`index ${entry.index} was taken by an entry of term ${entry.term}`));
      }
      if (wantEvents) this.emit({ type: "applied", entry, result });
    }
  }

  /**
   * The state machine reflects every entry up to `index` (applied, or restored from a snapshot):
   * the one place `appliedIndex` moves, so that every read waiting for it is served whichever
   * way it got there. A read resolved in the middle of a batch reads after the batch (its
   * continuation runs later), which only makes what it sees newer.
   */
  private appliedTo(index: Index): void {
    this.appliedIndex = index;
    const waiting = this.readsAwaitingApply;
    let n = 0;
    while (n < waiting.length && waiting[n].index <= index) n++;
    if (n === 0) return;
    for (const w of waiting.splice(0, n)) w.read.resolve(w.index);
  }

  /** Park a confirmed read until `index` is applied, keeping the queue in index order. */
  private awaitApply(index: Index, read: PendingRead): void {
    const waiting = this.readsAwaitingApply;
    let at = waiting.length;
    // Usually at the end: answers come in the order asked, unless the network reorders them.
    while (at > 0 && waiting[at - 1].index > index) at--;
    waiting.splice(at, 0, { index, read });
  }

  /** Fail requests past their deadline. Proposals expire in insertion order (same timeout). */
  private expireRequests(): void {
    const now = this.now;
    for (const [index, p] of this.proposals) {
      if (p.deadline > now) break;
      this.proposals.delete(index);
      p.reject(new OutcomeUnknownError(`not applied within ${this.proposalTimeoutMs} ms (index ${index})`));
    }
    for (const [id, batch] of this.forwarded) {
      if (batch[0].deadline > now) break;
      this.forwarded.delete(id);
      for (const p of batch) p.reject(new OutcomeUnknownError(`the leader did not confirm the forwarded proposal within ${this.proposalTimeoutMs} ms`));
    }
    for (const [index, c] of this.confChanges) {
      if (c.deadline > now) continue;
      this.confChanges.delete(index);
      c.reject(new OutcomeUnknownError(`the membership change at index ${index} was not applied within ${this.proposalTimeoutMs} ms`));
    }
    if (this.awaitingLeave.length > 0 && this.awaitingLeave[0].deadline <= now) {
      for (const c of this.awaitingLeave) {
        c.reject(new OutcomeUnknownError(`joint consensus was entered but not left within ${this.proposalTimeoutMs} ms; the leader leaves it by itself`));
      }
      this.awaitingLeave = [];
    }
    if (this.transfers.length > 0 && this.transfers[0].deadline <= now) {
      for (const t of this.transfers) t.reject(new TransferFailedError(`no other member took over within ${2 * this.electionTimeoutMs} ms`));
      this.transfers = [];
    }
    for (const [id, r] of this.reads) {
      if (r.deadline > now) break;
      this.reads.delete(id);
      r.reject(new ReadTimeoutError(`no quorum confirmed the leader within ${this.readTimeoutMs} ms`));
    }
    // In index order, not deadline order: look at every one (few wait, and not for long).
    if (this.readsAwaitingApply.some((w) => w.read.deadline <= now)) {
      const still: { index: Index; read: PendingRead }[] = [];
      for (const w of this.readsAwaitingApply) {
        if (w.read.deadline <= now) w.read.reject(new ReadTimeoutError(`not applied up to ${w.index} within ${this.readTimeoutMs} ms`));
        else still.push(w);
      }
      this.readsAwaitingApply = still;
    }
  }

  private fail(error: unknown): void {
    if (this.state === "stopped") return;
    this.halt(new NodeStoppedError(`node ${this.id} failed: ${error instanceof Error ? error.message : String(error)}`));
    this.emit({ type: "error", error });
    this.opts.onError?.(error);
  }

  /** Stop everything at once, as a crash would: no further effect of any in-flight Ready. */
  private halt(reason: Error): void {
    this.state = "stopped";
    this.cancelTick?.();
    this.cancelTick = null;
    for (const p of this.proposals.values()) p.reject(new OutcomeUnknownError(reason.message));
    for (const batch of this.forwarded.values()) for (const p of batch) p.reject(new OutcomeUnknownError(reason.message));
    for (const q of this.queued) q.pending.reject(reason);
    this.queued = [];
    for (const r of this.reads.values()) r.reject(reason);
    for (const w of this.readsAwaitingApply) w.read.reject(reason);
    for (const c of this.confChanges.values()) c.reject(new OutcomeUnknownError(reason.message));
    for (const c of this.awaitingLeave) c.reject(new OutcomeUnknownError(reason.message));
    for (const t of this.transfers) t.reject(reason);
    this.confChanges.clear();
    this.awaitingLeave = [];
    this.transfers = [];
    this.proposals.clear();
    this.forwarded.clear();
    this.reads.clear();
    this.readsAwaitingApply = [];
  }

  /**
   * Simulate a crash: stop instantly without closing anything, so that whatever storage has not
   * made durable is lost. For the simulator and tests.
   */
  crash(): void {
    this.halt(new NodeStoppedError(`node ${this.id} crashed`));
  }

  private emit(event: RaftNodeEvent<Result>): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is the listener's problem; it must not break replication.
      }
    }
  }
}

/** The first pause after a transient snapshot failure, doubled per failure up to the maximum. */
const SNAPSHOT_RETRY_MS = 1_000;
const SNAPSHOT_RETRY_MAX_MS = 30_000;

/**
 * Errors that pass by themselves: the process or the system ran out of file descriptors
 * (EMFILE, ENFILE) or of a resource for the moment (EAGAIN). Storage adapters report the system
 * code as `code` (Node's and Deno's errors), or as `errno` on their own wrapping error.
 */
function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === "object" && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, errno } = e as { code?: unknown; errno?: unknown };
    if ([code, errno].some((c) => c === "EMFILE" || c === "ENFILE" || c === "EAGAIN")) return true;
  }
  return false;
}

/** Same voters, learners and URLs (an id's URL counts only where both name one). */
function sameVoters(a: ConfState, b: ConfState): boolean {
  const same = (x: NodeId[], y: NodeId[]): boolean => x.length === y.length && x.every((id) => y.includes(id));
  if (!same(a.voters, b.voters) || !same(a.learners, b.learners) || !same(a.votersOutgoing, b.votersOutgoing)) return false;
  return Object.entries(b.urls ?? {}).every(([id, url]) => a.urls?.[id] === undefined || a.urls[id] === url);
}

function positive(name: string, value: number): number {
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
