import { isMember } from "../core/membership.ts";
import { SeededRandom } from "../core/random.ts";
import type { ConfState, Entry, Message, NodeId, Term } from "../core/types.ts";
import type { Clock } from "../clock.ts";
import type { Transport } from "../transport/transport.ts";
import { KvStateMachine } from "../kv/kv.ts";
import { RaftNode, type RaftNodeOptions } from "../node.ts";
import { MemoryStorage } from "../storage/memory.ts";
import { encodeMessage } from "../transport/codec.ts";
import { MemoryNetwork } from "../transport/memory.ts";
import { VirtualClock } from "./clock.ts";

/**
 * Real `RaftNode`s (driver + core + KV state machine) over a `MemoryNetwork`, on virtual time.
 * Everything random comes from one seed, so a run replays exactly.
 *
 * The MIT 6.824 Raft lab tests and the simulator are written against it: connect and disconnect
 * nodes, partition, crash (losing whatever the node's storage had not made durable), restart
 * from storage, pause, make the network unreliable, and observe roles and applied entries.
 */
export interface TestClusterOptions {
  /** Node ids, or a count (ids n1..nN). Default 3. */
  nodes?: NodeId[] | number;
  /**
   * Extra nodes, or a count (ids continue after the members'), started outside the configuration
   * (`join: true`): they take part once a membership change adds them.
   */
  spares?: NodeId[] | number;
  seed?: number;
  tickMs?: number;
  electionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Virtual ms a storage save takes to become durable. Default 1. */
  diskLatencyMs?: number;
  /** Count encoded bytes of every message with the wire codec (network.stats.bytes). */
  countBytes?: boolean;
  /** Rewrite or drop messages at send time (mutation tests, targeted faults). */
  filter?: (m: Message) => Message | null;
  /** Extra RaftNode options (preVote, checkQuorum, readMode, timeouts). */
  nodeOptions?: Partial<RaftNodeOptions<unknown>>;
  /** Storage factory (mutation tests substitute a lying disk). */
  makeStorage?: (id: NodeId, clock: VirtualClock) => MemoryStorage;
}

export interface ClusterMember {
  id: NodeId;
  node: RaftNode<unknown>;
  storage: MemoryStorage;
  kv: KvStateMachine;
  up: boolean;
  paused: boolean;
  /** Every entry applied in this node's current life, by index. */
  applied: Map<number, Entry>;
  /** Restart count, for traces. */
  incarnation: number;
  /** The raw network endpoint (closed on crash). */
  transport: Transport;
  /** Delivers an inbound message to the node (held messages go through it on resume). */
  inbound: ((m: Message) => void) | null;
  /** Timers that came due while paused; they fire on resume. */
  deferred: (() => void)[];
}

type Listener = (event: ClusterEvent) => void;

export type ClusterEvent =
  | { type: "role"; id: NodeId; role: string; term: Term; leaderId: NodeId | null }
  | { type: "applied"; id: NodeId; entry: Entry }
  | { type: "snapshot-restored"; id: NodeId; index: number }
  | { type: "snapshot-taken"; id: NodeId; index: number }
  | { type: "membership"; id: NodeId; conf: ConfState }
  | { type: "crash" | "restart" | "pause" | "resume" | "disconnect" | "connect"; id: NodeId }
  | { type: "partition"; groups: NodeId[][] }
  | { type: "heal" }
  | { type: "node-error"; id: NodeId; error: unknown };

/** Let promise chains settle between virtual-time events (deterministic: no real time involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 24; i++) await null;
}

export class TestCluster {
  /** Every node: the initial members, then the spares. */
  readonly ids: NodeId[];
  /** The voters the cluster was bootstrapped with. */
  readonly initialMembers: NodeId[];
  readonly clock: VirtualClock = new VirtualClock();
  readonly random: SeededRandom;
  readonly network: MemoryNetwork;
  readonly members: Map<NodeId, ClusterMember> = new Map();
  private readonly opts: TestClusterOptions;
  private readonly listeners = new Set<Listener>();
  /** Connectivity model: nodes cut off by disconnect(), and the current partition groups. */
  private readonly disconnected = new Set<NodeId>();
  private groups: NodeId[][] | null = null;
  /** Buffers for paused nodes: inbound messages held until resume. */
  private readonly held = new Map<NodeId, Message[]>();
  private unreliable = false;
  private longReordering = false;

  constructor(opts: TestClusterOptions = {}) {
    this.opts = opts;
    const n = opts.nodes ?? 3;
    this.initialMembers = typeof n === "number" ? Array.from({ length: n }, (_, i) => `n${i + 1}`) : n.slice();
    const sp = opts.spares ?? 0;
    const first = this.initialMembers.length + 1;
    const spares = typeof sp === "number" ? Array.from({ length: sp }, (_, i) => `n${first + i}`) : sp.slice();
    this.ids = [...this.initialMembers, ...spares];
    this.random = new SeededRandom(opts.seed ?? 1);
    this.network = new MemoryNetwork({
      clock: this.clock,
      random: new SeededRandom(this.random.int(0, 2 ** 31)),
      faults: { minDelayMs: 1, maxDelayMs: 2 },
      sizeOf: opts.countBytes ? (m) => encodeMessage(m).byteLength : undefined,
      filter: opts.filter,
    });
  }

  /** Boot every node (fresh storage). */
  async start(): Promise<void> {
    for (const id of this.ids) {
      const storage = this.opts.makeStorage?.(id, this.clock) ?? new MemoryStorage({ clock: this.clock, saveLatencyMs: this.opts.diskLatencyMs ?? 1 });
      await this.boot(id, storage, 0);
    }
  }

  private async boot(id: NodeId, storage: MemoryStorage, incarnation: number): Promise<void> {
    const kv = new KvStateMachine();
    const o = this.opts;
    const transport = this.network.connect(id);
    const member: ClusterMember = {
      id,
      node: null as unknown as RaftNode<unknown>,
      storage,
      kv,
      up: true,
      paused: false,
      applied: new Map(),
      incarnation,
      transport,
      inbound: null,
      deferred: [],
    };
    // Paused nodes hold their inbound messages; wrap the transport's handler to do so.
    const wrapped: Transport = {
      start: (handler: (m: Message) => void) => {
        member.inbound = handler;
        transport.start((m) => {
          if (member.paused) this.held.get(id)!.push(m);
          else handler(m);
        });
      },
      send: (m: Message) => {
        if (!member.paused) transport.send(m);
      },
      close: () => transport.close(),
    };
    this.held.set(id, []);
    const node = new RaftNode<unknown>({
      id,
      members: this.initialMembers.includes(id) ? this.initialMembers : [],
      join: !this.initialMembers.includes(id),
      storage,
      transport: wrapped,
      stateMachine: kv,
      clock: this.pausableClock(member),
      random: new SeededRandom(this.random.int(0, 2 ** 31)),
      tickMs: o.tickMs ?? 10,
      electionTimeoutMs: o.electionTimeoutMs ?? 100,
      heartbeatIntervalMs: o.heartbeatIntervalMs ?? 20,
      proposalTimeoutMs: 2_000,
      readTimeoutMs: 1_000,
      ...(o.nodeOptions as Partial<RaftNodeOptions<unknown>>),
    });
    member.node = node;
    node.on((e) => {
      if (e.type === "role") this.emit({ type: "role", id, role: e.role, term: e.term, leaderId: e.leaderId });
      else if (e.type === "applied") {
        member.applied.set(e.entry.index, e.entry);
        this.emit({ type: "applied", id, entry: e.entry });
      } else if (e.type === "error") this.emit({ type: "node-error", id, error: e.error });
      else if (e.type === "snapshot-restored") this.emit({ type: "snapshot-restored", id, index: e.index });
      else if (e.type === "snapshot-taken") this.emit({ type: "snapshot-taken", id, index: e.index });
      else if (e.type === "membership") this.emit({ type: "membership", id, conf: e.conf });
    });
    this.members.set(id, member);
    try {
      await node.start();
    } catch (error) {
      // A node that cannot start from its own storage lost durability: report it like any
      // other node failure and leave it down.
      member.up = false;
      this.emit({ type: "node-error", id, error });
    }
    await settle();
  }

  /**
   * The node's clock: while paused, its timers do not fire; on resume every timer that came due
   * fires at once (a process that was stopped and continued sees a burst of elapsed time).
   */
  private pausableClock(member: ClusterMember): Clock {
    const clock = this.clock;
    return {
      now: () => clock.now(),
      setTimer: (ms: number, fn: () => void) =>
        clock.setTimer(ms, () => {
          if (member.paused) member.deferred.push(fn);
          else fn();
        }),
    };
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: ClusterEvent): void {
    for (const l of this.listeners) l(e);
  }

  member(id: NodeId): ClusterMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no node ${id}`);
    return m;
  }

  node(id: NodeId): RaftNode<unknown> {
    return this.member(id).node;
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  /** Fire every event due in the next `ms` virtual milliseconds, settling promises between. */
  async run(ms: number, afterEvent?: () => void): Promise<void> {
    await this.runUntil(() => false, ms, afterEvent);
  }

  /** Run until `pred()` holds (checked after every event) or `maxMs` passes; returns whether it held. */
  async runUntil(pred: () => boolean, maxMs: number, afterEvent?: () => void): Promise<boolean> {
    const until = this.clock.now() + maxMs;
    if (pred()) return true;
    for (;;) {
      const next = this.clock.nextTime();
      if (next === undefined || next > until) break;
      this.clock.fireNext();
      await settle();
      afterEvent?.();
      if (pred()) return true;
    }
    this.clock.advanceTo(Math.max(until, this.clock.now()));
    return pred();
  }

  // ---------------------------------------------------------------------------------------------
  // Faults

  private applyConnectivity(): void {
    // Rebuild the network's cut set from our model: disconnected nodes and partition groups.
    this.network.heal();
    if (this.groups) {
      const listed = new Set(this.groups.flat());
      const groups = this.groups.map((g) => g.slice());
      // Nodes not named in any group stay connected to nobody only if the caller said so; by
      // convention unnamed nodes form their own group.
      const rest = this.ids.filter((id) => !listed.has(id));
      if (rest.length > 0) groups.push(rest);
      this.network.partition(...groups);
    }
    for (const id of this.disconnected) this.network.isolate(id);
  }

  /** Cut `id` off from everyone (its process keeps running). */
  disconnect(id: NodeId): void {
    this.disconnected.add(id);
    this.applyConnectivity();
    this.emit({ type: "disconnect", id });
  }

  connect(id: NodeId): void {
    this.disconnected.delete(id);
    this.applyConnectivity();
    this.emit({ type: "connect", id });
  }

  /** Only nodes in the same group talk. Nodes not listed form one more group. */
  partition(...groups: NodeId[][]): void {
    this.groups = groups.map((g) => g.slice());
    this.applyConnectivity();
    this.emit({ type: "partition", groups });
  }

  /** Fine-grained cut of one direction (for bridges and rings); cleared by heal(). */
  cut(from: NodeId, to: NodeId): void {
    this.network.cut(from, to);
  }

  /** Remove every partition, disconnection and cut. */
  heal(): void {
    this.groups = null;
    this.disconnected.clear();
    this.applyConnectivity();
    this.emit({ type: "heal" });
  }

  /** Drop 10% of messages and delay the rest by 1-27 ms (MIT's unreliable network). */
  setUnreliable(on: boolean): void {
    this.unreliable = on;
    this.applyFaults();
  }

  /** Hold back 1 message in 50 for 10 election timeouts: replies arrive long after the fact. */
  setLongReordering(on: boolean): void {
    this.longReordering = on;
    this.applyFaults();
  }

  private applyFaults(): void {
    const et = this.opts.electionTimeoutMs ?? 100;
    this.network.setFaults({
      dropRate: this.unreliable ? 0.1 : 0,
      duplicateRate: this.unreliable ? 0.02 : 0,
      minDelayMs: 1,
      maxDelayMs: this.unreliable ? 27 : 2,
      longDelayRate: this.longReordering ? 0.02 : 0,
      longDelayMs: 10 * et,
    });
  }

  /** Kill the process: nothing not yet durable survives; the node stops sending and receiving. */
  crash(id: NodeId): void {
    const m = this.member(id);
    if (!m.up) return;
    m.node.crash();
    m.storage.crash();
    void m.transport.close();
    m.up = false;
    m.paused = false;
    this.emit({ type: "crash", id });
  }

  /** Start a new process for `id` on the same (durable) storage. */
  async restart(id: NodeId): Promise<void> {
    const m = this.member(id);
    if (m.up) this.crash(id);
    await this.boot(id, m.storage.reopen(), m.incarnation + 1);
    this.emit({ type: "restart", id });
  }

  /** Stop the process (SIGSTOP): no ticks, no messages in or out, until resume(). */
  pause(id: NodeId): void {
    const m = this.member(id);
    if (!m.up || m.paused) return;
    m.paused = true;
    this.emit({ type: "pause", id });
  }

  /** Continue a paused process: overdue timers fire and held messages arrive in a burst. */
  resume(id: NodeId): void {
    const m = this.member(id);
    if (!m.paused) return;
    m.paused = false;
    this.emit({ type: "resume", id });
    for (const fn of m.deferred.splice(0)) fn();
    for (const msg of this.held.get(id)!.splice(0)) m.inbound?.(msg);
  }

  // ---------------------------------------------------------------------------------------------
  // Observation

  /** Live, unpaused nodes that consider themselves leader. */
  leaders(): NodeId[] {
    return this.ids.filter((id) => {
      const m = this.members.get(id);
      return m !== undefined && m.up && !m.paused && m.node.isLeader;
    });
  }

  /** The leader with the highest term among live nodes, or null. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const id of this.leaders()) {
      const t = this.node(id).status().term;
      if (t > bestTerm) {
        best = id;
        bestTerm = t;
      }
    }
    return best;
  }

  /** Wait (virtual time) until exactly one live leader is agreed by a majority; returns it. */
  async waitForLeader(maxMs = 5_000): Promise<NodeId> {
    const ok = await this.runUntil(() => this.stableLeader() !== null, maxMs);
    const leader = this.stableLeader();
    if (!ok || leader === null) {
      throw new Error(`no leader within ${maxMs} virtual ms: ${this.describe()}`);
    }
    return leader;
  }

  /**
   * A leader that a majority of the voters of its configuration (of both halves, when joint),
   * live and itself included, follow in its term.
   */
  stableLeader(): NodeId | null {
    const l = this.leader();
    if (l === null) return null;
    const s0 = this.node(l).status();
    const follows = (id: NodeId): boolean => {
      const m = this.members.get(id);
      if (!m || !m.up || m.paused) return false;
      const s = m.node.status();
      return s.term === s0.term && s.leaderId === l;
    };
    const majority = (voters: NodeId[]): boolean => voters.filter(follows).length > voters.length / 2;
    if (!majority(s0.voters)) return null;
    if (s0.votersOutgoing.length > 0 && !majority(s0.votersOutgoing)) return null;
    return l;
  }

  /** Every node in the leader's configuration (voters and learners), or all nodes without a leader. */
  currentMembers(): NodeId[] {
    const l = this.leader();
    if (l === null) return this.ids.slice();
    const c = this.node(l).membership();
    return this.ids.filter((id) => isMember(c, id));
  }

  /** Data of the `normal` entries a node applied in its current life, in index order. */
  applied(id: NodeId): Entry[] {
    const m = this.member(id);
    return [...m.applied.values()].filter((e) => e.type === "normal").sort((a, b) => a.index - b.index);
  }

  /**
   * How many live nodes applied `index`, and the entry they agree on. Throws if two nodes
   * applied different entries there (state machine safety).
   */
  nApplied(index: number): { count: number; entry: Entry | null } {
    let count = 0;
    let entry: Entry | null = null;
    for (const id of this.ids) {
      const e = this.members.get(id)?.applied.get(index);
      if (!e) continue;
      if (entry && (entry.term !== e.term || !sameBytes(entry.data, e.data))) {
        throw new Error(`nodes applied different entries at index ${index}: ${describeEntry(entry)} vs ${describeEntry(e)} (on ${id})`);
      }
      entry = e;
      count++;
    }
    return { count, entry };
  }

  /** One line per node: role, term, leader, commit/applied/last. */
  describe(): string {
    return this.ids
      .map((id) => {
        const m = this.members.get(id)!;
        if (!m.up) return `${id}:down`;
        const s = m.node.status();
        return `${id}:${s.role}${m.paused ? "(paused)" : ""} t${s.term} L=${s.leaderId ?? "-"} c${s.commitIndex} a${s.appliedIndex} l${s.lastIndex}`;
      })
      .join("  ");
  }

  /** Stop every node. */
  async stop(): Promise<void> {
    for (const m of this.members.values()) if (m.up) this.crash(m.id);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describeEntry(e: Entry): string {
  return `{index ${e.index}, term ${e.term}, ${e.type}, ${e.data.byteLength} bytes}`;
}

export { sameBytes };
