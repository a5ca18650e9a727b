/**
 * Durable Raft storage in a directory of files, written once for every runtime against the small
 * FileSystem of ./fs.ts: adapters/node supplies `node:fs/promises`, adapters/deno Deno's own file calls, and
 * each exports a `FileStorage` whose `open(dir, options)` passes its own.
 *
 * - The log is a series of append-only segments of CRC-checked records (./format.ts
 *   describes the bytes). Each `save` is ONE record — hard state, snapshot reference and entries
 *   together — written at the end of the newest segment and made durable by ONE fdatasync, however
 *   many entries it holds. A record's checksum either holds or it does not, so a crash leaves
 *   either the whole batch or none of it. Hard state lives in the log for that reason: a separate
 *   file replaced by rename would cost three more syncs per batch and could not be atomic with the
 *   entries. Overwrites never rewrite a file: a batch starting at index i replaces the entries
 *   from i on when the log is replayed.
 * - A snapshot's data goes to its own file (temp file, fsync, rename, directory fsync) BEFORE the
 *   batch record that refers to it, so a snapshot exists only once the record does.
 * - Segments roll at `segmentBytes`, and at a compaction once the newest holds 1 MiB (so its
 *   compacted entries go with the next compaction). `compact(upTo)` appends a compact record, then drops whole
 *   segments whose entries are all at or below `upTo`, after recording the new first segment in
 *   `checkpoint` (temp file + rename), so every moment leaves a loadable directory.
 * - Opening replays the log. A write torn by a crash at the very end is cut off (and the cut
 *   synced); anything else that does not check out stops with a StorageCorruptionError naming
 *   the file and offset, because it may be acknowledged data. Each record repeats its length
 *   and checksum in a trailer, which is what tells the two apart (the rule is stated in
 *   ./format.ts). A directory whose newest segment predates trailers (format 1)
 *   still opens, and gets a new segment at once, so every later write has one.
 */
import type { Entry, HardState, Index, Term } from "../../core/types.ts";
import { checkBatch } from "../batch.ts";
import { StorageError } from "../errors.ts";
import type { SaveBatch, Storage, StoredState } from "../storage.ts";
import { errnoOf, StorageIoError } from "./errors.ts";
import type { FileHandle, FileSystem } from "./fs.ts";
import { createFileDurably, readSnapshotFile, removeQuietly, writeAll, writeFileDurably, writeSnapshotFile } from "./files.ts";
import {
  CHECKPOINT_NAME,
  CURRENT_FORMAT,
  type EncodedBatch,
  encodeBatch,
  encodeCheckpoint,
  encodeCompact,
  encodeRoll,
  encodeSegmentHeader,
  sealRecord,
  segmentName,
  snapshotMetaJson,
  snapshotName,
  type SnapshotRef,
} from "./format.ts";
import { type DirectoryLock, lockDirectory } from "./lock.ts";
import { recoverDirectory, replaySegments, type Segment } from "./recovery.ts";

export { StorageCorruptionError, StorageIoError, StorageLockedError } from "./errors.ts";
export type { FileHandle, FileSystem, HeldLock, OpenMode } from "./fs.ts";

export interface FileStorageOptions {
  /**
   * Start a new log segment when the current one would grow past this many bytes. A single
   * batch larger than this gets a segment of its own. Default 64 MiB.
   */
  segmentBytes?: number;
  /** Receives one line per repair or takeover made while opening. Default `console.warn`. */
  log?: (line: string) => void;
}

/** What `FileStorage.open` of src/ needs besides the options: the runtime's file system. */
export interface FileStorageOpenOptions extends FileStorageOptions {
  fs: FileSystem;
}

/** A batch checked and encoded when `save` was called; it runs later, in turn. */
interface PreparedSave {
  encoded: EncodedBatch;
  hardState?: HardState;
  snapshot?: { ref: SnapshotRef; json: Uint8Array; data: Uint8Array };
  /** First entry index, or 0 without entries. */
  first: Index;
  terms: Term[];
}

/** At compaction, a segment at least this big is closed so a later compaction can delete it. */
const COMPACTION_ROLL_BYTES = 1024 * 1024;

/**
 * The storage itself. Runtimes export a subclass whose `open(dir, options)` supplies their
 * FileSystem (adapters/node/file-storage.ts, adapters/deno/file-storage.ts).
 */
export class FileStorage implements Storage {
  readonly dir: string;
  private readonly fs: FileSystem;
  private readonly segmentBytes: number;
  private readonly log: (line: string) => void;
  private readonly lock: DirectoryLock;

  private hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  private snapshot: SnapshotRef | null = null;
  /** Terms of the live log: `terms[i]` is the term of entry `firstIndex + i`. */
  private terms: Term[] = [];
  private firstIndex: Index = 1;
  /** In seq order; the last is the one being appended to, through `active`. */
  private segments: Segment[] = [];
  private active: FileHandle | null = null;
  private nextSnapshotSeq = 1;
  private compactedThrough: Index = 0;
  /** Entries read while opening, handed to the first `load()`; any change discards them. */
  private recovered: Entry[] | null = null;

  /** Operations run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Set when a sync failed: what reached the disk is unknown, so nothing more is written. */
  private failure: Error | null = null;

  protected constructor(fs: FileSystem, dir: string, segmentBytes: number, log: (line: string) => void, lock: DirectoryLock) {
    this.fs = fs;
    this.dir = dir;
    this.segmentBytes = segmentBytes;
    this.log = log;
    this.lock = lock;
  }

  /**
   * Opens (creating if needed) the data directory `dir`, takes its lock and recovers the log.
   * Rejects with StorageLockedError if another live process holds it, StorageCorruptionError if
   * the contents do not check out, StorageIoError if the file system refuses.
   */
  static async open(dir: string, options: FileStorageOpenOptions): Promise<FileStorage> {
    const fs = options.fs;
    const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) {
      throw new RangeError(`segmentBytes must be a positive integer, got ${segmentBytes}`);
    }
    try {
      await fs.mkdir(dir);
    } catch (e) {
      throw new StorageIoError("create directory", dir, e);
    }
    const log = options.log ?? ((line: string) => console.warn(line));
    const lock = await lockDirectory(fs, dir, log);
    // `new this`: the runtime's subclass, so `instanceof` holds for what its `open` returns.
    const storage = new this(fs, dir, segmentBytes, log, lock);
    try {
      const r = await recoverDirectory(fs, dir, log);
      storage.hardState = r.hardState;
      storage.snapshot = r.snapshot;
      storage.terms = r.entries.map((e) => e.term);
      storage.firstIndex = r.entries.length > 0 ? r.entries[0].index : 1;
      storage.segments = r.segments;
      storage.active = r.active;
      storage.nextSnapshotSeq = r.nextSnapshotSeq;
      storage.compactedThrough = r.compactedThrough;
      storage.recovered = r.entries;
      // Appends go to current-format segments only (a segment's records share one format).
      if (storage.activeSegment.format !== CURRENT_FORMAT) await storage.roll();
    } catch (e) {
      await storage.active?.close().catch(() => undefined);
      await lock.release();
      throw e;
    }
    return storage;
  }

  load(): Promise<StoredState> {
    return this.serialize("load", async () => {
      const entries = this.recovered ?? (await replaySegments(this.fs, this.segments, false)).replay.entries;
      this.recovered = null;
      const hs = this.hardState;
      return {
        hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit },
        snapshot: this.snapshot ? await readSnapshotFile(this.fs, this.dir, this.snapshot) : null,
        entries,
      };
    });
  }

  /**
   * The batch is checked and its entries copied now; it is written after earlier calls finish.
   * A snapshot's data is written from the caller's buffer: do not change it until this resolves.
   */
  save(batch: SaveBatch): Promise<void> {
    let prepared: PreparedSave | null;
    try {
      prepared = this.prepare(batch);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.serialize("save", () => (prepared ? this.commit(prepared) : undefined));
  }

  compact(upTo: Index): Promise<void> {
    return this.serialize("compact", () => this.compactLog(upTo));
  }

  close(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed) return;
      this.closed = true;
      this.recovered = null;
      await this.active?.close().catch(() => undefined);
      this.active = null;
      await this.lock.release();
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private serialize<T>(op: string, fn: () => Promise<T> | T): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new StorageError("CLOSED", `${op} on a closed FileStorage (${this.dir}); open the directory again`);
      if (this.failure) throw this.failure;
      return fn();
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  // -------------------------------------------------------------------------------------------
  // The in-memory view of what is durable
  // -------------------------------------------------------------------------------------------

  /** The last entry's index, or the snapshot's when the log is empty. */
  /** Bytes of the log's segment files (their well-formed records). */
  sizeBytes(): number {
    let total = 0;
    for (const seg of this.segments) total += seg.size;
    return total;
  }

  private lastIndex(): Index {
    return this.terms.length > 0 ? this.firstIndex + this.terms.length - 1 : (this.snapshot?.index ?? 0);
  }

  private termAt(index: Index): Term | undefined {
    return index >= this.firstIndex ? this.terms[index - this.firstIndex] : undefined;
  }

  private get activeSegment(): Segment {
    return this.segments[this.segments.length - 1];
  }

  // -------------------------------------------------------------------------------------------
  // save
  // -------------------------------------------------------------------------------------------

  /** Checks what needs no stored state, copies the batch into a record; null if it is empty. */
  private prepare(batch: SaveBatch): PreparedSave | null {
    const entries = batch.entries ?? [];
    if (!checkBatch(batch)) return null;
    const hs = batch.hardState;
    const snap = batch.snapshot;

    const ref = snap ? { seq: this.nextSnapshotSeq++, index: snap.meta.index, term: snap.meta.term } : undefined;
    return {
      encoded: encodeBatch(hs, ref, entries),
      hardState: hs && { term: hs.term, votedFor: hs.votedFor, commit: hs.commit },
      snapshot: snap && ref && { ref, json: snapshotMetaJson(snap.meta), data: snap.data },
      first: entries.length > 0 ? entries[0].index : 0,
      terms: entries.map((e) => e.term),
    };
  }

  private async commit(p: PreparedSave): Promise<void> {
    // The snapshot is applied first and may discard the whole log (as in MemoryStorage).
    const snap = p.snapshot;
    const discard = snap !== undefined && this.termAt(snap.ref.index) !== snap.ref.term;
    if (p.first > 0) {
      const logEmpty = discard || this.terms.length === 0;
      const snapshotIndex = snap ? snap.ref.index : (this.snapshot?.index ?? 0);
      const last = logEmpty ? snapshotIndex : this.firstIndex + this.terms.length - 1;
      if (p.first > last + 1) {
        throw new StorageError(
          "LOG_GAP",
          `batch starts at index ${p.first} but the stored log ends at ${last}: entries would leave a gap`,
        );
      }
    }
    const hs = p.hardState;
    if (!snap && p.first === 0 && hs && hs.term === this.hardState.term && hs.votedFor === this.hardState.votedFor && hs.commit === this.hardState.commit) {
      return; // nothing changes
    }

    if (snap) {
      await writeSnapshotFile(this.fs, this.dir, snap.ref.seq, snap.json, snap.data);
      p.encoded.record[p.encoded.discardAt] = discard ? 1 : 0;
    }
    try {
      await this.append(sealRecord(p.encoded.record));
    } catch (e) {
      if (snap) await removeQuietly(this.fs, this.fs.join(this.dir, snapshotName(snap.ref.seq)));
      throw e;
    }

    // Durable: bring the in-memory view up to date.
    this.recovered = null;
    if (snap) {
      const previous = this.snapshot;
      this.snapshot = snap.ref;
      if (discard) this.terms = [];
      if (previous) await removeQuietly(this.fs, this.fs.join(this.dir, snapshotName(previous.seq)));
    }
    if (p.first > 0) {
      if (this.terms.length > 0 && p.first >= this.firstIndex) this.terms.length = p.first - this.firstIndex;
      else {
        this.terms = [];
        this.firstIndex = p.first;
      }
      for (const t of p.terms) this.terms.push(t);
      const seg = this.activeSegment;
      seg.maxIndex = Math.max(seg.maxIndex, p.first + p.terms.length - 1);
    }
    if (hs) this.hardState = hs;
  }

  /** Appends one sealed record to the newest segment (rolling first if it is full) and syncs it. */
  private async append(record: Uint8Array): Promise<void> {
    if (!this.activeSegment.empty && this.activeSegment.size + record.length > this.segmentBytes) await this.roll();
    await this.writeRecord(this.activeSegment, this.active!, record);
  }

  /**
   * Writes `record` at the end of `seg` and fdatasyncs. A failed write is cut back off so the
   * segment ends where it did; a failed sync (or cut) leaves the disk in an unknown state, so the
   * storage refuses everything after it and the next open recovers.
   */
  private async writeRecord(seg: Segment, fh: FileHandle, record: Uint8Array): Promise<void> {
    const at = seg.size;
    try {
      await writeAll(fh, record, at);
    } catch (e) {
      const error = new StorageIoError("append to log segment", seg.path, e);
      try {
        await fh.truncate(at);
      } catch {
        this.failure = error;
      }
      throw error;
    }
    try {
      await fh.datasync();
    } catch (e) {
      throw (this.failure = new StorageIoError("fdatasync log segment", seg.path, e));
    }
    seg.size = at + record.length;
    seg.empty = false;
  }

  /**
   * Starts the next segment. It is created and synced (with its directory entry) before the old
   * segment gets its roll record, so a crash in between leaves an empty newest segment that
   * recovery recognises and removes.
   */
  private async roll(): Promise<void> {
    const old = this.activeSegment;
    const oldFh = this.active!;
    const seq = old.seq + 1;
    const last = this.lastIndex();
    const path = this.fs.join(this.dir, segmentName(seq, last + 1));
    const header = encodeSegmentHeader({
      seq,
      firstLive: this.terms.length > 0 ? this.firstIndex : last + 1,
      lastIndex: last,
      hardState: this.hardState,
      snapshot: this.snapshot,
    });
    const fh = await createFileDurably(this.fs, this.dir, path, header);
    try {
      await this.writeRecord(old, oldFh, encodeRoll(seq, old.format));
    } catch (e) {
      await fh.close().catch(() => undefined);
      if (!this.failure) await this.fs.unlink(path).catch(() => undefined);
      throw e;
    }
    await oldFh.close().catch(() => undefined);
    this.segments.push({ seq, path, size: header.length, maxIndex: 0, empty: true, format: CURRENT_FORMAT });
    this.active = fh;
  }

  // -------------------------------------------------------------------------------------------
  // compact
  // -------------------------------------------------------------------------------------------

  private async compactLog(upTo: Index): Promise<void> {
    if (!Number.isSafeInteger(upTo)) throw new StorageError("INVALID_BATCH", `compact index must be an integer, got ${upTo}`);
    const snapshotIndex = this.snapshot?.index ?? 0;
    if (upTo > snapshotIndex) {
      throw new StorageError("COMPACT_BEYOND_SNAPSHOT", `compact(${upTo}) is beyond the stored snapshot's index ${snapshotIndex}`);
    }
    if (this.terms.length === 0 || upTo < this.firstIndex) return;

    // Durable first: from here on, load() no longer returns entries <= upTo.
    await this.append(encodeCompact(upTo));
    const drop = Math.min(this.terms.length, upTo - this.firstIndex + 1);
    this.terms.splice(0, drop);
    this.firstIndex += drop;
    this.compactedThrough = Math.max(this.compactedThrough, upTo);
    this.recovered = null;
    // A big segment still being written would hold compacted entries until it fills up (64 MiB
    // by default). Start a new one now, so that the next compaction can drop this one whole:
    // disk use then stays near two snapshot intervals of log plus the snapshot.
    if (this.activeSegment.size >= Math.min(this.segmentBytes, COMPACTION_ROLL_BYTES)) await this.roll();

    let keepFrom = 0;
    while (keepFrom < this.segments.length - 1 && this.segments[keepFrom].maxIndex <= upTo) keepFrom++;
    if (keepFrom === 0) return;
    const dropped = this.segments.slice(0, keepFrom);
    // The checkpoint moves the log's start past them before any disappears: a crash between
    // unlinks leaves files that the next open removes, never a log with a hole at the start.
    await writeFileDurably(this.fs, this.dir, CHECKPOINT_NAME, encodeCheckpoint({ firstSeq: this.segments[keepFrom].seq, compactedThrough: this.compactedThrough }));
    this.segments = this.segments.slice(keepFrom);
    for (const seg of dropped) {
      await this.fs.unlink(seg.path).catch((e) => this.log(`meshraft file storage ${this.dir}: could not remove compacted segment ${seg.path} (${errnoOf(e)}); the next open retries`));
    }
  }
}
