import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/core/random.ts";
import { checkLinearizable, type KvOperation } from "../../src/testing/linearizability.ts";

// Small constructors so each history reads like a timeline: op(call, return).
const put = (key: string, value: string, call: number, ret: number, client: string | number = 0): KvOperation => ({
  client,
  input: { op: "put", key, value },
  call,
  return: ret,
});
const del = (key: string, call: number, ret: number, client: string | number = 0): KvOperation => ({
  client,
  input: { op: "delete", key },
  call,
  return: ret,
});
const get = (key: string, value: string | null, call: number, ret: number, client: string | number = 0): KvOperation => ({
  client,
  input: { op: "get", key },
  call,
  return: ret,
  output: { value },
});
const cas = (
  key: string,
  expected: string | null,
  value: string | null,
  ok: boolean,
  call: number,
  ret: number,
  client: string | number = 0,
): KvOperation => ({ client, input: { op: "cas", key, expect: expected, value }, call, return: ret, output: { ok } });

const ok = (h: KvOperation[]): boolean => checkLinearizable(h).ok === true;

describe("checkLinearizable: classic histories", () => {
  it("accepts a sequential history that follows the model", () => {
    expect(
      ok([
        get("x", null, 0, 1),
        put("x", "1", 2, 3),
        get("x", "1", 4, 5),
        cas("x", "1", "2", true, 6, 7),
        cas("x", "1", "3", false, 8, 9),
        get("x", "2", 10, 11),
        del("x", 12, 13),
        get("x", null, 14, 15),
      ]),
    ).toBe(true);
  });

  it("accepts an empty history", () => {
    expect(checkLinearizable([])).toEqual({ ok: true });
  });

  it("a read concurrent with a write may return the old or the new value", () => {
    expect(ok([put("x", "1", 0, 10, "w"), get("x", null, 2, 5, "r")])).toBe(true);
    expect(ok([put("x", "1", 0, 10, "w"), get("x", "1", 2, 5, "r")])).toBe(true);
  });

  it("but two reads in sequence during the write cannot go from new back to old", () => {
    expect(ok([put("x", "1", 0, 10, "w"), get("x", "1", 1, 2, "r"), get("x", null, 3, 4, "r")])).toBe(false);
  });

  it("rejects a stale read after a completed write", () => {
    expect(ok([put("x", "1", 0, 1), put("x", "2", 2, 3), get("x", "1", 4, 5)])).toBe(false);
  });

  it("rejects a read of a value never written", () => {
    expect(ok([put("x", "1", 0, 1), get("x", "7", 2, 3)])).toBe(false);
  });

  it("operations whose intervals touch count as concurrent", () => {
    expect(ok([put("x", "1", 0, 5), get("x", null, 5, 6)])).toBe(true);
  });

  it("reads a deleted key as absent, and a delete may be concurrent with reads", () => {
    expect(ok([put("x", "1", 0, 1), del("x", 2, 6), get("x", "1", 3, 4), get("x", null, 7, 8)])).toBe(true);
    expect(ok([put("x", "1", 0, 1), del("x", 2, 3), get("x", "1", 4, 5)])).toBe(false);
  });
});

describe("checkLinearizable: compare-and-swap", () => {
  it("of two concurrent cas with the same expectation, one may succeed", () => {
    expect(
      ok([put("x", "a", 0, 1), cas("x", "a", "b", true, 2, 5, 1), cas("x", "a", "c", false, 3, 6, 2), get("x", "b", 7, 8)]),
    ).toBe(true);
  });

  it("rejects both succeeding", () => {
    expect(
      ok([put("x", "a", 0, 1), cas("x", "a", "b", true, 2, 5, 1), cas("x", "a", "c", true, 3, 6, 2)]),
    ).toBe(false);
  });

  it("rejects both failing while the expectation held", () => {
    expect(
      ok([put("x", "a", 0, 1), cas("x", "a", "b", false, 2, 5, 1), cas("x", "a", "c", false, 3, 6, 2)]),
    ).toBe(false);
  });

  it("expect null means absent, and value null deletes", () => {
    expect(ok([cas("x", null, "a", true, 0, 1), cas("x", null, "b", false, 2, 3), cas("x", "a", null, true, 4, 5), get("x", null, 6, 7)])).toBe(true);
    expect(ok([put("x", "a", 0, 1), cas("x", null, "b", true, 2, 3)])).toBe(false);
  });
});

describe("checkLinearizable: operations with unknown outcome", () => {
  const lost = (key: string, value: string, call: number): KvOperation => ({
    ...put(key, value, call, Infinity, "lost"),
  });

  it("a timed-out put may never become visible", () => {
    expect(ok([lost("x", "1", 0), get("x", null, 5, 6), get("x", null, 100, 101)])).toBe(true);
  });

  it("a timed-out put may become visible, even long after the timeout", () => {
    expect(ok([lost("x", "1", 0), get("x", null, 5, 6), get("x", "1", 100, 101)])).toBe(true);
  });

  it("but once seen it cannot disappear without another write", () => {
    expect(ok([lost("x", "1", 0), get("x", "1", 5, 6), get("x", null, 7, 8)])).toBe(false);
    expect(ok([lost("x", "1", 0), get("x", "1", 5, 6), del("x", 6, 7), get("x", null, 8, 9)])).toBe(true);
  });

  it("cannot take effect before it was called", () => {
    expect(ok([get("x", "1", 0, 1), lost("x", "1", 2)])).toBe(false);
  });

  it("`unknown: true` means the same as return: Infinity, whatever output says", () => {
    const timedOut: KvOperation = { ...put("x", "1", 0, 3), unknown: true };
    expect(ok([timedOut, get("x", "1", 10, 11)])).toBe(true);
    const casTimedOut: KvOperation = { ...cas("x", null, "c", false, 0, 3), unknown: true };
    expect(ok([casTimedOut, get("x", "c", 10, 11)])).toBe(true);
    expect(ok([casTimedOut, get("x", null, 10, 11)])).toBe(true);
  });

  it("a timed-out cas takes effect only if its expectation held where it lands", () => {
    const casLost: KvOperation = { ...cas("x", "a", "b", true, 2, Infinity), output: undefined };
    expect(ok([put("x", "a", 0, 1), casLost, get("x", "b", 5, 6)])).toBe(true);
    expect(ok([put("x", "z", 0, 1), casLost, get("x", "b", 5, 6)])).toBe(false);
  });

  it("a read with unknown outcome is ignored", () => {
    const read: KvOperation = { ...get("x", "never", 0, Infinity) };
    expect(ok([read, put("x", "1", 1, 2)])).toBe(true);
  });
});

describe("checkLinearizable: keys and reports", () => {
  it("checks keys independently", () => {
    // Across keys this could not be ordered if keys interacted; per key each is fine.
    const h = [put("a", "1", 0, 10), put("b", "1", 0, 10), get("a", "1", 1, 2), get("b", null, 1, 2), get("a", "1", 3, 4), get("b", null, 3, 4)];
    expect(ok(h)).toBe(true);
  });

  it("names the key and the operation that could not be placed", () => {
    const stale = get("b", "1", 4, 5, "reader");
    const r = checkLinearizable([put("a", "1", 0, 1), put("b", "1", 0, 1), put("b", "2", 2, 3), stale, get("a", "1", 4, 5)]);
    expect(r.ok).toBe(false);
    if (r.ok !== false) return;
    expect(r.key).toBe("b");
    expect(r.operations).toContain(stale);
    expect(r.partial.map((o) => o.input.op)).toEqual(["put", "put"]);
    expect(r.reason).toContain('key "b"');
    expect(r.reason).toContain('client "reader": get("b") -> "1" [call 4, return 5]');
    expect(r.reason).toContain('leaving the value "2"');
  });

  it("reports unknown when the time budget runs out", () => {
    // 18 concurrent puts and a read of a value none of them wrote: proving that needs the
    // search to try every subset of the puts.
    const h = Array.from({ length: 18 }, (_, i) => put("x", `v${i}`, 0, 100, i));
    h.push(get("x", "nobody", 0, 100, "r"));
    expect(checkLinearizable(h, { timeoutMs: 0 })).toEqual({ ok: "unknown", reason: "timeout", key: "x" });
  });

  it("rejects malformed histories loudly", () => {
    expect(() => checkLinearizable([put("x", "1", 5, 4)])).toThrow(TypeError);
    expect(() => checkLinearizable([{ client: 0, input: { op: "get", key: "x" }, call: 0, return: 1 }])).toThrow(
      /output.value/,
    );
    expect(() => checkLinearizable([{ ...cas("x", null, "1", true, 0, 1), output: {} }])).toThrow(/output.ok/);
  });
});

// ---------------------------------------------------------------------------------------------
// Randomized: histories produced by a real sequential execution, with each operation's interval
// drawn around its true linearization point, must always pass.
// ---------------------------------------------------------------------------------------------

interface Generated {
  history: KvOperation[];
}

function generate(
  seed: number,
  { clients, opsPerClient, keys, unknownRate }: { clients: number; opsPerClient: number; keys: number; unknownRate: number },
): Generated {
  const rng = new SeededRandom(seed);
  const planned: { op: KvOperation; at: number; takesEffect: boolean }[] = [];
  const written = new Map<string, string[]>();
  let unique = 0;
  for (let c = 0; c < clients; c++) {
    let t = rng.next() * 10;
    for (let i = 0; i < opsPerClient; i++) {
      const key = `k${rng.int(0, keys)}`;
      const values = written.get(key) ?? [];
      written.set(key, values);
      const pickExpect = (): string | null => (values.length === 0 || rng.chance(0.2) ? null : values[rng.int(0, values.length)]);
      const r = rng.next();
      let op: KvOperation;
      if (r < 0.35) {
        const value = `v${unique++}`;
        values.push(value);
        op = put(key, value, 0, 0, c);
      } else if (r < 0.7) op = get(key, null, 0, 0, c);
      else if (r < 0.8) op = del(key, 0, 0, c);
      else {
        const value = rng.chance(0.2) ? null : `v${unique++}`;
        if (value !== null) values.push(value);
        op = cas(key, pickExpect(), value, false, 0, 0, c);
      }
      // The true linearization point lies inside [call, return].
      const call = t;
      const at = call + rng.next() * 20;
      const ret = at + rng.next() * 20;
      op.call = call;
      op.return = ret;
      const unknown = op.input.op !== "get" && rng.chance(unknownRate);
      if (unknown) op.return = Infinity;
      planned.push({ op, at, takesEffect: !unknown || rng.chance(0.5) });
      t = ret + rng.next() * 5;
    }
  }
  // Execute sequentially in linearization order to fill in the outputs.
  const state = new Map<string, string | null>();
  for (const { op, takesEffect } of [...planned].sort((a, b) => a.at - b.at)) {
    if (!takesEffect) continue;
    const i = op.input;
    const current = state.get(i.key) ?? null;
    switch (i.op) {
      case "put":
        state.set(i.key, i.value);
        break;
      case "delete":
        state.set(i.key, null);
        break;
      case "get":
        op.output = { value: current };
        break;
      case "cas":
        op.output = { ok: current === i.expect };
        if (current === i.expect) state.set(i.key, i.value);
        break;
    }
  }
  return { history: planned.map((p) => p.op) };
}

describe("checkLinearizable: randomized histories from real executions", () => {
  it("accepts every history generated from a sequential execution", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { history } = generate(seed, { clients: 4, opsPerClient: 15, keys: 2, unknownRate: 0.1 });
      const r = checkLinearizable(history);
      expect(r, `seed ${seed}: ${r.ok === false ? r.reason : ""}`).toEqual({ ok: true });
    }
  });

  it("rejects it once one read is changed to a value never written", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { history } = generate(seed, { clients: 4, opsPerClient: 15, keys: 2, unknownRate: 0.1 });
      const reads = history.filter((o) => o.input.op === "get");
      if (reads.length === 0) continue;
      const victim = reads[new SeededRandom(seed).int(0, reads.length)];
      victim.output = { value: "never-written" };
      const r = checkLinearizable(history);
      expect(r.ok, `seed ${seed}`).toBe(false);
      if (r.ok === false) expect(r.key).toBe(victim.input.key);
    }
  });

  it("checks 2,000 operations on 10 keys from 8 concurrent clients within the default budget", () => {
    const { history } = generate(42, { clients: 8, opsPerClient: 250, keys: 10, unknownRate: 0.02 });
    expect(history).toHaveLength(2000);
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });
});
