import type { Clock } from "../clock.ts";
import type { Entry, HardState, Index, Snapshot } from "../core/types.ts";
import { cloneConf } from "../core/membership.ts";
import { checkBatch } from "./batch.ts";
import { EntryArena } from "./entry-arena.ts";
import { StorageError } from "./errors.ts";
import type { SaveBatch, Storage, StoredState } from "./storage.ts";

export { StorageError, type StorageErrorCode } from "./errors.ts";

export interface MemoryStorageOptions {
  /** Virtual (or real) time used to delay saves. Without it saves are durable on return. */
  clock?: Clock;
  /** How long a save takes to become durable, in ms of `clock` time. Default 0. */
  saveLatencyMs?: number;
}

/** The "disk": what survives a crash. Shared by every handle `reopen()` hands out. */
interface Durable {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Contiguous, in index order, stored compactly (see EntryArena). */
  entries: EntryArena;
  saves: number;
  bytesWritten: number;
}

interface PendingSave {
  cancel: () => void;
  reject: (error: Error) => void;
}

const copyEntry = (e: Entry): Entry => ({ index: e.index, term: e.term, type: e.type, data: new Uint8Array(e.data) });

const copySnapshot = (s: Snapshot): Snapshot => ({
  meta: {
    index: s.meta.index,
    term: s.meta.term,
    conf: cloneConf(s.meta.conf),
  },
  // `new Uint8Array(x)` always copies; `x.slice()` would share memory when x is a Node Buffer.
  data: new Uint8Array(s.data),
});

const copyHardState = (h: HardState): HardState => ({ term: h.term, votedFor: h.votedFor, commit: h.commit });

/**
 * Throws unless `batch` can be applied to `d`. Runs before any mutation, which is what makes
 * `apply` atomic: a rejected batch changes nothing, not even its hard state.
 */
function validate(d: Durable, batch: SaveBatch): void {
  checkBatch(batch);
  const entries = batch.entries;
  if (entries === undefined || entries.length === 0) return;
  // The snapshot is applied first and may discard the whole log.
  let logEmpty = d.entries.length === 0;
  let snapshotIndex = d.snapshot?.meta.index ?? 0;
  if (batch.snapshot !== undefined) {
    const meta = batch.snapshot.meta;
    if (d.entries.termAt(meta.index) !== meta.term) logEmpty = true;
    snapshotIndex = meta.index;
  }
  const last = logEmpty ? snapshotIndex : d.entries.lastIndex();
  if (entries[0].index > last + 1) {
    throw new StorageError(
      "LOG_GAP",
      `batch starts at index ${entries[0].index} but the stored log ends at ${last}` +
        (logEmpty ? ` (snapshot index ${snapshotIndex})` : "") +
        `: entries would leave a gap`,
    );
  }
}

/** Applies a validated batch. Copies everything it keeps. */
function apply(d: Durable, batch: SaveBatch): void {
  if (batch.snapshot !== undefined) {
    const meta = batch.snapshot.meta;
    if (d.entries.termAt(meta.index) !== meta.term) d.entries.truncateFrom(d.entries.firstIndex());
    d.snapshot = copySnapshot(batch.snapshot);
    d.bytesWritten += batch.snapshot.data.length;
  }
  if (batch.entries !== undefined && batch.entries.length > 0) {
    const log = d.entries;
    log.truncateFrom(batch.entries[0].index);
    for (const e of batch.entries) {
      log.append(e); // copies the data
      d.bytesWritten += e.data.length;
    }
  }
  if (batch.hardState !== undefined) d.hardState = copyHardState(batch.hardState);
  d.saves++;
}

/**
 * Durable state kept in memory, with the exact contract of `Storage`, for tests and the
 * simulator. Everything crossing the boundary is copied, so callers can neither change stored
 * state after the fact nor see it change under them.
 *
 * Crash model: with `clock` and `saveLatencyMs > 0`, a batch becomes durable only when its
 * latency has elapsed on `clock`, and `save` resolves at that moment. `crash()` loses every save
 * still in flight: their promises REJECT with a `StorageError` of code "CRASHED" (never resolve),
 * and their batches never become visible. The durable state stays; `load()` (a new node starting
 * on the same handle) or `reopen()` (a fresh handle) reads it back.
 *
 * `compact` takes effect immediately: losing a compaction in a crash would be harmless anyway.
 */
export class MemoryStorage implements Storage {
  private disk: Durable;
  private readonly options: MemoryStorageOptions;
  private readonly pendingSet: Set<PendingSave> = new Set();
  private crashed = false;
  private closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.options = options;
    this.disk = { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: new EntryArena(), saves: 0, bytesWritten: 0 };
  }

  /** Create a handle on an existing disk (used by `reopen`). */
  private static over(disk: Durable, options: MemoryStorageOptions): MemoryStorage {
    const s = new MemoryStorage(options);
    s.disk = disk;
    return s;
  }

  load(): Promise<StoredState> {
    if (this.closed) return Promise.reject(this.closedError("load"));
    this.crashed = false; // a new node starting on this storage
    const d = this.disk;
    return Promise.resolve({
      hardState: copyHardState(d.hardState),
      snapshot: d.snapshot === null ? null : copySnapshot(d.snapshot),
      entries: d.entries.read(),
    });
  }

  save(batch: SaveBatch): Promise<void> {
    const refused = this.refuse("save");
    if (refused) return Promise.reject(refused);
    try {
      validate(this.disk, batch);
    } catch (e) {
      return Promise.reject(e);
    }
    const { clock, saveLatencyMs = 0 } = this.options;
    if (clock === undefined || saveLatencyMs <= 0) {
      apply(this.disk, batch);
      return Promise.resolve();
    }
    // Copy now: the batch must be what the caller passed, even if it mutates it while in flight.
    const copy: SaveBatch = {
      hardState: batch.hardState && copyHardState(batch.hardState),
      entries: batch.entries?.map(copyEntry),
      snapshot: batch.snapshot && copySnapshot(batch.snapshot),
    };
    return new Promise<void>((resolve, reject) => {
      const pending: PendingSave = {
        reject,
        cancel: clock.setTimer(saveLatencyMs, () => {
          this.pendingSet.delete(pending);
          try {
            validate(this.disk, copy); // calls are not concurrent, so this still holds
            apply(this.disk, copy);
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        }),
      };
      this.pendingSet.add(pending);
    });
  }

  compact(upTo: Index): Promise<void> {
    const refused = this.refuse("compact");
    if (refused) return Promise.reject(refused);
    const snapshotIndex = this.snapshotIndex;
    if (upTo > snapshotIndex) {
      return Promise.reject(
        new StorageError("COMPACT_BEYOND_SNAPSHOT", `compact(${upTo}) is beyond the stored snapshot's index ${snapshotIndex}`),
      );
    }
    this.disk.entries.dropThrough(upTo);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /**
   * Simulate the process dying: saves in flight are lost (their promises reject with code
   * "CRASHED"), and this handle refuses `save`/`compact` until `load()` is called again.
   */
  crash(): void {
    this.crashed = true;
    const lost = [...this.pendingSet];
    this.pendingSet.clear();
    for (const p of lost) {
      p.cancel();
      p.reject(new StorageError("CRASHED", "storage crashed before this save became durable; the batch is lost"));
    }
  }

  /**
   * A fresh handle on the same durable state, as a restarted process would open. This handle is
   * crashed (saves in flight are lost) and closed, so a stale driver cannot write through it.
   */
  reopen(): MemoryStorage {
    this.crash();
    this.closed = true;
    return MemoryStorage.over(this.disk, this.options);
  }

  /** Batches that became durable, over the life of the disk. */
  get saves(): number {
    return this.disk.saves;
  }
  /** Sum of entry data and snapshot data lengths in durable batches. */
  get bytesWritten(): number {
    return this.disk.bytesWritten;
  }
  /** Data bytes of the stored entries (what a log on disk would hold, without framing). */
  sizeBytes(): number {
    let total = 0;
    for (const e of this.disk.entries.read()) total += e.data.byteLength;
    return total;
  }
  get storedEntryCount(): number {
    return this.disk.entries.length;
  }
  /** The stored snapshot's index, 0 without one. */
  get snapshotIndex(): Index {
    return this.disk.snapshot?.meta.index ?? 0;
  }
  /** Index of the last stored entry, or the snapshot's index when the log is empty. */
  get lastIndex(): Index {
    const log = this.disk.entries;
    return log.length > 0 ? log.lastIndex() : this.snapshotIndex;
  }
  /** Saves issued and not yet durable. */
  get pendingSaves(): number {
    return this.pendingSet.size;
  }

  private refuse(op: string): StorageError | undefined {
    if (this.closed) return this.closedError(op);
    if (this.crashed) {
      return new StorageError("CRASHED", `${op} on a crashed MemoryStorage; call load() to start a new node on it`);
    }
    return undefined;
  }

  private closedError(op: string): StorageError {
    return new StorageError("CLOSED", `${op} on a closed MemoryStorage; use reopen() for a fresh handle`);
  }
}
