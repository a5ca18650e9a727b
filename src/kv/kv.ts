/**
 * The built-in key-value state machine: string keys, binary values, compare-and-swap, and
 * exactly-once sessions for clients that retry writes whose outcome they do not know.
 *
 * Everything `apply` does depends only on the sequence of applied entries (and `maxSessions`,
 * which must be the same on every node), so replicas that apply the same log hold the same state,
 * byte for byte in `snapshot()`.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { Entry } from "../core/types.ts";
import { MeshraftError } from "../errors.ts";
import type { StateMachine } from "../statemachine.ts";
import { decodeKvSnapshot, encodeKvSnapshot, isFormat2, type KvSnapshotContent } from "./snapshot-format.ts";

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Largest value, in bytes (1 MiB). */
export const MAX_VALUE_BYTES: number = 1024 * 1024;
/** Longest session client id, in UTF-8 bytes. */
export const MAX_CLIENT_ID_BYTES = 256;
/** Default bound on the number of client sessions a KvStateMachine remembers. */
export const DEFAULT_MAX_SESSIONS = 10_000;

/**
 * Optional exactly-once session: a client numbers its writes; a retry carries the same `client`
 * and `seq`, and is answered from the session table instead of being applied twice.
 */
export interface KvSession {
  client?: string;
  /** Non-negative safe integer; each new write of a client uses a higher one. */
  seq?: number;
}

export interface KvPut extends KvSession {
  op: "put";
  key: string;
  value: Uint8Array;
}

export interface KvDelete extends KvSession {
  op: "delete";
  key: string;
}

/** Compare-and-swap: `expect: null` means "the key must be absent"; `value: null` deletes it. */
export interface KvCas extends KvSession {
  op: "cas";
  key: string;
  expect: Uint8Array | null;
  value: Uint8Array | null;
}

export type KvCommand = KvPut | KvDelete | KvCas;

/**
 * - put / delete: `ok` is always true; `prev` is the value before (null if absent).
 * - cas: `ok` says whether `expect` matched (and the write happened); `prev` is the value before.
 * - `duplicate` is set when a session replay was answered without applying anything: a replay of
 *   the client's last seq gets that write's original result; an older seq gets `ok: false`.
 *
 * `prev` is never an alias of the machine's state, but a session keeps the same array to answer
 * retries with: treat it as read-only.
 */
export interface KvResult {
  ok: boolean;
  prev: Uint8Array | null;
  duplicate?: boolean;
}

/** A command that cannot be encoded or decoded: wrong shape, wrong types, or over a size limit. */
export class KvCommandError extends MeshraftError {
  declare readonly code: "MALFORMED_COMMAND";
  constructor(message: string) {
    super("MALFORMED_COMMAND", message);
  }
}

/** Bytes given to `restore` that are not a snapshot made by `KvStateMachine.snapshot()`. */
export class KvSnapshotError extends MeshraftError {
  declare readonly code: "MALFORMED_SNAPSHOT";
  constructor(message: string) {
    super("MALFORMED_SNAPSHOT", message);
  }
}

// One Encoder and Decoder each: they are reusable and not re-entered (everything here is sync).
const encoder = new Encoder();
// Strings come back raw and are decoded below with a fatal decoder, so that invalid UTF-8 is
// rejected the same way on every runtime (msgpack's own decoding picks between a JS decoder and
// TextDecoder by length, and the two disagree on invalid input). A side effect: for the binary
// fields a msgpack str is accepted as well as a bin.
const commandDecoder = new Decoder({ rawStrings: true, maxArrayLength: 0, maxMapLength: 16 });
const snapshotDecoder = new Decoder();
// ignoreBOM keeps a leading U+FEFF in a key instead of silently stripping it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const FIELDS: Record<KvCommand["op"], readonly string[]> = {
  put: ["op", "key", "value", "client", "seq"],
  delete: ["op", "key", "client", "seq"],
  cas: ["op", "key", "expect", "value", "client", "seq"],
};

/** Encodes a command for `propose`. Throws KvCommandError if it would not decode. */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  const c = parseCommand(cmd, textFromString, (v) => v);
  // Build the object field by field: msgpack would encode `undefined` as nil.
  const out: Record<string, unknown> = { op: c.op, key: c.key };
  if (c.op === "put") out.value = c.value;
  if (c.op === "cas") {
    out.expect = c.expect;
    out.value = c.value;
  }
  if (c.client !== undefined) {
    out.client = c.client;
    out.seq = c.seq;
  }
  return encoder.encode(out);
}

/**
 * Decodes and validates a command. The result owns its binaries (msgpack returns views into the
 * input, which the caller may reuse). Throws KvCommandError on anything malformed.
 */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  let raw: unknown;
  try {
    raw = commandDecoder.decode(bytes);
  } catch (e) {
    throw new KvCommandError(`undecodable KV command: ${(e as Error).message}`);
  }
  return parseCommand(raw, textFromRaw, (v) => v.slice());
}

function malformed(message: string): never {
  throw new KvCommandError(`malformed KV command: ${message}`);
}

function textFromString(v: unknown, field: string): string {
  if (typeof v !== "string") malformed(`${field} must be a string`);
  // A lone surrogate has no UTF-8 encoding; it would not survive the round trip.
  if (/\p{Cs}/u.test(v)) malformed(`${field} contains a lone surrogate`);
  return v;
}

function textFromRaw(v: unknown, field: string): string {
  if (!(v instanceof Uint8Array)) malformed(`${field} must be a string`);
  try {
    return utf8.decode(v);
  } catch {
    return malformed(`${field} is not valid UTF-8`);
  }
}

function parseCommand(
  raw: unknown,
  text: (v: unknown, field: string) => string,
  own: (v: Uint8Array) => Uint8Array,
): KvCommand {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    malformed("not a map");
  }
  const r = raw as Record<string, unknown>;
  const op = text(r.op, "op");
  if (op !== "put" && op !== "delete" && op !== "cas") malformed(`unknown op ${JSON.stringify(op)}`);
  for (const f of Object.keys(r)) {
    if (!FIELDS[op].includes(f) && r[f] !== undefined) {
      malformed(`unexpected field ${JSON.stringify(f)} in ${op}`);
    }
  }
  const key = text(r.key, "key");
  const keyBytes = utf8Length(key);
  if (keyBytes === 0) malformed("key is empty");
  if (keyBytes > MAX_KEY_BYTES) malformed(`key is ${keyBytes} bytes; the limit is ${MAX_KEY_BYTES}`);

  const session: KvSession = {};
  if (r.client !== undefined || r.seq !== undefined) {
    const client = text(r.client, "client");
    const clientBytes = utf8Length(client);
    if (clientBytes === 0 || clientBytes > MAX_CLIENT_ID_BYTES) {
      malformed(`client id must be 1 to ${MAX_CLIENT_ID_BYTES} bytes`);
    }
    const seq = r.seq;
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
      malformed("seq must be a non-negative safe integer when client is set");
    }
    session.client = client;
    session.seq = seq;
  }

  const bytes = (v: unknown, field: string, nullable: boolean): Uint8Array | null => {
    if (v === null && nullable) return null;
    if (!(v instanceof Uint8Array)) malformed(`${field} must be bytes${nullable ? " or null" : ""}`);
    if (v.length > MAX_VALUE_BYTES) {
      malformed(`${field} is ${v.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
    }
    return own(v);
  };
  switch (op) {
    case "put":
      return { op, key, value: bytes(r.value, "value", false) as Uint8Array, ...session };
    case "delete":
      return { op, key, ...session };
    case "cas":
      if (!("expect" in r) || !("value" in r)) malformed("cas needs expect and value (null allowed)");
      return {
        op,
        key,
        expect: bytes(r.expect, "expect", true),
        value: bytes(r.value, "value", true),
        ...session,
      };
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface SessionRecord {
  seq: number;
  result: KvResult;
}

export interface KvStateMachineOptions {
  /**
   * How many client sessions to remember; the least recently used is forgotten first. A client
   * whose session was forgotten loses exactly-once for its retries. Must be equal on all nodes.
   * Each session holds its last result, so memory grows with `prev` sizes too.
   */
  maxSessions?: number;
}

/** Format 1, read for snapshots older nodes wrote; `snapshot()` writes format 2 (./snapshot-format.ts). */
const SNAPSHOT_FORMAT = 1;

/** Format 1 layout (msgpack). Maps are written as arrays of pairs: msgpack encodes a Map as {}. */
interface SnapshotBody {
  format: number;
  /** [key, value] in the machine's insertion order. */
  data: [string, Uint8Array][];
  /** [client, seq, ok, prev], least recently used first. */
  sessions: [string, number, boolean, Uint8Array | null][];
  malformedCommands: number;
}

export class KvStateMachine implements StateMachine<KvResult> {
  /** Entries whose data did not decode; each was answered `{ ok: false, prev: null }`. */
  malformedCommands = 0;
  readonly maxSessions: number;
  private data = new Map<string, Uint8Array>();
  /** Insertion order is recency order: the first entry is the least recently used session. */
  private sessions = new Map<string, SessionRecord>();

  constructor(options: KvStateMachineOptions = {}) {
    const max = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxSessions must be a positive integer, got ${max}`);
    }
    this.maxSessions = max;
  }

  apply(entry: Entry): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeKvCommand(entry.data);
    } catch (e) {
      if (!(e instanceof KvCommandError)) throw e;
      // Every replica decodes the same bytes the same way, so all of them land here: no divergence.
      this.malformedCommands++;
      return { ok: false, prev: null };
    }
    if (cmd.client === undefined || cmd.seq === undefined) return this.execute(cmd);

    const client = cmd.client;
    const last = this.sessions.get(client);
    if (last !== undefined) {
      this.touch(client, last);
      if (cmd.seq === last.seq) return { ok: last.result.ok, prev: last.result.prev, duplicate: true };
      if (cmd.seq < last.seq) return { ok: false, prev: null, duplicate: true };
    }
    const result = this.execute(cmd);
    this.touch(client, { seq: cmd.seq, result });
    while (this.sessions.size > this.maxSessions) {
      this.sessions.delete(this.sessions.keys().next().value as string);
    }
    return { ok: result.ok, prev: result.prev };
  }

  /** The value of `key` (a copy), or null if absent. */
  get(key: string): Uint8Array | null {
    return this.data.get(key)?.slice() ?? null;
  }

  get size(): number {
    return this.data.size;
  }

  /** All keys, in insertion order (a key that is deleted and put again moves to the end). */
  keys(): string[] {
    return [...this.data.keys()];
  }

  /** Number of remembered client sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The whole state in format 2 (./snapshot-format.ts). */
  snapshot(): Uint8Array {
    const sessions: KvSnapshotContent["sessions"] = new Map();
    for (const [c, s] of this.sessions) sessions.set(c, { seq: s.seq, ok: s.result.ok, prev: s.result.prev });
    return encodeKvSnapshot({ data: this.data, sessions, malformedCommands: this.malformedCommands });
  }

  /** Replaces the whole state; on a malformed snapshot throws KvSnapshotError and changes nothing. */
  restore(bytes: Uint8Array): void {
    if (isFormat2(bytes)) return this.restoreFormat2(bytes);
    const body = parseSnapshot(bytes);
    const data = new Map<string, Uint8Array>();
    for (const [k, v] of body.data) {
      if (data.has(k)) throw new KvSnapshotError(`snapshot holds key ${JSON.stringify(k)} twice`);
      data.set(k, v.slice());
    }
    const sessions = new Map<string, SessionRecord>();
    for (const [client, seq, ok, prev] of body.sessions) {
      if (sessions.has(client)) {
        throw new KvSnapshotError(`snapshot holds client ${JSON.stringify(client)} twice`);
      }
      sessions.set(client, { seq, result: { ok, prev: prev === null ? null : prev.slice() } });
    }
    this.adopt(data, sessions, body.malformedCommands);
  }

  /** Format 2 decodes straight into fresh maps (every value already a copy). */
  private restoreFormat2(bytes: Uint8Array): void {
    let c: KvSnapshotContent;
    try {
      c = decodeKvSnapshot(bytes);
    } catch (e) {
      throw new KvSnapshotError(`malformed KV snapshot: ${(e as Error).message}`);
    }
    const sessions = new Map<string, SessionRecord>();
    for (const [client, s] of c.sessions) sessions.set(client, { seq: s.seq, result: { ok: s.ok, prev: s.prev } });
    this.adopt(c.data, sessions, c.malformedCommands);
  }

  /** Takes restored state; a snapshot from a node with more sessions loses the least recently used. */
  private adopt(data: Map<string, Uint8Array>, sessions: Map<string, SessionRecord>, malformedCommands: number): void {
    for (const client of sessions.keys()) {
      if (sessions.size <= this.maxSessions) break;
      sessions.delete(client);
    }
    this.data = data;
    this.sessions = sessions;
    this.malformedCommands = malformedCommands;
  }

  private touch(client: string, record: SessionRecord): void {
    this.sessions.delete(client);
    this.sessions.set(client, record);
  }

  private execute(cmd: KvCommand): KvResult {
    const prev = this.data.get(cmd.key) ?? null;
    switch (cmd.op) {
      case "put":
        this.data.set(cmd.key, cmd.value);
        return { ok: true, prev };
      case "delete":
        this.data.delete(cmd.key);
        return { ok: true, prev };
      case "cas": {
        const matches =
          cmd.expect === null ? prev === null : prev !== null && bytesEqual(prev, cmd.expect);
        // On a mismatch the value stays in the map: hand out a copy, not the stored array.
        if (!matches) return { ok: false, prev: prev === null ? null : prev.slice() };
        if (cmd.value === null) this.data.delete(cmd.key);
        else this.data.set(cmd.key, cmd.value);
        return { ok: true, prev };
      }
    }
  }
}

/** Format 1 (msgpack), as written before format 2; still read. */
function parseSnapshot(bytes: Uint8Array): SnapshotBody {
  let raw: unknown;
  try {
    raw = snapshotDecoder.decode(bytes);
  } catch (e) {
    throw new KvSnapshotError(`undecodable KV snapshot: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new KvSnapshotError(`malformed KV snapshot: ${what}`);
  };
  if (typeof raw !== "object" || raw === null) bad("not a map");
  const r = raw as Record<string, unknown>;
  if (r.format !== SNAPSHOT_FORMAT) bad(`unknown format ${JSON.stringify(r.format)}`);
  if (!Array.isArray(r.data) || !Array.isArray(r.sessions)) bad("data and sessions must be arrays");
  const m = r.malformedCommands;
  if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 0) bad("malformedCommands");
  for (const pair of r.data as unknown[]) {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      typeof pair[0] !== "string" ||
      !(pair[1] instanceof Uint8Array)
    ) {
      bad("data entries must be [string, bytes]");
    }
  }
  for (const s of r.sessions as unknown[]) {
    if (
      !Array.isArray(s) ||
      s.length !== 4 ||
      typeof s[0] !== "string" ||
      typeof s[1] !== "number" ||
      !Number.isSafeInteger(s[1]) ||
      typeof s[2] !== "boolean" ||
      !(s[3] === null || s[3] instanceof Uint8Array)
    ) {
      bad("sessions must be [client, seq, ok, prev]");
    }
  }
  return r as unknown as SnapshotBody;
}
