/**
 * The KV command's wire form, written and read by hand: the hot path of every KV entry.
 *
 * The form is unchanged: a msgpack map exactly as `@msgpack/msgpack`'s Encoder writes
 * `{ op, key, value | expect+value, client?, seq? }` (fixmap, str/bin by length, uint by size),
 * so logs and snapshots written before still replay, and nodes of either version can share one
 * log. What changed is the cost: the general decoder builds a map of field names and values and
 * then validates it; here one pass over the bytes reads the common shapes straight into a
 * command. `decodeCommonCommand` returns null for anything it does not recognise (unknown or
 * repeated fields, other integer or map encodings, anything malformed), and the caller then runs
 * the general decoder, which accepts or rejects it exactly as before: the fast path never decides
 * differently, it only decides sooner.
 */
import type { KvCommand } from "./kv.ts";

// Field bits, also used to find repeated fields.
const F_OP = 1;
const F_KEY = 2;
const F_VALUE = 4;
const F_EXPECT = 8;
const F_CLIENT = 16;
const F_SEQ = 32;

const NIL = 0xc0;
// ignoreBOM keeps a leading U+FEFF instead of silently stripping it (as the general decoder does).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const textEncoder = new TextEncoder();

// Where the last bytesHeader() found its bytes (module state rather than an object per field).
let hStart = 0;
let hEnd = 0;

/**
 * Reads one msgpack str or bin header at `p` (the general decoder, with rawStrings, treats both
 * as bytes) into hStart/hEnd; false if there is none or it runs past the end.
 */
function bytesHeader(b: Uint8Array, p: number): boolean {
  const t = b[p];
  let len: number;
  let start: number;
  if (t >= 0xa0 && t <= 0xbf) {
    len = t & 0x1f;
    start = p + 1;
  } else if (t === 0xd9 || t === 0xc4) {
    len = b[p + 1];
    start = p + 2;
  } else if (t === 0xda || t === 0xc5) {
    len = (b[p + 1] << 8) | b[p + 2];
    start = p + 3;
  } else if (t === 0xdb || t === 0xc6) {
    len = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
    start = p + 5;
  } else return false;
  const end = start + len;
  if (!(end <= b.length)) return false; // also catches NaN from reading past the end
  hStart = start;
  hEnd = end;
  return true;
}

/** UTF-8 to string; null if invalid (the general path then reports it). */
function text(b: Uint8Array, start: number, end: number): string | null {
  if (end - start <= 64) {
    let s = "";
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c >= 0x80) return slowText(b, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return slowText(b, start, end);
}

function slowText(b: Uint8Array, start: number, end: number): string | null {
  try {
    return utf8.decode(b.subarray(start, end));
  } catch {
    return null;
  }
}

/** Whether the field name at [start, end) is `name` (ASCII). */
function nameIs(b: Uint8Array, start: number, end: number, name: string): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (b[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * The command in `b` if it has one of the shapes `encodeCommand` writes (field order aside) and is
 * valid within `limits`; null otherwise, for the general decoder to accept or reject. Binaries
 * are copies (the caller may reuse `b`).
 */
export function decodeCommonCommand(
  b: Uint8Array,
  limits: { maxKeyBytes: number; maxValueBytes: number; maxClientIdBytes: number },
): KvCommand | null {
  const head = b[0];
  if (head < 0x82 || head > 0x86) return null; // fixmap of 2 to 6 fields
  const n = head & 0x0f;
  let p = 1;
  let seen = 0;
  let op = "";
  let keyStart = 0;
  let keyEnd = 0;
  let valueStart = -1; // -1: nil
  let valueEnd = -1;
  let expectStart = -1;
  let expectEnd = -1;
  let clientStart = 0;
  let clientEnd = 0;
  let seq = -1;
  for (let i = 0; i < n; i++) {
    const nt = b[p];
    if (!(nt >= 0xa2 && nt <= 0xa6)) return null; // field names are fixstr of 2 to 6 bytes
    const ns = p + 1;
    const ne = ns + (nt & 0x1f);
    p = ne;
    if (p >= b.length) return null;
    let bit: number;
    switch (nt & 0x1f) {
      case 2:
        if (!nameIs(b, ns, ne, "op")) return null;
        bit = F_OP;
        break;
      case 3:
        bit = nameIs(b, ns, ne, "key") ? F_KEY : nameIs(b, ns, ne, "seq") ? F_SEQ : 0;
        break;
      case 5:
        bit = nameIs(b, ns, ne, "value") ? F_VALUE : 0;
        break;
      case 6:
        bit = nameIs(b, ns, ne, "expect") ? F_EXPECT : nameIs(b, ns, ne, "client") ? F_CLIENT : 0;
        break;
      default:
        bit = 0;
    }
    if (bit === 0 || (seen & bit) !== 0) return null;
    seen |= bit;
    if (bit === F_SEQ) {
      const t = b[p];
      if (t < 0x80) {
        seq = t;
        p += 1;
      } else if (t === 0xcc) {
        seq = b[p + 1];
        p += 2;
      } else if (t === 0xcd) {
        seq = (b[p + 1] << 8) | b[p + 2];
        p += 3;
      } else if (t === 0xce) {
        seq = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
        p += 5;
      } else if (t === 0xcf) {
        const hi = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
        const lo = ((b[p + 5] << 24) | (b[p + 6] << 16) | (b[p + 7] << 8) | b[p + 8]) >>> 0;
        seq = hi * 0x100000000 + lo;
        if (!Number.isSafeInteger(seq)) return null;
        p += 9;
      } else return null;
      if (p > b.length) return null;
      continue;
    }
    if ((bit === F_VALUE || bit === F_EXPECT) && b[p] === NIL) {
      p += 1;
      continue; // stays -1: nil
    }
    if (!bytesHeader(b, p)) return null;
    p = hEnd;
    switch (bit) {
      case F_OP:
        if (nameIs(b, hStart, hEnd, "put")) op = "put";
        else if (nameIs(b, hStart, hEnd, "delete")) op = "delete";
        else if (nameIs(b, hStart, hEnd, "cas")) op = "cas";
        else return null;
        break;
      case F_KEY:
        keyStart = hStart;
        keyEnd = hEnd;
        break;
      case F_VALUE:
        valueStart = hStart;
        valueEnd = hEnd;
        break;
      case F_EXPECT:
        expectStart = hStart;
        expectEnd = hEnd;
        break;
      case F_CLIENT:
        clientStart = hStart;
        clientEnd = hEnd;
        break;
    }
  }
  if (p !== b.length) return null;
  // Which fields each op takes; a session needs both client and seq.
  const session = seen & (F_CLIENT | F_SEQ);
  if (session !== 0 && session !== (F_CLIENT | F_SEQ)) return null;
  const base = seen & ~(F_CLIENT | F_SEQ);
  const keyBytes = keyEnd - keyStart;
  if (keyBytes === 0 || keyBytes > limits.maxKeyBytes) return null;
  const key = text(b, keyStart, keyEnd);
  if (key === null) return null;
  let client: string | null = null;
  if (session !== 0) {
    const clientBytes = clientEnd - clientStart;
    if (clientBytes === 0 || clientBytes > limits.maxClientIdBytes) return null;
    client = text(b, clientStart, clientEnd);
    if (client === null) return null;
  }
  const max = limits.maxValueBytes;
  if (valueEnd - valueStart > max || expectEnd - expectStart > max) return null;
  let cmd: KvCommand;
  if (op === "put") {
    if (base !== (F_OP | F_KEY | F_VALUE) || valueStart < 0) return null;
    cmd = { op, key, value: b.slice(valueStart, valueEnd) };
  } else if (op === "delete") {
    if (base !== (F_OP | F_KEY)) return null;
    cmd = { op, key };
  } else if (op === "cas") {
    if (base !== (F_OP | F_KEY | F_VALUE | F_EXPECT)) return null;
    cmd = {
      op,
      key,
      expect: expectStart < 0 ? null : b.slice(expectStart, expectEnd),
      value: valueStart < 0 ? null : b.slice(valueStart, valueEnd),
    };
  } else return null;
  if (client !== null) {
    cmd.client = client;
    cmd.seq = seq;
  }
  return cmd;
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function strHeaderSize(len: number): number {
  return len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

function binHeaderSize(len: number): number {
  return len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

function uintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9;
}

/** Writes msgpack's uint16/uint32 big-endian. */
function be(out: Uint8Array, p: number, v: number, bytes: 2 | 4): number {
  if (bytes === 4) {
    out[p++] = v >>> 24;
    out[p++] = (v >>> 16) & 0xff;
  }
  out[p++] = (v >>> 8) & 0xff;
  out[p++] = v & 0xff;
  return p;
}

/** A string's UTF-8 form: ASCII is kept as the string itself (written char by char), anything else encoded. */
type Text = string | Uint8Array;

function utf8Of(s: string): Text {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return textEncoder.encode(s);
  return s;
}

function writeStr(out: Uint8Array, p: number, bytes: Text): number {
  const len = bytes.length;
  if (len < 32) out[p++] = 0xa0 | len;
  else if (len < 0x100) {
    out[p++] = 0xd9;
    out[p++] = len;
  } else if (len < 0x10000) {
    out[p++] = 0xda;
    p = be(out, p, len, 2);
  } else {
    out[p++] = 0xdb;
    p = be(out, p, len, 4);
  }
  if (typeof bytes === "string") for (let i = 0; i < len; i++) out[p + i] = bytes.charCodeAt(i);
  else out.set(bytes, p);
  return p + len;
}

function writeBin(out: Uint8Array, p: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    out[p] = NIL;
    return p + 1;
  }
  const len = bytes.length;
  if (len < 0x100) {
    out[p++] = 0xc4;
    out[p++] = len;
  } else if (len < 0x10000) {
    out[p++] = 0xc5;
    p = be(out, p, len, 2);
  } else {
    out[p++] = 0xc6;
    p = be(out, p, len, 4);
  }
  out.set(bytes, p);
  return p + len;
}

function writeUint(out: Uint8Array, p: number, v: number): number {
  if (v < 0x80) out[p++] = v;
  else if (v < 0x100) {
    out[p++] = 0xcc;
    out[p++] = v;
  } else if (v < 0x10000) {
    out[p++] = 0xcd;
    p = be(out, p, v, 2);
  } else if (v < 0x100000000) {
    out[p++] = 0xce;
    p = be(out, p, v, 4);
  } else {
    out[p++] = 0xcf;
    p = be(out, p, Math.floor(v / 0x100000000), 4);
    p = be(out, p, v >>> 0, 4);
  }
  return p;
}

const NAMES = { op: "op", key: "key", value: "value", expect: "expect", client: "client", seq: "seq" } as const;

/**
 * Encodes a command that has been validated (see `encodeKvCommand`) into the bytes
 * `@msgpack/msgpack` writes for `{ op, key, value | expect+value, client?, seq? }`.
 */
export function encodeValidCommand(cmd: KvCommand): Uint8Array {
  const key = utf8Of(cmd.key);
  const client = cmd.client === undefined ? null : utf8Of(cmd.client);
  const op = cmd.op;
  let fields = 2;
  let size = 1 + 3 + 1 + op.length + 4 + strHeaderSize(key.length) + key.length;
  const binSize = (v: Uint8Array | null): number => (v === null ? 1 : binHeaderSize(v.length) + v.length);
  if (cmd.op === "put") {
    fields++;
    size += 6 + binSize(cmd.value);
  } else if (cmd.op === "cas") {
    fields += 2;
    size += 7 + binSize(cmd.expect) + 6 + binSize(cmd.value);
  }
  if (client !== null) {
    fields += 2;
    size += 7 + strHeaderSize(client.length) + client.length + 4 + uintSize(cmd.seq!);
  }
  const out = new Uint8Array(size);
  out[0] = 0x80 | fields;
  let p = writeStr(out, 1, NAMES.op);
  p = writeStr(out, p, op);
  p = writeStr(out, p, NAMES.key);
  p = writeStr(out, p, key);
  if (cmd.op === "put") {
    p = writeStr(out, p, NAMES.value);
    p = writeBin(out, p, cmd.value);
  } else if (cmd.op === "cas") {
    p = writeStr(out, p, NAMES.expect);
    p = writeBin(out, p, cmd.expect);
    p = writeStr(out, p, NAMES.value);
    p = writeBin(out, p, cmd.value);
  }
  if (client !== null) {
    p = writeStr(out, p, NAMES.client);
    p = writeStr(out, p, client);
    p = writeStr(out, p, NAMES.seq);
    p = writeUint(out, p, cmd.seq!);
  }
  if (p !== size) throw new Error(`KV command encoding: wrote ${p} bytes of ${size}`);
  return out;
}
