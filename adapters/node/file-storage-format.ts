/**
 * FileStorage's on-disk format: pure functions over bytes, no IO.
 *
 * Directory:
 *   log-<seq:10>-<next index:20>.seg   log segments, replayed in seq order (seq is consecutive)
 *   snap-<seq:10>.snap                 snapshots; the log names the current one
 *   checkpoint                         the first segment's seq after compaction (absent: seq 1)
 *   LOCK                               the owning process ({"pid", "host"})
 *   *.tmp                              half-written files: removed on open
 *
 * A segment is a sequence of records; a checkpoint file is exactly one record. A record is
 *
 *   offset 0  u32 magic "MRL1"      4 u8 type, 3 zero bytes     8 u32 payload length
 *         12  u32 CRC-32 of the payload                        16 u32 CRC-32 of bytes 0..15
 *         20  payload
 *
 * (little-endian). The header's own CRC protects the length, so a length that points past the end
 * of the file is a torn write and not a flipped bit. Record types:
 *
 * - segment header (first in every segment): the state when the segment was created — its seq,
 *   the live log span, hard state and snapshot — so replay can start at any segment once earlier
 *   ones are compacted away;
 * - batch: one `Storage.save` — hard state, snapshot reference (and whether it discarded the log),
 *   entries. One record per save is what makes a save atomic: its CRC checks or it is not there;
 * - compact: `compact(upTo)`, replayed in order so that later overwrites below upTo stay correct;
 * - roll (last in every segment but the newest): the next segment exists, so a missing newest
 *   segment is detected instead of silently ending the log early;
 * - checkpoint: the checkpoint file's only record.
 *
 * Payloads (f64: float64, exact for every safe integer; str: u32 length, 0xffffffff for null,
 * then UTF-8; a hard state is f64 term, f64 commit, str votedFor):
 *
 *   segment header  f64 seq, f64 firstLive, f64 lastIndex, hard state,
 *                   u8 has snapshot, f64 snapshot seq, f64 snapshot index, f64 snapshot term
 *   batch           u8 flags (1 hard state, 2 snapshot, 4 entries), then the parts flagged:
 *                   hard state; f64 seq, f64 index, f64 term, u8 discarded the log;
 *                   f64 first index, u32 count, count x (f64 term, u8 type, u32 length, data)
 *   compact         f64 upTo            roll        f64 next seq
 *   checkpoint      f64 first seq, f64 compacted through
 */
import type { Entry, HardState, Index, SnapshotMeta, Term } from "../../src/core/types.ts";
import { cloneConf } from "../../src/core/membership.ts";
import { crc32 } from "./file-storage-crc32.ts";

export const RECORD_HEADER_BYTES = 20;
const RECORD_MAGIC = 0x314c524d; // "MRL1"

export const REC_SEGMENT_HEADER = 1;
export const REC_BATCH = 2;
export const REC_COMPACT = 3;
export const REC_ROLL = 4;
export const REC_CHECKPOINT = 5;

export const CHECKPOINT_NAME = "checkpoint";
export const LOCK_NAME = "LOCK";

/** Which snapshot file holds the current snapshot, and what it is a snapshot of. */
export interface SnapshotRef {
  seq: number;
  index: Index;
  term: Term;
}

export interface SegmentHeader {
  seq: number;
  /** First live entry when the segment was created; `lastIndex + 1` when the log was empty. */
  firstLive: Index;
  /** Last entry when the segment was created, or the snapshot's index when the log was empty. */
  lastIndex: Index;
  hardState: HardState;
  snapshot: SnapshotRef | null;
}

export interface BatchRecord {
  hardState?: HardState;
  /** `discard`: the stored log disagreed with the snapshot and was dropped (see SaveBatch). */
  snapshot?: SnapshotRef & { discard: boolean };
  /** Contiguous; replaces every entry from `entries[0].index` on. */
  entries?: Entry[];
}

export interface Checkpoint {
  firstSeq: number;
  /** The highest `compact(upTo)` when the checkpoint was written; for people reading the file. */
  compactedThrough: Index;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

export function segmentName(seq: number, nextIndex: Index): string {
  return `log-${pad(seq, 10)}-${pad(nextIndex, 20)}.seg`;
}

/** The seq of a segment file name, or null if `name` is not one. */
export function segmentSeq(name: string): number | null {
  const m = /^log-(\d{10,})-(\d{20,})\.seg$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function snapshotName(seq: number): string {
  return `snap-${pad(seq, 10)}.snap`;
}

export function snapshotSeq(name: string): number | null {
  const m = /^snap-(\d{10,})\.snap$/.exec(name);
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------------------------------------
// Payload encoding
// ---------------------------------------------------------------------------------------------

/** Entry types by their stored code. */
import { ENTRY_TYPES } from "../../src/storage/batch.ts";
export { ENTRY_TYPES };
const NULL_STRING = 0xffffffff;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** A payload or snapshot file that does not parse; the caller adds file and offset. */
export class FormatError extends Error {
  override name = "FormatError";
}

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  pos: number;
  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }
  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }
  u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  f64(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
  }
}

class Reader {
  private readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private pos = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.pos + n > this.bytes.length) throw new FormatError(`payload ends inside ${what} (at payload byte ${this.pos})`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.dv.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A non-negative safe integer stored as float64. */
  int(what: string): number {
    this.need(8, what);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new FormatError(`${what} is ${v}, not a non-negative integer`);
    return v;
  }
  /** A view of the next `n` bytes. */
  view(n: number, what: string): Uint8Array {
    this.need(n, what);
    return this.bytes.subarray(this.pos, (this.pos += n));
  }
  str(what: string): string | null {
    const n = this.u32(`${what} length`);
    if (n === NULL_STRING) return null;
    this.need(n, what);
    try {
      return utf8Strict.decode(this.bytes.subarray(this.pos, (this.pos += n)));
    } catch {
      throw new FormatError(`${what} is not valid UTF-8`);
    }
  }
  end(what: string): void {
    if (this.pos !== this.bytes.length) {
      throw new FormatError(`${this.bytes.length - this.pos} unexpected bytes after the ${what}`);
    }
  }
}

function hardStateBytes(h: HardState): { votedFor: Uint8Array | null; size: number } {
  const votedFor = h.votedFor === null ? null : utf8.encode(h.votedFor);
  return { votedFor, size: 8 + 8 + 4 + (votedFor?.length ?? 0) };
}

function writeHardState(w: Writer, h: HardState, votedFor: Uint8Array | null): void {
  w.f64(h.term);
  w.f64(h.commit);
  if (votedFor === null) w.u32(NULL_STRING);
  else {
    w.u32(votedFor.length);
    w.raw(votedFor);
  }
}

function readHardState(r: Reader): HardState {
  const term = r.int("hard state term");
  const commit = r.int("hard state commit");
  const votedFor = r.str("hard state votedFor");
  return { term, votedFor, commit };
}

/** A record of `type` with room for `payloadLength` bytes; fill the payload, then `sealRecord`. */
function newRecord(type: number, payloadLength: number): { record: Uint8Array; w: Writer } {
  const record = new Uint8Array(RECORD_HEADER_BYTES + payloadLength);
  const w = new Writer(record);
  w.u32(RECORD_MAGIC);
  w.u8(type);
  w.pos = 8;
  w.u32(payloadLength);
  w.pos = RECORD_HEADER_BYTES;
  return { record, w };
}

/** Fills in both CRCs. Call after the payload is final. */
export function sealRecord(record: Uint8Array): Uint8Array {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  view.setUint32(12, crc32(record.subarray(RECORD_HEADER_BYTES)), true);
  view.setUint32(16, crc32(record.subarray(0, 16)), true);
  return record;
}

export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  const hs = hardStateBytes(h.hardState);
  const { record, w } = newRecord(REC_SEGMENT_HEADER, 8 * 3 + hs.size + 1 + 8 * 3);
  w.f64(h.seq);
  w.f64(h.firstLive);
  w.f64(h.lastIndex);
  writeHardState(w, h.hardState, hs.votedFor);
  w.u8(h.snapshot ? 1 : 0);
  w.f64(h.snapshot?.seq ?? 0);
  w.f64(h.snapshot?.index ?? 0);
  w.f64(h.snapshot?.term ?? 0);
  return sealRecord(record);
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const r = new Reader(payload);
  const seq = r.int("segment seq");
  const firstLive = r.int("segment first live index");
  const lastIndex = r.int("segment last index");
  const hardState = readHardState(r);
  const has = r.u8("snapshot flag");
  const snapshot = { seq: r.int("snapshot seq"), index: r.int("snapshot index"), term: r.int("snapshot term") };
  r.end("segment header");
  return { seq, firstLive, lastIndex, hardState, snapshot: has ? snapshot : null };
}

const F_HARD_STATE = 1;
const F_SNAPSHOT = 2;
const F_ENTRIES = 4;

/** A batch record built when `save` is called; `discard` is decided when it runs. */
export interface EncodedBatch {
  record: Uint8Array;
  /** Offset of the snapshot's discard byte in `record`, or -1 without a snapshot. */
  discardAt: number;
}

/**
 * Encodes a batch, copying every entry's data (so the caller may reuse its buffers as soon as
 * `save` returns). Entries must already be validated as contiguous. The record is not sealed.
 */
export function encodeBatch(hardState: HardState | undefined, snapshot: SnapshotRef | undefined, entries: readonly Entry[]): EncodedBatch {
  const hs = hardState ? hardStateBytes(hardState) : undefined;
  let size = 1 + (hs?.size ?? 0) + (snapshot ? 8 * 3 + 1 : 0);
  if (entries.length > 0) {
    size += 8 + 4;
    for (const e of entries) size += 8 + 1 + 4 + e.data.length;
  }
  const { record, w } = newRecord(REC_BATCH, size);
  w.u8((hs ? F_HARD_STATE : 0) | (snapshot ? F_SNAPSHOT : 0) | (entries.length > 0 ? F_ENTRIES : 0));
  if (hs) writeHardState(w, hardState!, hs.votedFor);
  let discardAt = -1;
  if (snapshot) {
    w.f64(snapshot.seq);
    w.f64(snapshot.index);
    w.f64(snapshot.term);
    discardAt = w.pos;
    w.u8(0);
  }
  if (entries.length > 0) {
    w.f64(entries[0].index);
    w.u32(entries.length);
    for (const e of entries) {
      const type = ENTRY_TYPES.indexOf(e.type);
      if (type < 0) throw new TypeError(`entry ${e.index} has unknown type ${JSON.stringify(e.type)}`);
      w.f64(e.term);
      w.u8(type);
      w.u32(e.data.length);
      w.raw(e.data);
    }
  }
  return { record, discardAt };
}

/**
 * Decodes a batch. Entry data are views into ONE copy of the payload (`new Uint8Array(x)` always
 * copies, even a Node Buffer): nothing shares memory with the file buffer, and a batch of a
 * hundred entries costs one allocation instead of a hundred.
 */
export function decodeBatch(payload: Uint8Array): BatchRecord {
  const r = new Reader(new Uint8Array(payload));
  const flags = r.u8("batch flags");
  if (flags & ~(F_HARD_STATE | F_SNAPSHOT | F_ENTRIES)) throw new FormatError(`unknown batch flags ${flags}`);
  const out: BatchRecord = {};
  if (flags & F_HARD_STATE) out.hardState = readHardState(r);
  if (flags & F_SNAPSHOT) {
    const seq = r.int("snapshot seq");
    const index = r.int("snapshot index");
    const term = r.int("snapshot term");
    const discard = r.u8("snapshot discard flag");
    if (discard > 1) throw new FormatError(`snapshot discard flag is ${discard}`);
    out.snapshot = { seq, index, term, discard: discard === 1 };
  }
  if (flags & F_ENTRIES) {
    const first = r.int("first entry index");
    const count = r.u32("entry count");
    if (first < 1 || count < 1) throw new FormatError(`entries start at ${first} with count ${count}`);
    const entries: Entry[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const term = r.int(`term of entry ${first + i}`);
      const t = r.u8(`type of entry ${first + i}`);
      if (t >= ENTRY_TYPES.length) throw new FormatError(`entry ${first + i} has unknown type ${t}`);
      const data = r.view(r.u32(`data length of entry ${first + i}`), `data of entry ${first + i}`);
      entries[i] = { index: first + i, term, type: ENTRY_TYPES[t], data };
    }
    out.entries = entries;
  }
  r.end("batch");
  return out;
}

function singleIntRecord(type: number, v: number): Uint8Array {
  const { record, w } = newRecord(type, 8);
  w.f64(v);
  return sealRecord(record);
}

export function encodeCompact(upTo: Index): Uint8Array {
  return singleIntRecord(REC_COMPACT, upTo);
}

export function encodeRoll(nextSeq: number): Uint8Array {
  return singleIntRecord(REC_ROLL, nextSeq);
}

export function decodeInt(payload: Uint8Array, what: string): number {
  const r = new Reader(payload);
  const v = r.int(what);
  r.end(what);
  return v;
}

export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const { record, w } = newRecord(REC_CHECKPOINT, 16);
  w.f64(c.firstSeq);
  w.f64(c.compactedThrough);
  return sealRecord(record);
}

export function decodeCheckpoint(payload: Uint8Array): Checkpoint {
  const r = new Reader(payload);
  const c = { firstSeq: r.int("first segment seq"), compactedThrough: r.int("compacted through") };
  r.end("checkpoint");
  if (c.firstSeq < 1) throw new FormatError(`first segment seq is ${c.firstSeq}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Scanning a file of records
// ---------------------------------------------------------------------------------------------

export interface RawRecord {
  type: number;
  /** Offset of the record header in the file. */
  offset: number;
  /** Offset just past the record. */
  end: number;
  payload: Uint8Array;
}

/** Where the well-formed records stop, if before the end of the file. */
export interface Defect {
  offset: number;
  reason: string;
  /**
   * True when this looks like a write cut short by a crash (a partial record, a record whose
   * payload CRC fails and that ends exactly at end of file, or zeros to end of file). Only such a
   * defect at the end of the newest segment may be truncated away.
   */
  torn: boolean;
}

export interface RecordScan {
  records: RawRecord[];
  defect: Defect | null;
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Splits a file into records, stopping at the first one that is not well formed. */
export function scanRecords(bytes: Uint8Array): RecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: RawRecord[] = [];
  const size = bytes.length;
  let off = 0;
  while (off < size) {
    if (size - off < RECORD_HEADER_BYTES) {
      return { records, defect: { offset: off, reason: `${size - off} bytes at the end are too short for a record header`, torn: true } };
    }
    const magic = view.getUint32(off, true);
    const headerCrc = view.getUint32(off + 16, true);
    if (magic !== RECORD_MAGIC || headerCrc !== crc32(bytes.subarray(off, off + 16))) {
      const torn = allZero(bytes, off);
      const reason = torn ? "zeros from here to the end of the file" : magic !== RECORD_MAGIC ? "no record header here (bad magic)" : "record header checksum mismatch";
      return { records, defect: { offset: off, reason, torn } };
    }
    const type = view.getUint8(off + 4);
    const length = view.getUint32(off + 8, true);
    const end = off + RECORD_HEADER_BYTES + length;
    if (end > size) {
      return { records, defect: { offset: off, reason: `a record of ${length} payload bytes runs past the end of the file (${size} bytes)`, torn: true } };
    }
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, end);
    if (crc32(payload) !== view.getUint32(off + 12, true)) {
      return { records, defect: { offset: off, reason: `record payload checksum mismatch (type ${type}, ${length} bytes)`, torn: end === size } };
    }
    records.push({ type, offset: off, end, payload });
    off = end;
  }
  return { records, defect: null };
}

// ---------------------------------------------------------------------------------------------
// Snapshot files
// ---------------------------------------------------------------------------------------------

/**
 *   0 u32 magic "MRS1"   4 u32 meta length   8 f64 data length   16 u32 CRC-32 of meta + data
 *  20 u32 CRC-32 of bytes 0..19   24 meta (JSON: index, term, conf)   24 + meta length: data
 */
export const SNAPSHOT_HEADER_BYTES = 24;
const SNAPSHOT_MAGIC = 0x3153524d; // "MRS1"

/** The meta as stored in a snapshot file. */
export function snapshotMetaJson(meta: SnapshotMeta): Uint8Array {
  return utf8.encode(JSON.stringify({ index: meta.index, term: meta.term, conf: cloneConf(meta.conf) }));
}

/** The header and meta of a snapshot file; `crc` covers `json` then the data that follows. */
export function encodeSnapshotHead(json: Uint8Array, dataLength: number, crc: number): Uint8Array {
  const head = new Uint8Array(SNAPSHOT_HEADER_BYTES + json.length);
  const w = new Writer(head);
  w.u32(SNAPSHOT_MAGIC);
  w.u32(json.length);
  w.f64(dataLength);
  w.u32(crc);
  w.u32(crc32(head.subarray(0, 20)));
  w.raw(json);
  return head;
}

export interface SnapshotHead {
  meta: SnapshotMeta;
  dataOffset: number;
  dataLength: number;
  crc: number;
}

/** Parses the header and meta from the first bytes of a snapshot file. */
export function decodeSnapshotHead(bytes: Uint8Array): SnapshotHead {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) throw new FormatError(`${bytes.length} bytes are too short for a snapshot header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) throw new FormatError("not a snapshot file (bad magic)");
  if (view.getUint32(20, true) !== crc32(bytes.subarray(0, 20))) throw new FormatError("snapshot header checksum mismatch");
  const metaLength = view.getUint32(4, true);
  const dataLength = view.getFloat64(8, true);
  if (!Number.isSafeInteger(dataLength) || dataLength < 0) throw new FormatError(`snapshot data length is ${dataLength}`);
  const dataOffset = SNAPSHOT_HEADER_BYTES + metaLength;
  if (bytes.length < dataOffset) throw new FormatError(`the file ends inside the snapshot's meta`);
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(utf8Strict.decode(bytes.subarray(SNAPSHOT_HEADER_BYTES, dataOffset))) as SnapshotMeta;
  } catch {
    throw new FormatError("snapshot meta is not valid JSON");
  }
  const ids = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === "string");
  const c = meta?.conf;
  if (!Number.isSafeInteger(meta?.index) || !Number.isSafeInteger(meta?.term) || !ids(c?.voters) || !ids(c?.learners) || !ids(c?.votersOutgoing)) {
    throw new FormatError("snapshot meta lacks index, term or conf");
  }
  if ((c.promote !== undefined && !ids(c.promote)) || (c.urls !== undefined && (typeof c.urls !== "object" || c.urls === null || !Object.values(c.urls).every((u) => typeof u === "string")))) {
    throw new FormatError("snapshot meta has malformed urls or promote lists");
  }
  return { meta: { index: meta.index, term: meta.term, conf: cloneConf(c) }, dataOffset, dataLength, crc: view.getUint32(16, true) };
}
