import { encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import type { Entry } from "../../src/core/types.ts";
import { MeshraftError } from "../../src/errors.ts";
import {
  decodeKvCommand,
  encodeKvCommand,
  KvCommandError,
  KvSnapshotError,
  KvStateMachine,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type KvCommand,
} from "../../src/kv/index.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);
const str = (v: Uint8Array | null): string | null => (v === null ? null : td.decode(v));

let index = 0;
const entry = (data: Uint8Array): Entry => ({ index: ++index, term: 1, type: "normal", data });
const run = (sm: KvStateMachine, cmd: KvCommand) => sm.apply(entry(encodeKvCommand(cmd)));

describe("KV commands", () => {
  it("put, get and delete report the previous value", () => {
    const sm = new KvStateMachine();
    expect(run(sm, { op: "put", key: "a", value: b("1") })).toEqual({ ok: true, prev: null, existed: false });
    expect(str(sm.get("a"))).toBe("1");
    expect(run(sm, { op: "put", key: "a", value: b("2") })).toEqual({ ok: true, prev: b("1"), existed: true });
    expect(str(sm.get("a"))).toBe("2");
    expect(run(sm, { op: "delete", key: "a" })).toEqual({ ok: true, prev: b("2"), existed: true });
    expect(sm.get("a")).toBeNull();
    expect(run(sm, { op: "delete", key: "a" })).toEqual({ ok: true, prev: null, existed: false });
  });

  it("size and keys follow puts and deletes, keys in insertion order", () => {
    const sm = new KvStateMachine();
    for (const k of ["x", "y", "z"]) run(sm, { op: "put", key: k, value: b(k) });
    run(sm, { op: "delete", key: "y" });
    run(sm, { op: "put", key: "x", value: b("again") });
    expect(sm.size).toBe(2);
    expect(sm.keys()).toEqual(["x", "z"]);
  });

  it("cas with expect null succeeds only when the key is absent", () => {
    const sm = new KvStateMachine();
    expect(run(sm, { op: "cas", key: "k", expect: null, value: b("v1") })).toEqual({ ok: true, prev: null, existed: false });
    expect(run(sm, { op: "cas", key: "k", expect: null, value: b("v2") })).toEqual({
      ok: false,
      prev: b("v1"),
      existed: true,
    });
    expect(str(sm.get("k"))).toBe("v1");
  });

  it("cas swaps only on a byte-exact match, and value null deletes", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("v1") });
    expect(run(sm, { op: "cas", key: "k", expect: b("v"), value: b("x") }).ok).toBe(false);
    expect(run(sm, { op: "cas", key: "k", expect: b("v1"), value: b("v2") })).toEqual({
      ok: true,
      prev: b("v1"),
      existed: true,
    });
    expect(run(sm, { op: "cas", key: "k", expect: b("v2"), value: null })).toEqual({ ok: true, prev: b("v2"), existed: true });
    expect(sm.get("k")).toBeNull();
    expect(run(sm, { op: "cas", key: "k", expect: b("v2"), value: b("v3") })).toEqual({ ok: false, prev: null, existed: false });
  });

  it("never hands out its own arrays", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("abc") });
    sm.get("k")![0] = 0;
    const failed = run(sm, { op: "cas", key: "k", expect: b("zzz"), value: b("x") });
    failed.prev![0] = 0;
    expect(str(sm.get("k"))).toBe("abc");
  });
});

describe("KV command codec", () => {
  it("round-trips every command shape", () => {
    const cmds: KvCommand[] = [
      { op: "put", key: "k", value: b("v") },
      { op: "put", key: "ключ ✓ 🙂", value: new Uint8Array([0, 255]), client: "c1", seq: 7 },
      { op: "delete", key: "k" },
      { op: "delete", key: "\uFEFFbom", client: "c", seq: 0 },
      { op: "cas", key: "k", expect: null, value: b("v") },
      { op: "cas", key: "k", expect: b("a"), value: null, client: "c", seq: 2 },
    ];
    for (const cmd of cmds) expect(decodeKvCommand(encodeKvCommand(cmd))).toEqual(cmd);
  });

  it("decoded values do not alias the input buffer", () => {
    const bytes = encodeKvCommand({ op: "put", key: "k", value: b("abc") });
    const cmd = decodeKvCommand(bytes);
    bytes.fill(0);
    expect(cmd.op === "put" && str(cmd.value)).toBe("abc");
  });

  it("accepts keys and values exactly at the size limits and rejects one byte more", () => {
    const key = "k".repeat(MAX_KEY_BYTES);
    const value = new Uint8Array(MAX_VALUE_BYTES);
    const decoded = decodeKvCommand(encodeKvCommand({ op: "put", key, value }));
    // (not toEqual: deep-equal on a 1 MiB array takes seconds)
    expect(decoded.op === "put" && decoded.key === key && decoded.value.length).toBe(MAX_VALUE_BYTES);
    expect(() => encodeKvCommand({ op: "put", key: key + "k", value })).toThrow(KvCommandError);
    expect(() => encodeKvCommand({ op: "put", key: "é".repeat(MAX_KEY_BYTES / 2 + 1), value })).toThrow(
      /bytes/,
    );
    const big = encode({ op: "put", key: "k", value: new Uint8Array(MAX_VALUE_BYTES + 1) });
    expect(() => decodeKvCommand(big)).toThrow(/limit/);
  });

  it.each<[string, unknown]>([
    ["a non-map", [1, 2]],
    ["an unknown op", { op: "incr", key: "k" }],
    ["a missing key", { op: "delete" }],
    ["an empty key", { op: "delete", key: "" }],
    ["a numeric key", { op: "delete", key: 5 }],
    ["a put without value", { op: "put", key: "k" }],
    ["a put with a null value", { op: "put", key: "k", value: null }],
    ["a cas without expect", { op: "cas", key: "k", value: null }],
    ["a client without seq", { op: "delete", key: "k", client: "c" }],
    ["a seq without client", { op: "delete", key: "k", seq: 1 }],
    ["a negative seq", { op: "delete", key: "k", client: "c", seq: -1 }],
    ["a fractional seq", { op: "delete", key: "k", client: "c", seq: 1.5 }],
    ["an unknown field", { op: "delete", key: "k", ttl: 5 }],
  ])("rejects %s with MALFORMED_COMMAND", (_, raw) => {
    try {
      decodeKvCommand(encode(raw));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KvCommandError);
      expect((e as KvCommandError).code).toBe("MALFORMED_COMMAND");
    }
  });

  it("rejects truncated bytes, trailing bytes and invalid UTF-8", () => {
    const ok = encodeKvCommand({ op: "delete", key: "k" });
    expect(() => decodeKvCommand(ok.subarray(0, ok.length - 1))).toThrow(KvCommandError);
    expect(() => decodeKvCommand(new Uint8Array([...ok, 0]))).toThrow(KvCommandError);
    expect(() => decodeKvCommand(new Uint8Array())).toThrow(KvCommandError);
    // {op: "delete", key: <str 0xff>}
    const badKey = new Uint8Array([0x82, 0xa2, 0x6f, 0x70, 0xa6, ...b("delete"), 0xa3, ...b("key"), 0xa1, 0xff]);
    expect(() => decodeKvCommand(badKey)).toThrow(/UTF-8/);
  });

  it("refuses to encode a key with a lone surrogate", () => {
    expect(() => encodeKvCommand({ op: "delete", key: "a\uD800" })).toThrow(KvCommandError);
  });
});

describe("malformed entries", () => {
  it("answer ok:false, are counted, change nothing and do not throw", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("v"), client: "c", seq: 1 });
    const bad = [
      new Uint8Array([0xc1]),
      encode({ op: "put", key: "k" }),
      encode({ op: "delete", key: "k", client: "c", seq: "2" }),
      new Uint8Array(),
    ];
    for (const data of bad) expect(sm.apply(entry(data))).toEqual({ ok: false, prev: null, existed: false });
    expect(sm.malformedCommands).toBe(4);
    expect(sm.keys()).toEqual(["k"]);
    expect(str(sm.get("k"))).toBe("v");
    expect(run(sm, { op: "put", key: "k", value: b("v"), client: "c", seq: 1 }).duplicate).toBe(true);
  });
});

describe("exactly-once sessions", () => {
  it("a replay of the last seq returns the original result without applying again", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("0") });
    const first = run(sm, { op: "put", key: "k", value: b("1"), client: "c", seq: 1 });
    expect(first).toEqual({ ok: true, prev: b("0"), existed: true });
    run(sm, { op: "put", key: "k", value: b("2") }); // someone else writes in between
    const replay = run(sm, { op: "put", key: "k", value: b("1"), client: "c", seq: 1 });
    // The session keeps the verdict, not the value: a retry's answer needs no more.
    expect(replay).toEqual({ ok: true, prev: null, existed: true, duplicate: true });
    expect(str(sm.get("k"))).toBe("2");
  });

  it("a replayed cas returns its original verdict even though the state changed", () => {
    const sm = new KvStateMachine();
    const cas = { op: "cas", key: "k", expect: null, value: b("mine"), client: "c", seq: 1 } as const;
    expect(run(sm, cas)).toEqual({ ok: true, prev: null, existed: false });
    expect(run(sm, cas)).toEqual({ ok: true, prev: null, existed: false, duplicate: true });
    expect(str(sm.get("k"))).toBe("mine");
  });

  it("a seq below the last one is refused with STALE_SEQUENCE, not answered as a duplicate", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("1"), client: "c", seq: 1 });
    run(sm, { op: "put", key: "k", value: b("2"), client: "c", seq: 2 });
    expect(run(sm, { op: "put", key: "k", value: b("1"), client: "c", seq: 1 })).toEqual({
      ok: false,
      prev: null,
      existed: false,
      refused: "STALE_SEQUENCE",
    });
    // A stale CAS says so too, instead of looking like a failed comparison.
    expect(run(sm, { op: "cas", key: "k", expect: b("2"), value: b("3"), client: "c", seq: 1 }).refused).toBe("STALE_SEQUENCE");
    expect(str(sm.get("k"))).toBe("2");
  });

  it("sessions are per client and start at seq 1; later gaps in seq are allowed", () => {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "k", value: b("a"), client: "a", seq: 1 });
    expect(run(sm, { op: "put", key: "k", value: b("b"), client: "b", seq: 1 })).toEqual({
      ok: true,
      prev: b("a"),
      existed: true,
    });
    expect(run(sm, { op: "put", key: "k", value: b("a2"), client: "a", seq: 9 })).toEqual({
      ok: true,
      prev: b("b"),
      existed: true,
    });
  });

  it("a write with seq above 1 for a session it does not hold is refused with SESSION_EXPIRED", () => {
    const sm = new KvStateMachine();
    expect(run(sm, { op: "put", key: "k", value: b("v"), client: "new", seq: 2 })).toEqual({
      ok: false,
      prev: null,
      existed: false,
      refused: "SESSION_EXPIRED",
    });
    expect(sm.get("k")).toBeNull();
    expect(sm.sessionCount).toBe(0);
  });

  it("forgets the least recently used session beyond maxSessions; its later writes get SESSION_EXPIRED, not applied again", () => {
    const sm = new KvStateMachine({ maxSessions: 2 });
    run(sm, { op: "put", key: "k", value: b("a"), client: "a", seq: 1 });
    run(sm, { op: "put", key: "k", value: b("b"), client: "b", seq: 1 });
    run(sm, { op: "put", key: "k", value: b("b2"), client: "b", seq: 2 });
    run(sm, { op: "put", key: "k", value: b("a"), client: "a", seq: 1 }); // replay touches "a"
    run(sm, { op: "put", key: "k", value: b("c"), client: "c", seq: 1 }); // evicts "b"
    expect(sm.sessionCount).toBe(2);
    expect(run(sm, { op: "put", key: "k", value: b("a"), client: "a", seq: 1 }).duplicate).toBe(true);
    // "b" was forgotten: a retry of its last write is refused instead of applied a second time.
    expect(run(sm, { op: "put", key: "k", value: b("b2"), client: "b", seq: 2 }).refused).toBe("SESSION_EXPIRED");
    expect(str(sm.get("k"))).toBe("c");
  });

  it("bounds the session table in bytes too, and keeps no values in it", () => {
    const id = (i: number): string => `client-${String(i).padStart(3, "0")}`; // 10 bytes + 13 per session
    const sm = new KvStateMachine({ maxSessionBytes: 5 * 23 });
    const big = new Uint8Array(MAX_VALUE_BYTES).fill(7);
    for (let i = 0; i < 50; i++) {
      run(sm, { op: "put", key: "k", value: big, client: id(i), seq: 1 });
      expect(sm.sessionBytes).toBeLessThanOrEqual(5 * 23);
    }
    expect(sm.sessionCount).toBe(5);
    expect(sm.sessionBytes).toBe(5 * 23);
    // Fifty writes that each replaced a 1 MiB value: the snapshot holds one value, not 50 copies.
    const snap = sm.snapshot();
    expect(snap.byteLength).toBeLessThan(MAX_VALUE_BYTES + 1024);
    expect(run(sm, { op: "put", key: "k", value: big, client: id(44), seq: 2 }).refused).toBe("SESSION_EXPIRED");
    expect(run(sm, { op: "put", key: "k", value: big, client: id(49), seq: 1 })).toEqual({ ok: true, prev: null, existed: true, duplicate: true });
    const small = new KvStateMachine({ maxSessionBytes: 2 * 23 });
    small.restore(snap);
    expect([small.sessionCount, small.sessionBytes]).toEqual([2, 46]);
  });

  it("eviction depends only on the applied commands: replicas and restored copies agree", () => {
    const commands: Uint8Array[] = [];
    let x = 12345;
    for (let i = 0; i < 500; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const client = `c${x % 13}`;
      const seq = (x >>> 8) % 6;
      commands.push(encodeKvCommand({ op: "put", key: `k${x % 7}`, value: b(String(i)), client, seq }));
    }
    const a = new KvStateMachine({ maxSessions: 5 });
    const b2 = new KvStateMachine({ maxSessions: 5 });
    let c = new KvStateMachine({ maxSessions: 5 });
    const results: unknown[][] = [[], [], []];
    commands.forEach((data, i) => {
      results[0].push(a.apply(entry(data)));
      results[1].push(b2.apply(entry(data)));
      if (i === 250) {
        const restored = new KvStateMachine({ maxSessions: 5 });
        restored.restore(c.snapshot());
        c = restored;
      }
      results[2].push(c.apply(entry(data)));
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(b2.snapshot()).toEqual(a.snapshot());
    expect(c.snapshot()).toEqual(a.snapshot());
    expect(a.sessionCount).toBe(5);
  });
});

describe("snapshot and restore", () => {
  function populated(): KvStateMachine {
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "a", value: b("1") });
    run(sm, { op: "put", key: "empty", value: new Uint8Array() });
    run(sm, { op: "put", key: "bin", value: new Uint8Array([0, 0]), client: "c1", seq: 1 });
    run(sm, { op: "put", key: "bin", value: new Uint8Array([0, 1, 254, 255]), client: "c1", seq: 3 });
    run(sm, { op: "cas", key: "a", expect: b("nope"), value: null, client: "c2", seq: 1 });
    run(sm, { op: "delete", key: "missing", client: "c3", seq: 0 });
    sm.apply(entry(new Uint8Array([0xc1])));
    return sm;
  }

  it("round-trips data, sessions and counters exactly", () => {
    const sm = populated();
    const copy = new KvStateMachine();
    run(copy, { op: "put", key: "stale", value: b("gone after restore") });
    copy.restore(sm.snapshot());
    expect(copy.snapshot()).toEqual(sm.snapshot());
    expect(copy.keys()).toEqual(sm.keys());
    expect(copy.get("stale")).toBeNull();
    expect(copy.malformedCommands).toBe(1);
    expect(copy.sessionCount).toBe(3);
    for (const k of sm.keys()) expect(copy.get(k)).toEqual(sm.get(k));
    // The restored sessions answer replays like the original.
    const replays: KvCommand[] = [
      { op: "put", key: "bin", value: new Uint8Array([0, 1, 254, 255]), client: "c1", seq: 3 },
      { op: "cas", key: "a", expect: b("nope"), value: null, client: "c2", seq: 1 },
      { op: "delete", key: "missing", client: "c3", seq: 0 },
      { op: "put", key: "x", value: b("x"), client: "c1", seq: 2 },
    ];
    for (const cmd of replays) expect(run(copy, cmd)).toEqual(run(sm, cmd));
    expect(copy.snapshot()).toEqual(sm.snapshot());
  });

  it("an empty machine round-trips", () => {
    const copy = populated();
    copy.restore(new KvStateMachine().snapshot());
    expect(copy.size).toBe(0);
    expect(copy.sessionCount).toBe(0);
    expect(copy.malformedCommands).toBe(0);
  });

  it("restoring does not alias the snapshot buffer", () => {
    const snap = populated().snapshot();
    const copy = new KvStateMachine();
    copy.restore(snap);
    snap.fill(0);
    expect(str(copy.get("a"))).toBe("1");
  });

  it("a malformed snapshot throws KvSnapshotError and leaves the state untouched", () => {
    const sm = populated();
    const before = sm.snapshot();
    const bad = [
      new Uint8Array([0xc1]),
      encode({ format: 99, data: [], sessions: [], malformedCommands: 0 }),
      encode({ format: 1, data: [["k", "not bytes"]], sessions: [], malformedCommands: 0 }),
      encode({ format: 1, data: [["k", b("1")], ["k", b("2")]], sessions: [], malformedCommands: 0 }),
      encode({ format: 1, data: [], sessions: [["c", 1, true]], malformedCommands: 0 }),
    ];
    for (const bytes of bad) expect(() => sm.restore(bytes)).toThrow(KvSnapshotError);
    expect(sm.snapshot()).toEqual(before);
  });

  it("keys outside ASCII round-trip (format 2 writes them as UTF-8)", () => {
    const sm = new KvStateMachine();
    const keys = ["ünïcode", "🦀 crab", "\u{feff}bom", "a".repeat(70), "é".repeat(40)];
    keys.forEach((key, i) => run(sm, { op: "put", key, value: b(String(i)), client: `cl-ñ-${i}`, seq: i % 2 }));
    const copy = new KvStateMachine();
    copy.restore(sm.snapshot());
    expect(copy.keys()).toEqual(keys);
    keys.forEach((key, i) => expect(str(copy.get(key))).toBe(String(i)));
    expect(copy.snapshot()).toEqual(sm.snapshot());
  });

  it("a format 1 snapshot (msgpack, written by earlier versions) still restores", () => {
    const v1 = encode({
      format: 1,
      data: [["a", b("1")], ["bin", new Uint8Array([0, 255])]],
      sessions: [["c1", 3, true, null], ["c2", 1, false, b("1")]],
      malformedCommands: 2,
    });
    const sm = new KvStateMachine();
    sm.restore(v1);
    expect(sm.keys()).toEqual(["a", "bin"]);
    expect(sm.get("bin")).toEqual(new Uint8Array([0, 255]));
    expect(sm.sessionCount).toBe(2);
    expect(sm.malformedCommands).toBe(2);
    expect(run(sm, { op: "put", key: "a", value: b("again"), client: "c1", seq: 3 }).duplicate).toBe(true);
  });

  it("a malformed format 2 snapshot throws KvSnapshotError and leaves the state untouched", () => {
    const good = populated().snapshot();
    const sm = new KvStateMachine();
    run(sm, { op: "put", key: "keep", value: b("me") });
    const before = sm.snapshot();
    // Every proper prefix is truncated somewhere; a byte more is trailing garbage.
    for (let n = 4; n < good.byteLength; n++) expect(() => sm.restore(good.subarray(0, n)), `prefix ${n}`).toThrow(KvSnapshotError);
    const longer = new Uint8Array(good.byteLength + 1);
    longer.set(good);
    expect(() => sm.restore(longer)).toThrow(/follow the end/);
    // Hand-built: magic, malformedCommands, one or two keys, no sessions.
    const build = (keys: Uint8Array[], flags?: number): Uint8Array => {
      const parts: number[] = [0x4d, 0x4b, 0x56, 0x32, ...new Uint8Array(new Float64Array([0]).buffer)];
      const u32 = (n: number): number[] => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
      parts.push(...u32(keys.length));
      for (const k of keys) parts.push(...u32(k.length), ...k, ...u32(1), 7);
      if (flags === undefined) parts.push(...u32(0));
      else parts.push(...u32(1), ...u32(1), 99, ...new Uint8Array(new Float64Array([1]).buffer), flags);
      return Uint8Array.from(parts);
    };
    expect(() => sm.restore(build([b("k"), b("k")]))).toThrow(/appears twice/);
    expect(() => sm.restore(build([new Uint8Array([0xc3, 0x28])]))).toThrow(/UTF-8/);
    expect(() => sm.restore(build([b("k")], 9))).toThrow(/flags/);
    expect(sm.snapshot()).toEqual(before);
    sm.restore(build([b("k")], 1)); // the hand-built layout is right: it restores
    expect(sm.keys()).toEqual(["k"]);
  });

  it("a format 2 snapshot (sessions holding prev values) still restores, keeping only the verdicts", () => {
    const u32 = (n: number): number[] => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
    const f64 = (n: number): number[] => [...new Uint8Array(new Float64Array([n]).buffer)];
    const v2 = Uint8Array.from([
      ...b("MKV2"), ...f64(1),
      ...u32(1), ...u32(1), ...b("k"), ...u32(2), ...b("v2"),
      ...u32(2),
      ...u32(2), ...b("c1"), ...f64(4), 3, ...u32(2), ...b("v1"), // ok, had prev "v1"
      ...u32(2), ...b("c2"), ...f64(1), 0, // a failed CAS on an absent key
    ]);
    const sm = new KvStateMachine();
    sm.restore(v2);
    expect([sm.keys(), str(sm.get("k")), sm.sessionCount, sm.malformedCommands]).toEqual([["k"], "v2", 2, 1]);
    expect(run(sm, { op: "put", key: "k", value: b("x"), client: "c1", seq: 4 })).toEqual({ ok: true, prev: null, existed: true, duplicate: true });
    expect(run(sm, { op: "cas", key: "k", expect: null, value: b("x"), client: "c2", seq: 1 })).toEqual({ ok: false, prev: null, existed: false, duplicate: true });
    expect(str(sm.get("k"))).toBe("v2");
    // It is written back as format 3, without the value.
    expect(str(sm.snapshot().subarray(0, 4))).toBe("MKV3");
    expect(sm.snapshot().byteLength).toBe(v2.byteLength - 6);
  });

  it("a snapshot with more sessions than maxSessions keeps the most recently used", () => {
    const small = new KvStateMachine({ maxSessions: 1 });
    small.restore(populated().snapshot());
    expect(small.sessionCount).toBe(1);
    expect(run(small, { op: "delete", key: "missing", client: "c3", seq: 0 }).duplicate).toBe(true);
  });
});

describe("errors", () => {
  it("are MeshraftErrors with a stable code and name", () => {
    const e = new KvCommandError("x");
    expect(e).toBeInstanceOf(MeshraftError);
    expect([e.name, e.code]).toEqual(["KvCommandError", "MALFORMED_COMMAND"]);
    expect(new KvSnapshotError("y").code).toBe("MALFORMED_SNAPSHOT");
  });
});
