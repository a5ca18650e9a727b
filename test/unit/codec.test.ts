import fc from "fast-check";
import { describe, it, expect } from "vitest";
import { decode as msgpackDecode, encode as msgpack } from "@msgpack/msgpack";
import {
  Codec,
  CodecError,
  DEFAULT_CODEC_LIMITS,
  WIRE_VERSION,
  decodeMessage,
  encodeMessage,
} from "../../src/transport/codec.ts";
import type { Entry, Message, MessageType } from "../../src/core/types.ts";
import { MAX_URL_BYTES } from "../../src/core/member-url.ts";
import { fuzzParams } from "./fuzz-settings.ts";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const entries: Entry[] = [
  { index: 41, term: 3, type: "noop", data: new Uint8Array(0) },
  { index: 42, term: 3, type: "normal", data: ALL_BYTES },
  { index: 43, term: 4, type: "config", data: text('{"add":"n4"}') },
  { index: 44, term: 4, type: "normal", data: new Uint8Array(70_000).fill(0xab) },
];

/** One realistic message of every type; the `satisfies` keeps this list complete. */
const SAMPLES = {
  RequestVote: {
    type: "RequestVote", from: "n1", to: "n2", term: 5,
    lastLogIndex: 1_234_567, lastLogTerm: 4, preVote: true, transfer: false,
  },
  RequestVoteResponse: { type: "RequestVoteResponse", from: "n2", to: "n1", term: 5, voteGranted: true, preVote: true },
  AppendEntries: {
    type: "AppendEntries", from: "nœud-東京-🦀", to: "n2", term: 4,
    prevLogIndex: 40, prevLogTerm: 3, entries, leaderCommit: 39,
  },
  AppendEntriesResponse: {
    type: "AppendEntriesResponse", from: "n2", to: "nœud-東京-🦀", term: 4,
    success: false, matchIndex: 40, hintIndex: 17, hintTerm: 2,
  },
  Heartbeat: { type: "Heartbeat", from: "n1", to: "n3", term: 9, leaderCommit: 2 ** 53 - 1, readRound: 12 },
  HeartbeatResponse: { type: "HeartbeatResponse", from: "n3", to: "n1", term: 9, readRound: 0 },
  InstallSnapshot: {
    type: "InstallSnapshot", from: "n1", to: "learner-ü", term: 6,
    meta: { index: 10_000, term: 5, conf: { voters: ["n1", "n2", "n3"], learners: ["learner-ü"], votersOutgoing: [] } },
    offset: 1_048_576, data: ALL_BYTES, done: false,
  },
  InstallSnapshotResponse: {
    type: "InstallSnapshotResponse", from: "learner-ü", to: "n1", term: 6,
    snapshotIndex: 10_000, nextOffset: -1, matchIndex: 0, done: false,
  },
  TimeoutNow: { type: "TimeoutNow", from: "n1", to: "n2", term: 0 },
  ForwardProposal: {
    type: "ForwardProposal", from: "n3", to: "n1", term: 9, requestId: 77,
    entries: [{ type: "normal", data: ALL_BYTES }, { type: "config", data: new Uint8Array(0) }],
  },
  ForwardProposalResponse: {
    type: "ForwardProposalResponse", from: "n1", to: "n3", term: 9,
    requestId: 77, index: 501, entryTerm: 9, rejected: false, leaderId: "n1",
  },
  ReadIndex: { type: "ReadIndex", from: "n3", to: "n1", term: 9, requestId: 4_000_000_000 },
  ReadIndexResponse: {
    type: "ReadIndexResponse", from: "n1", to: "n3", term: 9, requestId: 4_000_000_000, index: 0, rejected: true, leaderId: null,
  },
} satisfies { [T in MessageType]: Extract<Message, { type: T }> };

const MESSAGES: Message[] = Object.values(SAMPLES);
/** The samples without the 70 KB entry, so that fuzzing spends its time on structure. */
const SMALL_MESSAGES: Message[] = MESSAGES.map((m) =>
  m.type === "AppendEntries" ? { ...m, entries: m.entries.filter((e) => e.data.length < 1000) } : m,
);

/** A frame built by hand: the version byte, then any msgpack value. */
function rawFrame(value: unknown, version = WIRE_VERSION): Uint8Array {
  const body = msgpack(value);
  const frame = new Uint8Array(body.length + 1);
  frame[0] = version;
  frame.set(body, 1);
  return frame;
}

/** The wire array of a valid AppendEntries, for tests that corrupt one field. */
function appendEntriesWire(count: number): unknown[] {
  const wire = [3, "n1", "n2", 4, 40, 3, [] as unknown[], 39];
  for (let i = 0; i < count; i++) (wire[6] as unknown[]).push([41 + i, 3, 0, bytes(i)]);
  return wire;
}

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    return error as CodecError;
  }
  throw new Error("expected a CodecError, but nothing was thrown");
}

// An independent statement of what a valid decoded Message is (not the codec's own schema).
const uint = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const id = (v: unknown): boolean =>
  typeof v === "string" && v.length > 0 && !LONE_SURROGATE.test(v) && text(v).length <= DEFAULT_CODEC_LIMITS.maxIdLength;
const bool = (v: unknown): boolean => typeof v === "boolean";
const bin = (v: unknown): boolean => v instanceof Uint8Array && v.constructor === Uint8Array;
const entryType = (v: unknown): boolean => v === "normal" || v === "noop" || v === "config";
const keysAre = (v: object, keys: string[]): boolean => Object.keys(v).sort().join() === [...keys].sort().join();
const ids = (v: unknown): boolean => Array.isArray(v) && v.every(id);
const VALID: Record<MessageType, Record<string, (v: unknown) => boolean>> = {
  RequestVote: { lastLogIndex: uint, lastLogTerm: uint, preVote: bool, transfer: bool },
  RequestVoteResponse: { voteGranted: bool, preVote: bool },
  AppendEntries: {
    prevLogIndex: uint, prevLogTerm: uint, leaderCommit: uint,
    entries: (v) => Array.isArray(v) && v.every((e: Entry) =>
      keysAre(e, ["index", "term", "type", "data"]) && uint(e.index) && uint(e.term) && entryType(e.type) && bin(e.data)),
  },
  AppendEntriesResponse: { success: bool, matchIndex: uint, hintIndex: uint, hintTerm: uint },
  Heartbeat: { leaderCommit: uint, readRound: uint },
  HeartbeatResponse: { readRound: uint },
  InstallSnapshot: {
    offset: uint, data: bin, done: bool,
    meta: (v) => {
      const m = v as { index: unknown; term: unknown; conf: Record<string, unknown> };
      return keysAre(m, ["index", "term", "conf"]) && uint(m.index) && uint(m.term) &&
        keysAre(m.conf, ["voters", "learners", "votersOutgoing"]) &&
        ids(m.conf.voters) && ids(m.conf.learners) && ids(m.conf.votersOutgoing);
    },
  },
  InstallSnapshotResponse: { snapshotIndex: uint, nextOffset: (v) => v === -1 || uint(v), matchIndex: uint, done: bool },
  TimeoutNow: {},
  ForwardProposal: {
    requestId: uint,
    entries: (v) => Array.isArray(v) && v.every((e: { type: unknown; data: unknown }) =>
      keysAre(e, ["type", "data"]) && entryType(e.type) && bin(e.data)),
  },
  ForwardProposalResponse: {
    requestId: uint, index: uint, entryTerm: uint, rejected: bool, leaderId: (v) => v === null || id(v),
  },
  ReadIndex: { requestId: uint },
  ReadIndexResponse: { requestId: uint, index: uint, rejected: bool, leaderId: (v) => v === null || id(v) },
};

function isValidMessage(m: unknown): boolean {
  if (typeof m !== "object" || m === null) return false;
  const msg = m as Record<string, unknown>;
  const fields = VALID[msg.type as MessageType];
  if (fields === undefined || !Object.hasOwn(VALID, msg.type as string)) return false;
  return (
    keysAre(msg, ["type", "from", "to", "term", ...Object.keys(fields)]) &&
    id(msg.from) && id(msg.to) && uint(msg.term) &&
    Object.entries(fields).every(([name, check]) => check(msg[name]))
  );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe("codec: round trips", () => {
  it("the samples cover all 13 message types and are valid", () => {
    expect(MESSAGES).toHaveLength(13);
    for (const m of MESSAGES) expect(isValidMessage(m), m.type).toBe(true);
  });

  it.each(MESSAGES.map((m) => [m.type, m] as const))("%s decodes to what was encoded", (_type, message) => {
    const frame = encodeMessage(message);
    expect(frame[0]).toBe(WIRE_VERSION);
    const decoded = decodeMessage(frame);
    expect(decoded).toEqual(message);
    expect(isValidMessage(decoded)).toBe(true);
  });

  it("an AppendEntries with no entries (a probe) round-trips", () => {
    const probe: Message = { ...SAMPLES.AppendEntries, entries: [] };
    expect(decodeMessage(encodeMessage(probe))).toEqual(probe);
  });

  it("binary data keeps every byte value and comes back as a plain Uint8Array", () => {
    const decoded = decodeMessage(encodeMessage(SAMPLES.AppendEntries)) as typeof SAMPLES.AppendEntries;
    expect(decoded.entries[1].data).toEqual(ALL_BYTES);
    for (const entry of decoded.entries) expect(entry.data.constructor).toBe(Uint8Array);
  });

  it("unicode ids round-trip, including a 4-byte character", () => {
    const message: Message = { type: "TimeoutNow", from: "节点-🦀", to: "ñ", term: 1 };
    expect(decodeMessage(encodeMessage(message))).toEqual(message);
  });

  it("a Codec instance with custom limits round-trips too", () => {
    const codec = new Codec({ maxEntries: 4, maxIdLength: 32 });
    expect(codec.decode(codec.encode(SAMPLES.AppendEntries))).toEqual(SAMPLES.AppendEntries);
  });

  it("decoders ignore trailing fields, so a later revision may append one", () => {
    const frame = rawFrame([9, "n1", "n2", 3, "a future field"]);
    expect(decodeMessage(frame)).toEqual({ type: "TimeoutNow", from: "n1", to: "n2", term: 3 });
  });
});

describe("codec: decoded binary is a copy", () => {
  it.each(["AppendEntries", "InstallSnapshot", "ForwardProposal"] as const)(
    "%s: overwriting the input buffer after decoding leaves the message unchanged",
    (type) => {
      const frame = encodeMessage(SAMPLES[type]);
      const decoded = decodeMessage(frame);
      frame.fill(0);
      expect(decoded).toEqual(SAMPLES[type]);
    },
  );

  it("copies even when the input is a Node Buffer, whose slice() would be a view", () => {
    const frame = Buffer.from(encodeMessage(SAMPLES.InstallSnapshot));
    const decoded = decodeMessage(frame) as typeof SAMPLES.InstallSnapshot;
    frame.fill(0);
    expect(decoded.data).toEqual(ALL_BYTES);
    expect(decoded.data.constructor).toBe(Uint8Array);
  });

  it("decodes a frame that sits at an offset inside a larger buffer", () => {
    const frame = encodeMessage(SAMPLES.AppendEntries);
    const big = new Uint8Array(frame.length + 20);
    big.set(frame, 10);
    expect(decodeMessage(big.subarray(10, 10 + frame.length))).toEqual(SAMPLES.AppendEntries);
  });
});

describe("codec: compactness", () => {
  it("an AppendEntries with 10 entries of 100 bytes encodes to under 1,300 bytes", () => {
    const message: Message = {
      type: "AppendEntries", from: "n1", to: "n2", term: 7, prevLogIndex: 1_000_000, prevLogTerm: 7,
      leaderCommit: 1_000_000,
      entries: Array.from({ length: 10 }, (_, i) => ({
        index: 1_000_001 + i, term: 7, type: "normal" as const, data: new Uint8Array(100).fill(i),
      })),
    };
    const size = encodeMessage(message).length;
    // Measured: 1,122 bytes = 1,000 payload + 122 framing: 22 for the message (version 1, array
    // header 1, tag 1, ids 3+3, term 1, prevLogIndex 5, prevLogTerm 1, entries header 1,
    // leaderCommit 5) and 10 per entry (array header 1, index 5, term 1, type 1, bin header 2).
    expect(size).toBe(1122);
    expect(size).toBeLessThan(1300);
  });

  it("a heartbeat is a handful of bytes", () => {
    expect(encodeMessage(SAMPLES.HeartbeatResponse).length).toBeLessThanOrEqual(12);
  });
});

describe("codec: malformed frames are rejected with CodecError", () => {
  it("empty input", () => {
    const error = codecError(() => decodeMessage(new Uint8Array(0)));
    expect(error.code).toBe("MALFORMED_FRAME");
    expect(error.message).toMatch(/empty/);
  });

  it("a version byte with nothing after it", () => {
    expect(codecError(() => decodeMessage(bytes(WIRE_VERSION))).code).toBe("MALFORMED_FRAME");
  });

  it("a wrong version byte, naming the version received and the one supported", () => {
    for (const version of [0, 2, 0x93, 255]) {
      const frame = encodeMessage(SAMPLES.Heartbeat);
      frame[0] = version;
      const error = codecError(() => decodeMessage(frame));
      expect(error.code).toBe("UNSUPPORTED_VERSION");
      expect(error.message).toContain(`version ${version}`);
      expect(error.message).toContain(`supports version ${WIRE_VERSION}`);
    }
  });

  it("an oversized frame, before looking inside it", () => {
    const frame = encodeMessage(SAMPLES.InstallSnapshot);
    const error = codecError(() => decodeMessage(frame, { maxFrameBytes: frame.length - 1 }));
    expect(error.code).toBe("FRAME_TOO_LARGE");
    expect(error.message).toContain(`${frame.length} bytes`);
    // Garbage with a bad version byte is still reported as too large: size is checked first.
    const garbage = new Uint8Array(101).fill(0xff);
    expect(codecError(() => decodeMessage(garbage, { maxFrameBytes: 100 })).code).toBe("FRAME_TOO_LARGE");
    expect(decodeMessage(frame, { maxFrameBytes: frame.length })).toEqual(SAMPLES.InstallSnapshot);
  });

  it("a message that would exceed maxFrameBytes is refused at the sender", () => {
    const codec = new Codec({ maxFrameBytes: 200 });
    const error = codecError(() => codec.encode(SAMPLES.InstallSnapshot));
    expect(error.code).toBe("FRAME_TOO_LARGE");
    expect(error.message).toContain("InstallSnapshot");
  });

  it("every truncation of every valid frame", () => {
    for (const message of MESSAGES) {
      const frame = encodeMessage(message);
      const step = frame.length > 2000 ? 97 : 1; // the 70 KB entry: sample prefixes, keep the ends
      for (let n = 0; n < frame.length; n += n < 300 || n > frame.length - 300 ? 1 : step) {
        const error = codecError(() => decodeMessage(frame.subarray(0, n)));
        expect(error.code, `${message.type} cut to ${n} bytes`).toBe("MALFORMED_FRAME");
      }
    }
  });

  it("trailing bytes after the message", () => {
    const frame = encodeMessage(SAMPLES.TimeoutNow);
    const longer = new Uint8Array(frame.length + 1);
    longer.set(frame);
    const error = codecError(() => decodeMessage(longer));
    expect(error.code).toBe("MALFORMED_FRAME");
    expect(error.message).toMatch(/Extra 1 of/);
  });

  it("invalid msgpack, wrapped with msgpack's explanation", () => {
    const error = codecError(() => decodeMessage(bytes(WIRE_VERSION, 0xc1))); // 0xc1 is never used
    expect(error.code).toBe("MALFORMED_FRAME");
    expect(error.message).toMatch(/not valid msgpack/);
    expect(error.cause).toBeDefined();
  });

  it.each([
    ["a number", 42],
    ["a string", "AppendEntries"],
    ["nil", null],
    ["a map", { type: "TimeoutNow", from: "n1", to: "n2", term: 1 }],
    ["binary", bytes(1, 2, 3)],
    ["an empty map", {}],
  ])("a root that is %s, not a message array", (_name, root) => {
    expect(codecError(() => decodeMessage(rawFrame(root))).code).toBe("MALFORMED_FRAME");
  });

  it("an unknown type tag", () => {
    for (const tag of [0, 14, 99, -1, 1.5, "AppendEntries", null]) {
      const error = codecError(() => decodeMessage(rawFrame([tag, "n1", "n2", 1])));
      expect(error.message).toContain("unknown message type tag");
    }
  });

  it("input that is not a Uint8Array at all", () => {
    for (const input of [null, undefined, "frame", [1, 2], new ArrayBuffer(4)]) {
      expect(codecError(() => decodeMessage(input as unknown as Uint8Array)).code).toBe("MALFORMED_FRAME");
    }
  });
});

describe("codec: every field is validated, and errors name it", () => {
  const cases: [name: string, wire: unknown[], message: string][] = [
    [
      "entry term is a string",
      (() => { const w = appendEntriesWire(5); (w[6] as unknown[][])[3][1] = "x"; return w; })(),
      'AppendEntries.entries[3].term: expected a non-negative integer, got "x"',
    ],
    [
      "entry index is negative",
      (() => { const w = appendEntriesWire(2); (w[6] as unknown[][])[1][0] = -5; return w; })(),
      "AppendEntries.entries[1].index: expected a non-negative integer, got -5",
    ],
    [
      "entry type code out of range",
      (() => { const w = appendEntriesWire(1); (w[6] as unknown[][])[0][2] = 3; return w; })(),
      "AppendEntries.entries[0].type: expected an entry type code 0..2, got 3",
    ],
    [
      "entry data is a string, not binary",
      (() => { const w = appendEntriesWire(1); (w[6] as unknown[][])[0][3] = "abc"; return w; })(),
      'AppendEntries.entries[0].data: expected binary data (Uint8Array), got "abc"',
    ],
    [
      "entry is too short",
      (() => { const w = appendEntriesWire(1); (w[6] as unknown[][])[0] = [41, 3, 0]; return w; })(),
      "AppendEntries.entries[0]: expected an entry [index, term, type, data], got an array of 3 items",
    ],
    [
      "entries is not an array",
      (() => { const w = appendEntriesWire(0); w[6] = null; return w; })(),
      "AppendEntries.entries: expected an array of entries, got null",
    ],
    ["term is a float", [9, "n1", "n2", 1.5], "TimeoutNow.term: expected a non-negative integer, got 1.5"],
    ["term is beyond 2^53", [9, "n1", "n2", 2 ** 60], "TimeoutNow.term: expected a non-negative integer"],
    ["from is empty", [9, "", "n2", 1], 'TimeoutNow.from: expected a node id (non-empty string), got ""'],
    ["to is a number", [9, "n1", 2, 1], "TimeoutNow.to: expected a node id (non-empty string), got 2"],
    ["a field is missing", [5, "n1", "n2", 1, 7], "Heartbeat.readRound: expected a non-negative integer, got nothing"],
    ["a boolean is a number", [2, "n2", "n1", 5, 1, true], "RequestVoteResponse.voteGranted: expected a boolean, got 1"],
    [
      "leaderId is a number",
      [13, "n1", "n3", 9, 1, 0, true, 7],
      "ReadIndexResponse.leaderId: expected a node id or null, got 7",
    ],
    [
      "nextOffset below -1",
      [8, "n2", "n1", 6, 10, -2, 0, false],
      "InstallSnapshotResponse.nextOffset: expected a non-negative integer or -1, got -2",
    ],
    [
      "a voter id is not a string",
      [7, "n1", "n2", 6, [10, 5, ["n1", 2], [], []], 0, bytes(), true],
      "InstallSnapshot.meta.conf.voters[1]: expected a node id (non-empty string), got 2",
    ],
    [
      "meta is missing its conf",
      [7, "n1", "n2", 6, [10, 5], 0, bytes(), true],
      "InstallSnapshot.meta: expected snapshot metadata [index, term, voters, learners, votersOutgoing], got an array of 2 items",
    ],
    [
      "snapshot data is missing",
      [7, "n1", "n2", 6, [10, 5, ["n1"], [], []], 0],
      "InstallSnapshot.data: expected binary data (Uint8Array), got nothing",
    ],
    [
      "a proposal has an unknown type",
      [10, "n3", "n1", 9, 1, [[0, bytes(1)], [7, bytes(2)]]],
      "ForwardProposal.entries[1].type: expected an entry type code 0..2, got 7",
    ],
  ];

  it.each(cases)("%s", (_name, wire, message) => {
    const error = codecError(() => decodeMessage(rawFrame(wire)));
    expect(error.code).toBe("MALFORMED_FRAME");
    expect(error.message).toContain(message);
  });

  it("the unmodified wire arrays used above are valid", () => {
    expect(isValidMessage(decodeMessage(rawFrame(appendEntriesWire(5))))).toBe(true);
    expect(decodeMessage(rawFrame([8, "n2", "n1", 6, 10, -1, 0, false]))).toMatchObject({ nextOffset: -1 });
  });

  it("an id longer than maxIdLength is rejected on both sides", () => {
    const long = "n".repeat(DEFAULT_CODEC_LIMITS.maxIdLength + 1);
    expect(codecError(() => decodeMessage(rawFrame([9, long, "n2", 1]))).message).toMatch(/maxStrLength|maxIdLength/);
    const error = codecError(() => encodeMessage({ type: "TimeoutNow", from: long, to: "n2", term: 1 }));
    expect(error.message).toBe(`TimeoutNow.from: expected a node id of at most 256 UTF-8 bytes (maxIdLength), got 257 bytes`);
    // The limit counts UTF-8 bytes, not characters: 64 crabs are 256 bytes, 65 are too many.
    expect(() => encodeMessage({ type: "TimeoutNow", from: "🦀".repeat(64), to: "n2", term: 1 })).not.toThrow();
    expect(codecError(() => encodeMessage({ type: "TimeoutNow", from: "🦀".repeat(65), to: "n2", term: 1 })).message)
      .toContain("got 260 bytes");
  });

  it("a SnapshotMeta carries member URLs of up to MAX_URL_BYTES both ways, whatever maxIdLength is, and refuses longer ones", () => {
    const url = (bytes: number): string => `http://h/${"p".repeat(bytes - "http://h/".length)}`;
    const snapshot = (u: string): Message => ({
      ...SAMPLES.InstallSnapshot,
      meta: { index: 10, term: 2, conf: { voters: ["n1"], learners: ["learner-ü"], votersOutgoing: [], urls: { "learner-ü": u } } },
    });
    for (const codec of [new Codec(), new Codec({ maxIdLength: 32 })]) {
      const longest = snapshot(url(MAX_URL_BYTES));
      expect(codec.decode(codec.encode(longest))).toEqual(longest);
      const tooLong = snapshot(url(MAX_URL_BYTES + 1));
      expect(codecError(() => codec.encode(tooLong)).message).toContain("expected a URL of 1 to 2048 UTF-8 bytes (MAX_URL_BYTES)");
      // The same frame built by hand (as a peer without the check would send it) is refused on decode.
      const wire = [7, "n1", "learner-ü", 6, [10, 2, ["n1"], ["learner-ü"], [], ["learner-ü", url(MAX_URL_BYTES + 1)], []], 0, new Uint8Array(1), true];
      expect(codecError(() => codec.decode(rawFrame(wire))).message).toBe(
        "frame is not valid msgpack: Max length exceeded: UTF-8 byte length (2049) > maxStrLength (2048) (strings are node ids or URLs, capped at 2048 bytes)",
      );
    }
  });

  it("invalid UTF-8 in an id decodes only to an id that re-encodes", () => {
    // fixstr of 2 bytes: a lone high surrogate encoded CESU-style, and a stray continuation byte.
    for (const raw of [bytes(0xa3, 0xed, 0xa0, 0x80), bytes(0xa2, 0x80, 0x80), bytes(0xa1, 0xff)]) {
      const frame = new Uint8Array([WIRE_VERSION, 0x94, 9, ...raw, 0xa2, 0x6e, 0x32, 1]);
      try {
        const decoded = decodeMessage(frame);
        expect(isValidMessage(decoded)).toBe(true);
        expect(decodeMessage(encodeMessage(decoded))).toEqual(decoded);
      } catch (error) {
        expect(error).toBeInstanceOf(CodecError);
      }
    }
  });
});

describe("codec: maxEntries", () => {
  it("rejects more entries than maxEntries, and accepts exactly maxEntries", () => {
    for (const maxEntries of [5, 100]) {
      const frame = rawFrame(appendEntriesWire(maxEntries + 1));
      const error = codecError(() => decodeMessage(frame, { maxEntries }));
      expect(error.code).toBe("MALFORMED_FRAME");
      expect(error.message).toMatch(/maxEntries/);
      expect(decodeMessage(rawFrame(appendEntriesWire(maxEntries)), { maxEntries })).toMatchObject({ type: "AppendEntries" });
    }
    expect(codecError(() => decodeMessage(rawFrame(appendEntriesWire(6)), { maxEntries: 5 })).message).toBe(
      "AppendEntries.entries: expected at most 5 items (maxEntries), got an array of 6 items",
    );
  });

  it("the sender refuses to encode more entries than maxEntries", () => {
    const codec = new Codec({ maxEntries: 3 });
    const error = codecError(() => codec.encode(SAMPLES.AppendEntries));
    expect(error.message).toContain("AppendEntries.entries: expected at most 3 items (maxEntries)");
  });

  it("a tiny frame declaring a huge array is refused without allocating it", () => {
    // array32 header claiming 2^32-1 elements: 6 bytes in total.
    const error = codecError(() => decodeMessage(bytes(WIRE_VERSION, 0xdd, 0xff, 0xff, 0xff, 0xff)));
    expect(error.message).toMatch(/array length/);
  });
});

describe("codec: encode validates what it sends", () => {
  it.each([
    ["term is NaN", { ...SAMPLES.TimeoutNow, term: NaN }, "TimeoutNow.term: expected a non-negative integer, got NaN"],
    ["an entry type is unknown", { ...SAMPLES.AppendEntries, entries: [{ ...entries[0], type: "bogus" }] },
      'AppendEntries.entries[0].type: expected one of "normal", "noop", "config", got "bogus"'],
    ["an id has a lone surrogate", { ...SAMPLES.TimeoutNow, to: "n\uD800" }, "TimeoutNow.to: expected a node id of well-formed Unicode"],
    ["the type is unknown", { ...SAMPLES.TimeoutNow, type: "Gossip" }, 'cannot encode: unknown message type "Gossip"'],
    ["snapshot data is not binary", { ...SAMPLES.InstallSnapshot, data: [1, 2] },
      "InstallSnapshot.data: expected binary data (Uint8Array), got an array of 2 items"],
  ])("refuses a message where %s", (_name, message, text) => {
    const error = codecError(() => encodeMessage(message as unknown as Message));
    expect(error.message).toContain(text);
  });

  it("an encode failure leaves the codec usable", () => {
    codecError(() => encodeMessage({ ...SAMPLES.TimeoutNow, term: -1 }));
    expect(decodeMessage(encodeMessage(SAMPLES.Heartbeat))).toEqual(SAMPLES.Heartbeat);
  });
});

describe("fuzz: codec", () => {
  /** Decoding anything either throws CodecError or yields a valid message that survives a round trip. */
  function check(frame: Uint8Array, what: string): "ok" | "rejected" {
    let decoded: Message;
    try {
      decoded = decodeMessage(frame);
    } catch (error) {
      if (!(error instanceof CodecError)) throw new Error(`${what}: threw a non-CodecError: ${String(error)}`);
      expect(["MALFORMED_FRAME", "FRAME_TOO_LARGE", "UNSUPPORTED_VERSION"]).toContain(error.code);
      expect(error.message.length).toBeGreaterThan(0);
      return "rejected";
    }
    if (!isValidMessage(decoded)) throw new Error(`${what}: returned an invalid message ${JSON.stringify(decoded)}`);
    expect(decodeMessage(encodeMessage(decoded)), what).toEqual(decoded);
    return "ok";
  }

  it("random byte strings, mostly with the version byte, an array header and a type tag up front", () => {
    const head = fc.tuple(
      fc.oneof({ weight: 9, arbitrary: fc.constant(WIRE_VERSION) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
      fc.oneof(fc.integer({ min: 0x90, max: 0x99 }), fc.integer({ min: 0, max: 255 })),
      fc.oneof(fc.integer({ min: 1, max: 13 }), fc.integer({ min: 0, max: 255 })),
    );
    fc.assert(
      fc.property(head, fc.uint8Array({ maxLength: 48 }), fc.integer({ min: 0, max: 3 }), ([a, b, c], rest, keep) => {
        const frame = Uint8Array.from([a, b, c, ...rest].slice(0, keep === 3 ? undefined : keep));
        check(frame, `[${frame.join(",")}]`);
      }),
      fuzzParams(2000),
    );
  });

  it("single-byte mutations of valid frames", () => {
    let accepted = 0;
    const mutation = fc.record({
      message: fc.constantFrom(...SMALL_MESSAGES),
      // Half of the mutations hit the first 64 bytes, where the structure is.
      near: fc.boolean(),
      position: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(mutation, ({ message, near, position, byte }) => {
        const frame = encodeMessage(message).slice();
        const at = Math.floor(position * (near ? Math.min(64, frame.length) : frame.length));
        frame[at] = byte;
        if (check(frame, `${message.type} with byte ${at} = ${byte}`) === "ok") accepted++;
      }),
      fuzzParams(2000),
    );
    expect(accepted).toBeGreaterThan(0); // mutations inside payloads stay valid: the check above saw real messages
  });

  it("random msgpack values shaped like messages", () => {
    const { value } = fc.letrec<{ value: unknown; leaf: unknown }>((tie) => ({
      leaf: fc.oneof(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: -2, max: 0 }),
        fc.constantFrom(1.5, -0, 2 ** 53, 2 ** 64, NaN, Infinity, 4_000_000_000),
        fc.constantFrom("", "n1", "n2", "🦀", "x".repeat(300)),
        fc.string({ maxLength: 8 }),
        fc.boolean(),
        fc.constant(null),
        fc.uint8Array({ maxLength: 5 }),
        fc.constantFrom(0, 1, 2, 3),
        fc.constant(new Date(0)),
      ),
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        tie("leaf"),
        fc.array(tie("value"), { maxLength: 5 }),
        fc.record({ k: tie("value") }),
      ),
    }));
    let accepted = 0;
    const edit = fc.record({ at: fc.nat(20), nested: fc.boolean(), index: fc.nat(20), value });
    fc.assert(
      fc.property(fc.constantFrom(...SMALL_MESSAGES), fc.array(edit, { minLength: 1, maxLength: 3 }), (message, edits) => {
        // Start from the valid wire array and replace a few elements (possibly nested).
        const wire = (msgpackDecode(encodeMessage(message).subarray(1)) as unknown[]).slice();
        for (const e of edits) {
          const at = e.at % (wire.length + 1);
          const target = Array.isArray(wire[at]) && e.nested ? (wire[at] as unknown[]) : wire;
          target[e.index % (target.length + 1)] = e.value;
        }
        if (check(rawFrame(wire), `shaped ${message.type}`) === "ok") accepted++;
      }),
      fuzzParams(2000),
    );
    expect(accepted).toBeGreaterThan(0);
  });
});

