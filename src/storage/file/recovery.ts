/**
 * Opening a FileStorage directory: work out the durable state, checking everything before
 * changing anything, then repair only what a crash can leave behind —
 *
 * - a torn write at the end of the newest segment (./format.ts states the rule that
 *   tells one from damage): truncated, and the truncation synced. It was never acknowledged:
 *   `save` resolves only after fdatasync;
 * - a segment's last record whose header was lost but whose payload checks out against its
 *   trailer (in the newest segment a torn write, or in any, a changed byte: nothing is lost
 *   either way): the header is written back from the trailer, and synced;
 * - a roll cut short (the newest segment holds only its header, or part of it, and the segment
 *   before has no roll record): the unused segment is removed;
 * - segments below the checkpoint's first seq (a compaction cut short): removed;
 * - snapshot files the log does not refer to, and *.tmp files: removed.
 *
 * Anything else — a bad record before the end, a segment that ends without a roll record while
 * another follows, a missing segment or snapshot, a gap in indexes — is a StorageCorruptionError
 * naming the file and offset, and nothing is changed.
 */
import type { Entry, HardState, Index } from "../../core/types.ts";
import { StorageCorruptionError, StorageIoError } from "./errors.ts";
import type { FileHandle, FileSystem } from "./fs.ts";
import {
  readBytes,
  checkSnapshotFile,
  createFileDurably,
  removeQuietly,
  syncDirectory,
  truncateDurably,
  unlinkOrFail,
  writeDurably,
} from "./files.ts";
import {
  type Checkpoint,
  CHECKPOINT_NAME,
  CURRENT_FORMAT,
  decodeCheckpoint,
  encodeSegmentHeader,
  FormatError,
  REC_CHECKPOINT,
  REC_ROLL,
  REC_SEGMENT_HEADER,
  type RecordFormat,
  type RecordScan,
  scanRecords,
  segmentName,
  segmentSeq,
  type SnapshotRef,
  snapshotSeq,
} from "./format.ts";
import { LogReplay } from "./replay.ts";

export interface Segment {
  seq: number;
  path: string;
  /** Bytes of well-formed records: where the next record goes. */
  size: number;
  /** Highest entry index any of its records writes (0 if none). */
  maxIndex: Index;
  /** No record but the header yet. */
  empty: boolean;
  /** The format of its records (its header's); only the current one is ever appended to. */
  format: RecordFormat;
}

export interface RecoveredState {
  hardState: HardState;
  snapshot: SnapshotRef | null;
  entries: Entry[];
  /** In seq order; `active` is open on the last, for appending. */
  segments: Segment[];
  active: FileHandle;
  nextSnapshotSeq: number;
  compactedThrough: Index;
}

const ZERO: HardState = { term: 0, votedFor: null, commit: 0 };

const endsWithRoll = (scan: RecordScan): boolean =>
  !scan.defect && scan.records.length > 0 && scan.records[scan.records.length - 1].type === REC_ROLL;

/**
 * Reads and replays `segments`, updating their sizes and highest indexes. With `repairing`, the
 * newest may end in a torn write and any may end in a record whose header is to be written back
 * (returned in the scans, not fixed); otherwise every byte must check out.
 */
export async function replaySegments(fs: FileSystem, segments: Segment[], repairing: boolean): Promise<{ replay: LogReplay; scans: RecordScan[] }> {
  const scans: RecordScan[] = [];
  for (const seg of segments) scans.push(scanRecords(await readBytes(fs, seg.path)));
  const replay = new LogReplay();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const scan = scans[i];
    const records = scan.records;
    const newest = i === segments.length - 1;
    if (scan.defect && !(repairing && newest && scan.defect.torn)) {
      throw new StorageCorruptionError(seg.path, scan.defect.offset, scan.defect.reason);
    }
    if (scan.rebuilt && !repairing) throw new StorageCorruptionError(seg.path, scan.rebuilt.offset, scan.rebuilt.reason);
    if (!newest && !endsWithRoll(scan)) {
      const end = records.length > 0 ? records[records.length - 1].end : 0;
      throw new StorageCorruptionError(seg.path, end, `the segment ends without a roll record, yet ${segments[i + 1].path} follows`);
    }
    if (newest && records.length > 0 && records[records.length - 1].type === REC_ROLL) {
      const at = records[records.length - 1].offset;
      throw new StorageCorruptionError(seg.path, at, `the segment ends with a roll record, but the next segment (seq ${seg.seq + 1}) is missing`);
    }
    seg.maxIndex = replay.segment(seg.path, seg.seq, records);
    seg.size = records.length > 0 ? records[records.length - 1].end : 0;
    seg.empty = records.length <= 1;
    seg.format = scan.format;
  }
  replay.finish();
  return { replay, scans };
}

export async function recoverDirectory(fs: FileSystem, dir: string, log: (line: string) => void): Promise<RecoveredState> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    throw new StorageIoError("list", dir, e);
  }
  const checkpoint = names.includes(CHECKPOINT_NAME) ? await readCheckpoint(fs, fs.join(dir, CHECKPOINT_NAME)) : null;
  const firstSeq = checkpoint?.firstSeq ?? 1;
  const segmentFiles = names
    .map((name) => ({ name, seq: segmentSeq(name) }))
    .filter((s): s is { name: string; seq: number } => s.seq !== null)
    .sort((a, b) => a.seq - b.seq);
  const snapshotSeqs = names.map(snapshotSeq).filter((s): s is number => s !== null);
  const leftovers = segmentFiles.filter((s) => s.seq < firstSeq).map((s) => fs.join(dir, s.name));
  const live = segmentFiles.filter((s) => s.seq >= firstSeq);

  if (live.length === 0) {
    if (checkpoint || snapshotSeqs.length > 0 || leftovers.length > 0) {
      throw new StorageCorruptionError(dir, 0, `the directory has ${checkpoint ? "a checkpoint" : "snapshots or old segments"} but no log segment from seq ${firstSeq} on`);
    }
    return fresh(fs, dir, names);
  }
  for (let i = 0; i < live.length; i++) {
    if (live[i].seq === firstSeq + i) continue;
    const path = fs.join(dir, live[i].name);
    if (i > 0 && live[i].seq === live[i - 1].seq) throw new StorageCorruptionError(path, 0, `two segments have seq ${live[i].seq}`);
    throw new StorageCorruptionError(
      path,
      0,
      i === 0
        ? `the log must start at segment seq ${firstSeq}${checkpoint ? " (per the checkpoint)" : ""}, which is missing`
        : `segment seq ${firstSeq + i} is missing (between ${live[i - 1].name} and ${live[i].name})`,
    );
  }
  const segments: Segment[] = live.map((s) => ({ seq: s.seq, path: fs.join(dir, s.name), size: 0, maxIndex: 0, empty: true, format: CURRENT_FORMAT }));
  const repairs: (() => Promise<void>)[] = [];

  if (segments.length >= 2) {
    const newest = segments[segments.length - 1];
    const newestScan = scanRecords(await readBytes(fs, newest.path));
    const previousScan = scanRecords(await readBytes(fs, segments[segments.length - 2].path));
    const unused = newestScan.records.length <= 1 && newestScan.records.every((r) => r.type === REC_SEGMENT_HEADER);
    if (unused && (!newestScan.defect || newestScan.defect.torn) && !endsWithRoll(previousScan)) {
      segments.pop();
      repairs.push(async () => {
        log(`meshraft file storage ${dir}: removing ${newest.path}, an empty segment from a roll that a crash interrupted`);
        await unlinkOrFail(fs, newest.path);
      });
    }
  } else if (firstSeq === 1 && !checkpoint && snapshotSeqs.length === 0) {
    // The very first segment, torn while being created: still a fresh directory.
    const scan = scanRecords(await readBytes(fs, segments[0].path));
    if (scan.records.length === 0 && (!scan.defect || scan.defect.torn)) {
      await unlinkOrFail(fs, segments[0].path);
      return fresh(fs, dir, names);
    }
  }

  const { replay, scans } = await replaySegments(fs, segments, true);
  const newest = segments[segments.length - 1];
  segments.forEach((seg, i) => {
    const rebuilt = scans[i].rebuilt;
    if (!rebuilt) return;
    repairs.push(async () => {
      log(`meshraft file storage ${dir}: rewriting the header of the last record of ${seg.path} (offset ${rebuilt.offset}: ${rebuilt.reason})`);
      await writeDurably(fs, seg.path, rebuilt.header, rebuilt.offset);
    });
  });
  const torn = scans[scans.length - 1].defect;
  if (torn) {
    repairs.push(async () => {
      log(`meshraft file storage ${dir}: truncating a write torn by a crash at the end of ${newest.path} (offset ${torn.offset}: ${torn.reason})`);
      await truncateDurably(fs, newest.path, torn.offset);
    });
  }
  const snapshot = replay.snapshot;
  if (snapshot) await checkSnapshotFile(fs, dir, snapshot);

  // Everything checks out: repair, then clean up.
  for (const repair of repairs) await repair();
  if (leftovers.length > 0) {
    const which = leftovers.length === 1 ? leftovers[0] : `${leftovers.length} segments (${leftovers[0]} to ${leftovers[leftovers.length - 1]})`;
    log(`meshraft file storage ${dir}: removing ${which}, left over from a compaction that a crash interrupted`);
    for (const path of leftovers) await unlinkOrFail(fs, path);
  }
  if (repairs.length > 0 || leftovers.length > 0) await syncDirectory(fs, dir);
  await removeUnreferenced(fs, dir, names, snapshot);

  let active: FileHandle;
  try {
    active = await fs.open(newest.path, "r+");
  } catch (e) {
    throw new StorageIoError("open log segment", newest.path, e);
  }
  return {
    hardState: replay.hardState,
    snapshot,
    entries: replay.entries,
    segments,
    active,
    nextSnapshotSeq: Math.max(0, ...snapshotSeqs) + 1,
    compactedThrough: checkpoint?.compactedThrough ?? 0,
  };
}

/** Temp files, and snapshot files other than the current one (older, or never committed). */
async function removeUnreferenced(fs: FileSystem, dir: string, names: string[], snapshot: SnapshotRef | null): Promise<void> {
  for (const name of names) {
    const seq = snapshotSeq(name);
    if (name.endsWith(".tmp") || (seq !== null && seq !== snapshot?.seq)) await removeQuietly(fs, fs.join(dir, name));
  }
}

async function fresh(fs: FileSystem, dir: string, names: string[]): Promise<RecoveredState> {
  await removeUnreferenced(fs, dir, names, null);
  const path = fs.join(dir, segmentName(1, 1));
  const header = encodeSegmentHeader({ seq: 1, firstLive: 1, lastIndex: 0, hardState: ZERO, snapshot: null });
  const active = await createFileDurably(fs, dir, path, header);
  return {
    hardState: ZERO,
    snapshot: null,
    entries: [],
    segments: [{ seq: 1, path, size: header.length, maxIndex: 0, empty: true, format: CURRENT_FORMAT }],
    active,
    nextSnapshotSeq: 1,
    compactedThrough: 0,
  };
}

async function readCheckpoint(fs: FileSystem, path: string): Promise<Checkpoint> {
  const { records, defect, rebuilt } = scanRecords(await readBytes(fs, path));
  if (defect) throw new StorageCorruptionError(path, defect.offset, defect.reason);
  // Written whole and renamed into place: never torn, so a damaged header is damage.
  if (rebuilt) throw new StorageCorruptionError(path, rebuilt.offset, rebuilt.reason);
  if (records.length !== 1 || records[0].type !== REC_CHECKPOINT) {
    throw new StorageCorruptionError(path, 0, `expected one checkpoint record, found ${records.length} records`);
  }
  try {
    return decodeCheckpoint(records[0].payload);
  } catch (e) {
    if (e instanceof FormatError) throw new StorageCorruptionError(path, 0, e.message);
    throw e;
  }
}
