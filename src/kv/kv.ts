/**
 * The built-in key-value state machine: string keys, binary values, compare-and-swap, and
 * exactly-once sessions for clients that retry writes whose outcome they do not know.
 *
 * Everything `apply` does depends only on the sequence of applied entries (and `maxSessions` and
 * `maxSessionBytes`, which must be the same on every node), so replicas that apply the same log hold the same state,
 * byte for byte in `snapshot()`.
 */
import { Decoder } from "@msgpack/msgpack";
import type { Entry } from "../core/types.ts";
import { MeshraftError } from "../errors.ts";
import type { StateMachine } from "../statemachine.ts";
import { decodeCommonCommand, encodeValidCommand } from "./command-codec.ts";
import { decodeKvSnapshot, encodeKvSnapshot, isBinaryFormat, type KvSnapshotContent } from "./snapshot-format.ts";

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Largest value, in bytes (1 MiB). */
export const MAX_VALUE_BYTES: number = 1024 * 1024;
/** Longest session client id, in UTF-8 bytes. */
export const MAX_CLIENT_ID_BYTES = 256;
/** Default bound on the number of client sessions a KvStateMachine remembers. */
export const DEFAULT_MAX_SESSIONS = 10_000;
/** Default bound on the session table's size, in bytes as `sessionBytes` counts them (1 MiB). */
export const DEFAULT_MAX_SESSION_BYTES: number = 1024 * 1024;
/** What one session costs beyond its client id's UTF-8 bytes (its snapshot record: length, seq, flags). */
const SESSION_OVERHEAD_BYTES = 13;

/**
 * Optional exactly-once session: a client numbers its writes; a retry carries the same `client`
 * and `seq`, and is answered from the session table instead of being applied twice.
 *
 * A session starts with seq 1 (0 is accepted too): a write with a higher seq for a client the
 * table does not hold belongs to a session that was forgotten (evicted to keep the table within
 * its bounds), and is refused with SESSION_EXPIRED instead of being applied, since it may be the
 * retry of a write that was applied before the session was forgotten (thesis §6.3).
 */
export interface KvSession {
  client?: string;
  /** Non-negative safe integer; each new write of a client uses a higher one, starting at 1. */
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
 * Why a session write was answered without applying anything (`ok: false`):
 * - STALE_SEQUENCE: its seq is below the session's last one (a late copy of an older write);
 * - SESSION_EXPIRED: its seq is above 1 and the session is not in the table (forgotten).
 */
export type KvRefusal = "STALE_SEQUENCE" | "SESSION_EXPIRED";

/**
 * - put / delete: `ok` is always true; `prev` is the value before (null if absent).
 * - cas: `ok` says whether `expect` matched (and the write happened); `prev` is the value before.
 * - `existed`: whether the key held a value before the write (`prev !== null`, except on a
 *   duplicate, which keeps `existed` but not `prev`).
 * - `duplicate` is set when a replay of the session's last seq was answered with that write's
 *   original `ok` and `existed` (`prev` is null: the table does not keep values).
 * - `refused` is set, with `ok: false`, when the session refused the write (see KvRefusal).
 *
 * `prev` is never an alias of the machine's state.
 */
export interface KvResult {
  ok: boolean;
  prev: Uint8Array | null;
  existed: boolean;
  duplicate?: boolean;
  refused?: KvRefusal;
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

// One Decoder each: they are reusable and not re-entered (everything here is sync).
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
  // The bytes @msgpack/msgpack writes for { op, key, value | expect+value, client?, seq? }.
  return encodeValidCommand(parseCommand(cmd, textFromString, (v) => v));
}

const LIMITS = { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: MAX_VALUE_BYTES, maxClientIdBytes: MAX_CLIENT_ID_BYTES };

/**
 * Decodes and validates a command. The result owns its binaries (msgpack returns views into the
 * input, which the caller may reuse). Throws KvCommandError on anything malformed.
 */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  // The shapes encodeKvCommand writes, in one pass; anything else takes the general path below.
  return decodeCommonCommand(bytes, LIMITS) ?? decodeKvCommandGeneral(bytes);
}

/** The general decoder alone, without the one-pass path: for tests that hold the two equal. */
export function decodeKvCommandGeneral(bytes: Uint8Array): KvCommand {
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

/** A session's share of `maxSessionBytes`. */
function sessionCost(client: string): number {
  return utf8Length(client) + SESSION_OVERHEAD_BYTES;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a retry of the session's last write is answered with: its verdict, never a value. */
interface SessionRecord {
  seq: number;
  ok: boolean;
  existed: boolean;
}

export interface KvStateMachineOptions {
  /**
   * How many client sessions to remember; the least recently used is forgotten first (a later
   * write of a forgotten session is refused with SESSION_EXPIRED). Must be equal on all nodes.
   */
  maxSessions?: number;
  /**
   * Bound on the session table in bytes: each session costs its client id's UTF-8 length plus 13.
   * The least recently used sessions are forgotten first. Must be equal on all nodes. Default
   * DEFAULT_MAX_SESSION_BYTES (1 MiB).
   */
  maxSessionBytes?: number;
}

/** Format 1, read for snapshots older nodes wrote; `snapshot()` writes format 3 (./snapshot-format.ts). */
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
  readonly maxSessionBytes: number;
  private data = new Map<string, Uint8Array>();
  /** Insertion order is recency order: the first entry is the least recently used session. */
  private sessions = new Map<string, SessionRecord>();
  /** Sum of sessionCost over `sessions`. Invariant: <= maxSessionBytes after every apply/restore. */
  private sessionBytesValue = 0;

  constructor(options: KvStateMachineOptions = {}) {
    this.maxSessions = positiveInt("maxSessions", options.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.maxSessionBytes = positiveInt("maxSessionBytes", options.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES);
  }

  apply(entry: Entry): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeKvCommand(entry.data);
    } catch (e) {
      if (!(e instanceof KvCommandError)) throw e;
      // Every replica decodes the same bytes the same way, so all of them land here: no divergence.
      this.malformedCommands++;
      return { ok: false, prev: null, existed: false };
    }
    if (cmd.client === undefined || cmd.seq === undefined) return this.execute(cmd);

    const client = cmd.client;
    const last = this.sessions.get(client);
    if (last === undefined && cmd.seq > 1) return { ok: false, prev: null, existed: false, refused: "SESSION_EXPIRED" };
    if (last !== undefined) {
      this.touch(client, last);
      if (cmd.seq === last.seq) return { ok: last.ok, prev: null, existed: last.existed, duplicate: true };
      if (cmd.seq < last.seq) return { ok: false, prev: null, existed: false, refused: "STALE_SEQUENCE" };
      // The session's record is updated in place: the table's size and bytes stay as they were.
      const result = this.execute(cmd);
      last.seq = cmd.seq;
      last.ok = result.ok;
      last.existed = result.existed;
      return result;
    }
    const result = this.execute(cmd);
    this.touch(client, { seq: cmd.seq, ok: result.ok, existed: result.existed });
    this.evict(this.sessions);
    return result;
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

  /** Size of the session table, as bounded by `maxSessionBytes`. */
  get sessionBytes(): number {
    return this.sessionBytesValue;
  }

  /** The whole state in format 3 (./snapshot-format.ts). */
  snapshot(): Uint8Array {
    return encodeKvSnapshot({ data: this.data, sessions: this.sessions, malformedCommands: this.malformedCommands });
  }

  /** Replaces the whole state; on a malformed snapshot throws KvSnapshotError and changes nothing. */
  restore(bytes: Uint8Array): void {
    if (isBinaryFormat(bytes)) return this.restoreBinary(bytes);
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
      sessions.set(client, { seq, ok, existed: prev !== null });
    }
    this.adopt(data, sessions, body.malformedCommands);
  }

  /** Formats 2 and 3 decode straight into fresh maps (every value already a copy). */
  private restoreBinary(bytes: Uint8Array): void {
    let c: KvSnapshotContent;
    try {
      c = decodeKvSnapshot(bytes);
    } catch (e) {
      throw new KvSnapshotError(`malformed KV snapshot: ${(e as Error).message}`);
    }
    this.adopt(c.data, c.sessions, c.malformedCommands);
  }

  /** Takes restored state; a snapshot from a node with larger bounds loses the least recently used sessions. */
  private adopt(data: Map<string, Uint8Array>, sessions: Map<string, SessionRecord>, malformedCommands: number): void {
    let bytes = 0;
    for (const client of sessions.keys()) bytes += sessionCost(client);
    this.data = data;
    this.sessions = sessions;
    this.sessionBytesValue = bytes;
    this.evict(sessions);
    this.malformedCommands = malformedCommands;
  }

  /** Makes `client` the most recently used session. */
  private touch(client: string, record: SessionRecord): void {
    const known = this.sessions.delete(client);
    this.sessions.set(client, record);
    if (!known) this.sessionBytesValue += sessionCost(client);
  }

  /**
   * Forgets least recently used sessions until both bounds hold. Only applied entries decide the
   * order, so every replica forgets the same sessions at the same index (no clock is involved).
   */
  private evict(sessions: Map<string, SessionRecord>): void {
    for (const client of sessions.keys()) {
      if (sessions.size <= this.maxSessions && this.sessionBytesValue <= this.maxSessionBytes) break;
      sessions.delete(client);
      this.sessionBytesValue -= sessionCost(client);
    }
  }

  private execute(cmd: KvCommand): KvResult {
    const prev = this.data.get(cmd.key) ?? null;
    switch (cmd.op) {
      case "put":
        this.data.set(cmd.key, cmd.value);
        return { ok: true, prev, existed: prev !== null };
      case "delete":
        this.data.delete(cmd.key);
        return { ok: true, prev, existed: prev !== null };
      case "cas": {
        const matches =
          cmd.expect === null ? prev === null : prev !== null && bytesEqual(prev, cmd.expect);
        // On a mismatch the value stays in the map: hand out a copy, not the stored array.
        if (!matches) return { ok: false, prev: prev === null ? null : prev.slice(), existed: prev !== null };
        if (cmd.value === null) this.data.delete(cmd.key);
        else this.data.set(cmd.key, cmd.value);
        return { ok: true, prev, existed: prev !== null };
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
