import type { Index, Snapshot } from "./types.ts";

/**
 * What a leader knows about one follower's log, and how it paces replication to it.
 *
 * - `probe`: the leader does not know where the follower's log matches; it sends one
 *   AppendEntries at a time and waits for the answer (or a heartbeat response) before the next.
 * - `replicate`: the logs match up to `match`; the leader streams entries optimistically
 *   (pipelining), bounded by the inflight window.
 * - `snapshot`: the follower needs entries the leader compacted; an InstallSnapshot is in flight.
 *
 * Invariant: 0 <= match < next.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The window of AppendEntries sent but not yet acknowledged, bounded both in count and in bytes
 * so a slow follower cannot make the leader buffer without limit.
 */
export class Inflights {
  private readonly indexes: Index[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private totalBytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  /** Record a message whose last entry is `lastIndex`. Indexes must be added in increasing order. */
  add(lastIndex: Index, bytes: number): void {
    this.indexes.push(lastIndex);
    this.sizes.push(bytes);
    this.totalBytes += bytes;
  }

  /** Release every message whose last entry is <= `index` (acknowledged). */
  freeLE(index: Index): void {
    while (this.head < this.indexes.length && this.indexes[this.head] <= index) {
      this.totalBytes -= this.sizes[this.head];
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.indexes.length) {
      this.indexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Release the oldest message: used when a heartbeat shows the follower alive but the window is stuck. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.head]);
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.totalBytes = 0;
  }
}

export class Progress {
  match: Index = 0;
  next: Index;
  state: ProgressState = "probe";
  /** In probe state: an AppendEntries is outstanding; wait for its answer before another. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: Index = 0;
  /** In snapshot state: the snapshot being sent (kept even if a newer one is taken meanwhile). */
  snapshotInFlight: Snapshot | null = null;
  /** In snapshot state: the byte offset the follower asked for last. */
  snapshotOffset = 0;
  /** In snapshot state: leader ticks since the last chunk was sent. */
  snapshotIdleTicks = 0;
  /** In snapshot state: chunks re-sent in a row without the follower moving on (each waits twice as long). */
  snapshotResends = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Highest heartbeat round this follower has acknowledged in the current term (ReadIndex, lease). */
  readAck = 0;
  readonly inflights: Inflights;

  constructor(next: Index, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    // Coming back from a snapshot, the follower has at least the snapshot: probe right after it.
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = "probe";
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotInFlight = null;
    this.snapshotOffset = 0;
    this.snapshotIdleTicks = 0;
    this.snapshotResends = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: Index, snapshot: Snapshot): void {
    this.state = "snapshot";
    this.pendingSnapshot = snapshotIndex;
    this.snapshotInFlight = snapshot;
    this.snapshotOffset = 0;
    this.snapshotIdleTicks = 0;
    this.snapshotResends = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** A success response acknowledged `index`. Returns false if it tells us nothing new. */
  maybeUpdate(index: Index): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * A rejection of the AppendEntries whose prevLogIndex was `rejected`; `hint` is where the
   * leader should probe next (already adjusted by term). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: Index, hint: Index): boolean {
    if (this.state === "replicate") {
      // Entries up to match are known to be there: a rejection at or below it is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the outstanding probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold back AppendEntries to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
