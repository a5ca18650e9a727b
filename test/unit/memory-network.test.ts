import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/core/random.ts";
import type { Heartbeat, Message, NodeId } from "../../src/core/types.ts";
import { VirtualClock } from "../../src/testing/clock.ts";
import { MemoryNetwork, type MemoryNetworkOptions } from "../../src/transport/memory.ts";
import type { Transport } from "../../src/transport/transport.ts";

const hb = (from: NodeId, to: NodeId, term = 1): Heartbeat => ({ type: "Heartbeat", from, to, term, leaderCommit: 0, readRound: 0 });

interface Received {
  at: number;
  node: NodeId;
  message: Message;
}

/** A network of `ids` on a fresh virtual clock, recording every delivery. */
function setup(ids: NodeId[], options: Partial<MemoryNetworkOptions> = {}, seed = 1) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: new SeededRandom(seed), ...options });
  const received: Received[] = [];
  const transports = new Map<NodeId, Transport>();
  for (const id of ids) {
    const t = network.connect(id);
    t.start((message) => received.push({ at: clock.now(), node: id, message }));
    transports.set(id, t);
  }
  const send = (m: Message): void => transports.get(m.from)!.send(m);
  return { clock, network, received, transports, send };
}

describe("MemoryNetwork delivery", () => {
  it("delivers through the clock, never inside send", () => {
    const { clock, received, send } = setup(["a", "b"]);
    send(hb("a", "b"));
    expect(received).toHaveLength(0);
    expect(clock.pending()).toBe(1);
    clock.runUntilIdle();
    expect(received.map((r) => [r.at, r.node, r.message.from])).toEqual([[1, "b", "a"]]);
  });

  it("a handler that sends does not re-enter: replies arrive in a later event", () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: new SeededRandom(1) });
    const a = network.connect("a");
    const b = network.connect("b");
    const log: string[] = [];
    let depth = 0;
    a.start((m) => log.push(`a got ${m.type} at ${clock.now()}`));
    b.start((m) => {
      if (m.type !== "Heartbeat") return void log.push(`b got ${m.type} at ${clock.now()}`);
      depth++;
      expect(depth).toBe(1);
      b.send({ type: "HeartbeatResponse", from: "b", to: "a", term: m.term, readRound: 0 });
      b.send({ type: "HeartbeatResponse", from: "b", to: "b", term: m.term, readRound: 0 }); // to itself
      log.push(`b handled at ${clock.now()}`);
      depth--;
    });
    a.send(hb("a", "b"));
    clock.advance(1);
    expect(log).toEqual(["b handled at 1"]);
    clock.advance(1);
    expect(log).toEqual(["b handled at 1", "a got HeartbeatResponse at 2", "b got HeartbeatResponse at 2"]);
  });

  it("passes messages by reference by default, and deep copies with copy: true", () => {
    const plain = setup(["a", "b"]);
    const m = hb("a", "b");
    plain.send(m);
    plain.clock.runUntilIdle();
    expect(plain.received[0].message).toBe(m);

    const copying = setup(["a", "b"], { copy: true });
    const ae: Message = {
      type: "AppendEntries",
      from: "a",
      to: "b",
      term: 1,
      prevLogIndex: 0,
      prevLogTerm: 0,
      leaderCommit: 0,
      entries: [{ index: 1, term: 1, type: "normal", data: new Uint8Array([1, 2, 3]) }],
    };
    copying.send(ae);
    ae.entries[0].data[0] = 99; // the sender reuses its buffer after sending
    copying.clock.runUntilIdle();
    const got = copying.received[0].message;
    expect(got).not.toBe(ae);
    expect(got.type === "AppendEntries" && Array.from(got.entries[0].data)).toEqual([1, 2, 3]);
  });

  it("drops messages to unknown, closed or not-started nodes silently", async () => {
    const { clock, network, received, transports, send } = setup(["a", "b"]);
    send(hb("a", "nobody"));
    network.connect("idle"); // connected, never started
    send(hb("a", "idle"));
    await transports.get("b")!.close();
    send(hb("a", "b"));
    transports.get("b")!.send(hb("b", "a")); // a closed transport sends nothing
    clock.runUntilIdle();
    expect(received).toHaveLength(0);
    expect(network.stats.sent).toBe(3);
    expect(network.stats.unreachable).toBe(3);
  });

  it("connecting an id again replaces its transport; the old one is detached", () => {
    const { clock, network, received, send } = setup(["a", "b"]);
    send(hb("a", "b")); // in flight to the old b: reaches the new one
    const old = network.connect("b"); // placeholder that is replaced next
    const fresh = network.connect("b");
    const got: Message[] = [];
    old.start((m) => got.push(m));
    fresh.start((m) => got.push(m));
    old.send(hb("b", "a"));
    clock.runUntilIdle();
    expect(got).toHaveLength(1);
    expect(received).toHaveLength(0);
    fresh.send(hb("b", "a"));
    clock.runUntilIdle();
    expect(received.map((r) => r.node)).toEqual(["a"]);
  });

  it("a throwing handler does not break the network; the error is counted", () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: new SeededRandom(1) });
    const a = network.connect("a");
    const b = network.connect("b");
    let calls = 0;
    b.start(() => {
      calls++;
      throw new Error("handler bug");
    });
    a.send(hb("a", "b"));
    a.send(hb("a", "b"));
    expect(() => clock.runUntilIdle()).not.toThrow();
    expect(calls).toBe(2);
    expect(network.stats.handlerErrors).toBe(2);
    expect((network.lastHandlerError as Error).message).toBe("handler bug");
  });

  it("counts messages per type and bytes with sizeOf", () => {
    const { clock, network, send } = setup(["a", "b"], { sizeOf: (m) => (m.type === "Heartbeat" ? 10 : 3) });
    send(hb("a", "b"));
    send(hb("a", "b"));
    send({ type: "TimeoutNow", from: "a", to: "b", term: 1 });
    clock.runUntilIdle();
    expect(network.stats.sent).toBe(3);
    expect(network.stats.delivered).toBe(3);
    expect(network.stats.sentByType).toEqual({ Heartbeat: 2, TimeoutNow: 1 });
    expect(network.stats.bytes).toBe(23);
    network.resetStats();
    expect(network.stats.sent).toBe(0);
    expect(network.stats.sentByType).toEqual({});
  });

  it("the filter hook can drop or rewrite messages", () => {
    const { clock, network, received, send } = setup(["a", "b"], {
      filter: (m) => (m.type === "TimeoutNow" ? null : m.type === "Heartbeat" ? { ...m, term: 42 } : m),
    });
    send({ type: "TimeoutNow", from: "a", to: "b", term: 1 });
    send(hb("a", "b", 1));
    clock.runUntilIdle();
    expect(received.map((r) => [r.message.type, r.message.term])).toEqual([["Heartbeat", 42]]);
    expect(network.stats.filtered).toBe(1);
  });
});

describe("MemoryNetwork connectivity", () => {
  const ids = ["a", "b", "c", "d", "e"];
  /** Every ordered pair that got its message through. */
  function reachable(net: ReturnType<typeof setup>): string[] {
    net.received.length = 0;
    for (const from of ids) for (const to of ids) if (from !== to) net.send(hb(from, to));
    net.clock.runUntilIdle();
    return net.received.map((r) => `${r.message.from}>${r.node}`).sort();
  }

  it("cut blocks one direction only, and uncut restores it", () => {
    const net = setup(ids);
    net.network.cut("a", "b");
    const got = reachable(net);
    expect(got).not.toContain("a>b");
    expect(got).toContain("b>a");
    expect(got).toHaveLength(19);
    expect(net.network.canReach("a", "b")).toBe(false);
    net.network.uncut("a", "b");
    expect(reachable(net)).toHaveLength(20);
  });

  it("partition lets only nodes of the same group talk; unlisted nodes are isolated", () => {
    const net = setup(ids);
    net.network.partition(["a", "b"], ["c", "d"]);
    expect(reachable(net)).toEqual(["a>b", "b>a", "c>d", "d>c"]);
    expect(() => net.network.partition(["a"], ["a", "b"])).toThrow(/two groups/);
  });

  it("isolate cuts a node off both ways; heal restores everything but keeps the fault rates", () => {
    const net = setup(ids);
    net.network.isolate("c");
    net.network.cut("a", "b");
    net.network.setFaults({ minDelayMs: 5, maxDelayMs: 5 });
    const got = reachable(net);
    expect(got.filter((p) => p.includes("c"))).toEqual([]);
    expect(got).toHaveLength(11);
    net.network.heal();
    expect(reachable(net)).toHaveLength(20);
    expect(net.received.every((r) => r.at % 5 === 0)).toBe(true);
    expect(net.network.getFaults().minDelayMs).toBe(5);
  });

  it("a message in flight when a partition starts is dropped at delivery", () => {
    const net = setup(["a", "b", "c"]);
    net.network.setFaults({ minDelayMs: 10, maxDelayMs: 10 });
    net.send(hb("a", "b"));
    net.send(hb("a", "c"));
    net.clock.advance(5);
    net.network.partition(["a", "c"], ["b"]);
    net.clock.runUntilIdle();
    expect(net.received.map((r) => r.node)).toEqual(["c"]);
    expect(net.network.stats.blocked).toBe(1);
  });

  it("a message sent across a cut is not delivered even if the cut heals before it would arrive", () => {
    const net = setup(["a", "b"]);
    net.network.setFaults({ minDelayMs: 10, maxDelayMs: 10 });
    net.network.cut("a", "b");
    net.send(hb("a", "b"));
    net.network.heal();
    net.clock.runUntilIdle();
    expect(net.received).toHaveLength(0);
    expect(net.network.inFlight).toBe(0);
  });
});

describe("MemoryNetwork faults", () => {
  it("rejects nonsensical fault settings", () => {
    const { network } = setup([]);
    expect(() => network.setFaults({ dropRate: 1.5 })).toThrow(RangeError);
    expect(() => network.setFaults({ minDelayMs: 10, maxDelayMs: 5 })).toThrow(/exceeds/);
    expect(() => network.setFaults({ longDelayMs: -1 })).toThrow(RangeError);
    expect(network.getFaults()).toEqual({ dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 1, longDelayRate: 0, longDelayMs: 500 });
  });

  it("drops about dropRate of the messages", () => {
    const { clock, network, received, send } = setup(["a", "b"], { faults: { dropRate: 0.3 } }, 7);
    const N = 10_000;
    for (let i = 0; i < N; i++) send(hb("a", "b"));
    clock.runUntilIdle();
    // Binomial(10000, 0.3): standard deviation ~46; 5 sigma either side.
    expect(network.stats.dropped).toBeGreaterThan(3000 - 230);
    expect(network.stats.dropped).toBeLessThan(3000 + 230);
    expect(received.length + network.stats.dropped).toBe(N);
  });

  it("dropRate 1 drops everything, dropRate 0 nothing", () => {
    const { clock, network, received, send } = setup(["a", "b"], { faults: { dropRate: 1 } });
    for (let i = 0; i < 100; i++) send(hb("a", "b"));
    network.setFaults({ dropRate: 0 });
    for (let i = 0; i < 100; i++) send(hb("a", "b"));
    clock.runUntilIdle();
    expect(received).toHaveLength(100);
  });

  it("duplicates about duplicateRate of the messages, each copy with its own delay", () => {
    const { clock, network, received, send } = setup(["a", "b"], { faults: { duplicateRate: 0.2, minDelayMs: 1, maxDelayMs: 50 } }, 3);
    const N = 5_000;
    for (let i = 0; i < N; i++) send({ ...hb("a", "b"), leaderCommit: i });
    clock.runUntilIdle();
    expect(network.stats.duplicated).toBeGreaterThan(1000 - 150);
    expect(network.stats.duplicated).toBeLessThan(1000 + 150);
    expect(received).toHaveLength(N + network.stats.duplicated);
    const times = new Map<number, number[]>();
    for (const r of received) {
      const k = (r.message as Heartbeat).leaderCommit;
      times.set(k, [...(times.get(k) ?? []), r.at]);
    }
    const pairs = [...times.values()].filter((t) => t.length === 2);
    expect(pairs).toHaveLength(network.stats.duplicated);
    expect(pairs.filter(([x, y]) => x !== y).length).toBeGreaterThan(pairs.length * 0.9);
  });

  it("delays are uniform in [minDelayMs, maxDelayMs] and reorder messages", () => {
    const { clock, received, send } = setup(["a", "b"], { faults: { minDelayMs: 10, maxDelayMs: 30 } }, 5);
    for (let i = 0; i < 2000; i++) send({ ...hb("a", "b"), leaderCommit: i });
    clock.runUntilIdle();
    const ats = received.map((r) => r.at);
    expect(Math.min(...ats)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...ats)).toBeLessThanOrEqual(30);
    const mean = ats.reduce((x, y) => x + y, 0) / ats.length;
    expect(mean).toBeGreaterThan(19);
    expect(mean).toBeLessThan(21);
    const order = received.map((r) => (r.message as Heartbeat).leaderCommit);
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
  });

  it("longDelayRate holds messages back for longDelayMs, so later messages overtake them", () => {
    const { clock, network, received, send } = setup(["a", "b"], { faults: { longDelayRate: 0.1, longDelayMs: 1000 } }, 9);
    for (let i = 0; i < 1000; i++) send({ ...hb("a", "b"), leaderCommit: i });
    clock.advance(999);
    const early = received.length;
    clock.runUntilIdle();
    const late = received.length - early;
    expect(late).toBe(network.stats.longDelayed);
    expect(late).toBeGreaterThan(60);
    expect(late).toBeLessThan(140);
    expect(received.slice(early).every((r) => r.at === 1000)).toBe(true);
  });

  it("the same seed gives the same delivery sequence; another seed a different one", () => {
    const run = (seed: number): string[] => {
      const net = setup(["a", "b", "c"], { faults: { dropRate: 0.1, duplicateRate: 0.1, minDelayMs: 1, maxDelayMs: 20, longDelayRate: 0.05, longDelayMs: 200 } }, seed);
      // Handlers answer, so the sequence depends on earlier deliveries too.
      for (const [id, t] of net.transports) {
        t.start((m) => {
          net.received.push({ at: net.clock.now(), node: id, message: m });
          if (m.type === "Heartbeat" && m.leaderCommit < 5) t.send({ ...hb(id, m.from), leaderCommit: m.leaderCommit + 1 });
        });
      }
      for (let i = 0; i < 200; i++) net.send({ ...hb(["a", "b", "c"][i % 3], ["b", "c", "a"][i % 3]), leaderCommit: i % 4 });
      net.clock.runUntilIdle();
      return net.received.map((r) => `${r.at.toFixed(6)} ${r.message.from}>${r.node} ${(r.message as Heartbeat).leaderCommit}`);
    };
    const first = run(1234);
    expect(first.length).toBeGreaterThan(200);
    expect(run(1234)).toEqual(first);
    expect(run(4321)).not.toEqual(first);
  });
});
