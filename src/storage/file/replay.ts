/**
 * Replays log segments into the state `Storage.load` returns. Recovery (on open) and later loads
 * use it alike; it only reads records, so deciding what to repair stays with the caller.
 *
 * Replay is exact because every decision a save made against the stored state at the time is
 * written down rather than recomputed: a batch names its first index (entries after it are
 * replaced), a snapshot says whether it discarded the log, a compaction says up to where.
 *
 * Segments compacted away leave a hole at the start: the first remaining segment's header says
 * the live log was `firstLive..lastIndex` when it was created, but those entries were in earlier
 * segments. They are "unknown" until a compact record covers them (the compaction that removed
 * the segments wrote one into a later segment) or a batch overwrites them. An unknown entry left
 * at the end means a segment went missing that still held live entries: corruption.
 */
import type { Entry, HardState, Index } from "../../core/types.ts";
import { StorageCorruptionError } from "./errors.ts";
import {
  type BatchRecord,
  decodeBatch,
  decodeInt,
  decodeSegmentHeader,
  FormatError,
  type RawRecord,
  REC_BATCH,
  REC_COMPACT,
  REC_ROLL,
  REC_SEGMENT_HEADER,
  type SegmentHeader,
  type SnapshotRef,
} from "./format.ts";

export class LogReplay {
  /** The known live log: contiguous, in index order. */
  entries: Entry[] = [];
  hardState: HardState = { term: 0, votedFor: null, commit: 0 };
  snapshot: SnapshotRef | null = null;
  /** Entries that exist but lie in compacted segments (empty when from > to). */
  private unknownFrom = 1;
  private unknownTo = 0;
  private firstFile: string | null = null;

  /**
   * Applies one segment's well-formed records, which must start with its header. Returns the
   * highest entry index the segment writes (0 if none): compaction drops a segment only when
   * that is at or below its index.
   */
  segment(file: string, seq: number, records: readonly RawRecord[]): Index {
    if (records.length === 0 || records[0].type !== REC_SEGMENT_HEADER) {
      throw new StorageCorruptionError(file, 0, "the segment does not start with a segment header");
    }
    let maxIndex = 0;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      try {
        switch (rec.type) {
          case REC_SEGMENT_HEADER:
            if (i > 0) throw new FormatError("a segment header in the middle of a segment");
            this.header(decodeSegmentHeader(rec.payload), seq);
            this.firstFile ??= file;
            break;
          case REC_BATCH:
            maxIndex = Math.max(maxIndex, this.batch(decodeBatch(rec.payload)));
            break;
          case REC_COMPACT:
            this.compact(decodeInt(rec.payload, "compact index"));
            break;
          case REC_ROLL: {
            if (i !== records.length - 1) throw new FormatError("a roll record that is not the last record of its segment");
            const next = decodeInt(rec.payload, "next segment seq");
            if (next !== seq + 1) throw new FormatError(`a roll record names segment seq ${next}, expected ${seq + 1}`);
            break;
          }
          default:
            throw new FormatError(`unknown record type ${rec.type}`);
        }
      } catch (e) {
        if (e instanceof FormatError) throw new StorageCorruptionError(file, rec.offset, e.message);
        throw e;
      }
    }
    return maxIndex;
  }

  /** Checks that no live entry is missing; call after the last segment. */
  finish(): void {
    if (this.unknownFrom <= this.unknownTo) {
      throw new StorageCorruptionError(
        this.firstFile ?? "(no segment)",
        0,
        `entries ${this.unknownFrom}..${this.unknownTo} were live when this segment was created, but the segments holding them are gone and no compaction removed them`,
      );
    }
  }

  /** The last entry's index, or the snapshot's when the log is empty (as SaveBatch defines it). */
  lastIndex(): Index {
    if (this.entries.length > 0) return this.entries[this.entries.length - 1].index;
    if (this.unknownFrom <= this.unknownTo) return this.unknownTo;
    return this.snapshot?.index ?? 0;
  }

  private firstLive(): Index {
    if (this.unknownFrom <= this.unknownTo) return this.unknownFrom;
    if (this.entries.length > 0) return this.entries[0].index;
    return this.lastIndex() + 1;
  }

  private header(h: SegmentHeader, seq: number): void {
    if (h.seq !== seq) throw new FormatError(`the segment header says seq ${h.seq}, the file name says ${seq}`);
    if (this.firstFile === null) {
      this.hardState = h.hardState;
      this.snapshot = h.snapshot;
      this.unknownFrom = h.firstLive;
      this.unknownTo = h.lastIndex;
      return;
    }
    if (h.lastIndex !== this.lastIndex() || h.firstLive !== this.firstLive()) {
      throw new FormatError(
        `the segment header says the live log was ${h.firstLive}..${h.lastIndex} when it was created, ` +
          `but the segments before it end with ${this.firstLive()}..${this.lastIndex()}`,
      );
    }
  }

  /** Mirrors MemoryStorage's apply: snapshot, then entries, then hard state. */
  private batch(b: BatchRecord): Index {
    if (b.snapshot) {
      const { seq, index, term, discard } = b.snapshot;
      this.snapshot = { seq, index, term };
      if (discard) {
        this.entries = [];
        this.unknownFrom = 1;
        this.unknownTo = 0;
      }
    }
    let maxIndex = 0;
    if (b.entries) {
      const first = b.entries[0].index;
      const last = this.lastIndex();
      if (first > last + 1) throw new FormatError(`entries start at ${first} but the log ends at ${last}: entries ${last + 1}..${first - 1} are missing`);
      const log = this.entries;
      if (log.length > 0 && first >= log[0].index) log.length = first - log[0].index;
      else {
        this.entries = [];
        this.unknownTo = Math.min(this.unknownTo, first - 1);
      }
      for (const e of b.entries) this.entries.push(e);
      maxIndex = b.entries[b.entries.length - 1].index;
    }
    if (b.hardState) this.hardState = b.hardState;
    return maxIndex;
  }

  private compact(upTo: Index): void {
    const log = this.entries;
    if (log.length > 0 && upTo >= log[0].index) log.splice(0, Math.min(log.length, upTo - log[0].index + 1));
    this.unknownFrom = Math.max(this.unknownFrom, upTo + 1);
  }
}
