import type { Entry, Index, Term } from "./types.ts";

/**
 * The Raft log as the core sees it: an in-memory window of entries, a durable prefix and a
 * not-yet-durable tail, and the commit/apply cursors.
 *
 * The driver loads the stored log at start and keeps this window in memory, so the core reads
 * entries synchronously and never awaits IO. The window's start moves forward on compaction
 * (`compact`) and jumps on snapshot installation (`restoreSnapshot`).
 *
 * Invariants:
 *   offset <= applied <= committed <= lastIndex()
 *   offset <= stable <= lastIndex()
 *   entries[i].index === offset + 1 + i
 */
export class RaftLog {
  /** Index of the last entry before the window (the compaction point); term known as offsetTerm. */
  offset: Index;
  offsetTerm: Term;
  entries: Entry[];
  /** Highest index known committed. Never decreases. */
  committed: Index;
  /** Highest index handed to the driver for applying. */
  applied: Index;
  /** Entries up to here are durable in storage with exactly these terms. */
  stable: Index;
  /**
   * Entries up to here are being written by the batch the driver is persisting (the last Ready
   * not yet advanced). A truncation below it pulls it back, so `advance` never marks as durable
   * an entry that was replaced while the batch was in flight.
   */
  private persisting: Index;

  constructor(offset: Index, offsetTerm: Term, entries: Entry[], committed: Index) {
    if (entries.length > 0 && entries[0].index !== offset + 1) {
      throw new Error(`log entries start at ${entries[0].index}, expected ${offset + 1}`);
    }
    for (let i = 1; i < entries.length; i++) {
      if (entries[i].index !== entries[i - 1].index + 1) {
        throw new Error(`log has a gap between ${entries[i - 1].index} and ${entries[i].index}`);
      }
    }
    this.offset = offset;
    this.offsetTerm = offsetTerm;
    this.entries = entries;
    this.stable = this.lastIndex();
    this.persisting = this.stable;
    if (committed > this.lastIndex()) {
      throw new Error(`stored commit index ${committed} is beyond the last stored entry ${this.lastIndex()}`);
    }
    this.committed = Math.max(committed, offset);
    this.applied = offset;
  }

  firstIndex(): Index {
    return this.offset + 1;
  }

  lastIndex(): Index {
    return this.offset + this.entries.length;
  }

  lastTerm(): Term {
    return this.entries.length === 0 ? this.offsetTerm : this.entries[this.entries.length - 1].term;
  }

  /** The term of the entry at `index`, or undefined if it is compacted away or beyond the log. */
  term(index: Index): Term | undefined {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset - 1].term;
  }

  entry(index: Index): Entry | undefined {
    if (index <= this.offset || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset - 1];
  }

  matchTerm(index: Index, term: Term): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi). Both bounds must lie in the window. */
  slice(lo: Index, hi: Index): Entry[] {
    if (lo <= this.offset) throw new Error(`entry ${lo} is compacted (log starts at ${this.offset + 1})`);
    if (hi > this.lastIndex() + 1) throw new Error(`slice end ${hi} beyond last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    return this.entries.slice(lo - this.offset - 1, hi - this.offset - 1);
  }

  /** Leader path: add new entries at the end. */
  append(entries: Entry[]): void {
    for (const e of entries) this.entries.push(e);
  }

  /** Remove every entry at or after `from` (a conflicting suffix, §5.3). */
  private truncateFrom(from: Index): void {
    if (from <= this.committed) {
      throw new Error(`refusing to truncate committed entry ${from} (commit index ${this.committed})`);
    }
    this.entries.length = from - this.offset - 1;
    if (this.stable >= from) this.stable = from - 1;
    if (this.persisting >= from) this.persisting = from - 1;
  }

  /**
   * Follower path (§5.3, AppendEntries receiver rules 2-4). If our log holds `prevIndex` with
   * `prevTerm`, drop the first conflicting entry and all after it, append what is new, and return
   * the index of the last new entry; otherwise return -1.
   */
  maybeAppend(prevIndex: Index, prevTerm: Term, entries: Entry[]): Index {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + entries.length;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const mine = this.term(e.index);
      if (mine === e.term) continue;
      if (mine !== undefined) this.truncateFrom(e.index);
      for (let j = i; j < entries.length; j++) this.entries.push(entries[j]);
      break;
    }
    return lastNew;
  }

  /**
   * The last index <= `index` whose term is <= `term`, with its term. Both sides of the
   * fast-backtracking exchange use it, so one round trip skips a whole conflicting term.
   */
  findConflictByTerm(index: Index, term: Term): { index: Index; term: Term } {
    let i = Math.min(index, this.lastIndex());
    while (i > this.offset) {
      const t = this.entries[i - this.offset - 1].term;
      if (t <= term) return { index: i, term: t };
      i--;
    }
    return { index: this.offset, term: this.offsetTerm };
  }

  commitTo(index: Index): boolean {
    if (index <= this.committed) return false;
    if (index > this.lastIndex()) {
      throw new Error(`commit index ${index} is beyond the last log index ${this.lastIndex()}`);
    }
    this.committed = index;
    return true;
  }

  hasUnstable(): boolean {
    return this.stable < this.lastIndex();
  }

  /** Entries not yet durable; marks them as being persisted. */
  takeUnstable(): Entry[] {
    const ents = this.stable < this.lastIndex() ? this.slice(this.stable + 1, this.lastIndex() + 1) : [];
    this.persisting = this.lastIndex();
    return ents;
  }

  /** The batch handed out by `takeUnstable` is durable. */
  stableToPersisted(): void {
    if (this.persisting > this.stable) this.stable = this.persisting;
  }

  /**
   * Committed entries not yet applied that will be durable here once the batch being persisted
   * is (the driver applies only after persisting), at most about `maxBytes` of data. Marks them
   * as applied: the driver applies them before the next Ready.
   */
  takeToApply(maxBytes: number): Entry[] {
    const hi = Math.min(this.committed, this.persisting);
    if (hi <= this.applied) return [];
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = this.applied + 1; i <= hi; i++) {
      const e = this.entries[i - this.offset - 1];
      out.push(e);
      bytes += e.data.byteLength;
      if (bytes >= maxBytes) break;
    }
    if (out.length > 0) this.applied = out[out.length - 1].index;
    return out;
  }

  /** Whether the next Ready (which persists the whole tail first) has entries to apply. */
  hasToApply(): boolean {
    return this.committed > this.applied;
  }

  /** Drop entries up to `index` from memory (they are in a snapshot). */
  compact(index: Index): void {
    if (index <= this.offset) return;
    if (index > this.applied) throw new Error(`cannot compact ${index}: only ${this.applied} applied`);
    const term = this.term(index);
    if (term === undefined) throw new Error(`cannot compact ${index}: not in the log`);
    this.entries.splice(0, index - this.offset);
    this.offset = index;
    this.offsetTerm = term;
  }

  /**
   * Install a snapshot covering everything up to `index` (§7). If our log holds that entry with
   * the snapshot's term, the entries after it are still valid and stay; otherwise the whole log
   * is discarded. Either way everything up to `index` counts as committed and applied.
   */
  restoreSnapshot(index: Index, term: Term): void {
    if (this.matchTerm(index, term) && index <= this.lastIndex()) {
      this.entries.splice(0, index - this.offset);
      this.stable = Math.max(this.stable, index);
      this.persisting = Math.max(this.persisting, index);
    } else {
      this.entries = [];
      this.stable = index;
      this.persisting = index;
    }
    this.offset = index;
    this.offsetTerm = term;
    this.committed = Math.max(this.committed, index);
    this.applied = Math.max(this.applied, index);
  }
}
