/**
 * The KV snapshot, formats 2 and 3: a flat binary layout written and read in one pass. Format 1
 * (msgpack) took 0.2-0.3 s to write and 0.5-1.3 s to read for 200,000 keys (21 MB), longer than an
 * election timeout on the single JavaScript thread; this takes a fraction of that.
 *
 *   "MKV3"                        4 bytes (a msgpack format-1 snapshot starts with a map byte)
 *   malformedCommands             f64
 *   key count                     u32
 *     key length u32, key UTF-8, value length u32, value bytes        (insertion order)
 *   session count                 u32
 *     client length u32, client UTF-8, seq f64, flags u8 (1: ok, 2: existed)
 *                                                                       (least recently used first)
 *
 * Format 2 ("MKV2", still read) differs only in its session records: flag 2 meant "has prev" and
 * the previous value followed (prev length u32, prev bytes). A session needs only whether the key
 * existed to answer a retry, so format 3 keeps no values in the session table: with format 2,
 * 50 sessions whose last write replaced a 1 MiB value made a 52 MB snapshot of an empty store.
 *
 * Integers are little-endian. Reading checks every length against the buffer and the UTF-8 of
 * every string. Values are views into one private copy of the input (nothing aliases the
 * caller's buffer): creating 200,000 separate arrays costs more than everything else together,
 * and the copy is freed once every restored value has been overwritten or deleted.
 */

export interface KvSnapshotContent {
  data: Map<string, Uint8Array>;
  /** Client -> its last write's seq and verdict. */
  sessions: Map<string, { seq: number; ok: boolean; existed: boolean }>;
  malformedCommands: number;
}

const MAGIC = [0x4d, 0x4b, 0x56]; // "MKV", then the format's digit
const FORMAT_2 = 0x32;
const FORMAT_3 = 0x33;
const utf8Encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Whether `bytes` start like a format 2 or 3 snapshot. */
export function isBinaryFormat(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && MAGIC.every((b, i) => bytes[i] === b) && (bytes[3] === FORMAT_2 || bytes[3] === FORMAT_3);
}

export function encodeKvSnapshot(c: KvSnapshotContent): Uint8Array {
  // Upper bound: a UTF-16 code unit takes at most 3 bytes of UTF-8.
  let size = 4 + 8 + 4 + 4;
  for (const [k, v] of c.data) size += 8 + 3 * k.length + v.byteLength;
  for (const client of c.sessions.keys()) size += 4 + 3 * client.length + 9;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[3] = FORMAT_3;
  let at = 4;
  view.setFloat64(at, c.malformedCommands, true);
  at += 8;
  const str = (s: string): void => {
    // ASCII (the usual key) is copied code unit by code unit; anything else goes through UTF-8.
    let n = 0;
    const len = s.length;
    for (; n < len; n++) {
      const c = s.charCodeAt(n);
      if (c >= 0x80) break;
      out[at + 4 + n] = c;
    }
    if (n < len) n = utf8Encoder.encodeInto(s, out.subarray(at + 4)).written;
    view.setUint32(at, n, true);
    at += 4 + n;
  };
  const bytes = (b: Uint8Array): void => {
    view.setUint32(at, b.byteLength, true);
    out.set(b, at + 4);
    at += 4 + b.byteLength;
  };
  view.setUint32(at, c.data.size, true);
  at += 4;
  for (const [k, v] of c.data) {
    str(k);
    bytes(v);
  }
  view.setUint32(at, c.sessions.size, true);
  at += 4;
  for (const [client, s] of c.sessions) {
    str(client);
    view.setFloat64(at, s.seq, true);
    out[at + 8] = (s.ok ? 1 : 0) | (s.existed ? 2 : 0);
    at += 9;
  }
  return out.slice(0, at);
}

/** Throws an Error saying what is wrong; the caller wraps it. */
export function decodeKvSnapshot(original: Uint8Array): KvSnapshotContent {
  if (!isBinaryFormat(original)) throw new Error("not a format 2 or 3 snapshot");
  const format2 = original[3] === FORMAT_2;
  const input = original.slice();
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let at = 4;
  const need = (n: number, what: string): void => {
    if (at + n > input.byteLength) throw new Error(`truncated at byte ${at}: ${what} needs ${n} more bytes`);
  };
  const u32 = (what: string): number => {
    need(4, what);
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const count = (what: string): number => {
    need(8, what);
    const v = view.getFloat64(at, true);
    at += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} is ${v}, not a count`);
    return v;
  };
  const raw = (what: string): Uint8Array => {
    const n = u32(`${what} length`);
    need(n, what);
    const b = input.subarray(at, at + n);
    at += n;
    return b;
  };
  const str = (what: string): string => {
    const b = raw(what);
    if (b.byteLength <= 64) {
      let ascii = true;
      for (let i = 0; i < b.byteLength && ascii; i++) ascii = b[i] < 0x80;
      // Short ASCII strings: far cheaper than a TextDecoder call each.
      if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
    }
    try {
      return utf8.decode(b);
    } catch {
      throw new Error(`${what} at byte ${at - b.byteLength} is not valid UTF-8`);
    }
  };
  const malformedCommands = count("malformedCommands");
  const data = new Map<string, Uint8Array>();
  const end = input.byteLength;
  for (let i = 0, n = u32("key count"); i < n; i++) {
    // The common record, inline: a short ASCII key and its value (no closure calls per key).
    let key: string | null = null;
    if (at + 4 <= end) {
      const kn = view.getUint32(at, true);
      const ks = at + 4;
      if (kn <= 64 && ks + kn + 4 <= end) {
        let ascii = true;
        for (let j = ks; j < ks + kn; j++) {
          if (input[j] >= 0x80) {
            ascii = false;
            break;
          }
        }
        if (ascii) {
          key = String.fromCharCode.apply(null, input.subarray(ks, ks + kn) as unknown as number[]);
          at = ks + kn;
        }
      }
    }
    if (key === null) key = str("key");
    const size = data.size;
    // One lookup instead of has() then set(): a repeated key leaves the size as it was.
    data.set(key, raw("value"));
    if (data.size === size) throw new Error(`key ${JSON.stringify(key)} appears twice`);
  }
  const sessions: KvSnapshotContent["sessions"] = new Map();
  for (let i = 0, n = u32("session count"); i < n; i++) {
    const client = str("client");
    if (sessions.has(client)) throw new Error(`client ${JSON.stringify(client)} appears twice`);
    const seq = count("seq");
    need(1, "flags");
    const flags = input[at++];
    if (flags > 3) throw new Error(`session flags ${flags} are unknown`);
    // Format 2 kept the previous value itself; only whether there was one is needed.
    if (format2 && flags & 2) raw("prev");
    sessions.set(client, { seq, ok: (flags & 1) !== 0, existed: (flags & 2) !== 0 });
  }
  if (at !== input.byteLength) throw new Error(`${input.byteLength - at} bytes follow the end of the snapshot`);
  return { data, sessions, malformedCommands };
}
