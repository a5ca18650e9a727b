/**
 * A three-node RaftNode cluster under Deno: the runtime-agnostic core, driver, in-memory network
 * and storage, and the KV state machine, run from src/ as Deno loads it. Time is virtual; the
 * test advances it in small steps and yields a real macrotask between steps so the driver's
 * promise chains (persist -> send -> apply) run. Every loop is bounded by virtual time.
 */
import assert from "node:assert/strict";
import {
  encodeKvCommand,
  KvStateMachine,
  MemoryNetwork,
  MemoryStorage,
  RaftNode,
  SeededRandom,
  type KvResult,
  type NodeId,
  type ProposeOutcome,
} from "../../src/index.ts";
import { VirtualClock } from "../../src/testing/index.ts";

const STEP_MS = 5;
const text = new TextEncoder();
const fromBytes = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

interface Member {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
}

function makeCluster(ids: NodeId[], seed: number) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: new SeededRandom(seed), faults: { minDelayMs: 1, maxDelayMs: 3 } });
  const members = new Map<NodeId, Member>();
  ids.forEach((id, i) => {
    const kv = new KvStateMachine();
    const node = new RaftNode<KvResult>({
      id,
      members: ids,
      storage: new MemoryStorage(),
      transport: network.connect(id),
      stateMachine: kv,
      clock,
      random: new SeededRandom(seed * 31 + i),
    });
    members.set(id, { node, kv });
  });

  const running = (): Member[] => [...members.values()].filter((m) => !m.node.stopped);
  const leaders = (): Member[] => running().filter((m) => m.node.isLeader);

  /** Advance virtual time until `done()` holds; fails after `limitMs` of virtual time. */
  async function runUntil(what: string, done: () => boolean, limitMs = 10_000): Promise<void> {
    for (let elapsed = 0; elapsed <= limitMs; elapsed += STEP_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (done()) return;
      clock.advance(STEP_MS);
    }
    throw new Error(`${what}: not reached within ${limitMs} ms of virtual time`);
  }

  /** Drive the clock until `promise` settles, then return its outcome. */
  async function settle<T>(what: string, promise: Promise<T>): Promise<T> {
    let settled = false;
    promise.then(() => (settled = true), () => (settled = true));
    await runUntil(what, () => settled);
    return promise;
  }

  /** Wait for exactly one leader among the running nodes, in a term above `aboveTerm`. */
  async function electLeader(aboveTerm: number): Promise<RaftNode<KvResult>> {
    await runUntil(`a leader above term ${aboveTerm}`, () => {
      const l = leaders();
      return l.length === 1 && l[0].node.status().term > aboveTerm;
    });
    const [leader] = leaders();
    const term = leader.node.status().term;
    // Followers learn the new leader from its first AppendEntries (the term's no-op entry).
    await runUntil("every running node to follow the leader", () =>
      running().every((m) => m.node.status().leaderId === leader.node.id && m.node.status().term === term)
    );
    assert.equal(leaders().length, 1, "exactly one leader");
    return leader.node;
  }

  /** Wait until every running node's state machine holds `expected`. */
  async function replicated(expected: Record<string, string>): Promise<void> {
    const holds = (m: Member) => Object.entries(expected).every(([k, v]) => fromBytes(m.kv.get(k)) === v);
    await runUntil("every running node to apply the writes", () => running().every(holds));
    for (const m of running()) {
      for (const [k, v] of Object.entries(expected)) assert.equal(fromBytes(m.kv.get(k)), v, `${m.node.id} holds ${k}`);
    }
  }

  const put = (leader: RaftNode<KvResult>, key: string, value: string): Promise<ProposeOutcome<KvResult>> =>
    leader.propose(encodeKvCommand({ op: "put", key, value: text.encode(value) }));

  return { clock, network, members, running, leaders, runUntil, settle, electLeader, replicated, put };
}

Deno.test("a 3-node cluster elects one leader, replicates KV puts, and survives the leader's crash", async (t) => {
  const c = makeCluster(["n1", "n2", "n3"], 42);
  await Promise.all([...c.members.values()].map((m) => m.node.start()));
  try {
    await scenario(c, t);
  } finally {
    await Promise.all(c.running().map((m) => m.node.stop()));
  }
});

async function scenario(c: ReturnType<typeof makeCluster>, t: Deno.TestContext): Promise<void> {
  let leader!: RaftNode<KvResult>;
  const written: Record<string, string> = {};

  // Each step builds on the one before: stop at the first failure.
  const elected = await t.step("exactly one leader is elected", async () => {
    leader = await c.electLeader(0);
  });
  if (!elected) return;

  const replicated = await t.step("puts through the leader commit and apply on every node", async () => {
    const proposals = [];
    for (let i = 1; i <= 5; i++) {
      written[`key-${i}`] = `value-${i}`;
      proposals.push(c.put(leader, `key-${i}`, `value-${i}`));
    }
    const outcomes = await c.settle("the puts to commit", Promise.all(proposals));
    for (const o of outcomes) assert.equal(o.result.ok, true);
    const indexes = outcomes.map((o) => o.index);
    assert.deepEqual(indexes, [...indexes].sort((a, b) => a - b), "applied in proposal order");
    await c.replicated(written);
  });
  if (!replicated) return;

  await t.step("after the leader crashes, the survivors elect a new leader in a higher term and commit", async () => {
    const oldTerm = leader.status().term;
    const oldId = leader.id;
    leader.crash();
    c.network.isolate(oldId);

    const next = await c.electLeader(oldTerm);
    assert.notEqual(next.id, oldId);
    assert.equal(c.running().length, 2);

    written["after-crash"] = "still-writable";
    const outcome = await c.settle("a put after the crash to commit", c.put(next, "after-crash", "still-writable"));
    assert.equal(outcome.result.ok, true);
    assert.ok(outcome.term > oldTerm, "committed in the new leader's term");
    await c.replicated(written);
  });
}
