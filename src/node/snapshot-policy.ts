import type { Index } from "../core/types.ts";

/**
 * When a node snapshots its state machine and how far it then compacts its log. It counts what
 * was applied since the last snapshot taken or installed, and after a save that failed for a
 * passing reason waits, doubling the pause per failure. It holds no clock: callers pass `now`.
 */

export interface SnapshotSettings {
  /** Snapshot once this many entries were applied since the last one; 0: not by count. */
  everyEntries: number;
  /** Snapshot once the entries applied since the last one hold this many data bytes; 0: not by size. */
  everyBytes: number;
  /** Entries kept below a snapshot for followers that are slightly behind. */
  marginEntries: number;
}

/** The first pause after a transient snapshot failure, doubled per failure up to the maximum. */
export const SNAPSHOT_RETRY_MS = 1_000;
export const SNAPSHOT_RETRY_MAX_MS = 30_000;

export class SnapshotPolicy {
  /** Index of the last snapshot taken or installed here. */
  private snapshotIndex: Index = 0;
  /** Data bytes of the entries applied since the last snapshot taken or installed (or since start). */
  private bytesSinceSnapshot = 0;
  /** Snapshot saves that failed in a row for a transient reason, and when (`now`) to try again. */
  private failures = 0;
  private retryAt = 0;
  /** A snapshot was asked for now (RaftNode.snapshotNow), whatever the counts say. */
  private requested = false;

  constructor(readonly settings: SnapshotSettings) {}

  /** Index of the last snapshot taken or installed here (0: none). */
  get lastIndex(): Index {
    return this.snapshotIndex;
  }

  /** An entry of `bytes` data bytes was applied. */
  applied(bytes: number): void {
    this.bytesSinceSnapshot += bytes;
  }

  /** Enough entries, or entry bytes, were applied since the last snapshot, and no failed attempt asks to wait. */
  due(appliedIndex: Index, now: number): boolean {
    const { everyEntries, everyBytes } = this.settings;
    const enough =
      (this.requested && appliedIndex > this.snapshotIndex) ||
      (everyEntries > 0 && appliedIndex - this.snapshotIndex >= everyEntries) || (everyBytes > 0 && this.bytesSinceSnapshot >= everyBytes);
    return enough && now >= this.retryAt;
  }

  /** Where to compact the log after a snapshot at `index`: `margin` entries below it, never above `floor`. */
  compactTo(index: Index, floor: Index): Index {
    return Math.max(0, Math.min(index - this.settings.marginEntries, floor));
  }

  /** Take a snapshot at the next chance, whatever the counts say (once something was applied since the last one). */
  request(): void {
    this.requested = true;
  }

  /** Saving the snapshot failed for a passing reason: the pause (ms) before the next attempt. */
  saveFailed(now: number): number {
    this.failures++;
    const retryInMs = Math.min(SNAPSHOT_RETRY_MAX_MS, SNAPSHOT_RETRY_MS * 2 ** (this.failures - 1));
    this.retryAt = now + retryInMs;
    return retryInMs;
  }

  /** The snapshot was saved: failures no longer count. */
  saved(): void {
    this.failures = 0;
    this.retryAt = 0;
  }

  /** A snapshot at `index` was taken here and the log compacted: count afresh from it. */
  taken(index: Index): void {
    this.snapshotIndex = index;
    this.bytesSinceSnapshot = 0;
    this.requested = false;
  }

  /** A snapshot at `index` replaced the state machine (from the leader). */
  installed(index: Index): void {
    this.snapshotIndex = Math.max(this.snapshotIndex, index);
    this.bytesSinceSnapshot = 0;
  }

  /** The node started from a stored snapshot at `index`. */
  loaded(index: Index): void {
    this.snapshotIndex = index;
  }
}

/**
 * Errors that pass by themselves: the process or the system ran out of file descriptors
 * (EMFILE, ENFILE) or of a resource for the moment (EAGAIN). Storage adapters report the system
 * code as `code` (Node's and Deno's errors), or as `errno` on their own wrapping error.
 */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === "object" && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, errno } = e as { code?: unknown; errno?: unknown };
    if ([code, errno].some((c) => c === "EMFILE" || c === "ENFILE" || c === "EAGAIN")) return true;
  }
  return false;
}
