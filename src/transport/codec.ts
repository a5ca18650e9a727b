/**
 * The wire codec: Message <-> bytes, for every transport that leaves the process.
 *
 * Frame format
 *
 *   byte 0      WIRE_VERSION (currently 1)
 *   bytes 1..   one msgpack value: a positional array
 *               [typeTag, from, to, term, ...the fields of that type in SCHEMAS order]
 *
 * Nested values are positional arrays too:
 *   Entry          [index, term, entryType, data]      entryType: 0 normal, 1 noop, 2 config
 *   proposal entry [entryType, data]                   (ForwardProposal.entries)
 *   SnapshotMeta   [index, term, voters, learners, votersOutgoing, urls?, promote?]
 *                  (ids as arrays; urls as a flat array [id, url, id, url, ...])
 * Ids are msgpack str, payloads bin, nullable ids nil or str, numbers msgpack ints. URLs are msgpack
 * str of at most MAX_URL_BYTES (../core/member-url.ts), the limit every layer that accepts a member
 * URL applies, so any member's URL fits in the SnapshotMeta sent to it.
 *
 * Why positional arrays rather than maps with field names: the names cost more than the numbers
 * they label, and every entry would repeat "index", "term", "type", "data". Measured (ids "n1"/"n2",
 * indexes around 10^6): an empty AppendEntries is 22 bytes here, 98 as a map; with 10 entries of
 * 100 bytes it is 1,122 bytes here (1,468 as a map), i.e. 122 bytes of framing: 10 per entry (array
 * header 1, index 5, term 1, type 1, bin header 2) plus 22 for the message and version byte.
 *
 * Compatibility: type tags and field order ARE the protocol. Never reorder fields or reuse a tag.
 * Decoders ignore trailing array elements, so a later revision may append a field that older
 * nodes can safely ignore; any other change bumps WIRE_VERSION.
 *
 * Both directions validate: encode refuses a message its peers would reject (so a core bug shows
 * up at the sender, named), and decode checks every field of untrusted input. Whatever `decode`
 * accepts, `encode` accepts back (ids are checked on their re-encoded UTF-8 form), so a node can
 * always echo an id it received.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MAX_URL_BYTES, memberUrlProblem, utf8Length } from "../core/member-url.ts";
import type { Entry, EntryType, Message, MessageType, NodeId, SnapshotMeta } from "../core/types.ts";

export const WIRE_VERSION = 1;

export interface CodecLimits {
  /** Largest frame accepted (and produced), in bytes, version byte included. */
  maxFrameBytes: number;
  /** Most entries in one AppendEntries or ForwardProposal; also caps every other msgpack array. */
  maxEntries: number;
  /** Longest node id, in UTF-8 bytes. */
  maxIdLength: number;
}

export const DEFAULT_CODEC_LIMITS: Readonly<CodecLimits> = Object.freeze({
  maxFrameBytes: 64 * 1024 * 1024,
  maxEntries: 100_000,
  maxIdLength: 256,
});

export type CodecErrorCode = "MALFORMED_FRAME" | "FRAME_TOO_LARGE" | "UNSUPPORTED_VERSION";

/** The only error the codec throws for bad input, in either direction. */
export class CodecError extends Error {
  readonly code: CodecErrorCode;
  constructor(code: CodecErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CodecError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Schema: one table defines the wire layout of all messages; encode and decode both walk it.
// ---------------------------------------------------------------------------------------------

type Kind =
  | "id"
  | "idOrNull"
  | "uint" // a non-negative safe integer: terms, indexes, counters, request ids
  | "uintOrMinusOne" // InstallSnapshotResponse.nextOffset: -1 rejects the transfer
  | "bool"
  | "bytes"
  | "entries"
  | "proposals"
  | "meta";

type ProposalEntry = { type: EntryType; data: Uint8Array };

/** The kinds a field of TypeScript type V may be declared with, so the table cannot drift from types.ts. */
type KindOf<V> = [V] extends [boolean]
  ? "bool"
  : [V] extends [NodeId]
    ? "id"
    : [V] extends [NodeId | null]
      ? "idOrNull"
      : [V] extends [number]
        ? "uint" | "uintOrMinusOne"
        : [V] extends [Uint8Array]
          ? "bytes"
          : [V] extends [Entry[]]
            ? "entries"
            : [V] extends [ProposalEntry[]]
              ? "proposals"
              : [V] extends [SnapshotMeta]
                ? "meta"
                : never;

/** Every field except the common header, each required: a field missing here fails to compile. */
type FieldKinds<M> = { readonly [F in Exclude<keyof M, "type" | "from" | "to" | "term">]-?: KindOf<M[F]> };

/** Key order of each `fields` object is the wire order (see "Compatibility" above). */
const SCHEMAS: {
  readonly [T in MessageType]: { readonly tag: number; readonly fields: FieldKinds<Extract<Message, { type: T }>> };
} = {
  RequestVote: {
    tag: 1,
    fields: { lastLogIndex: "uint", lastLogTerm: "uint", preVote: "bool", transfer: "bool" },
  },
  RequestVoteResponse: { tag: 2, fields: { voteGranted: "bool", preVote: "bool" } },
  AppendEntries: {
    tag: 3,
    fields: { prevLogIndex: "uint", prevLogTerm: "uint", entries: "entries", leaderCommit: "uint" },
  },
  AppendEntriesResponse: {
    tag: 4,
    fields: { success: "bool", matchIndex: "uint", hintIndex: "uint", hintTerm: "uint" },
  },
  Heartbeat: { tag: 5, fields: { leaderCommit: "uint", readRound: "uint" } },
  HeartbeatResponse: { tag: 6, fields: { readRound: "uint" } },
  InstallSnapshot: { tag: 7, fields: { meta: "meta", offset: "uint", data: "bytes", done: "bool" } },
  InstallSnapshotResponse: {
    tag: 8,
    fields: { snapshotIndex: "uint", nextOffset: "uintOrMinusOne", matchIndex: "uint", done: "bool" },
  },
  TimeoutNow: { tag: 9, fields: {} },
  ForwardProposal: { tag: 10, fields: { requestId: "uint", entries: "proposals" } },
  ForwardProposalResponse: {
    tag: 11,
    fields: { requestId: "uint", index: "uint", entryTerm: "uint", rejected: "bool", leaderId: "idOrNull" },
  },
  ReadIndex: { tag: 12, fields: { requestId: "uint" } },
  ReadIndexResponse: {
    tag: 13,
    fields: { requestId: "uint", index: "uint", rejected: "bool", leaderId: "idOrNull" },
  },
};

interface Layout {
  type: MessageType;
  tag: number;
  names: string[];
  kinds: Kind[];
  /** "AppendEntries.entries", precomputed so the hot path builds no strings. */
  paths: string[];
  /** Paths of the common header fields. */
  from: string;
  to: string;
  term: string;
}

/** Elements before the type-specific fields: tag, from, to, term. */
const HEADER = 4;

const BY_TYPE = new Map<string, Layout>();
const BY_TAG: (Layout | undefined)[] = [];
for (const [type, schema] of Object.entries(SCHEMAS) as [MessageType, { tag: number; fields: object }][]) {
  const names = Object.keys(schema.fields);
  const layout: Layout = {
    type,
    tag: schema.tag,
    names,
    kinds: Object.values(schema.fields) as Kind[],
    paths: names.map((name) => `${type}.${name}`),
    from: `${type}.from`,
    to: `${type}.to`,
    term: `${type}.term`,
  };
  BY_TYPE.set(type, layout);
  BY_TAG[schema.tag] = layout;
}

const ENTRY_TYPES: readonly EntryType[] = ["normal", "noop", "config"];

const UINT = "a non-negative integer";

// ---------------------------------------------------------------------------------------------
// The codec
// ---------------------------------------------------------------------------------------------

/** An encoder whose shared buffer grew past this is replaced, so one big snapshot chunk does not pin memory. */
const MAX_RETAINED_ENCODER_BYTES = 1024 * 1024;

/**
 * Encodes and decodes frames with fixed limits. Holds one msgpack Encoder and Decoder (their
 * buffers and key caches are reused), so keep one instance per limit set, not one per message.
 */
export class Codec {
  readonly limits: Readonly<CodecLimits>;
  #encoder: Encoder = new Encoder();
  readonly #decoder: Decoder;

  /** @throws RangeError when a limit is not a positive integer (a configuration error). */
  constructor(limits: Partial<CodecLimits> = {}) {
    const merged: CodecLimits = { ...DEFAULT_CODEC_LIMITS, ...limits };
    for (const key of Object.keys(DEFAULT_CODEC_LIMITS) as (keyof CodecLimits)[]) {
      const value = merged[key];
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`CodecLimits.${key} must be a positive integer, got ${describe(value)}`);
      }
    }
    this.limits = Object.freeze(merged);
    this.#decoder = new Decoder({
      // Limits are checked by msgpack before it allocates, so a 5-byte header cannot make it
      // allocate an array of 2^32 slots. The wire format uses no maps and no extensions.
      // Strings are ids (checked against maxIdLength once decoded) or URLs.
      maxStrLength: Math.max(merged.maxIdLength, MAX_URL_BYTES),
      maxBinLength: merged.maxFrameBytes,
      // Message, entry and meta arrays have at most 9 elements.
      maxArrayLength: Math.max(merged.maxEntries, 16),
      maxMapLength: 0,
      maxExtLength: 0,
    });
  }

  /** Encodes a validated message into a fresh frame the caller owns. */
  encode(msg: Message): Uint8Array {
    const layout = typeof msg === "object" && msg !== null ? BY_TYPE.get(msg.type) : undefined;
    if (layout === undefined) {
      const type = typeof msg === "object" && msg !== null ? (msg as { type?: unknown }).type : msg;
      throw new CodecError("MALFORMED_FRAME", `cannot encode: unknown message type ${describe(type)}`);
    }
    const fields = msg as unknown as Record<string, unknown>;
    const wire: unknown[] = [
      layout.tag,
      this.#id(fields.from, layout.from),
      this.#id(fields.to, layout.to),
      uint(fields.term, layout.term),
    ];
    for (let i = 0; i < layout.kinds.length; i++) {
      wire.push(this.#encodeField(layout.kinds[i], fields[layout.names[i]], layout.paths[i]));
    }

    let body: Uint8Array;
    try {
      body = this.#encoder.encodeSharedRef(wire);
    } catch (error) {
      this.#encoder = new Encoder();
      throw new CodecError("MALFORMED_FRAME", `cannot encode ${layout.type}: ${errorText(error)}`, { cause: error });
    }
    const size = 1 + body.byteLength;
    if (body.buffer.byteLength > MAX_RETAINED_ENCODER_BYTES) this.#encoder = new Encoder();
    if (size > this.limits.maxFrameBytes) {
      throw new CodecError(
        "FRAME_TOO_LARGE",
        `cannot encode ${layout.type}: frame would be ${size} bytes; maxFrameBytes is ${this.limits.maxFrameBytes}`,
      );
    }
    const frame = new Uint8Array(size);
    frame[0] = WIRE_VERSION;
    frame.set(body, 1);
    return frame;
  }

  /**
   * Decodes and fully validates one frame. The result shares no memory with `bytes`.
   * @throws CodecError, and nothing else, whatever `bytes` holds.
   */
  decode(bytes: Uint8Array): Message {
    try {
      return this.#decode(bytes);
    } catch (error) {
      if (error instanceof CodecError) throw error;
      // Unreachable by design; kept so that no input can make the codec throw anything else.
      throw new CodecError("MALFORMED_FRAME", `frame could not be decoded: ${errorText(error)}`, { cause: error });
    }
  }

  #decode(bytes: Uint8Array): Message {
    if (!(bytes instanceof Uint8Array)) {
      throw new CodecError("MALFORMED_FRAME", `expected a frame as Uint8Array, got ${describe(bytes)}`);
    }
    if (bytes.byteLength === 0) throw new CodecError("MALFORMED_FRAME", "empty frame");
    if (bytes.byteLength > this.limits.maxFrameBytes) {
      throw new CodecError(
        "FRAME_TOO_LARGE",
        `frame is ${bytes.byteLength} bytes; maxFrameBytes is ${this.limits.maxFrameBytes}`,
      );
    }
    if (bytes[0] !== WIRE_VERSION) {
      throw new CodecError(
        "UNSUPPORTED_VERSION",
        `frame has wire version ${bytes[0]}; this node supports version ${WIRE_VERSION} only`,
      );
    }
    if (bytes.byteLength === 1) throw new CodecError("MALFORMED_FRAME", "frame has a version byte but no message");

    // A plain Uint8Array view, whatever subclass came in (Node's Buffer.slice() does not copy).
    const body = new Uint8Array(bytes.buffer, bytes.byteOffset + 1, bytes.byteLength - 1);
    let root: unknown;
    try {
      root = this.#decoder.decode(body);
    } catch (error) {
      let text = errorText(error);
      if (text.includes("array length")) text += " (arrays are capped by maxEntries)";
      if (text.includes("UTF-8 byte length")) text += ` (strings are node ids or URLs, capped at ${Math.max(this.limits.maxIdLength, MAX_URL_BYTES)} bytes)`;
      throw new CodecError("MALFORMED_FRAME", `frame is not valid msgpack: ${text}`, { cause: error });
    }

    if (!Array.isArray(root)) {
      throw new CodecError("MALFORMED_FRAME", `expected a message array [type, from, to, term, ...], got ${describe(root)}`);
    }
    const tag: unknown = root[0];
    const layout = typeof tag === "number" ? BY_TAG[tag] : undefined;
    if (layout === undefined) throw new CodecError("MALFORMED_FRAME", `unknown message type tag ${describe(tag)}`);

    const msg: Record<string, unknown> = {
      type: layout.type,
      from: this.#id(root[1], layout.from),
      to: this.#id(root[2], layout.to),
      term: uint(root[3], layout.term),
    };
    for (let i = 0; i < layout.kinds.length; i++) {
      msg[layout.names[i]] = this.#decodeField(layout.kinds[i], root[HEADER + i], layout.paths[i]);
    }
    return msg as unknown as Message;
  }

  #encodeField(kind: Kind, value: unknown, path: string): unknown {
    switch (kind) {
      case "entries": {
        const entries = this.#list(value, path, "an array of entries");
        const wire = new Array<unknown>(entries.length);
        for (let i = 0; i < entries.length; i++) {
          const entry = record(entries[i], path, i, "an entry {index, term, type, data}");
          wire[i] = [
            uint(entry.index, path, i, "index"),
            uint(entry.term, path, i, "term"),
            entryTypeCode(entry.type, path, i),
            binary(entry.data, path, i, "data"),
          ];
        }
        return wire;
      }
      case "proposals": {
        const entries = this.#list(value, path, "an array of entries");
        const wire = new Array<unknown>(entries.length);
        for (let i = 0; i < entries.length; i++) {
          const entry = record(entries[i], path, i, "an entry {type, data}");
          wire[i] = [entryTypeCode(entry.type, path, i), binary(entry.data, path, i, "data")];
        }
        return wire;
      }
      case "meta": {
        const meta = record(value, path, -1, "snapshot metadata {index, term, conf}");
        const conf = record(meta.conf, `${path}.conf`, -1, "a ConfState {voters, learners, votersOutgoing}");
        const wire: unknown[] = [
          uint(meta.index, path, -1, "index"),
          uint(meta.term, path, -1, "term"),
          this.#ids(conf.voters, `${path}.conf.voters`),
          this.#ids(conf.learners, `${path}.conf.learners`),
          this.#ids(conf.votersOutgoing, `${path}.conf.votersOutgoing`),
        ];
        const urls = conf.urls === undefined ? [] : Object.entries(record(conf.urls, `${path}.conf.urls`, -1, "a map of ids to URLs")).flat();
        const promote = conf.promote === undefined ? [] : this.#ids(conf.promote, `${path}.conf.promote`);
        if (urls.length > 0 || promote.length > 0) wire.push(this.#urls(urls, `${path}.conf.urls`), promote);
        return wire;
      }
      case "bytes":
        return binary(value, path);
      default:
        return this.#scalar(kind, value, path);
    }
  }

  #decodeField(kind: Kind, value: unknown, path: string): unknown {
    switch (kind) {
      case "entries": {
        const wire = this.#list(value, path, "an array of entries");
        const entries = new Array<Entry>(wire.length);
        for (let i = 0; i < wire.length; i++) {
          const item = tuple(wire[i], path, i, 4, "an entry [index, term, type, data]");
          entries[i] = {
            index: uint(item[0], path, i, "index"),
            term: uint(item[1], path, i, "term"),
            type: entryTypeFromCode(item[2], path, i),
            data: binary(item[3], path, i, "data").slice(),
          };
        }
        return entries;
      }
      case "proposals": {
        const wire = this.#list(value, path, "an array of entries");
        const entries = new Array<ProposalEntry>(wire.length);
        for (let i = 0; i < wire.length; i++) {
          const item = tuple(wire[i], path, i, 2, "an entry [type, data]");
          entries[i] = {
            type: entryTypeFromCode(item[0], path, i),
            data: binary(item[1], path, i, "data").slice(),
          };
        }
        return entries;
      }
      case "meta": {
        const item = tuple(value, path, -1, 5, "snapshot metadata [index, term, voters, learners, votersOutgoing]");
        const meta: SnapshotMeta = {
          index: uint(item[0], path, -1, "index"),
          term: uint(item[1], path, -1, "term"),
          conf: {
            voters: this.#ids(item[2], `${path}.conf.voters`),
            learners: this.#ids(item[3], `${path}.conf.learners`),
            votersOutgoing: this.#ids(item[4], `${path}.conf.votersOutgoing`),
          },
        };
        if (item.length > 5) {
          const urls = this.#urls(item[5], `${path}.conf.urls`);
          if (urls.length > 0) {
            meta.conf.urls = {};
            for (let i = 0; i < urls.length; i += 2) meta.conf.urls[urls[i]] = urls[i + 1];
          }
        }
        if (item.length > 6) {
          const promote = this.#ids(item[6], `${path}.conf.promote`);
          if (promote.length > 0) meta.conf.promote = promote;
        }
        return meta;
      }
      case "bytes":
        return binary(value, path).slice();
      default:
        return this.#scalar(kind, value, path);
    }
  }

  /** Kinds whose wire form is their in-memory form. */
  #scalar(kind: Kind, value: unknown, path: string): unknown {
    switch (kind) {
      case "id":
        return this.#id(value, path);
      case "idOrNull":
        return value === null ? null : this.#id(value, path, -1, "a node id or null");
      case "uint":
        return uint(value, path);
      case "uintOrMinusOne":
        return value === -1 ? -1 : uint(value, path, -1, undefined, "a non-negative integer or -1");
      case "bool":
        if (typeof value !== "boolean") fail(path, "a boolean", value);
        return value;
      default:
        throw new Error(`codec schema bug: ${kind} at ${path} is not a scalar kind`);
    }
  }

  #id(value: unknown, path: string, index = -1, expected = "a node id (non-empty string)"): NodeId {
    if (typeof value !== "string" || value.length === 0) fail(where(path, index), expected, value);
    const length = utf8Length(value);
    if (length < 0) fail(where(path, index), "a node id of well-formed Unicode (it has a lone surrogate)", value);
    if (length > this.limits.maxIdLength) {
      const expected = `a node id of at most ${this.limits.maxIdLength} UTF-8 bytes (maxIdLength)`;
      fail(where(path, index), expected, value, `${length} bytes`);
    }
    return value;
  }

  #ids(value: unknown, path: string): NodeId[] {
    const ids = this.#list(value, path, "an array of node ids");
    for (let i = 0; i < ids.length; i++) this.#id(ids[i], path, i);
    // Decoded arrays are fresh from msgpack; encoded ones are only read. Either way, safe to share.
    return ids as NodeId[];
  }

  /** A flat [id, url, id, url, ...] list; URLs are bounded by MAX_URL_BYTES, whatever the codec limits. */
  #urls(value: unknown, path: string): string[] {
    const list = this.#list(value, path, "a flat array [id, url, ...]");
    if (list.length % 2 !== 0) fail(path, "an even number of items (id, url pairs)", value);
    for (let i = 0; i < list.length; i += 2) {
      this.#id(list[i], path, i);
      const url = list[i + 1];
      if (typeof url !== "string" || url.length === 0 || memberUrlProblem(url) !== null) {
        fail(where(path, i + 1), `a URL of 1 to ${MAX_URL_BYTES} UTF-8 bytes (MAX_URL_BYTES)`, url);
      }
    }
    return list as string[];
  }

  #list(value: unknown, path: string, expected: string): unknown[] {
    if (!Array.isArray(value)) fail(path, expected, value);
    if (value.length > this.limits.maxEntries) {
      fail(path, `at most ${this.limits.maxEntries} items (maxEntries)`, value);
    }
    return value;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both directions. A failing value is named by `path` ("AppendEntries.entries"),
// `index` (its item in that array, or -1) and `name` (its field within that item); the full name
// is only formatted on failure, so checking 100,000 entries builds no strings.
// ---------------------------------------------------------------------------------------------

function where(path: string, index: number, name?: string): string {
  const item = index < 0 ? path : `${path}[${index}]`;
  return name === undefined ? item : `${item}.${name}`;
}

function fail(path: string, expected: string, value: unknown, shown: string = describe(value)): never {
  throw new CodecError("MALFORMED_FRAME", `${path}: expected ${expected}, got ${shown}`);
}

function uint(value: unknown, path: string, index = -1, name?: string, expected: string = UINT): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    fail(where(path, index, name), expected, value);
  }
  return value === 0 ? 0 : value; // -0 (a float on the wire) becomes 0
}

function binary(value: unknown, path: string, index = -1, name?: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(where(path, index, name), "binary data (Uint8Array)", value);
  return value;
}

function record(value: unknown, path: string, index: number, expected: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    fail(where(path, index), expected, value);
  }
  return value as Record<string, unknown>;
}

/** `value` as a positional array of at least `length` elements (trailing extras are ignored). */
function tuple(value: unknown, path: string, index: number, length: number, expected: string): unknown[] {
  if (!Array.isArray(value) || value.length < length) fail(where(path, index), expected, value);
  return value;
}

function entryTypeCode(value: unknown, path: string, index: number): number {
  const code = ENTRY_TYPES.indexOf(value as EntryType);
  if (code < 0) fail(where(path, index, "type"), `one of ${ENTRY_TYPES.map((t) => `"${t}"`).join(", ")}`, value);
  return code;
}

function entryTypeFromCode(value: unknown, path: string, index: number): EntryType {
  const type = typeof value === "number" ? ENTRY_TYPES[value] : undefined;
  if (type === undefined) fail(where(path, index, "type"), `an entry type code 0..${ENTRY_TYPES.length - 1}`, value);
  return type;
}

/** A short, log-safe rendering of a value that failed a check. */
function describe(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)";
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    case "object":
      if (value instanceof Uint8Array) return `binary data of ${value.byteLength} bytes`;
      if (Array.isArray(value)) return `an array of ${value.length} items`;
      if (value instanceof Date) return "a msgpack timestamp";
      return "an object";
    default:
      return `a ${typeof value}`;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------
// Convenience functions over shared default-limit instances.
// ---------------------------------------------------------------------------------------------

const defaultCodec = new Codec();
/** The most recent codec built for custom limits; callers with fixed custom limits should hold their own Codec. */
let customCodec: Codec | undefined;

function codecFor(limits: Partial<CodecLimits> | undefined): Codec {
  if (limits === undefined) return defaultCodec;
  const wanted: CodecLimits = { ...DEFAULT_CODEC_LIMITS, ...limits };
  for (const codec of [defaultCodec, customCodec]) {
    if (
      codec !== undefined &&
      codec.limits.maxFrameBytes === wanted.maxFrameBytes &&
      codec.limits.maxEntries === wanted.maxEntries &&
      codec.limits.maxIdLength === wanted.maxIdLength
    ) {
      return codec;
    }
  }
  customCodec = new Codec(wanted);
  return customCodec;
}

/** Encodes `msg` as a frame (see the top of this file) with the default limits. */
export function encodeMessage(msg: Message): Uint8Array {
  return defaultCodec.encode(msg);
}

/**
 * Decodes and validates one frame; whatever `bytes` holds, throws only CodecError (invalid `limits`
 * are a RangeError). The result shares no memory with `bytes`.
 */
export function decodeMessage(bytes: Uint8Array, limits?: Partial<CodecLimits>): Message {
  return codecFor(limits).decode(bytes);
}
