import { cloneConf, isJoint } from "../core/membership.ts";
import type { ConfState, Entry, ForwardedProposal, Index, NodeId, ReadState, Rejection, Term } from "../core/types.ts";
import { OutcomeUnknownError, ProposalDroppedError, ReadTimeoutError, TransferFailedError } from "../errors.ts";

/**
 * Every request a RaftNode holds for a caller, from the call until its promise settles: proposals
 * (queued, forwarded to the leader, appended to the log), reads (awaiting the leader's
 * confirmation, then the state machine), membership changes and leadership transfers.
 *
 * The outcome rules, the same for every kind:
 * - resolved: the entry was applied here with the term it was proposed in (a read: the state
 *   machine reached the confirmed index; a transfer: another member leads);
 * - PROPOSAL_DROPPED (ProposalDroppedError): known not to have committed, because this node
 *   applied a different entry (another term's) at the index it was placed at;
 * - OUTCOME_UNKNOWN (OutcomeUnknownError): it may or may not commit. Its deadline passed, a later
 *   term reused its index before it committed here (the older entry may live on elsewhere), a
 *   snapshot replaced the log up to its index, the leader placed a forwarded one at an index
 *   already applied here, or the node stopped while it was in the log or with the leader;
 * - a request that never left this node (queued, a read, a transfer) fails with the reason the
 *   node stopped, or NotLeaderError when the core refuses it, since nothing was proposed.
 *
 * The registry holds no clock: callers pass deadlines in and `expire(now)` out.
 */

export interface ProposeOutcome<Result> {
  index: Index;
  term: Term;
  result: Result;
}

/** A membership change that took effect. */
export interface MembershipChange {
  /** Index of the entry that made it (for a voter change: the entry that left joint consensus). */
  index: Index;
  conf: ConfState;
}

interface Waiter<T> {
  deadline: number;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export interface PendingProposal<Result> extends Waiter<ProposeOutcome<Result>> {
  /** The term the entry was appended in; 0 while queued or forwarded without an answer. */
  term: Term;
}

interface PendingConfChange extends Waiter<MembershipChange> {
  term: Term;
}

type PendingRead = Waiter<Index>;
type PendingTransfer = Waiter<NodeId>;

export interface PendingTimeouts {
  /** Named in the OUTCOME_UNKNOWN of a proposal or membership change that expired. */
  proposalTimeoutMs: number;
  /** Named in the READ_TIMEOUT of a read that expired. */
  readTimeoutMs: number;
  /** Named in the TransferFailedError of a transfer that expired. */
  transferTimeoutMs: number;
}

export class PendingRequests<Result> {
  /** Proposals made since the last flush into the core; they enter the log as one batch. */
  private queued: { data: Uint8Array; pending: PendingProposal<Result> }[] = [];
  /** Proposals appended to the log here, by index; settled when that index is applied. */
  private readonly proposals = new Map<Index, PendingProposal<Result>>();
  /** Batches forwarded to the leader, by request id, until it says where they landed. */
  private readonly forwarded = new Map<number, PendingProposal<Result>[]>();
  /** Reads waiting for the leader to confirm a read index, by request id. */
  private readonly reads = new Map<number, PendingRead>();
  /** Confirmed reads waiting for the state machine to reach their index, in index order. */
  private readsAwaitingApply: { index: Index; read: PendingRead }[] = [];
  /** Membership changes proposed here, by index, until applied. */
  private readonly confChanges = new Map<Index, PendingConfChange>();
  /** Voter changes applied in joint form, waiting for the entry that leaves joint consensus. */
  private awaitingLeave: PendingConfChange[] = [];
  private transfers: PendingTransfer[] = [];

  /** `transferTimeoutMs` may change until the node starts (it derives from the election timeout). */
  constructor(readonly timeouts: PendingTimeouts) {}

  /** Proposals held: queued, forwarded, or appended and not yet applied. */
  get proposalCount(): number {
    let n = this.queued.length + this.proposals.size;
    for (const batch of this.forwarded.values()) n += batch.length;
    return n;
  }

  /** Reads held: awaiting confirmation or apply. */
  get readCount(): number {
    return this.reads.size + this.readsAwaitingApply.length;
  }

  get hasQueued(): boolean {
    return this.queued.length > 0;
  }

  // --- track ---------------------------------------------------------------------------------

  /** Hold a proposal until the next flush hands it to the core. */
  queue(data: Uint8Array, waiter: Waiter<ProposeOutcome<Result>>): void {
    this.queued.push({ data, pending: { term: 0, ...waiter } });
  }

  /** The queued proposals, in order, handed over: each must go to `trackAt`, `trackForwarded` or be rejected. */
  takeQueued(): { data: Uint8Array; pending: PendingProposal<Result> }[] {
    const batch = this.queued;
    this.queued = [];
    return batch;
  }

  /**
   * Wait for `index` to be applied on behalf of `p`. An earlier proposal waiting on the same index
   * was appended in an older term and since truncated from this log; it is not necessarily dead
   * (another node may still hold it and win an election), so its outcome is unknown.
   */
  trackAt(index: Index, p: PendingProposal<Result>): void {
    const previous = this.proposals.get(index);
    if (previous) {
      this.proposals.delete(index);
      previous.reject(new OutcomeUnknownError(`index ${index} was reused by a later term before it committed here`));
    }
    this.proposals.set(index, p);
  }

  /** A batch the core forwarded to the leader under `requestId`. */
  trackForwarded(requestId: number, batch: PendingProposal<Result>[]): void {
    this.forwarded.set(requestId, batch);
  }

  /** A read the core asked the leader to confirm under `requestId`. */
  trackRead(requestId: number, read: PendingRead): void {
    this.reads.set(requestId, read);
  }

  /** A membership change appended at `index` in `term` (the same rule as `trackAt`). */
  trackConfChange(index: Index, change: PendingConfChange): void {
    const previous = this.confChanges.get(index);
    previous?.reject(new OutcomeUnknownError(`index ${index} was reused by a later term before it committed here`));
    this.confChanges.set(index, change);
  }

  trackTransfer(transfer: PendingTransfer): void {
    this.transfers.push(transfer);
  }

  // --- settle --------------------------------------------------------------------------------

  /** The leader placed forwarded batches: wait for their indexes, unless already applied here. */
  placed(placements: ForwardedProposal[], appliedIndex: Index): void {
    for (const f of placements) {
      const batch = this.forwarded.get(f.requestId);
      if (!batch) continue;
      this.forwarded.delete(f.requestId);
      batch.forEach((p, i) => {
        if (f.index + i <= appliedIndex) {
          p.reject(new OutcomeUnknownError(`the leader placed it at index ${f.index + i}, already applied here before the answer arrived`));
        } else {
          p.term = f.term;
          this.trackAt(f.index + i, p);
        }
      });
    }
  }

  /** `entry` was applied with `result`: its proposal resolves if its term matches, else was dropped. */
  applied(entry: Entry, result: Result | undefined): void {
    const p = this.proposals.get(entry.index);
    if (!p) return;
    this.proposals.delete(entry.index);
    if (p.term === entry.term) p.resolve({ index: entry.index, term: entry.term, result: result as Result });
    else p.reject(new ProposalDroppedError(`index ${entry.index} was taken by an entry of term ${entry.term}`));
  }

  /** A configuration entry was applied: settle the change proposed at its index, and any waiting for joint consensus to end. */
  confApplied(entry: Entry, conf: ConfState): void {
    const c = this.confChanges.get(entry.index);
    if (c) {
      this.confChanges.delete(entry.index);
      if (c.term !== entry.term) c.reject(new ProposalDroppedError(`index ${entry.index} was taken by an entry of term ${entry.term}`));
      else if (isJoint(conf)) this.awaitingLeave.push(c);
      else c.resolve({ index: entry.index, conf });
    }
    if (!isJoint(conf)) this.leftJoint(entry.index, conf);
  }

  /**
   * A snapshot up to `index` replaced the state machine: proposals and changes placed at or below
   * it may or may not be in it. A snapshot outside joint consensus ends the wait for leaving it.
   */
  snapshotRestored(index: Index, conf: ConfState): void {
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
    if (!isJoint(conf)) this.leftJoint(index, conf);
  }

  private leftJoint(index: Index, conf: ConfState): void {
    if (this.awaitingLeave.length === 0) return;
    for (const c of this.awaitingLeave) c.resolve({ index, conf: cloneConf(conf) });
    this.awaitingLeave = [];
  }

  /**
   * The state machine reflects every entry up to `index` (applied, or restored from a snapshot):
   * every read waiting for it is served. A read resolved in the middle of a batch reads after the
   * batch (its continuation runs later), which only makes what it sees newer.
   */
  appliedTo(index: Index): void {
    const waiting = this.readsAwaitingApply;
    let n = 0;
    while (n < waiting.length && waiting[n].index <= index) n++;
    if (n === 0) return;
    for (const w of waiting.splice(0, n)) w.read.resolve(w.index);
  }

  /** The leader confirmed reads: serve each at once if applied that far, else park it until then. */
  confirmed(readStates: ReadState[], appliedIndex: Index): void {
    for (const rs of readStates) {
      const read = this.reads.get(rs.requestId);
      if (!read) continue;
      this.reads.delete(rs.requestId);
      if (rs.index <= appliedIndex) read.resolve(rs.index);
      else this.awaitApply(rs.index, read);
    }
  }

  /** Park a confirmed read until `index` is applied, keeping the queue in index order. */
  private awaitApply(index: Index, read: PendingRead): void {
    const waiting = this.readsAwaitingApply;
    let at = waiting.length;
    // Usually at the end: answers come in the order asked, unless the network reorders them.
    while (at > 0 && waiting[at - 1].index > index) at--;
    waiting.splice(at, 0, { index, read });
  }

  /**
   * The core refused reads or forwarded batches (no leader, leadership lost, a transfer): nothing
   * was proposed, so each fails with the error `notLeader` makes.
   */
  refused(rejections: Rejection[], notLeader: (leaderId: NodeId | null, detail: string) => Error): void {
    for (const rj of rejections) {
      const read = this.reads.get(rj.requestId);
      if (read) {
        this.reads.delete(rj.requestId);
        read.reject(notLeader(rj.leaderId, rj.reason));
        continue;
      }
      const batch = this.forwarded.get(rj.requestId);
      if (batch) {
        this.forwarded.delete(rj.requestId);
        for (const p of batch) p.reject(notLeader(rj.leaderId, "the node it was forwarded to is not the leader"));
      }
    }
  }

  /** Another member leads now: every transfer asked for succeeded. */
  leaderElected(leaderId: NodeId): void {
    if (this.transfers.length === 0) return;
    for (const t of this.transfers) t.resolve(leaderId);
    this.transfers = [];
  }

  // --- expire and fail -----------------------------------------------------------------------

  /** Fail requests past their deadline. Proposals expire in insertion order (same timeout). */
  expire(now: number): void {
    const { proposalTimeoutMs, readTimeoutMs, transferTimeoutMs } = this.timeouts;
    for (const [index, p] of this.proposals) {
      if (p.deadline > now) break;
      this.proposals.delete(index);
      p.reject(new OutcomeUnknownError(`not applied within ${proposalTimeoutMs} ms (index ${index})`));
    }
    for (const [id, batch] of this.forwarded) {
      if (batch[0].deadline > now) break;
      this.forwarded.delete(id);
      for (const p of batch) p.reject(new OutcomeUnknownError(`the leader did not confirm the forwarded proposal within ${proposalTimeoutMs} ms`));
    }
    for (const [index, c] of this.confChanges) {
      if (c.deadline > now) continue;
      this.confChanges.delete(index);
      c.reject(new OutcomeUnknownError(`the membership change at index ${index} was not applied within ${proposalTimeoutMs} ms`));
    }
    if (this.awaitingLeave.length > 0 && this.awaitingLeave[0].deadline <= now) {
      for (const c of this.awaitingLeave) {
        c.reject(new OutcomeUnknownError(`joint consensus was entered but not left within ${proposalTimeoutMs} ms; the leader leaves it by itself`));
      }
      this.awaitingLeave = [];
    }
    if (this.transfers.length > 0 && this.transfers[0].deadline <= now) {
      for (const t of this.transfers) t.reject(new TransferFailedError(`no other member took over within ${transferTimeoutMs} ms`));
      this.transfers = [];
    }
    for (const [id, r] of this.reads) {
      if (r.deadline > now) break;
      this.reads.delete(id);
      r.reject(new ReadTimeoutError(`no quorum confirmed the leader within ${readTimeoutMs} ms`));
    }
    // In index order, not deadline order: look at every one (few wait, and not for long).
    if (this.readsAwaitingApply.some((w) => w.read.deadline <= now)) {
      const still: { index: Index; read: PendingRead }[] = [];
      for (const w of this.readsAwaitingApply) {
        if (w.read.deadline <= now) w.read.reject(new ReadTimeoutError(`not applied up to ${w.index} within ${readTimeoutMs} ms`));
        else still.push(w);
      }
      this.readsAwaitingApply = still;
    }
  }

  /**
   * The node stopped: everything fails at once. What may be in a log somewhere (appended,
   * forwarded, a membership change) is OUTCOME_UNKNOWN with `reason`'s message; what never left
   * this node (queued proposals, reads, transfers) fails with `reason` itself.
   */
  failAll(reason: Error): void {
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
}
