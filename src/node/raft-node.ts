import { realClock, type Clock } from "../clock.ts";
import { type ConfChangeItem, ConfChangeError, cloneConf } from "../core/membership.ts";
import { Raft } from "../core/raft.ts";
import type { ProgressState } from "../core/progress.ts";
import type { ConfState, Index, Message, NodeId, Role, Term } from "../core/types.ts";
import {
  ConfChangeInProgressError,
  InvalidConfChangeError,
  LearnerBehindError,
  NodeStoppedError,
  NotLeaderError,
  OverloadedError,
} from "../errors.ts";
import type { StateMachine } from "../statemachine.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import { AddressBook } from "./address-book.ts";
import { bootstrapMembers, initialConf } from "./bootstrap.ts";
import { Listeners, type Listener } from "./events.ts";
import { coreConfig, nodeSettings, positive, type NodeSettings, type RaftNodeOptions } from "./options.ts";
import { PendingRequests, type MembershipChange, type ProposeOutcome } from "./pending.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { SnapshotPolicy } from "./snapshot-policy.ts";

/**
 * RaftNode drives the pure core (src/core/raft.ts): it turns clock time into ticks, hands inbound
 * messages to the core, and has the Ready loop (./ready-loop.ts) perform each Ready. It is the
 * public API; the requests it holds for callers live in the pending registry (./pending.ts),
 * when to snapshot in the snapshot policy (./snapshot-policy.ts), where peers are in the address
 * book (./address-book.ts).
 */

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

export class RaftNode<Result = unknown> {
  readonly id: NodeId;
  private readonly opts: RaftNodeOptions<Result>;
  private readonly clock: Clock;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly sm: StateMachine<Result>;
  private readonly settings: NodeSettings;
  private readonly bootstrapVoters: NodeId[];
  private readonly addresses: AddressBook;
  private readonly pending: PendingRequests<Result>;
  private readonly snapshots: SnapshotPolicy;
  private readonly events = new Listeners<Result>();
  private readonly loop: ReadyLoop<Result>;
  private electionTimeoutMs = 300;

  private raft: Raft | null = null;
  private state: "new" | "starting" | "running" | "stopped" = "new";
  private closed = false;
  private cancelTick: (() => void) | null = null;
  /** The clock's time at the last tick: deadlines need no better precision than a tick. */
  private now = 0;
  /** The clock's time when the core was created: the origin of its lease clock. */
  private startedAt = 0;

  constructor(options: RaftNodeOptions<Result>) {
    this.opts = options;
    this.id = options.id;
    this.clock = options.clock ?? realClock;
    this.storage = options.storage;
    this.transport = options.transport;
    this.sm = options.stateMachine;
    this.addresses = new AddressBook(this.id, this.transport);
    const { voters, urls } = bootstrapMembers(this.id, options.members, !!options.join);
    this.bootstrapVoters = voters;
    for (const [id, url] of urls) this.addresses.learn(id, url);
    this.settings = nodeSettings(options);
    const s = this.settings;
    this.pending = new PendingRequests<Result>({
      proposalTimeoutMs: s.proposalTimeoutMs,
      readTimeoutMs: s.readTimeoutMs,
      transferTimeoutMs: 2 * this.electionTimeoutMs,
    });
    this.snapshots = new SnapshotPolicy({
      everyEntries: s.snapshotEveryEntries,
      everyBytes: s.snapshotEveryBytes,
      marginEntries: s.snapshotMarginEntries,
    });
    this.loop = new ReadyLoop<Result>({
      id: this.id,
      storage: this.storage,
      transport: this.transport,
      stateMachine: this.sm,
      pending: this.pending,
      addresses: this.addresses,
      snapshots: this.snapshots,
      events: this.events,
      core: () => (this.state === "running" ? this.raft : null),
      now: () => this.now,
      fail: (error) => this.fail(error),
      notLeader: (leaderId, detail) => this.notLeader(leaderId, detail),
    });
  }

  /** Load durable state, restore the state machine, and join the cluster. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`node ${this.id} was already started`);
    this.state = "starting";
    const stored = await this.storage.load();
    const given: ConfState = { voters: this.bootstrapVoters.slice(), learners: [], votersOutgoing: [] };
    const urls = this.addresses.urlsFor(given.voters);
    if (urls) given.urls = urls;
    const { conf, record } = initialConf(this.id, stored, given, !!this.opts.join);
    if (record) this.loop.pendingBootstrap = record;
    // A configuration record is not state: the state machine and the core start empty from it.
    const snapshot = stored.snapshot !== null && stored.snapshot.meta.index > 0 ? stored.snapshot : null;
    const { config, electionTimeoutMs } = coreConfig(this.id, this.opts, this.settings.tickMs);
    this.electionTimeoutMs = electionTimeoutMs;
    this.pending.timeouts.transferTimeoutMs = 2 * electionTimeoutMs;
    if (snapshot) {
      this.sm.restore(snapshot.data);
      this.loop.appliedTo(snapshot.meta.index);
      this.snapshots.loaded(snapshot.meta.index);
    }
    this.startedAt = this.clock.now();
    this.raft = new Raft(config, {
      hardState: stored.hardState,
      snapshot,
      entries: stored.entries.filter((e) => e.index > (snapshot?.meta.index ?? 0)),
      conf,
    });
    if (snapshot) this.events.emit({ type: "snapshot-restored", index: snapshot.meta.index, term: snapshot.meta.term });
    if (this.state !== "starting") return; // stopped while loading
    this.state = "running";
    this.addresses.setApplied(conf);
    this.loop.noticeConf(this.raft.conf);
    this.now = this.clock.now();
    this.transport.start((m) => this.receive(m));
    this.armTick();
    this.loop.schedule();
  }

  /** Stop ticking and talking; reject everything pending. Storage is closed too. */
  async stop(): Promise<void> {
    if (this.state === "stopped" && this.closed) return;
    this.halt(new NodeStoppedError(`node ${this.id} was stopped`));
    this.closed = true;
    // A save in flight completes (or fails) before storage closes under it; nothing of that
    // Ready escapes, since the loop sees the node stopped.
    await this.loop.idle();
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
      const pending = this.pending.proposalCount;
      if (pending >= this.settings.maxPendingProposals) {
        reject(new OverloadedError(`${pending} proposals are pending (maxPendingProposals)`));
        return;
      }
      this.pending.queue(data, { deadline: this.now + this.settings.proposalTimeoutMs, resolve, reject });
      this.loop.schedule();
    });
  }

  /**
   * Like `propose`, but place the entry in the log now and say where: `{ index, term }` at once,
   * and `applied`, which settles as `propose` does. Only on the leader; elsewhere it throws
   * NotLeaderError. (Proposals queued by `propose` go first, so order is kept.)
   */
  submit(data: Uint8Array): { index: Index; term: Term; applied: Promise<ProposeOutcome<Result>> } {
    const raft = this.running();
    this.loop.flushProposals(raft);
    const res = raft.propose([{ data }]);
    if (res.status !== "appended") {
      throw this.notLeader(res.status === "rejected" ? res.leaderId : raft.leaderId, res.status === "rejected" && res.reason === "transferring" ? "leadership transfer in progress" : undefined);
    }
    const applied = new Promise<ProposeOutcome<Result>>((resolve, reject) => {
      this.pending.trackAt(res.index, { term: res.term, deadline: this.now + this.settings.proposalTimeoutMs, resolve, reject });
    });
    this.loop.schedule();
    return { index: res.index, term: res.term, applied };
  }

  /**
   * Resolve once a linearizable read may be served from the local state machine: the leader
   * confirmed (with a quorum) that it still leads and this node has applied up to its commit
   * index as of the call. Resolves with that index.
   */
  read(): Promise<Index> {
    return new Promise((resolve, reject) => {
      const raft = this.running();
      const pending = this.pending.readCount;
      if (pending >= this.settings.maxPendingReads) {
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
      this.pending.trackRead(res.requestId, { deadline: this.now + this.settings.readTimeoutMs, resolve, reject });
      this.loop.schedule();
    });
  }

  /** Start an election now. */
  campaign(): void {
    this.running().campaign();
    this.loop.schedule();
  }

  /** Ask the leader (this node) to hand leadership to `to` (default: the most up-to-date voter). */
  transferLeader(to?: NodeId): void {
    this.running().transferLeader(to);
    this.loop.schedule();
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
      this.pending.trackTransfer({ deadline: this.now + 2 * this.electionTimeoutMs + this.settings.tickMs, resolve, reject });
      raft.transferLeader(to);
      this.loop.schedule();
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
      this.loop.flushProposals(raft);
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
      this.pending.trackConfChange(res.index, { term: res.term, deadline: this.now + this.settings.proposalTimeoutMs, resolve, reject });
      this.loop.schedule();
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
    const heard = this.addresses.lastHeard(id);
    return { ...pr, lastContactMs: heard === undefined ? null : Math.max(0, this.clock.now() - heard) };
  }

  /** Index of the last snapshot taken or installed here (0: none). */
  get lastSnapshotIndex(): Index {
    return this.snapshots.lastIndex;
  }

  /**
   * Snapshot the state machine now and compact the log, whatever the snapshot settings say.
   * Resolves with the index of the snapshot that covers what was applied when called (at once
   * when the last one already does); rejects with the save's error when it is put off, and with
   * NodeStoppedError when the node is not running or stops within `timeoutMs` (default:
   * proposalTimeoutMs).
   */
  snapshotNow(timeoutMs: number = this.settings.proposalTimeoutMs): Promise<Index> {
    positive("timeoutMs", timeoutMs);
    this.running();
    const target = this.loop.appliedIndex;
    if (this.snapshots.lastIndex >= target) return Promise.resolve(this.snapshots.lastIndex);
    return new Promise((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        unsubscribe();
        cancelTimer();
        outcome();
      };
      const unsubscribe = this.on((event) => {
        if ((event.type === "snapshot-taken" || event.type === "snapshot-restored") && event.index >= target) settle(() => resolve(event.index));
        else if (event.type === "snapshot-deferred") settle(() => reject(event.error));
        else if (event.type === "error") settle(() => reject(event.error));
      });
      const cancelTimer = this.clock.setTimer(timeoutMs, () =>
        settle(() => reject(new NodeStoppedError(`node ${this.id} ${this.stopped ? "is stopped" : `took no snapshot within ${timeoutMs} ms`}`))),
      );
      this.snapshots.request();
      this.loop.schedule();
    });
  }

  /** Bytes the stored log takes, when the storage tells (Storage.sizeBytes). */
  storageBytes(): number | undefined {
    return this.storage.sizeBytes?.();
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
      appliedIndex: this.loop.appliedIndex,
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
    return this.addresses.urlOf(id);
  }

  /** Subscribe to role changes, applied entries and failures. Returns an unsubscribe function. */
  on(listener: Listener<Result>): () => void {
    return this.events.add(listener);
  }

  /**
   * Resolve with the leader's id once this node knows one (at once if it already does); right
   * after start() an election takes about one election timeout. Rejects with NotLeaderError when
   * no leader is known within `timeoutMs` (default: proposalTimeoutMs), and with NodeStoppedError
   * when the node stopped meanwhile. A leader known here may already be deposed: propose() and
   * read() still answer NotLeaderError then, and the caller waits again.
   */
  waitForLeader(timeoutMs: number = this.settings.proposalTimeoutMs): Promise<NodeId> {
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
    this.addresses.heard(m.from, this.now);
    try {
      if (m.type === "ReadIndex") this.observeClock(this.raft); // as in read()
      this.raft.step(m);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.loop.schedule();
  }

  private armTick(): void {
    this.cancelTick = this.clock.setTimer(this.settings.tickMs, () => {
      if (this.state !== "running" || !this.raft) return;
      try {
        this.raft.tick();
        this.observeClock(this.raft);
      } catch (err) {
        this.fail(err);
        return;
      }
      this.pending.expire(this.now);
      this.armTick();
      this.loop.schedule();
    });
  }

  /**
   * Tell the core how much clock time has passed, in ticks: tick timers that fired late (a paused
   * process, a busy event loop) must not stretch a leader's lease past the followers' promise
   * not to vote (see src/core/lease.ts).
   */
  private observeClock(raft: Raft): void {
    this.now = this.clock.now();
    raft.observeClock(Math.floor((this.now - this.startedAt) / this.settings.tickMs));
  }

  private fail(error: unknown): void {
    if (this.state === "stopped") return;
    this.halt(new NodeStoppedError(`node ${this.id} failed: ${error instanceof Error ? error.message : String(error)}`));
    this.events.emit({ type: "error", error });
    this.opts.onError?.(error);
  }

  /** Stop everything at once, as a crash would: no further effect of any in-flight Ready. */
  private halt(reason: Error): void {
    this.state = "stopped";
    this.cancelTick?.();
    this.cancelTick = null;
    this.pending.failAll(reason);
  }

  /**
   * Simulate a crash: stop instantly without closing anything, so that whatever storage has not
   * made durable is lost. For the simulator and tests.
   */
  crash(): void {
    this.halt(new NodeStoppedError(`node ${this.id} crashed`));
  }
}
