import type { Index, NodeId } from "./types.ts";

/**
 * The leader's ReadIndex bookkeeping (thesis §6.4; etcd's read_only.go): which reads wait for
 * which heartbeat round. Pure data: the caller (Raft) sends the heartbeats, works out which
 * round a quorum has acknowledged and answers the reads this releases.
 *
 * Every heartbeat broadcast is a numbered round. A read that arrives when round `r` was the last
 * one sent waits for round `r + 1` or later: a round sent after the read arrived, so a quorum's
 * acknowledgement of it shows the node was still leader when the read came, and the commit index
 * recorded then covers every write acknowledged before the read.
 *
 * Coalescing: at most one read round is in flight, a read round being one that some waiting
 * read is the first to be able to use. A read that arrives while one is in flight waits, and
 * joins the next round, which starts as soon as the one in flight is confirmed; so under load
 * every round confirms all the reads that arrived during the previous one, and rounds grow with
 * load (as the reads etcd's server batches behind one ReadIndex do). The leader's periodic
 * heartbeat is a round too: it goes out whatever is in flight and serves the reads that came
 * before it, but a read that finds only a periodic round in flight does not wait for it (it
 * could not use it). A read round that is never confirmed (lost messages, no quorum) is
 * superseded by the next periodic round; a leader change fails every waiting read.
 */

/** A read waiting for a heartbeat round that a quorum acknowledges. */
export interface PendingRead {
  requestId: number;
  /** Who asked: this node, or a follower that forwarded a client's read. */
  from: NodeId;
  /** The leader's commit index when the read arrived: the read is served once it is applied. */
  index: Index;
  /** The first round that may confirm it (the round after the last one sent when it arrived). */
  round: number;
}

/** A read that arrived before the leader committed an entry of its term (§8), so has no index yet. */
export interface ReadAwaitingCommit {
  requestId: number;
  from: NodeId;
}

export class ReadIndexQueue {
  /** The last heartbeat round sent. Increasing for the life of the node, across terms. */
  round = 0;
  /** A round should go out with the next Ready, for the reads waiting on it. */
  roundRequested = false;
  /** The last read round sent, while no quorum has acknowledged it; 0 when none is in flight. */
  private inFlight = 0;
  /** Reads waiting for a round, in the order they arrived (so by round). */
  private pending: PendingRead[] = [];
  private awaitingCommit: ReadAwaitingCommit[] = [];

  /** Reads that wait for a round (sent or not). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Hold a read until this leader has committed an entry of its term (see takeAwaitingCommit). */
  awaitCommit(requestId: number, from: NodeId): void {
    this.awaitingCommit.push({ requestId, from });
  }

  /** The reads held by awaitCommit, now that an entry of the leader's term has committed. */
  takeAwaitingCommit(): ReadAwaitingCommit[] {
    const waiting = this.awaitingCommit;
    this.awaitingCommit = [];
    return waiting;
  }

  /**
   * A read with read index `index` waits for the next round (one sent after now). It asks for
   * that round at once if no read round is in flight; otherwise the round starts when the one in
   * flight is confirmed (see confirm), unless a periodic heartbeat comes first.
   */
  add(requestId: number, from: NodeId, index: Index): void {
    this.pending.push({ requestId, from, index, round: this.round + 1 });
    if (this.inFlight === 0) this.roundRequested = true;
  }

  /** The read round in flight (sent, not yet acknowledged by a quorum), or 0. */
  get roundInFlight(): number {
    return this.inFlight;
  }

  /** A heartbeat round goes out now (asked for or not); returns its number. */
  roundSent(): number {
    this.round++;
    this.roundRequested = false;
    // A read round if the newest waiting read was waiting for exactly this one.
    if (this.pending.length > 0 && this.pending[this.pending.length - 1].round === this.round) this.inFlight = this.round;
    return this.round;
  }

  /**
   * A quorum has acknowledged every round up to `confirmed`: the reads it confirms, oldest first.
   * If that ends the read round in flight and reads still wait (they came after it was sent),
   * the next round is asked for.
   */
  confirm(confirmed: number): PendingRead[] {
    let n = 0;
    while (n < this.pending.length && this.pending[n].round <= confirmed) n++;
    const released = n === 0 ? [] : this.pending.splice(0, n);
    if (this.inFlight !== 0 && confirmed >= this.inFlight) {
      this.inFlight = 0;
      if (this.pending.length > 0) this.roundRequested = true;
    }
    return released;
  }

  /**
   * Every waiting read, for the caller to fail: leadership was lost or a new term began (the
   * followers' acknowledgements start again from nothing). No round is in flight after it.
   */
  takeAll(): ReadAwaitingCommit[] {
    const all: ReadAwaitingCommit[] = [...this.pending, ...this.awaitingCommit];
    this.pending = [];
    this.awaitingCommit = [];
    this.inFlight = 0;
    this.roundRequested = false;
    return all;
  }
}
