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
 * A segment is a sequence of records; a checkpoint file is exactly one record. A record is a
 * header, its payload and a trailer (little-endian):
 *
 *   header   0 u32 magic "MRL2"   4 u8 type, 3 zero bytes   8 u32 payload length
 *           12 u32 CRC-32 of the payload                    16 u32 CRC-32 of header bytes 0..15
 *   payload 20 ...
 *   trailer  the header's layout with magic "MRT2": type, payload length and payload CRC again,
 *            then the CRC-32 of its own first 16 bytes
 *
 * Each CRC covers its own header or trailer, so a length read from either can be trusted. Header
 * and trailer carry the same payload length and checksum, which tie them to this payload (no
 * sequence number is needed: bytes are never rewritten in place, only appended after the last
 * record or after a cut made at recovery).
 *
 * Torn writes versus damage. Records are appended one at a time, each written and fdatasynced
 * before the next is started, and a save is acknowledged only after its fdatasync returned. So
 * only the last record of the newest segment can be a torn write (some of its pages reached the
 * disk, in any order, others read as zeros or old garbage), and every record before it, or that
 * was written completely, may have been acknowledged. `scanRecords` applies that rule at the
 * first record that does not check out, at offset X:
 *
 * - zeros from X to the end of the file, a partial header, or a record whose length runs past
 *   the end of the file: torn (the write did not complete);
 * - a valid header and a valid trailer that agree, but a payload checksum that fails: the record
 *   was written completely and its bytes changed since, so it may have been acknowledged: damage;
 * - any record (a valid header, or a valid trailer of a record starting after X) anywhere after
 *   X: a write began after X's, which is only done once X was synced: damage;
 * - otherwise (a payload that fails with its trailer missing or disagreeing, or a header that is
 *   lost with nothing complete after it, say the page holding it was lost and later pages of the
 *   same batch were kept): torn.
 *
 * A record whose payload checks out against a valid header or, for the last record, against a
 * valid trailer is kept, whatever the other end says: nothing of it is lost, whether a crash tore
 * the write or a byte changed since (recovery writes a lost header back from the trailer).
 *
 * The rule errs on the side of refusing: a torn write that lost only pages in the middle of a
 * record, while the pages holding its header and its trailer both landed, looks like a complete
 * record whose bytes changed, and the node refuses to start. (etcd counts a CRC failure with an
 * all-zero sector as torn; a zero-filled value plus one flipped bit would then be cut silently.)
 *
 * Format 1 (magic "MRL1", data directories written before trailers existed) has no trailer, so
 * it cannot tell the two apart; its old rule is kept for reading: a bad header counts as torn only
 * with zeros to the end of the file, a bad payload only when it ends exactly at the end of the
 * file. A segment's header record says which format all its records use, and opening a
 * directory whose newest segment is format 1 starts a format 2 segment at once.
 *
 * Record types:
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
import type { Entry, HardState, Index, SnapshotMeta, Term } from "../../core/types.ts";
import { cloneConf } from "../../core/membership.ts";
import { crc32 } from "./crc32.ts";

/** 1: no trailer (read only); 2: the current format, with a trailer. */
export type RecordFormat = 1 | 2;
export const CURRENT_FORMAT: RecordFormat = 2;
export const RECORD_HEADER_BYTES = 20;
/** Format 2 only. */
export const RECORD_TRAILER_BYTES = 20;
const RECORD_MAGIC: Record<RecordFormat, number> = { 1: 0x314c524d /* "MRL1" */, 2: 0x324c524d /* "MRL2" */ };
const TRAILER_MAGIC = 0x3254524d; // "MRT2"
/** "M", the first byte of every magic: where a search for headers and trailers stops to look. */
const MAGIC_FIRST_BYTE = 0x4d;

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
import { ENTRY_TYPES } from "../batch.ts";
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
function newRecord(type: number, payloadLength: number, format: RecordFormat = CURRENT_FORMAT): { record: Uint8Array; w: Writer } {
  const trailer = format === 2 ? RECORD_TRAILER_BYTES : 0;
  const record = new Uint8Array(RECORD_HEADER_BYTES + payloadLength + trailer);
  const w = new Writer(record);
  w.u32(RECORD_MAGIC[format]);
  w.u8(type);
  w.pos = 8;
  w.u32(payloadLength);
  w.pos = RECORD_HEADER_BYTES;
  return { record, w };
}

/** Writes a header or trailer at `at` (whose bytes 5..7 are zero) and its own CRC. */
function putFrame(bytes: Uint8Array, view: DataView, at: number, magic: number, frame: Frame): void {
  view.setUint32(at, magic, true);
  view.setUint8(at + 4, frame.type);
  view.setUint32(at + 8, frame.length, true);
  view.setUint32(at + 12, frame.crc, true);
  view.setUint32(at + 16, crc32(bytes.subarray(at, at + 16)), true);
}

/** Fills in the checksums (and, in format 2, the trailer). Call after the payload is final. */
export function sealRecord(record: Uint8Array): Uint8Array {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const magic = view.getUint32(0, true);
  const length = view.getUint32(8, true);
  const frame = { type: view.getUint8(4), length, crc: crc32(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length)) };
  putFrame(record, view, 0, magic, frame);
  if (magic === RECORD_MAGIC[2]) putFrame(record, view, RECORD_HEADER_BYTES + length, TRAILER_MAGIC, frame);
  return record;
}

/** `format` is that of every record the segment will hold. */
export function encodeSegmentHeader(h: SegmentHeader, format: RecordFormat = CURRENT_FORMAT): Uint8Array {
  const hs = hardStateBytes(h.hardState);
  const { record, w } = newRecord(REC_SEGMENT_HEADER, 8 * 3 + hs.size + 1 + 8 * 3, format);
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

function singleIntRecord(type: number, v: number, format: RecordFormat = CURRENT_FORMAT): Uint8Array {
  const { record, w } = newRecord(type, 8, format);
  w.f64(v);
  return sealRecord(record);
}

export function encodeCompact(upTo: Index): Uint8Array {
  return singleIntRecord(REC_COMPACT, upTo);
}

/** `format`: the format of the segment that ends with this record. */
export function encodeRoll(nextSeq: number, format: RecordFormat = CURRENT_FORMAT): Uint8Array {
  return singleIntRecord(REC_ROLL, nextSeq, format);
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
   * True when this is a write cut short by a crash (the rule in this file's comment): nothing
   * from `offset` on was ever acknowledged. Only such a defect at the end of the newest segment
   * may be truncated away.
   */
  torn: boolean;
}

export interface RecordScan {
  records: RawRecord[];
  defect: Defect | null;
  /** The format of the file's records, told by its first record's magic. */
  format: RecordFormat;
  /**
   * The last record's header was damaged or lost, but its payload checks out against its
   * trailer: the record is in `records`, and `header` is what belongs at `offset`. Nothing of it
   * is lost whether a crash tore the write or a byte changed later, so recovery writes the header
   * back (a checkpoint file, written whole and renamed into place, is refused instead).
   */
  rebuilt: { offset: number; header: Uint8Array; reason: string } | null;
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Splits a file into records, stopping at the first one that is not well formed. */
export function scanRecords(bytes: Uint8Array): RecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return formatOf(bytes, view) === 1 ? scanFormat1(bytes, view) : scanFormat2(bytes, view);
}

/**
 * The first record's magic says; if it is damaged, format 1 when a format 1 header follows
 * (read with the current rule, a format 1 file with a damaged first header would look like a
 * torn write of its whole content), else the current format.
 */
function formatOf(bytes: Uint8Array, view: DataView): RecordFormat {
  const first = bytes.length >= 4 ? view.getUint32(0, true) : 0;
  if (first === RECORD_MAGIC[1] || first === RECORD_MAGIC[2]) return first === RECORD_MAGIC[1] ? 1 : 2;
  for (let p = bytes.indexOf(MAGIC_FIRST_BYTE, 1); p >= 0 && p + RECORD_HEADER_BYTES <= bytes.length; p = bytes.indexOf(MAGIC_FIRST_BYTE, p + 1)) {
    if (frameAt(bytes, view, p, RECORD_MAGIC[1])) return 1;
  }
  return CURRENT_FORMAT;
}

interface Frame {
  type: number;
  length: number;
  crc: number;
}

/** The header or trailer (by `magic`) at `off`, if it is there and its own checksum holds. */
function frameAt(bytes: Uint8Array, view: DataView, off: number, magic: number): Frame | null {
  if (off < 0 || off + RECORD_HEADER_BYTES > bytes.length || view.getUint32(off, true) !== magic) return null;
  if (view.getUint32(off + 16, true) !== crc32(bytes.subarray(off, off + 16))) return null;
  return { type: view.getUint8(off + 4), length: view.getUint32(off + 8, true), crc: view.getUint32(off + 12, true) };
}

const ACKNOWLEDGED = "so it may have been acknowledged";

function scanFormat2(bytes: Uint8Array, view: DataView): RecordScan {
  const records: RawRecord[] = [];
  const size = bytes.length;
  let rebuilt: RecordScan["rebuilt"] = null;
  const found = (defect: Defect | null): RecordScan => ({ records, defect, format: 2, rebuilt });
  let off = 0;
  while (off < size) {
    const header = frameAt(bytes, view, off, RECORD_MAGIC[2]);
    if (!header) {
      const damaged = damagedHeader(bytes, view, off);
      if ("torn" in damaged) return found(damaged);
      records.push(damaged.record);
      rebuilt = { offset: off, header: damaged.header, reason: damaged.reason };
      off = damaged.record.end;
      continue;
    }
    const { type, length } = header;
    const payloadEnd = off + RECORD_HEADER_BYTES + length;
    const end = payloadEnd + RECORD_TRAILER_BYTES;
    if (end > size) {
      return found({ offset: off, reason: `a record of ${length} payload bytes runs past the end of the file (${size} bytes): a write cut short`, torn: true });
    }
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, payloadEnd);
    if (crc32(payload) === header.crc) {
      records.push({ type, offset: off, end, payload });
      off = end;
      continue;
    }
    const mismatch = `record payload checksum mismatch (type ${type}, ${length} bytes)`;
    const trailer = frameAt(bytes, view, payloadEnd, TRAILER_MAGIC);
    if (trailer && trailer.type === type && trailer.length === length && trailer.crc === header.crc) {
      return found({ offset: off, reason: `${mismatch} in a complete record (its header and trailer agree): its bytes changed after it was written, ${ACKNOWLEDGED}`, torn: false });
    }
    const later = recordsAfter(bytes, view, off, end).later;
    if (later !== null) return found({ offset: off, reason: `${mismatch}, and a record follows at byte ${later}: this one was synced before that one was written, ${ACKNOWLEDGED}`, torn: false });
    return found({ offset: off, reason: `${mismatch} and no trailer: a write cut short`, torn: true });
  }
  return found(null);
}

/**
 * A record at `off` whose header is missing or damaged: a defect, or — when it is the last
 * record and its payload checks out against its intact trailer — the record, whole but for its
 * header, with the header to write back.
 */
function damagedHeader(bytes: Uint8Array, view: DataView, off: number): Defect | { record: RawRecord; header: Uint8Array; reason: string } {
  if (allZero(bytes, off)) return { offset: off, reason: "zeros from here to the end of the file", torn: true };
  const what =
    bytes.length - off < RECORD_HEADER_BYTES
      ? `${bytes.length - off} bytes at the end are too short for a record header`
      : view.getUint32(off, true) !== RECORD_MAGIC[2]
        ? "no record header here (bad magic)"
        : "record header checksum mismatch";
  const { later, own } = recordsAfter(bytes, view, off, off + 1);
  if (later !== null) return { offset: off, reason: `${what}, yet a record follows at byte ${later}: this one was synced before that one was written, ${ACKNOWLEDGED}`, torn: false };
  if (own) {
    const header = new Uint8Array(RECORD_HEADER_BYTES);
    putFrame(header, new DataView(header.buffer), 0, RECORD_MAGIC[2], own);
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + own.length);
    const record = { type: own.type, offset: off, end: off + RECORD_HEADER_BYTES + own.length + RECORD_TRAILER_BYTES, payload };
    return { record, header, reason: `${what}, but its payload checks out against its trailer` };
  }
  return { offset: off, reason: `${what}, and no complete record follows: a write cut short`, torn: true };
}

/**
 * Looks from `from` on for records written after the one at `at`: `later` is where the first
 * begins (a valid header, or a valid trailer of a record that starts after `at`), or null; `own`
 * is a valid trailer that closes a record starting exactly at `at` whose payload checks out
 * against it. Payload bytes can look like a record by chance or on purpose; that only ever makes
 * a torn write look like damage, never the reverse.
 */
function recordsAfter(bytes: Uint8Array, view: DataView, at: number, from: number): { later: number | null; own: Frame | null } {
  let own: Frame | null = null;
  for (let p = bytes.indexOf(MAGIC_FIRST_BYTE, from); p >= 0 && p + RECORD_HEADER_BYTES <= bytes.length; p = bytes.indexOf(MAGIC_FIRST_BYTE, p + 1)) {
    if (frameAt(bytes, view, p, RECORD_MAGIC[2])) return { later: p, own };
    const trailer = frameAt(bytes, view, p, TRAILER_MAGIC);
    if (!trailer) continue;
    const start = p - trailer.length - RECORD_HEADER_BYTES;
    if (start > at) return { later: start, own };
    if (start === at && crc32(bytes.subarray(at + RECORD_HEADER_BYTES, p)) === trailer.crc) own = trailer;
  }
  return { later: null, own };
}

/** Format 1 records (no trailer), read with the rule they were written under. */
function scanFormat1(bytes: Uint8Array, view: DataView): RecordScan {
  const records: RawRecord[] = [];
  const size = bytes.length;
  const found = (defect: Defect | null): RecordScan => ({ records, defect, format: 1, rebuilt: null });
  let off = 0;
  while (off < size) {
    if (size - off < RECORD_HEADER_BYTES) {
      return found({ offset: off, reason: `${size - off} bytes at the end are too short for a record header`, torn: true });
    }
    const magic = view.getUint32(off, true);
    const headerCrc = view.getUint32(off + 16, true);
    if (magic !== RECORD_MAGIC[1] || headerCrc !== crc32(bytes.subarray(off, off + 16))) {
      const torn = allZero(bytes, off);
      const reason = torn ? "zeros from here to the end of the file" : magic !== RECORD_MAGIC[1] ? "no record header here (bad magic)" : "record header checksum mismatch";
      return found({ offset: off, reason, torn });
    }
    const type = view.getUint8(off + 4);
    const length = view.getUint32(off + 8, true);
    const end = off + RECORD_HEADER_BYTES + length;
    if (end > size) {
      return found({ offset: off, reason: `a record of ${length} payload bytes runs past the end of the file (${size} bytes)`, torn: true });
    }
    const payload = bytes.subarray(off + RECORD_HEADER_BYTES, end);
    if (crc32(payload) !== view.getUint32(off + 12, true)) {
      return found({ offset: off, reason: `record payload checksum mismatch (type ${type}, ${length} bytes)`, torn: end === size });
    }
    records.push({ type, offset: off, end, payload });
    off = end;
  }
  return found(null);
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
