import { defaultLeaseDriftTicks, LeaderLease } from "./lease.ts";
import { RaftLog } from "./log.ts";
import {
  applyChanges,
  type ConfChangeItem,
  ConfChangeError,
  cloneConf,
  decodeConfEntry,
  encodeConfEntry,
  isJoint,
  isMember,
  leaveJoint,
} from "./membership.ts";
import { Progress, type ProgressState } from "./progress.ts";
import { allMembers, allVoters, committedIndex, isVoter, voteResult } from "./quorum.ts";
import type { Random } from "./random.ts";
import { ReadIndexQueue } from "./read-index.ts";
import { SnapshotReceiver } from "./snapshot-receiver.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  ConfState,
  Entry,
  EntryType,
  ForwardedProposal,
  ForwardProposal,
  HardState,
  Heartbeat,
  Index,
  Message,
  NodeId,
  Ready,
  ReadState,
  Rejection,
  RequestVote,
  RequestVoteResponse,
  Role,
  InstallSnapshot,
  InstallSnapshotResponse,
  Snapshot,
  SoftState,
  Term,
} from "./types.ts";

/**
 * The Raft state machine. Pure: no IO, no timers, no clock, no ambient randomness. Inputs are
 * method calls (`tick`, `step`, `propose`, `readIndex`, `campaign`, `transferLeader`); effects
 * come out of `ready()` as data, and `advance()` acknowledges that the driver performed them.
 *
 * The driver's contract for each Ready, in order:
 *   0. (may) send `earlyMessages` (a leader's replication, overlapping its own fsync);
 *   1. persist `hardState`, `entries` (and `snapshot`) atomically and durably;
 *   2. send `messages`;
 *   3. apply `committedEntries`, serve `readStates`, settle `forwardedProposals` / `rejections`;
 *   4. call `advance()`.
 * While a Ready is being processed the core keeps accepting input; the next Ready carries it.
 * That is group commit: everything proposed during one fsync goes into the next one.
 */

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTicks?: number;
  /** Ticks between leader heartbeats. Must be well below electionTicks. */
  heartbeatTicks?: number;
  /** Ask "would you vote for me?" before raising the term (thesis §9.6). */
  preVote?: boolean;
  /**
   * A leader that has not heard from a quorum within an election timeout steps down, and a
   * follower that hears from a leader ignores vote requests for an election timeout (§6 lease).
   */
  checkQuorum?: boolean;
  /**
   * "read-index" (default): each read batch is confirmed by a quorum heartbeat round.
   * "lease": the leader serves reads without that round while its lease holds (see lease.ts):
   * from the tick a heartbeat round was sent, once a quorum acknowledged it, for
   * electionTicks - leaseDriftTicks ticks. This relies on bounded clock *rate* drift between
   * members (thesis §6.4.1) and requires checkQuorum. Every member must use it: followers keep
   * the promise the lease rests on (no vote within an election timeout of hearing a leader, even
   * across a restart or a term change). Without a valid lease, reads take the ReadIndex path.
   */
  readMode?: "read-index" | "lease";
  /**
   * readMode "lease": ticks the lease stops short of the election timeout. Must cover one tick
   * (members' ticks are not aligned) plus how far members' clocks can drift apart in rate over
   * one election timeout. Integer in [1, electionTicks). Default 1 + ceil(electionTicks / 10):
   * one tick and a 10% rate difference.
   */
  leaseDriftTicks?: number;
  /** Followers forward proposals to the leader instead of rejecting them. */
  forwardProposals?: boolean;
  /** Soft limit on entry bytes in one AppendEntries. */
  maxMsgBytes?: number;
  /** Unacknowledged AppendEntries allowed per follower. */
  maxInflightMsgs?: number;
  /** Unacknowledged entry bytes allowed per follower (0 = unlimited). */
  maxInflightBytes?: number;
  /** Soft limit on entry bytes handed out for applying in one Ready. */
  maxApplyBytes?: number;
  /** Size of one InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /**
   * A learner marked for promotion becomes a voter once its log is within this many entries of
   * the leader's. Default 64.
   */
  promoteLagEntries?: number;
  /** Source of election jitter. Seed it for reproducible runs. */
  random: Random;
}

export interface RaftInitialState {
  hardState: HardState;
  /** The snapshot the stored log starts after, if any (kept to send to followers that need it). */
  snapshot: Snapshot | null;
  /** Stored entries after the snapshot (or from index 1), contiguous. */
  entries: Entry[];
  /** Membership to start with: from the snapshot and log, or the bootstrap voters. */
  conf: ConfState;
}

export type ProposeResult =
  | { status: "appended"; index: Index; term: Term }
  | { status: "forwarded"; requestId: number }
  | { status: "rejected"; leaderId: NodeId | null; reason: "not-leader" | "transferring" };

export type ConfChangeResult =
  | { status: "appended"; index: Index; term: Term; conf: ConfState }
  | { status: "rejected"; leaderId: NodeId | null; reason: "not-leader" | "transferring" };

export type ReadResult =
  | { status: "pending"; requestId: number }
  | { status: "rejected"; leaderId: NodeId | null };

const EMPTY: Uint8Array = new Uint8Array(0);
/** How many answers to ForwardProposals a node keeps to recognise duplicates (see forwardAnswers). */
const FORWARD_ANSWERS_KEPT = 4096;

export class Raft {
  readonly id: NodeId;
  term: Term = 0;
  votedFor: NodeId | null = null;
  role: Role = "follower";
  leaderId: NodeId | null = null;
  readonly log: RaftLog;
  conf: ConfState;

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly readMode: "read-index" | "lease";
  /** readMode "lease" (leader): when each heartbeat round was sent; null in read-index mode. */
  private readonly lease: LeaderLease | null;
  private readonly forwardProposals: boolean;
  private readonly maxMsgBytes: number;
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;
  private readonly maxApplyBytes: number;
  private readonly random: Random;

  /** Ticks since the last election timeout reset (followers) or check-quorum round (leader). */
  private electionElapsed = 0;
  /**
   * The leader's lease clock: ticks since this node started, by tick() calls or by the driver's
   * clock (observeClock), whichever is ahead. It must never lag real time; running ahead only
   * shortens leases.
   */
  private ticks = 0;
  /**
   * Ticks since this node last heard from a leader of its term, not reset by a term change, and
   * 0 at start if it has ever been in a term (it may have acknowledged a heartbeat before it
   * restarted). In lease mode no vote is granted while it is below electionTicks (see inLease).
   */
  private leaderContactElapsed: number;
  /** Leader: TimeoutNow went out this term; its target may campaign past every follower's lease. */
  private timeoutNowSent = false;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** Leader only: replication state of every other member (nextIndex, matchIndex; etcd's "prs"). */
  private progressById = new Map<NodeId, Progress>();
  /** Candidates only: votes received in the current (pre-)election. */
  private readonly votes = new Map<NodeId, boolean>();
  /** Leader only: the member leadership is being handed to (etcd's "leadTransferee"). */
  private transferTarget: NodeId | null = null;

  /**
   * Leader only: followers owed an AppendEntries, coalesced until the next Ready so that all
   * proposals arriving between two Readys travel in one message per follower. The value says
   * whether to send even with no new entries (to carry a new commit index or probe).
   */
  private readonly pendingAppends = new Map<NodeId, boolean>();
  /** Every member is owed an append "even if empty" (a broadcast since the last flush). */
  private allPendingForce = false;

  /** ReadIndex (leader): the heartbeat rounds sent and the reads waiting on them (read-index.ts). */
  private readonly reads = new ReadIndexQueue();

  /** The latest snapshot this node has (taken locally or installed), for lagging followers. */
  private snapshot: Snapshot | null = null;
  /** A snapshot received from the leader that the driver must persist and restore (next Ready). */
  private pendingSnapshot: Snapshot | null = null;
  /** Follower: an InstallSnapshot transfer in progress (resumable while the same leader sends it). */
  private readonly snapshotReceiver = new SnapshotReceiver();
  private readonly snapshotChunkBytes: number;

  /**
   * Leader: index of the last config entry it appended (at election: its last index). A new
   * change waits until this is applied, so at most one change is in flight, and never one based
   * on a configuration the leader has not applied yet.
   */
  private pendingConfIndex: Index = 0;
  /** The configuration the log window starts with (the snapshot's, or the bootstrap one). */
  private baseConf: ConfState;
  /** Index and term of the latest config entry in the log window; 0 when there is none. */
  private lastConfIndex: Index = 0;
  private lastConfTerm: Term = 0;
  /** Entries read while rescanning the log for its latest config entry (tests check how rarely). */
  confScanSteps = 0;
  /** Leader: the duties of the current configuration (leave joint, prune, step down) are done. */
  private confSettled = false;
  private readonly promoteLagEntries: number;

  /**
   * Ids of forwarded proposals and reads. Each life of a node starts at a random multiple of 2^32
   * (one in 2^21 - 1), so that a restarted node does not reuse the ids of its previous life: an
   * answer still in flight to an old request must not settle a new one, and a leader that
   * remembers an old forward (see forwardAnswers) must not take a new one for a copy of it.
   */
  private nextRequestId: number;
  /**
   * Answers given to ForwardProposals sent in this node's term at the time, by forwarder, term
   * and request id: a copy the transport delivers again gets the same answer, not a second
   * append. Kept for the last FORWARD_ANSWERS_KEPT forwards, across role and term changes (a
   * leader that stepped down still tells a late copy where the original landed), not across
   * restarts. Enough, because a duplicate is a copy of a message in flight (the WebSocket mesh
   * sends each frame once; the in-memory network holds a copy at most its long delay), so it
   * would have to be overtaken by thousands of later forwards to be forgotten; and a forward
   * not found here is appended only if it was sent in the current term to this node as its
   * leader, which a node never is again after a restart or a change of term.
   */
  private readonly forwardAnswers = new Map<string, { index: Index; entryTerm: Term; rejected: boolean }>();
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private forwarded: ForwardedProposal[] = [];
  private rejections: Rejection[] = [];

  private persistedHardState: HardState;
  private reportedSoftState: SoftState;
  private readyInFlight = false;
  private pendingHardState: HardState | null = null;

  constructor(config: RaftConfig, initial: RaftInitialState) {
    this.id = config.id;
    this.electionTicks = config.electionTicks ?? 10;
    this.heartbeatTicks = config.heartbeatTicks ?? 1;
    if (!(this.heartbeatTicks >= 1 && this.electionTicks > this.heartbeatTicks)) {
      throw new RangeError(
        `electionTicks (${this.electionTicks}) must exceed heartbeatTicks (${this.heartbeatTicks}) >= 1`,
      );
    }
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.readMode = config.readMode ?? "read-index";
    if (this.readMode === "lease" && !this.checkQuorum) {
      throw new RangeError(`readMode "lease" requires checkQuorum: without it a deposed leader could serve stale reads`);
    }
    const drift = config.leaseDriftTicks ?? defaultLeaseDriftTicks(this.electionTicks);
    if (!(Number.isInteger(drift) && drift >= 1 && drift < this.electionTicks)) {
      throw new RangeError(
        `leaseDriftTicks (${drift}) must be a whole number of ticks in [1, electionTicks = ${this.electionTicks})`,
      );
    }
    this.lease = this.readMode === "lease" ? new LeaderLease(this.electionTicks - drift) : null;
    this.forwardProposals = config.forwardProposals ?? false;
    this.maxMsgBytes = config.maxMsgBytes ?? 1024 * 1024;
    this.maxInflightMsgs = config.maxInflightMsgs ?? 256;
    this.maxInflightBytes = config.maxInflightBytes ?? 32 * 1024 * 1024;
    this.maxApplyBytes = config.maxApplyBytes ?? 64 * 1024 * 1024;
    this.snapshotChunkBytes = config.snapshotChunkBytes ?? 1024 * 1024;
    this.promoteLagEntries = config.promoteLagEntries ?? 64;
    this.random = config.random;

    const snap = initial.snapshot?.meta;
    this.snapshot = initial.snapshot;
    this.log = new RaftLog(snap?.index ?? 0, snap?.term ?? 0, initial.entries.slice(), initial.hardState.commit);
    this.baseConf = cloneConf(initial.conf);
    this.conf = cloneConf(initial.conf);
    this.refreshConf();
    this.term = initial.hardState.term;
    this.votedFor = initial.hardState.votedFor;
    this.persistedHardState = { ...initial.hardState };
    this.leaderContactElapsed = this.term > 0 ? 0 : this.electionTicks;
    this.reportedSoftState = { role: this.role, leaderId: null, term: this.term };
    this.resetRandomizedElectionTimeout();
    this.nextRequestId = 1 + Math.floor(this.random.next() * (2 ** 21 - 1)) * 2 ** 32;
  }

  // -------------------------------------------------------------------------------------------
  // Inputs
  // -------------------------------------------------------------------------------------------

  /** Advance logical time by one tick. */
  tick(): void {
    this.ticks++;
    this.leaderContactElapsed++;
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  /**
   * The driver's clock shows `ticksSinceStart` ticks of time since this core was created. Only
   * the lease clock follows it, so that tick timers that fired late (a paused process, a busy
   * event loop) cannot stretch a lease. Elections and heartbeats keep counting tick() calls,
   * which tolerates a stalled event loop without needless elections (and a late follower only
   * waits longer before voting, the safe direction).
   */
  observeClock(ticksSinceStart: number): void {
    if (ticksSinceStart > this.ticks) this.ticks = ticksSinceStart;
  }

  /** Start an election now (as if the election timer fired). */
  campaign(): void {
    this.startElection(false);
  }

  /** Append entries if leader; forward them or reject them otherwise. */
  propose(items: { type?: EntryType; data: Uint8Array }[]): ProposeResult {
    for (const item of items) {
      if (item.type === "config") throw new Error("membership changes go through proposeConfChange");
    }
    if (this.role === "leader") {
      if (this.transferTarget !== null) {
        return { status: "rejected", leaderId: this.id, reason: "transferring" };
      }
      const index = this.appendLocal(items);
      return { status: "appended", index, term: this.term };
    }
    if (this.forwardProposals && this.leaderId !== null) {
      const requestId = this.nextRequestId++;
      this.send({
        type: "ForwardProposal",
        from: this.id,
        to: this.leaderId,
        term: this.term,
        requestId,
        entries: items.map((i) => ({ type: i.type ?? "normal", data: i.data })),
      });
      return { status: "forwarded", requestId };
    }
    return { status: "rejected", leaderId: this.leaderId, reason: "not-leader" };
  }

  /**
   * Ask for a linearizable read point (thesis §6.4). The answer arrives as a `ReadState` (serve
   * the read once the state machine has applied its index) or a `Rejection`.
   */
  readIndex(): ReadResult {
    const requestId = this.nextRequestId++;
    if (this.role === "leader") {
      this.leaderRead(requestId, this.id);
      return { status: "pending", requestId };
    }
    if (this.leaderId !== null) {
      this.send({ type: "ReadIndex", from: this.id, to: this.leaderId, term: this.term, requestId });
      return { status: "pending", requestId };
    }
    return { status: "rejected", leaderId: null };
  }

  /**
   * Hand leadership to `to` (thesis §3.10): stop taking proposals, bring `to` up to date, then
   * tell it to campaign at once. Abandoned after an election timeout.
   */
  transferLeader(to?: NodeId): void {
    if (this.role !== "leader") return;
    // Without a target: the voter of the incoming configuration whose log is most complete.
    to ??= this.mostUpToDateVoter() ?? undefined;
    if (to === undefined || to === this.id || !this.conf.voters.includes(to)) return;
    const pr = this.progressById.get(to);
    if (!pr) return;
    this.transferTarget = to;
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.needAppend(to, true);
  }

  /**
   * Propose a membership change (leader only). A change of voters enters joint consensus and the
   * leader leaves it by itself once that entry is applied; learner-only changes apply directly.
   * Throws ConfChangeError when the change is invalid or another one is still in flight.
   */
  proposeConfChange(changes: ConfChangeItem[]): ConfChangeResult {
    if (this.role !== "leader") return { status: "rejected", leaderId: this.leaderId, reason: "not-leader" };
    if (this.transferTarget !== null) return { status: "rejected", leaderId: this.id, reason: "transferring" };
    const busy = this.confChangeAllowed();
    if (busy !== null) throw new ConfChangeError("in-progress", busy);
    const conf = applyChanges(this.conf, changes);
    const index = this.appendConf(conf, changes);
    return { status: "appended", index, term: this.term, conf: cloneConf(conf) };
  }

  step(m: Message): void {
    // Forwarded client requests and their answers are not part of the election protocol: any
    // member may ask, so their term never moves ours.
    switch (m.type) {
      case "ForwardProposal":
        return this.handleForwardProposal(m);
      case "ForwardProposalResponse":
        if (m.rejected) {
          this.rejections.push({ requestId: m.requestId, leaderId: m.leaderId, reason: "not-leader" });
        } else {
          this.forwarded.push({ requestId: m.requestId, index: m.index, term: m.entryTerm });
        }
        return;
      case "ReadIndex":
        if (this.role === "leader") this.leaderRead(m.requestId, m.from);
        else this.replyRead(m.from, m.requestId, 0, true);
        return;
      case "ReadIndexResponse":
        if (m.rejected) {
          this.rejections.push({ requestId: m.requestId, leaderId: m.leaderId, reason: "not-leader" });
        } else {
          this.readStates.push({ requestId: m.requestId, index: m.index });
        }
        return;
    }

    if (m.term > this.term) {
      if (m.type === "RequestVote") {
        // Lease (§6, thesis §4.2.3): while we hear from a leader, a disruptive candidate (one
        // that was partitioned, or removed from the cluster) must not depose it. A transfer
        // is the leader's own wish and bypasses this.
        if (!m.transfer && this.inLease()) return;
      }
      if (m.type === "RequestVote" && m.preVote) {
        // A pre-vote never changes our term.
      } else if (m.type === "RequestVoteResponse" && m.preVote && m.voteGranted) {
        // A granted pre-vote carries the future term it was asked for; ours stays.
      } else if (m.type === "AppendEntries" || m.type === "Heartbeat" || m.type === "InstallSnapshot") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === "AppendEntries" || m.type === "Heartbeat")) {
        // A deposed leader cut off from the rest would otherwise never learn the new term (with
        // pre-vote our higher-term vote requests may never reach it). Answer so it steps down.
        this.replyAppend(m.from, false, 0);
      } else if (m.type === "RequestVote" && m.preVote) {
        this.send({
          type: "RequestVoteResponse",
          from: this.id,
          to: m.from,
          term: this.term,
          voteGranted: false,
          preVote: true,
        });
      }
      // Everything else from an older term is stale (§5.1).
      return;
    }

    if (this.role !== "leader" && (m.type === "AppendEntries" || m.type === "Heartbeat" || m.type === "InstallSnapshot")) {
      this.leaderContactElapsed = 0; // from the leader of our term
    }
    switch (m.type) {
      case "RequestVote":
        return this.handleRequestVote(m);
      case "TimeoutNow":
        if (this.role !== "leader") this.startElection(true);
        return;
    }

    switch (this.role) {
      case "leader":
        return this.stepLeader(m);
      case "candidate":
      case "pre-candidate":
        return this.stepCandidate(m);
      case "follower":
        return this.stepFollower(m);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ready / advance
  // -------------------------------------------------------------------------------------------

  hasReady(): boolean {
    if (this.readyInFlight) return false;
    return (
      this.msgs.length > 0 ||
      this.pendingSnapshot !== null ||
      this.pendingAppends.size > 0 ||
      this.reads.roundRequested ||
      this.log.hasUnstable() ||
      this.log.hasToApply() ||
      this.readStates.length > 0 ||
      this.forwarded.length > 0 ||
      this.rejections.length > 0 ||
      this.termOrVoteChanged() ||
      !sameSoftState(this.softState(), this.reportedSoftState)
    );
  }

  ready(): Ready {
    if (this.readyInFlight) throw new Error("ready() called again before advance()");
    this.flushPendingAppends();
    if (this.reads.roundRequested) this.broadcastHeartbeat();
    let messages = this.msgs;
    let earlyMessages: Message[] = [];
    if (this.role === "leader" && !this.termOrVoteChanged()) {
      earlyMessages = messages.filter((m) => m.type === "AppendEntries" || m.type === "Heartbeat");
      if (earlyMessages.length > 0) messages = messages.filter((m) => m.type !== "AppendEntries" && m.type !== "Heartbeat");
    }
    const rd: Ready = {
      entries: this.log.takeUnstable(),
      committedEntries: this.log.takeToApply(this.maxApplyBytes),
      messages,
      earlyMessages,
      readStates: this.readStates,
      forwardedProposals: this.forwarded,
      rejections: this.rejections,
    };
    this.msgs = [];
    this.readStates = [];
    this.forwarded = [];
    this.rejections = [];
    if (this.pendingSnapshot) {
      rd.snapshot = this.pendingSnapshot;
      this.pendingSnapshot = null;
    }
    // Term and vote must be durable before anything is sent. The commit index need not be (a
    // restarted node learns it again from the leader), so a change of commit alone does not cost
    // a write of its own: it rides along with the next batch that has to be written anyway.
    // That keeps a second fsync off every write's path on the leader.
    const hs = this.hardState();
    const writing = rd.entries.length > 0 || rd.snapshot !== undefined;
    if (this.termOrVoteChanged() || (writing && hs.commit !== this.persistedHardState.commit) || this.removalNewlyCommitted(hs)) {
      rd.hardState = hs;
      this.pendingHardState = hs;
    }
    const ss = this.softState();
    if (!sameSoftState(ss, this.reportedSoftState)) {
      rd.softState = ss;
      this.reportedSoftState = ss;
    }
    this.readyInFlight = true;
    return rd;
  }

  /** The last Ready was performed: its state is durable, messages sent, entries applied. */
  advance(): void {
    if (!this.readyInFlight) throw new Error("advance() without a Ready in flight");
    this.readyInFlight = false;
    this.log.stableToPersisted();
    if (this.pendingHardState) {
      this.persistedHardState = this.pendingHardState;
      this.pendingHardState = null;
    }
    // The leader counts itself towards a quorum only for entries durable on its own disk.
    if (this.role === "leader" && this.maybeCommit()) this.broadcastAppend();
  }

  /**
   * Whether `hs` is the first commit index to cover the entry that removed this node. That one is
   * written at once: no leader replicates to a removed node any more, so after a restart it would
   * never learn again that its removal committed, and it would campaign (see promotable).
   */
  private removalNewlyCommitted(hs: HardState): boolean {
    return (
      this.lastConfIndex > this.persistedHardState.commit && this.lastConfIndex <= hs.commit && !isMember(this.conf, this.id)
    );
  }

  private termOrVoteChanged(): boolean {
    return this.term !== this.persistedHardState.term || this.votedFor !== this.persistedHardState.votedFor;
  }

  /**
   * The driver took (and durably saved) a snapshot of the state machine at `snapshot.meta.index`
   * (<= the applied index). The core keeps it for followers that fall behind the log, and drops
   * in-memory entries up to `compactTo` (a trailing margin below the snapshot spares slow
   * followers a whole snapshot transfer).
   */
  snapshotTaken(snapshot: Snapshot, compactTo: Index): void {
    const idx = snapshot.meta.index;
    if (idx > this.log.applied) throw new Error(`snapshot at ${idx} is beyond the applied index ${this.log.applied}`);
    if (!this.snapshot || idx > this.snapshot.meta.index) this.snapshot = snapshot;
    const upTo = Math.min(compactTo, idx);
    if (upTo > this.log.offset) {
      this.baseConf = this.confAt(upTo);
      this.log.compact(upTo);
      if (this.lastConfIndex <= upTo) {
        this.lastConfIndex = 0;
        this.lastConfTerm = 0;
      }
    }
  }

  /**
   * Leader: the lowest index a follower still receiving a snapshot needs the log from (that
   * snapshot's index). Compacting no further spares it a second transfer when the leader takes a
   * newer snapshot meanwhile. Followers that stopped answering do not hold the log back.
   * +Infinity when nothing needs holding.
   */
  compactionFloor(): Index {
    let floor = Number.POSITIVE_INFINITY;
    if (this.role !== "leader") return floor;
    for (const pr of this.progressById.values()) {
      if (pr.state === "snapshot" && pr.recentActive) floor = Math.min(floor, pr.pendingSnapshot);
    }
    return floor;
  }

  /** The latest snapshot this node has, if any. */
  latestSnapshot(): Snapshot | null {
    return this.snapshot;
  }

  hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
  }

  softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId, term: this.term };
  }

  /** The replication progress of a member as the leader sees it (for status and tests). */
  progress(id: NodeId): { match: Index; next: Index; state: ProgressState; inflight: number } | undefined {
    const pr = this.progressById.get(id);
    return pr ? { match: pr.match, next: pr.next, state: pr.state, inflight: pr.inflights.count } : undefined;
  }

  /**
   * Whether member `id` has caught up enough to become a voter: the leader replicates to it in
   * the steady state (not probing, not sending it a snapshot) and its log is within
   * `promoteLagEntries` of the leader's. The one rule for automatic promotion and for an
   * operator's. Undefined when this node tracks no progress for `id` (not leader, not a member).
   */
  catchUp(id: NodeId): { caughtUp: boolean; match: Index; lastIndex: Index; state: string; maxLagEntries: number } | undefined {
    const pr = this.progressById.get(id);
    if (!pr) return undefined;
    const lastIndex = this.log.lastIndex();
    const caughtUp = pr.state === "replicate" && pr.match + this.promoteLagEntries >= lastIndex;
    return { caughtUp, match: pr.match, lastIndex, state: pr.state, maxLagEntries: this.promoteLagEntries };
  }

  // -------------------------------------------------------------------------------------------
  // Roles
  // -------------------------------------------------------------------------------------------

  private reset(term: Term): void {
    if (term !== this.term) {
      this.term = term;
      this.votedFor = null;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes.clear();
    this.transferTarget = null;
    this.timeoutNowSent = false;
    this.lease?.clear();
    this.pendingAppends.clear();
    this.allPendingForce = false;
    this.failPendingReads();
    this.progressById = new Map();
  }

  private becomeFollower(term: Term, leaderId: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    if (this.role === "leader") throw new Error("invalid transition leader -> pre-candidate");
    // Neither term nor vote change: a pre-election that fails leaves no trace (thesis §9.6).
    this.role = "pre-candidate";
    this.votes.clear();
    this.leaderId = null;
  }

  private becomeCandidate(): void {
    if (this.role === "leader") throw new Error("invalid transition leader -> candidate");
    this.reset(this.term + 1);
    this.votedFor = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    if (this.role === "follower") throw new Error("invalid transition follower -> leader");
    this.reset(this.term);
    this.role = "leader";
    this.leaderId = this.id;
    const next = this.log.lastIndex() + 1;
    // Entries of earlier terms may hold a change this leader has not applied yet: none before them.
    this.pendingConfIndex = this.log.lastIndex();
    this.confSettled = false;
    for (const id of allMembers(this.conf)) {
      if (id !== this.id) this.progressById.set(id, new Progress(next, this.maxInflightMsgs, this.maxInflightBytes));
    }
    // A no-op of the new term: entries of earlier terms commit only once an entry of the
    // current term does (§5.4.2), so without it they could wait for the next client write.
    this.appendLocal([{ type: "noop", data: EMPTY }]);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random.next() * this.electionTicks);
  }

  /**
   * Whether this node may campaign: it is a voter of its latest configuration, or that
   * configuration's entry removed it as a voter and is not known here to be committed. Until it
   * commits, the removed voter may hold the longest log of C(new)'s voters and be the only node
   * that can win (thesis §4.2.2), so it still campaigns. Its election counts by the configuration
   * it holds, C(new), in which its own vote does not count (see voteResult); that is the same
   * quorum any voter of C(new) needs, so elections stay as safe as Raft's. Once it knows the
   * removal committed, C(new)'s voters elect among themselves and it stops. A learner never
   * campaigns: the latest configuration lists it, and a removed learner was no voter before.
   */
  private promotable(): boolean {
    if (isVoter(this.conf, this.id)) return true;
    if (this.lastConfIndex <= this.log.committed || isMember(this.conf, this.id)) return false;
    return isVoter(this.confAt(this.lastConfIndex - 1), this.id);
  }

  /**
   * Lease (§6, thesis §4.2.3 and §6.4.1): while we hear from a leader, grant no vote to anyone
   * else, so that a disruptive candidate (partitioned, or removed) cannot depose it. In lease
   * mode the leader's reads rest on this promise, so it also holds across a term change (a
   * stray higher-term message clears leaderId) and for an election timeout after a restart.
   */
  private inLease(): boolean {
    if (!this.checkQuorum) return false;
    if (this.leaderId !== null && this.electionElapsed < this.electionTicks) return true;
    return this.readMode === "lease" && this.role !== "leader" && this.leaderContactElapsed < this.electionTicks;
  }

  private tickElection(): void {
    this.electionElapsed++;
    // A node that may not campaign (a learner, a member yet to learn it was added) lets the time
    // since it heard a leader grow, so its lease ends and it answers the voters' requests.
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startElection(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.progressById.values()) if (pr.state === "snapshot") pr.snapshotIdleTicks++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, null);
          return;
        }
      }
      // A transfer that has not completed within an election timeout is abandoned.
      this.transferTarget = null;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
      this.maybePromote();
    }
  }

  /** Whether a quorum has been heard from since the last check; resets the marks. */
  private quorumActive(): boolean {
    const active = committedIndex(this.conf, (id) => {
      if (id === this.id) return 1;
      const pr = this.progressById.get(id);
      return pr?.recentActive ? 1 : 0;
    });
    for (const pr of this.progressById.values()) pr.recentActive = false;
    return active >= 1;
  }

  /**
   * Start an election now (etcd calls this "hup"): from the election timer, a `campaign()` call
   * or, with `transfer`, a TimeoutNow. With pre-vote (and no transfer) it starts with a
   * pre-election that changes no term.
   */
  private startElection(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.preVote && !transfer) this.runElection("pre-vote", false);
    else this.runElection("vote", transfer);
  }

  private runElection(kind: "pre-vote" | "vote", transfer: boolean): void {
    let voteTerm: Term;
    if (kind === "pre-vote") {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return;
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of allVoters(this.conf)) {
      if (id === this.id) continue;
      this.send({
        type: "RequestVote",
        from: this.id,
        to: id,
        term: voteTerm,
        lastLogIndex,
        lastLogTerm,
        preVote: kind === "pre-vote",
        transfer,
      });
    }
  }

  /** Acts on the election's outcome; returns true if it is decided. */
  private tallyVotes(): boolean {
    const result = voteResult(this.conf, this.votes);
    if (result === "won") {
      if (this.role === "pre-candidate") this.runElection("vote", false);
      else this.becomeLeader();
      return true;
    }
    if (result === "lost") {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Message handlers
  // -------------------------------------------------------------------------------------------

  private handleRequestVote(m: RequestVote): void {
    // §5.2: one vote per term, first come first served; a repeated request from the candidate we
    // voted for is answered again. A pre-vote for a future term binds nothing, so it is
    // granted on the log check alone.
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.leaderId === null && (m.transfer || !this.inLease())) ||
      (m.preVote && m.term > this.term);
    // §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.send({
        type: "RequestVoteResponse",
        from: this.id,
        to: m.from,
        term: m.term,
        voteGranted: true,
        preVote: m.preVote,
      });
      if (!m.preVote) {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.send({
        type: "RequestVoteResponse",
        from: this.id,
        to: m.from,
        term: this.term,
        voteGranted: false,
        preVote: m.preVote,
      });
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "AppendEntries":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        return this.handleAppendEntries(m);
      case "Heartbeat":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        return this.handleHeartbeat(m);
      case "InstallSnapshot":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        return this.handleInstallSnapshot(m);
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "AppendEntries":
        // A leader of our term exists (§5.2): stop campaigning.
        this.becomeFollower(m.term, m.from);
        return this.handleAppendEntries(m);
      case "Heartbeat":
        this.becomeFollower(m.term, m.from);
        return this.handleHeartbeat(m);
      case "InstallSnapshot":
        this.becomeFollower(m.term, m.from);
        return this.handleInstallSnapshot(m);
      case "RequestVoteResponse":
        return this.handleVoteResponse(m);
      default:
        return;
    }
  }

  private handleVoteResponse(m: RequestVoteResponse): void {
    const mine = this.role === "pre-candidate" ? m.preVote : !m.preVote;
    if (!mine) return;
    this.votes.set(m.from, m.voteGranted);
    this.tallyVotes();
  }

  private handleAppendEntries(m: AppendEntries): void {
    if (m.prevLogIndex < this.log.committed) {
      // Everything up to our commit index is settled; tell the leader where we are.
      this.replyAppend(m.from, true, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.entries);
    if (lastNew >= 0) {
      // A truncated config entry gives way to the one before it (the only case that rescans the
      // log); otherwise a config entry among the new ones takes effect. With no config entry in
      // the window (lastConfIndex 0) there is nothing a truncation could remove.
      if (this.lastConfIndex > 0 && this.log.term(this.lastConfIndex) !== this.lastConfTerm) this.refreshConf();
      else this.noticeAppended(m.prevLogIndex + 1, m.entries);
      this.log.commitTo(Math.min(m.leaderCommit, lastNew));
      this.replyAppend(m.from, true, lastNew);
      return;
    }
    // Fast backtracking: point the leader at the last entry whose term could still match, so
    // that each round trip skips a whole conflicting term rather than a single entry.
    const hint = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
    this.replyAppend(m.from, false, m.prevLogIndex, hint.index, hint.term);
  }

  private replyAppend(to: NodeId, success: boolean, matchIndex: Index, hintIndex: Index = 0, hintTerm: Term = 0): void {
    this.send({ type: "AppendEntriesResponse", from: this.id, to, term: this.term, success, matchIndex, hintIndex, hintTerm });
  }

  private handleHeartbeat(m: Heartbeat): void {
    // The leader caps leaderCommit at what it knows we hold, so this never passes our log.
    this.log.commitTo(Math.min(m.leaderCommit, this.log.lastIndex()));
    this.send({ type: "HeartbeatResponse", from: this.id, to: m.from, term: this.term, readRound: m.readRound });
  }

  private stepLeader(m: Message): void {
    const pr = this.progressById.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case "AppendEntriesResponse":
        pr.recentActive = true;
        return this.handleAppendResponse(m, pr);
      case "InstallSnapshotResponse":
        pr.recentActive = true;
        return this.handleInstallSnapshotResponse(m, pr);
      case "HeartbeatResponse":
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === "snapshot") this.maybeResendSnapshotChunk(m.from, pr);
        // A lost AppendEntries in replicate state would leave the window full forever.
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex() || pr.state === "probe") this.needAppend(m.from, true);
        if (m.readRound > pr.readAck) {
          pr.readAck = m.readRound;
          this.releaseConfirmedReads();
        }
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: AppendEntriesResponse, pr: Progress): void {
    if (!m.success) {
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.matchIndex, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.needAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.matchIndex)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "replicate") pr.inflights.freeLE(m.matchIndex);
    if (this.maybeCommit()) this.broadcastAppend();
    // A follower that was paused missed any commit broadcast meanwhile: bring it the commit index.
    else if (wasPaused || pr.match < this.log.lastIndex()) this.needAppend(m.from, wasPaused);
    // A removed member that now holds the committed entry that removed it can be let go.
    if (this.lastConfIndex <= this.log.committed && !isMember(this.conf, m.from)) this.pruneProgress();
    if (m.from === this.transferTarget && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /**
   * Append what a follower forwarded, once: a copy of a forward already answered gets that answer
   * again (see forwardAnswers). Only a forward sent in this term is appended; one from an older
   * term was meant for this node as leader of that term and may be a late copy of one appended
   * then, so it is refused (nothing appended; the client may try again).
   */
  private handleForwardProposal(m: ForwardProposal): void {
    const key = `${m.from}\0${m.term}\0${m.requestId}`;
    let answer = this.forwardAnswers.get(key);
    if (!answer) {
      const accepted = this.role === "leader" && this.transferTarget === null && m.term === this.term;
      const index = accepted ? this.appendLocal(m.entries.filter((e) => e.type !== "config")) : 0;
      answer = { index, entryTerm: accepted ? this.term : 0, rejected: !accepted };
      // A refusal for another term is not kept: this node is never leader of an older one.
      if (m.term === this.term) {
        this.forwardAnswers.set(key, answer);
        if (this.forwardAnswers.size > FORWARD_ANSWERS_KEPT) this.forwardAnswers.delete(this.forwardAnswers.keys().next().value!);
      }
    }
    this.send({
      type: "ForwardProposalResponse",
      from: this.id,
      to: m.from,
      term: this.term,
      requestId: m.requestId,
      ...answer,
      leaderId: this.leaderId,
    });
  }

  // -------------------------------------------------------------------------------------------
  // Leader: replication and commitment
  // -------------------------------------------------------------------------------------------

  /** Append entries of the current term; returns the index of the first. */
  private appendLocal(items: { type?: EntryType; data: Uint8Array }[]): Index {
    const first = this.log.lastIndex() + 1;
    const term = this.term;
    const entries: Entry[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      entries[i] = { index: first + i, term, type: items[i].type ?? "normal", data: items[i].data };
    }
    this.log.append(entries);
    this.noticeAppended(first, entries);
    // A single-voter cluster commits as soon as the entry is durable (see advance()).
    this.broadcastAppend();
    return first;
  }

  /** Owe `to` an AppendEntries at the next Ready; "even if empty" wins over "only with entries". */
  private needAppend(to: NodeId, sendIfEmpty: boolean): void {
    if (sendIfEmpty || !this.pendingAppends.has(to)) this.pendingAppends.set(to, sendIfEmpty);
  }

  private broadcastAppend(): void {
    if (this.allPendingForce) return;
    for (const id of this.progressById.keys()) this.pendingAppends.set(id, true);
    this.allPendingForce = true;
  }

  /**
   * Every broadcast is a new round: a round confirms the reads that arrived before it was sent
   * (ReadIndex), and in lease mode the tick it was sent starts the lease it grants.
   */
  private broadcastHeartbeat(): void {
    const round = this.reads.roundSent();
    this.lease?.roundSent(round, this.ticks);
    for (const [id, pr] of this.progressById) this.sendHeartbeat(id, pr);
    // The leader's own acknowledgement counts at once: when it is the only voter (of every half
    // of the configuration) no HeartbeatResponse will come, and the round is confirmed now.
    this.releaseConfirmedReads();
  }

  private sendHeartbeat(to: NodeId, pr: Progress): void {
    this.send({
      type: "Heartbeat",
      from: this.id,
      to,
      term: this.term,
      leaderCommit: Math.min(pr.match, this.log.committed),
      readRound: this.reads.round,
    });
  }

  private flushPendingAppends(): void {
    if (this.pendingAppends.size === 0) return;
    if (this.role === "leader") {
      for (const [id, sendIfEmpty] of this.pendingAppends) {
        const pr = this.progressById.get(id);
        if (!pr) continue;
        // Pipelining: in replicate state keep sending until the window is full or all is sent.
        let sent = this.sendAppend(id, pr, sendIfEmpty);
        while (sent && pr.state === "replicate" && pr.next <= this.log.lastIndex()) {
          sent = this.sendAppend(id, pr, false);
        }
      }
    }
    this.pendingAppends.clear();
    this.allPendingForce = false;
  }

  /** Sends one AppendEntries to `to` if its flow control allows; returns whether it did. */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === undefined) {
      // The entries this follower needs are compacted away: it catches up from our snapshot (§7).
      const snap = this.snapshot;
      if (!snap || snap.meta.index < prevLogIndex) {
        throw new Error(`entry ${prevLogIndex} needed by ${to} is compacted but no snapshot covers it`);
      }
      pr.becomeSnapshot(snap.meta.index, snap);
      this.sendSnapshotChunk(to, pr);
      return true;
    }
    const last = this.log.lastIndex();
    if (pr.next > last && !sendIfEmpty) return false;
    let hi = pr.next;
    let bytes = 0;
    while (hi <= last) {
      const size = this.log.entries[hi - this.log.offset - 1].data.byteLength;
      if (hi > pr.next && bytes + size > this.maxMsgBytes) break;
      bytes += size;
      hi++;
    }
    const entries = hi > pr.next ? this.log.slice(pr.next, hi) : [];
    this.send({
      type: "AppendEntries",
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.log.committed,
    });
    if (pr.state === "replicate" && entries.length > 0) {
      pr.next = hi;
      pr.inflights.add(hi - 1, bytes);
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }

  /**
   * §5.4.2 / Figure 8: advance the commit index to the highest index replicated on a quorum,
   * but only if that entry is from the current term; earlier-term entries then commit with it.
   */
  private maybeCommit(): boolean {
    const stable = this.log.stable;
    const idx = committedIndex(this.conf, (id) => (id === this.id ? stable : (this.progressById.get(id)?.match ?? 0)));
    if (idx <= this.log.committed || this.log.term(idx) !== this.term) return false;
    const firstOfTerm = this.log.committed === 0 || this.log.term(this.log.committed) !== this.term;
    this.log.commitTo(idx);
    if (firstOfTerm) this.releaseReadsAwaitingCommit();
    this.confDutiesAfterCommit();
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.timeoutNowSent = true;
    this.send({ type: "TimeoutNow", from: this.id, to, term: this.term });
  }

  // -------------------------------------------------------------------------------------------
  // InstallSnapshot (§7), in chunks, stop-and-wait, resumable by offset
  // -------------------------------------------------------------------------------------------

  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snap = pr.snapshotInFlight;
    if (!snap) return;
    const offset = Math.min(pr.snapshotOffset, snap.data.byteLength);
    const end = Math.min(snap.data.byteLength, offset + this.snapshotChunkBytes);
    this.send({
      type: "InstallSnapshot",
      from: this.id,
      to,
      term: this.term,
      meta: snap.meta,
      offset,
      data: snap.data.subarray(offset, end),
      done: end === snap.data.byteLength,
    });
    pr.snapshotIdleTicks = 0;
  }

  private handleInstallSnapshotResponse(m: InstallSnapshotResponse, pr: Progress): void {
    if (pr.state !== "snapshot" || m.snapshotIndex !== pr.pendingSnapshot) return; // stale
    if (m.done || m.nextOffset < 0) {
      // Installed (or refused, e.g. the follower already has it all): replicate from there.
      const updated = m.done && pr.maybeUpdate(m.matchIndex);
      pr.becomeProbe();
      this.needAppend(m.from, true);
      if (updated && this.maybeCommit()) this.broadcastAppend();
      return;
    }
    if (m.nextOffset === pr.snapshotOffset && m.nextOffset !== 0) return; // a duplicate answer
    pr.snapshotOffset = m.nextOffset;
    pr.snapshotResends = 0;
    this.sendSnapshotChunk(m.from, pr);
  }

  /**
   * A lost chunk or answer would stall a snapshot transfer. The follower is alive (it answered a
   * heartbeat), so once an election timeout has passed since the last chunk went out, send again
   * from where it last asked (it answers with its own offset if that is not it). Not sooner: a
   * big chunk on a slow link is still on its way, and a copy on every heartbeat would fill the
   * link's buffer and crowd out the heartbeats. Each resend in a row waits twice as long (up to
   * 8 election timeouts), for links slower still.
   */
  private maybeResendSnapshotChunk(to: NodeId, pr: Progress): void {
    const wait = this.electionTicks * 2 ** Math.min(pr.snapshotResends, 3);
    if (pr.snapshotIdleTicks < wait) return;
    pr.snapshotResends++;
    this.sendSnapshotChunk(to, pr);
  }

  private handleInstallSnapshot(m: InstallSnapshot): void {
    const meta = m.meta;
    const reply = (nextOffset: number, done: boolean, matchIndex: Index): void =>
      this.send({
        type: "InstallSnapshotResponse",
        from: this.id,
        to: m.from,
        term: this.term,
        snapshotIndex: meta.index,
        nextOffset,
        matchIndex,
        done,
      });
    if (meta.index <= this.log.committed) {
      // We already have everything it covers.
      this.snapshotReceiver.reset();
      reply(0, true, this.log.committed);
      return;
    }
    const outcome = this.snapshotReceiver.receive(m);
    if (outcome.kind === "ask") {
      reply(outcome.nextOffset, false, 0);
      return;
    }
    const snap = outcome.snapshot;
    this.log.restoreSnapshot(meta.index, meta.term);
    // Entries kept after the snapshot may hold a newer configuration than the snapshot's.
    this.baseConf = cloneConf(meta.conf);
    this.refreshConf(true);
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    // Only the snapshot's index is known to match the leader; entries we kept after it are
    // confirmed by the probe that follows.
    reply(snap.data.byteLength, true, meta.index);
  }

  // -------------------------------------------------------------------------------------------
  // Membership (§6, thesis §4)
  // -------------------------------------------------------------------------------------------

  private appendConf(conf: ConfState, changes: ConfChangeItem[]): Index {
    const index = this.appendLocal([{ type: "config", data: encodeConfEntry({ conf, changes }) }]);
    this.pendingConfIndex = index;
    return index;
  }

  /** Whether the leader may start a membership change: the last one (and its election) committed. */
  private confChangeAllowed(): string | null {
    if (this.pendingConfIndex > this.log.committed || this.lastConfIndex > this.log.committed) {
      return `the membership change at index ${Math.max(this.pendingConfIndex, this.lastConfIndex)} is not committed yet`;
    }
    if (isJoint(this.conf)) return "the cluster is still leaving joint consensus";
    return null;
  }

  /**
   * The configuration at `index` (<= the last index): the latest config entry at or below it,
   * else the configuration the log window starts with. Snapshots record it.
   */
  confAt(index: Index): ConfState {
    for (let i = Math.min(index, this.log.lastIndex()); i > this.log.offset; i--) {
      const e = this.log.entry(i)!;
      if (e.type === "config") return decodeConfEntry(e.data).conf;
    }
    return cloneConf(this.baseConf);
  }

  /**
   * Use the latest configuration in the log (thesis §4.1), after entries were added or removed;
   * `force` after the base configuration itself changed (a snapshot was installed).
   */
  private refreshConf(force = false): void {
    for (let i = this.log.lastIndex(); i > this.log.offset; i--) {
      this.confScanSteps++;
      const e = this.log.entry(i)!;
      if (e.type !== "config") continue;
      if (force || i !== this.lastConfIndex || e.term !== this.lastConfTerm) {
        this.lastConfIndex = i;
        this.lastConfTerm = e.term;
        this.setConf(decodeConfEntry(e.data).conf);
      }
      return;
    }
    if (force || this.lastConfIndex !== 0) {
      this.lastConfIndex = 0;
      this.lastConfTerm = 0;
      this.setConf(cloneConf(this.baseConf));
    }
  }

  /**
   * `entries` now sit in the log from index `first` on (appended by a leader, or from one, with
   * no config entry truncated): the last config entry among them takes effect, unless a later
   * one already has. Looks at these entries only, never at the rest of the log.
   */
  private noticeAppended(first: Index, entries: readonly { type?: EntryType; data: Uint8Array }[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (e.type !== "config") continue;
      const index = first + i;
      if (index > this.lastConfIndex) {
        this.lastConfIndex = index;
        this.lastConfTerm = this.log.term(index)!;
        this.setConf(decodeConfEntry(e.data).conf);
      }
      return;
    }
  }

  /**
   * Switch to `next`. A leader starts replicating to members that came; members that went keep
   * receiving the log until the configuration without them commits, so that they hold the
   * entry that removed them and stop campaigning (see pruneProgress).
   */
  private setConf(next: ConfState): void {
    this.conf = next;
    this.confSettled = false;
    if (this.role !== "leader") return;
    const lastIndex = this.log.lastIndex();
    for (const id of allMembers(next)) {
      if (id !== this.id && !this.progressById.has(id)) {
        this.progressById.set(id, new Progress(lastIndex + 1, this.maxInflightMsgs, this.maxInflightBytes));
        this.needAppend(id, true);
      }
    }
    if (this.transferTarget !== null && !next.voters.includes(this.transferTarget)) this.transferTarget = null;
    if (this.lastConfIndex <= this.log.committed) this.pruneProgress();
    // The quorum is counted over the new voters: the rounds they have acknowledged may confirm
    // waiting reads now (a leader left as the only voter confirms them alone).
    this.releaseConfirmedReads();
  }

  /**
   * Stop replicating to non-members, with a last heartbeat that tells them the commit index. One
   * that has not acknowledged the configuration entry that removed it keeps receiving the log
   * until it has (handleAppendResponse prunes it then): that heartbeat must tell it the removal
   * committed, or it would keep campaigning (see promotable).
   */
  private pruneProgress(): void {
    const members = new Set(allMembers(this.conf));
    for (const [id, pr] of this.progressById) {
      if (members.has(id) || pr.match < this.lastConfIndex) continue;
      this.sendHeartbeat(id, pr);
      this.progressById.delete(id);
      this.pendingAppends.delete(id);
    }
  }

  /**
   * After the commit index moved (leader): once C(old,new) is committed, append C(new); once a
   * configuration without this node is committed, step down (thesis §4.2.2), after telling the
   * others the commit index and handing the lead to the voter whose log is most complete.
   */
  private confDutiesAfterCommit(): void {
    if (this.confSettled || this.lastConfIndex > this.log.committed || this.pendingConfIndex > this.log.committed) return;
    this.pruneProgress();
    if (isJoint(this.conf)) {
      this.appendConf(leaveJoint(this.conf), []);
      return;
    }
    this.confSettled = true;
    if (isVoter(this.conf, this.id)) return;
    for (const [id, pr] of this.progressById) this.sendHeartbeat(id, pr);
    const best = this.mostUpToDateVoter();
    if (best !== null) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, null);
  }

  /** Promote the first learner marked for it whose log has caught up with ours. */
  private maybePromote(): void {
    const promote = this.conf.promote;
    if (!promote || promote.length === 0 || this.transferTarget !== null || this.confChangeAllowed() !== null) return;
    for (const id of promote) {
      if (!this.catchUp(id)?.caughtUp) continue;
      const changes: ConfChangeItem[] = [{ op: "add-voter", id }];
      this.appendConf(applyChanges(this.conf, changes), changes);
      return;
    }
  }

  /** The voter (not this node) of the incoming configuration with the highest match index. */
  private mostUpToDateVoter(): NodeId | null {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.conf.voters) {
      const pr = this.progressById.get(id);
      if (id === this.id || !pr) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    return best;
  }

  // -------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4)
  // -------------------------------------------------------------------------------------------

  /**
   * `mayUseLease` is false for reads released from inside the core (after a commit in
   * advance()), where the driver has not brought the tick count up to its clock.
   */
  private leaderRead(requestId: number, from: NodeId, mayUseLease = true): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Until an entry of this term commits, the leader's commit index may lag the true one.
      this.reads.awaitCommit(requestId, from);
      return;
    }
    const index = this.log.committed;
    const voters = allVoters(this.conf);
    const soleVoter = voters.length === 1 && voters[0] === this.id;
    if (soleVoter || (mayUseLease && this.leaseValid())) {
      this.replyRead(from, requestId, index, false);
      return;
    }
    // It waits for a heartbeat round sent after now: the next Ready's if no round is in flight,
    // else the one that follows when the round in flight is confirmed (reads coalesce).
    this.reads.add(requestId, from, index);
  }

  private releaseReadsAwaitingCommit(): void {
    for (const r of this.reads.takeAwaitingCommit()) this.leaderRead(r.requestId, r.from, false);
  }

  /**
   * Lease mode: reads may skip the heartbeat round now. Never while a transfer is pending or
   * after TimeoutNow went out this term (its target campaigns past every follower's lease, and
   * a delayed TimeoutNow may arrive at any time), and never before this term committed an entry
   * (the caller checks that).
   */
  private leaseValid(): boolean {
    if (this.lease === null || this.transferTarget !== null || this.timeoutNowSent) return false;
    return this.lease.holds(this.quorumReadRound(), this.ticks);
  }

  /** The newest heartbeat round a quorum (of each half of a joint configuration) acknowledged. */
  private quorumReadRound(): number {
    return committedIndex(this.conf, (id) => (id === this.id ? this.reads.round : (this.progressById.get(id)?.readAck ?? 0)));
  }

  /** Serve every read whose round a quorum has confirmed: we were still leader when they came. */
  private releaseConfirmedReads(): void {
    for (const r of this.reads.confirm(this.quorumReadRound())) this.replyRead(r.from, r.requestId, r.index, false);
  }

  private replyRead(to: NodeId, requestId: number, index: Index, rejected: boolean): void {
    if (to === this.id) {
      if (rejected) this.rejections.push({ requestId, leaderId: this.leaderId, reason: "leadership-lost" });
      else this.readStates.push({ requestId, index });
      return;
    }
    this.send({
      type: "ReadIndexResponse",
      from: this.id,
      to,
      term: this.term,
      requestId,
      index,
      rejected,
      leaderId: this.leaderId,
    });
  }

  private failPendingReads(): void {
    for (const r of this.reads.takeAll()) this.replyRead(r.from, r.requestId, 0, true);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId && a.term === b.term;
}
