/**
 * The leader's read lease (thesis §6.4.1), as tick arithmetic. Pure: the caller supplies the
 * tick count and the heartbeat round a quorum has acknowledged.
 *
 * Why it is safe. A follower that receives a heartbeat of round r (sent at leader tick s) grants
 * no vote to anyone else for `electionTicks` of its own ticks after receiving it (the follower
 * side of check-quorum, see Raft.inLease), and receiving happens after sending. So once a quorum
 * (of each half of a joint configuration) acknowledged round r, no other leader can be elected
 * before s + electionTicks, measured on those followers' clocks. The leader serves reads from its
 * state while its own tick count is below s + electionTicks - driftTicks, where driftTicks covers
 * one tick of phase (members' ticks are not aligned, so a follower's first tick after receiving
 * may come at once) plus the difference in clock *rate* between members over one election
 * timeout. Clock offsets do not matter; only rates do.
 *
 * The leader's tick count must never lag its clock when it decides a read: the driver reports
 * its clock (Raft.observeClock) before every read, since tick timers fire late when the process
 * is paused or its event loop is busy, and a lagging count would stretch the lease.
 */
export class LeaderLease {
  /** Heartbeat rounds sent and not yet superseded by a newer acknowledged one, oldest first. */
  private readonly sent: { round: number; tick: number }[] = [];

  /**
   * @param durationTicks how long a round's lease lasts from the tick it was sent:
   *   electionTicks - driftTicks, strictly below the shortest time a follower waits before
   *   voting for another candidate.
   */
  constructor(readonly durationTicks: number) {}

  /** Heartbeat round `round` (increasing) was sent at tick `tick`. */
  roundSent(round: number, tick: number): void {
    this.sent.push({ round, tick });
  }

  /**
   * Whether the lease holds at tick `now`, given the newest round `acked` that a quorum has
   * acknowledged. Rounds older than `acked` can never matter again and are dropped.
   */
  holds(acked: number, now: number): boolean {
    let i = 0;
    while (i < this.sent.length && this.sent[i].round < acked) i++;
    if (i > 0) this.sent.splice(0, i);
    const r = this.sent[0];
    return r !== undefined && r.round === acked && now < r.tick + this.durationTicks;
  }

  /** Forget every round (a new term, or leadership lost). */
  clear(): void {
    this.sent.length = 0;
  }
}

/** The default drift margin: one tick of phase plus 10% clock-rate difference over a timeout. */
export function defaultLeaseDriftTicks(electionTicks: number): number {
  return Math.min(electionTicks - 1, 1 + Math.ceil(electionTicks / 10));
}
