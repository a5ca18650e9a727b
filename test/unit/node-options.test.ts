/**
 * validateRaftNodeOptions (src/node/options.ts) says up front what a RaftNode would refuse when
 * constructed or started, with the same message, and nothing else.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/core/random.ts";
import { KvStateMachine } from "../../src/kv/kv.ts";
import { RaftNode, validateRaftNodeOptions, type RaftNodeOptions } from "../../src/node.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import { VirtualClock } from "../../src/testing/clock.ts";
import type { Transport } from "../../src/transport/transport.ts";

const transport = (): Transport => ({ start() {}, send() {}, close: async () => {} });

function options(extra: Partial<RaftNodeOptions<unknown>>): RaftNodeOptions<unknown> {
  return { id: "n1", members: ["n1"], storage: new MemoryStorage(), transport: transport(), stateMachine: new KvStateMachine(), clock: new VirtualClock(), ...extra };
}

/** What a real node says: the error of its constructor or of start(), or null when it starts. */
async function nodeVerdict(o: RaftNodeOptions<unknown>): Promise<string | null> {
  let node: RaftNode<unknown>;
  try {
    node = new RaftNode(o);
  } catch (err) {
    return String(err);
  }
  try {
    await node.start();
    return null;
  } catch (err) {
    return String(err);
  } finally {
    await node.stop();
  }
}

function validateVerdict(o: RaftNodeOptions<unknown>): string | null {
  try {
    validateRaftNodeOptions(o);
    return null;
  } catch (err) {
    return String(err);
  }
}

const cases: [string, Partial<RaftNodeOptions<unknown>>][] = [
  ["defaults", {}],
  ["a full set of good values", { tickMs: 10, electionTimeoutMs: 150, heartbeatIntervalMs: 30, readMode: "lease", leaseDriftTicks: 3, snapshotEveryEntries: 0, snapshotEveryBytes: 0 }],
  ["a joining node without members", { members: [], join: true }],
  ["members without this node", { members: ["n2", "n3"] }],
  ["a joining node with members", { join: true }],
  ["tickMs 0", { tickMs: 0 }],
  ["proposalTimeoutMs NaN", { proposalTimeoutMs: Number.NaN }],
  ["readTimeoutMs negative", { readTimeoutMs: -5 }],
  ["maxPendingReads 0", { maxPendingReads: 0 }],
  ["snapshotEveryEntries fractional", { snapshotEveryEntries: 1.5 }],
  ["snapshotMarginEntries negative", { snapshotMarginEntries: -1 }],
  ["electionTimeoutMs 0 (checked at start)", { electionTimeoutMs: 0 }],
  ["heartbeatIntervalMs Infinity (checked at start)", { heartbeatIntervalMs: Number.POSITIVE_INFINITY }],
  ["a heartbeat as long as the election timeout", { electionTimeoutMs: 100, heartbeatIntervalMs: 100 }],
  ["a lease without checkQuorum", { readMode: "lease", checkQuorum: false }],
  ["a lease drift as long as the election timeout", { readMode: "lease", tickMs: 10, electionTimeoutMs: 100, leaseDriftTicks: 10 }],
];

describe("validateRaftNodeOptions", () => {
  it.each(cases)("%s: the same verdict as constructing and starting a node", async (_name, extra) => {
    const expected = await nodeVerdict(options(extra));
    expect(validateVerdict(options(extra))).toBe(expected);
  });

  it("accepts and refuses: the cases above hold both kinds", async () => {
    const verdicts = await Promise.all(cases.map(([, extra]) => nodeVerdict(options(extra))));
    expect(verdicts.filter((v) => v === null)).toHaveLength(3);
    expect(verdicts.filter((v) => v !== null).every((v) => v!.startsWith("RangeError"))).toBe(true);
  });

  it("draws nothing from the caller's random source", () => {
    const random = new SeededRandom(42);
    validateRaftNodeOptions(options({ random }));
    expect(random.next()).toBe(new SeededRandom(42).next());
  });
});
