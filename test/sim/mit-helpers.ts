/**
 * A harness in the spirit of the MIT 6.824 Raft lab's test config, over TestCluster: real
 * RaftNodes on a MemoryNetwork and virtual time. It tracks which nodes the test has disconnected
 * (MIT's "connected" set), checks Raft's invariants after every virtual-time event, and offers
 * the lab's observation helpers (checkOneLeader, checkTerms, checkNoLeader, nCommitted, one).
 *
 * Our leaders append a no-op on election, so indexes are never assumed: `one()` returns the
 * index the command landed at, and tests compare indexes relative to each other.
 */
import { SeededRandom } from "../../src/core/random.ts";
import type { Entry, NodeId, Term } from "../../src/core/types.ts";
import { decodeKvCommand, encodeKvCommand } from "../../src/kv/kv.ts";
import { TestCluster, type TestClusterOptions } from "../../src/testing/cluster.ts";
import { InvariantChecker } from "../../src/testing/invariants.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Generous wait for one proposal to reach agreement before `one()` gives up (MIT: 10 s). */
export const AGREEMENT_TIMEOUT_MS = 10_000;
/** Base election timeout of every Lab cluster (TestCluster's default); randomized in [100, 200). */
export const ELECTION_TIMEOUT_MS = 100;

/** A KV put whose value identifies it; every Lab command is one of these. */
export function command(value: string): Uint8Array {
  return encodeKvCommand({ op: "put", key: "mit", value: enc.encode(value) });
}

/** The value of a Lab command (the test's name for the entry). */
export function valueOf(entry: Entry): string {
  if (entry.type !== "normal") return `<${entry.type}>`;
  const cmd = decodeKvCommand(entry.data);
  return cmd.op === "put" ? dec.decode(cmd.value) : `<${cmd.op}>`;
}

export class Lab {
  readonly cluster: TestCluster;
  readonly checker: InvariantChecker;
  /** Nodes the test cut off with disconnect(); everyone else is "connected" (MIT's sense). */
  private readonly cut = new Set<NodeId>();
  private readonly errors: string[] = [];
  private unique = 0;

  private constructor(cluster: TestCluster) {
    this.cluster = cluster;
    this.checker = new InvariantChecker(cluster);
    cluster.on((e) => {
      if (e.type === "node-error") this.errors.push(`${e.id}: ${e.error instanceof Error ? e.error.message : String(e.error)}`);
    });
  }

  static async start(nodes: number, seed: number, opts: Partial<TestClusterOptions> = {}): Promise<Lab> {
    const lab = new Lab(new TestCluster({ ...opts, nodes, seed, electionTimeoutMs: ELECTION_TIMEOUT_MS }));
    await lab.cluster.start();
    return lab;
  }

  get ids(): NodeId[] {
    return this.cluster.ids;
  }

  /** Check Raft's invariants and that no node failed; called after every event. */
  private readonly afterEvent = (): void => {
    if (this.errors.length > 0) throw new Error(`a node failed: ${this.errors.join("; ")}`);
    this.checker.check();
  };

  /** Let `ms` of virtual time pass. */
  run(ms: number): Promise<void> {
    return this.cluster.run(ms, this.afterEvent);
  }

  runUntil(pred: () => boolean, maxMs: number): Promise<boolean> {
    return this.cluster.runUntil(pred, maxMs, this.afterEvent);
  }

  /** A promise that resolves after `ms` virtual ms (for async clients). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.cluster.clock.setTimer(ms, () => resolve()));
  }

  now(): number {
    return this.cluster.clock.now();
  }

  // --- connectivity and processes ---------------------------------------------------------------

  disconnect(id: NodeId): void {
    this.cut.add(id);
    this.cluster.disconnect(id);
  }

  connect(id: NodeId): void {
    this.cut.delete(id);
    this.cluster.connect(id);
  }

  isConnected(id: NodeId): boolean {
    return !this.cut.has(id);
  }

  isUp(id: NodeId): boolean {
    return this.cluster.member(id).up;
  }

  crash(id: NodeId): void {
    this.cluster.crash(id);
  }

  /** Start a new process on the node's durable storage (its connectivity is unchanged). */
  restart(id: NodeId): Promise<void> {
    return this.cluster.restart(id);
  }

  /** Live nodes the test has not disconnected. */
  reachable(): NodeId[] {
    return this.ids.filter((id) => this.isUp(id) && this.isConnected(id));
  }

  term(id: NodeId): Term {
    return this.cluster.node(id).status().term;
  }

  // --- the lab's checks -------------------------------------------------------------------------

  /**
   * The leader among connected, live nodes: the one with the highest term, provided no connected
   * node has moved to a later term (an election may be under way). Null if there is none. Two
   * leaders in one term fail at once (the checker also watches this for every node at every event).
   */
  connectedLeader(): NodeId | null {
    const byTerm = new Map<Term, NodeId>();
    let maxTerm = 0;
    for (const id of this.reachable()) {
      const s = this.cluster.node(id).status();
      maxTerm = Math.max(maxTerm, s.term);
      if (!this.cluster.node(id).isLeader) continue;
      const other = byTerm.get(s.term);
      if (other !== undefined) throw new Error(`term ${s.term} has two leaders: ${other} and ${id}`);
      byTerm.set(s.term, id);
    }
    return byTerm.get(maxTerm) ?? null;
  }

  /** Wait until the connected nodes have a leader; fail if none appears within `maxMs`. */
  async checkOneLeader(maxMs = 5_000): Promise<NodeId> {
    await this.runUntil(() => this.connectedLeader() !== null, maxMs);
    const leader = this.connectedLeader();
    if (leader === null) throw new Error(`expected one leader among connected nodes, got none: ${this.cluster.describe()}`);
    return leader;
  }

  /** All connected live nodes agree on the term; returns it. */
  checkTerms(): Term {
    const terms = new Set(this.reachable().map((id) => this.term(id)));
    if (terms.size !== 1) throw new Error(`connected nodes disagree on the term: ${this.cluster.describe()}`);
    return [...terms][0];
  }

  /** No connected live node believes it is leader. */
  checkNoLeader(): void {
    const leaders = this.reachable().filter((id) => this.cluster.node(id).isLeader);
    if (leaders.length > 0) throw new Error(`expected no leader among connected nodes, got ${leaders.join(", ")}: ${this.cluster.describe()}`);
  }

  /** How many nodes applied `index` (throws if two applied different entries), and its value. */
  nCommitted(index: number): { count: number; value: string | null } {
    const { count, entry } = this.cluster.nApplied(index);
    return { count, value: entry ? valueOf(entry) : null };
  }

  /** A value no other command of this test carries. */
  fresh(prefix = "v"): string {
    return `${prefix}${++this.unique}`;
  }

  /**
   * MIT's `Start()`: propose `value` at node `id` without waiting for the outcome. Returns where
   * it was appended, or null if the node is down or not leader.
   */
  start(id: NodeId, value: string): { index: number; term: Term } | null {
    const node = this.cluster.node(id);
    if (!this.isUp(id) || !node.isLeader) return null;
    // Like MIT's Start(): the entry is placed in the log now and we learn where.
    const placed = node.submit(command(value));
    placed.applied.catch(() => {});
    return { index: placed.index, term: placed.term };
  }

  /**
   * MIT's `one()`: get `value` committed. Propose it at whichever connected node is leader, then
   * wait (up to 2 s) until at least `expected` nodes applied it at that index. With `retry`, a
   * proposal that lost its index (leader change) is proposed again; without it, that fails.
   * Gives up after AGREEMENT_TIMEOUT_MS of virtual time. Returns the index.
   */
  async one(value: string, expected: number, retry = true): Promise<number> {
    const name = value.length > 40 ? `${value.slice(0, 20)}...(${value.length} chars)` : value;
    const deadline = this.now() + AGREEMENT_TIMEOUT_MS;
    let rotate = 0;
    while (this.now() < deadline) {
      let placed: { index: number; term: Term } | null = null;
      const reachable = this.reachable();
      for (let k = 0; k < reachable.length && !placed; k++) {
        placed = this.start(reachable[(rotate + k) % reachable.length], value);
      }
      rotate++;
      if (!placed) {
        await this.run(50);
        continue;
      }
      const index = placed.index;
      let lost = false;
      await this.runUntil(() => {
        const c = this.nCommitted(index);
        if (c.value !== null && c.value !== value) lost = true;
        return lost || (c.value === value && c.count >= expected);
      }, Math.min(2_000, deadline - this.now()));
      const c = this.nCommitted(index);
      if (c.value === value && c.count >= expected) return index;
      if (!retry) throw new Error(`one(${name}) failed to reach agreement on ${expected} nodes: ${this.cluster.describe()}`);
      if (!lost) await this.run(50);
    }
    throw new Error(`one(${name}) failed to reach agreement on ${expected} nodes within ${AGREEMENT_TIMEOUT_MS} virtual ms: ${this.cluster.describe()}`);
  }

  /**
   * An asynchronous client: propose `value` at a connected node that believes it leads and wait
   * for the answer; on any failure (no leader, not leader, dropped, outcome unknown, node
   * crashed) wait `backoffMs` and try again, until `maxMs` of virtual time passed. It never drives
   * time itself: the test does (run/runUntil), which is what lets many clients run at once.
   * Resolves with where the value committed, or null if it gave up.
   */
  async submit(
    value: string,
    opts: { maxMs?: number; backoffMs?: number } = {},
  ): Promise<{ index: number; term: Term } | null> {
    const deadline = this.now() + (opts.maxMs ?? AGREEMENT_TIMEOUT_MS);
    const backoff = opts.backoffMs ?? 20;
    while (this.now() < deadline) {
      const target = this.reachable().find((id) => this.cluster.node(id).isLeader);
      if (target !== undefined) {
        try {
          const out = await this.cluster.node(target).propose(command(value));
          return { index: out.index, term: out.term };
        } catch {
          // Not committed here (or unknown): try again. A retry may commit the value twice.
        }
      }
      await this.sleep(backoff);
    }
    return null;
  }

  /** The values a node applied in its current life, in log order. */
  appliedValues(id: NodeId): string[] {
    return this.cluster.applied(id).map(valueOf);
  }

  async stop(): Promise<void> {
    await this.cluster.stop();
  }
}

export function pick<T>(rng: SeededRandom, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length)];
}

/** `k` distinct elements of `xs`, in random order. */
export function sample<T>(rng: SeededRandom, xs: readonly T[], k: number): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

/**
 * MIT's Figure 8 (unreliable) procedure on 5 nodes: 1000 rounds of placing one entry at every
 * node that believes it leads, running a short or long while, cutting the leader off half the
 * time, reconnecting nodes so a majority stays up, on a lossy network with long reordering from
 * round 200; then everything heals and one more entry must reach every node with identical logs.
 * Throws on any invariant violation or disagreement.
 */
export async function figure8Unreliable(seed: number, rounds = 1_000): Promise<void> {
  const lab = await Lab.start(5, seed);
  const rng = new SeededRandom(seed);
  lab.cluster.setUnreliable(true);
  await lab.one(lab.fresh("f8u-"), 1);
  let connected = lab.ids.length;
  let cuts = 0;
  for (let round = 0; round < rounds; round++) {
    if (round === 200) lab.cluster.setLongReordering(true);
    let leader: NodeId | null = null;
    for (const id of lab.ids) if (lab.start(id, lab.fresh("f8u-")) !== null && lab.isConnected(id)) leader = id;
    await lab.run(rng.chance(0.1) ? rng.int(0, (5 * ELECTION_TIMEOUT_MS) / 2) : rng.int(0, 13));
    if (leader !== null && rng.chance(0.5)) {
      lab.disconnect(leader);
      connected--;
      cuts++;
    }
    if (connected < 3) {
      const s = pick(rng, lab.ids);
      if (!lab.isConnected(s)) {
        lab.connect(s);
        connected++;
      }
    }
  }
  if (cuts <= 20) throw new Error(`only ${cuts} leaders were cut off`);
  lab.cluster.setUnreliable(false);
  for (const id of lab.ids) lab.connect(id);
  const last = await lab.one(lab.fresh("f8u-end-"), lab.ids.length);
  const reference = lab.appliedValues(lab.ids[0]);
  for (const id of lab.ids) {
    if (JSON.stringify(lab.appliedValues(id)) !== JSON.stringify(reference)) throw new Error(`${id} applied a different sequence than ${lab.ids[0]}`);
  }
  for (let i = 1; i <= last; i++) lab.nCommitted(i);
  await lab.stop();
}
