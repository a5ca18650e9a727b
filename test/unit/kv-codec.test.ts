/**
 * The one-pass KV command codec (src/kv/command-codec.ts) against @msgpack/msgpack and the
 * general decoder: the bytes written are the library's, and the fast decoder never decides
 * differently from the general one (it may only decline, leaving the decision to it).
 */
import { Encoder } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCommonCommand } from "../../src/kv/command-codec.ts";
import { decodeKvCommand, decodeKvCommandGeneral, encodeKvCommand, MAX_CLIENT_ID_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES, type KvCommand } from "../../src/kv/kv.ts";

const LIMITS = { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: MAX_VALUE_BYTES, maxClientIdBytes: MAX_CLIENT_ID_BYTES };
const msgpack = new Encoder();

/** What the encoder wrote before it was hand-written: the library, field by field. */
function libraryBytes(c: KvCommand): Uint8Array {
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
  return msgpack.encode(out);
}

// Keys and client ids without lone surrogates (those are refused by the encoder), of every length
// class msgpack distinguishes (fixstr, str8, str16).
const text = (max: number): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }), fc.tuple(fc.integer({ min: 200, max }), fc.string({ minLength: 1, maxLength: 4 })).map(([n, s]) => s.repeat(Math.ceil(n / s.length)).slice(0, n)))
    .filter((s) => new TextEncoder().encode(s).length <= max && !/\p{Cs}/u.test(s));
// Large arrays are made from a seed byte: fast-check would draw (and shrink) every element.
const filled = (min: number, max: number): fc.Arbitrary<Uint8Array> =>
  fc.tuple(fc.integer({ min, max }), fc.nat(255)).map(([n, v]) => new Uint8Array(n).fill(v));
const bytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), filled(250, 300), filled(70_000, 70_001));
const session = fc.option(fc.record({ client: text(MAX_CLIENT_ID_BYTES), seq: fc.oneof(fc.nat(300), fc.nat(), fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, 2 ** 40)) }), { nil: undefined });
const command: fc.Arbitrary<KvCommand> = fc
  .tuple(
    fc.oneof(
      fc.record({ op: fc.constant("put" as const), key: text(MAX_KEY_BYTES), value: bytes }),
      fc.record({ op: fc.constant("delete" as const), key: text(MAX_KEY_BYTES) }),
      fc.record({ op: fc.constant("cas" as const), key: text(MAX_KEY_BYTES), expect: fc.option(bytes, { nil: null }), value: fc.option(bytes, { nil: null }) }),
    ),
    session,
  )
  .map(([c, s]) => (s ? { ...c, ...s } : c) as KvCommand);

/** A command with its binaries as hex: vitest's deep equality is slow on 70 kB typed arrays. */
function norm(c: KvCommand | string | null): unknown {
  if (c === null || typeof c === "string") return c;
  const hex = (v: Uint8Array | null): string | null => (v === null ? null : `${v.constructor.name}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`);
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v instanceof Uint8Array || v === null ? hex(v) : v]));
}

/** The general decoder's verdict (normalised): the command, or the error message. */
function general(b: Uint8Array): unknown {
  try {
    return norm(decodeKvCommandGeneral(b));
  } catch (e) {
    return (e as Error).message;
  }
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

describe("the hand-written KV command codec", () => {
  it("writes exactly the bytes @msgpack/msgpack wrote for every command", () => {
    fc.assert(
      fc.property(command, (c) => {
        expect(hexOf(encodeKvCommand(c))).toBe(hexOf(libraryBytes(c)));
      }),
      { numRuns: 400 },
    );
  });

  it("reads every command it writes in one pass, to what the general decoder reads", () => {
    fc.assert(
      fc.property(command, (c) => {
        const b = encodeKvCommand(c);
        const fast = decodeCommonCommand(b, LIMITS);
        expect(fast).not.toBeNull();
        expect(norm(fast)).toEqual(general(b));
        expect(norm(decodeKvCommand(b))).toEqual(norm(c));
      }),
      { numRuns: 400 },
    );
  });

  it("on altered bytes, either declines or agrees with the general decoder", () => {
    const altered = fc.tuple(command, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), fc.nat(), fc.boolean()).map(([c, flips, cut, truncate]) => {
      const b = encodeKvCommand(c).slice();
      for (const [at, v] of flips) b[at % b.length] = v;
      return truncate ? b.subarray(0, cut % (b.length + 1)) : b;
    });
    let agreed = 0;
    fc.assert(
      fc.property(altered, (b) => {
        const fast = decodeCommonCommand(b, LIMITS);
        if (fast === null) return;
        agreed++;
        expect(general(b)).toEqual(norm(fast));
      }),
      { numRuns: 3000 },
    );
    // Some alterations (of a value byte, say) leave a valid command: the fast path was exercised.
    expect(agreed).toBeGreaterThan(100);
  });

  it("declines other encodings the general decoder accepts, which then decode as before", () => {
    const cases: Record<string, unknown>[] = [
      { key: "k", op: "put", value: new Uint8Array([1]) }, // other field order: still read in one pass
      { op: "put", key: "k", value: "text value" }, // a str where bytes are expected
      { op: "put", key: "k", value: new Uint8Array([1]), client: "c", seq: 1.0 },
      { op: "put", key: "k", value: new Uint8Array([1]), client: "c", seq: 2 ** 53 - 1 },
    ];
    for (const raw of cases) {
      const b = msgpack.encode(raw);
      const g = general(b);
      expect(typeof g).toBe("object");
      expect(norm(decodeKvCommand(b))).toEqual(g);
    }
    // Repeated fields: the general decoder keeps the last; the fast path leaves it to it.
    const repeated = Uint8Array.from([0x83, 0xa2, 0x6f, 0x70, 0xa3, 0x70, 0x75, 0x74, 0xa3, 0x6b, 0x65, 0x79, 0xa1, 0x61, 0xa3, 0x6b, 0x65, 0x79, 0xa1, 0x62]);
    expect(decodeCommonCommand(repeated, LIMITS)).toBeNull();
  });

  it("refuses what the general decoder refuses", () => {
    for (const raw of [
      { op: "put", key: "", value: new Uint8Array(1) },
      { op: "put", key: "k" },
      { op: "put", key: "k", value: null },
      { op: "delete", key: "k", value: new Uint8Array(1) },
      { op: "cas", key: "k", value: null },
      { op: "put", key: "k", value: new Uint8Array(1), client: "c" },
      { op: "put", key: "k", value: new Uint8Array(1), seq: 1 },
      { op: "put", key: "k".repeat(MAX_KEY_BYTES + 1), value: new Uint8Array(1) },
      { op: "get", key: "k" },
    ]) {
      const b = msgpack.encode(raw);
      expect(decodeCommonCommand(b, LIMITS), JSON.stringify(raw)).toBeNull();
      expect(() => decodeKvCommand(b)).toThrow(/malformed KV command/);
    }
    const invalidUtf8 = Uint8Array.from([0x83, 0xa2, 0x6f, 0x70, 0xa3, 0x70, 0x75, 0x74, 0xa3, 0x6b, 0x65, 0x79, 0xa1, 0xff, 0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65, 0xc4, 0x00]);
    expect(decodeCommonCommand(invalidUtf8, LIMITS)).toBeNull();
    expect(() => decodeKvCommand(invalidUtf8)).toThrow(/not valid UTF-8/);
  });
});
