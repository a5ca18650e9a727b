import { Raft, type RaftConfig } from "../core/raft.ts";
import { SeededRandom } from "../core/random.ts";
import type { Entry, HardState, Message, NodeId, Ready, ReadState } from "../core/types.ts";

/**
 * A synchronous harness around bare `Raft` cores, for unit and scenario tests of the protocol
 * itself: no driver, no promises, no time. Messages queue until `deliver()`; each node's Ready
 * is "persisted" instantly into an in-memory record that survives `crash()`.
 *
 * This is the shape of etcd-io/raft's interaction tests: campaign, deliver, tick, stabilize,
 * then assert on terms, roles, logs and commit indexes.
 */
export interface CoreClusterOptions {
  seed?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  readMode?: "read-index" | "lease";
  forwardProposals?: boolean;
  maxMsgBytes?: number;
  maxInflightMsgs?: number;
  /** The bootstrap voters (default: every id); the others start outside the configuration. */
  members?: NodeId[];
  promoteLagEntries?: number;
}

/**
 * What a cluster did, for transcripts (test/unit/scenario.test.ts): a node performed a Ready, or
 * a queued message was not delivered because an end is down or the link is cut.
 */
export type ClusterEvent =
  | { kind: "ready"; id: NodeId; ready: Ready }
  | { kind: "drop"; message: Message; reason: "down" | "cut" };

interface Durable {
  hardState: HardState;
  entries: Entry[];
}

export class CoreCluster {
  readonly ids: NodeId[];
  readonly nodes: Map<NodeId, Raft> = new Map();
  /** What each node has made durable; survives crash(). */
  readonly durable: Map<NodeId, Durable> = new Map();
  /** Every entry each node applied, in order (reset on crash: a restarted node re-applies). */
  readonly applied: Map<NodeId, Entry[]> = new Map();
  readonly readStates: Map<NodeId, ReadState[]> = new Map();
  /** Messages sent but not yet delivered. */
  queue: Message[] = [];
  /** Every message ever sent, for counting. */
  readonly sent: Message[] = [];
  /** Called with every Ready performed and every message dropped, in order. */
  observer: ((e: ClusterEvent) => void) | null = null;
  private readonly cut = new Set<string>();
  private readonly down = new Set<NodeId>();
  private readonly opts: CoreClusterOptions;
  private readonly random: SeededRandom;

  constructor(ids: NodeId[], opts: CoreClusterOptions = {}) {
    this.ids = ids.slice();
    this.opts = opts;
    this.random = new SeededRandom(opts.seed ?? 1);
    for (const id of ids) {
      this.durable.set(id, { hardState: { term: 0, votedFor: null, commit: 0 }, entries: [] });
      this.boot(id);
    }
  }

  private boot(id: NodeId): void {
    const d = this.durable.get(id)!;
    const config: RaftConfig = {
      id,
      electionTicks: this.opts.electionTicks ?? 10,
      heartbeatTicks: this.opts.heartbeatTicks ?? 1,
      preVote: this.opts.preVote ?? true,
      checkQuorum: this.opts.checkQuorum ?? true,
      readMode: this.opts.readMode,
      forwardProposals: this.opts.forwardProposals,
      maxMsgBytes: this.opts.maxMsgBytes,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      promoteLagEntries: this.opts.promoteLagEntries,
      random: new SeededRandom(this.random.int(0, 2 ** 31)),
    };
    const raft = new Raft(config, {
      hardState: { ...d.hardState },
      snapshot: null,
      entries: d.entries.slice(),
      conf: { voters: (this.opts.members ?? this.ids).includes(id) ? (this.opts.members ?? this.ids).slice() : [], learners: [], votersOutgoing: [] },
    });
    this.nodes.set(id, raft);
    this.applied.set(id, []);
    this.readStates.set(id, []);
  }

  node(id: NodeId): Raft {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Perform every pending Ready of every live node: persist, queue messages, apply, advance. */
  process(): void {
    for (const id of this.ids) {
      if (this.down.has(id)) continue;
      const raft = this.node(id);
      while (raft.hasReady()) {
        const rd = raft.ready();
        this.observer?.({ kind: "ready", id, ready: rd });
        const d = this.durable.get(id)!;
        if (rd.hardState) d.hardState = { ...rd.hardState };
        if (rd.entries.length > 0) {
          const first = rd.entries[0].index;
          d.entries.length = Math.max(0, first - 1);
          for (const e of rd.entries) d.entries.push(e);
        }
        for (const m of [...rd.earlyMessages, ...rd.messages]) {
          this.sent.push(m);
          this.queue.push(m);
        }
        this.applied.get(id)!.push(...rd.committedEntries);
        this.readStates.get(id)!.push(...rd.readStates);
        raft.advance();
      }
    }
  }

  /** Deliver every queued message once (those sent in response wait for the next call). */
  deliver(filter?: (m: Message) => boolean): number {
    this.process();
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (const m of batch) {
      if (filter && !filter(m)) continue;
      if (this.down.has(m.to) || this.down.has(m.from)) {
        this.observer?.({ kind: "drop", message: m, reason: "down" });
        continue;
      }
      if (this.cut.has(`${m.from}>${m.to}`)) {
        this.observer?.({ kind: "drop", message: m, reason: "cut" });
        continue;
      }
      const to = this.nodes.get(m.to);
      if (!to) continue;
      to.step(m);
      n++;
    }
    this.process();
    return n;
  }

  /** Deliver until no message is left in flight (bounded). Returns the rounds it took. */
  stabilize(maxRounds = 1000): number {
    for (let round = 1; round <= maxRounds; round++) {
      this.process();
      if (this.queue.length === 0) return round - 1;
      this.deliver();
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      if (!this.down.has(id)) this.node(id).tick();
    }
    this.process();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const id of this.ids) if (!this.down.has(id)) this.node(id).tick();
    this.process();
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.process();
  }

  propose(id: NodeId, data: string | Uint8Array): ReturnType<Raft["propose"]> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const res = this.node(id).propose([{ data: bytes }]);
    this.process();
    return res;
  }

  /** Cut both directions between every pair across groups; unlisted nodes are isolated. */
  partition(...groups: NodeId[][]): void {
    this.cut.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        const gb = groupOf.get(b);
        if (ga === undefined || gb === undefined || ga !== gb) this.cut.add(`${a}>${b}`);
      }
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Lose everything not durable (nothing here: persistence is instant) and stop the node. */
  crash(id: NodeId): void {
    this.down.add(id);
    const lost = (m: Message): boolean => m.to === id || m.from === id;
    for (const m of this.queue) if (lost(m)) this.observer?.({ kind: "drop", message: m, reason: "down" });
    this.queue = this.queue.filter((m) => !lost(m));
  }

  restart(id: NodeId): void {
    this.down.delete(id);
    this.boot(id);
  }

  leader(): NodeId | null {
    let found: NodeId | null = null;
    let bestTerm = -1;
    for (const id of this.ids) {
      if (this.down.has(id)) continue;
      const n = this.node(id);
      if (n.role === "leader" && n.term > bestTerm) {
        found = id;
        bestTerm = n.term;
      }
    }
    return found;
  }

  /** Data of the applied `normal` entries of a node, decoded as text. */
  appliedData(id: NodeId): string[] {
    const dec = new TextDecoder();
    return this.applied
      .get(id)!
      .filter((e) => e.type === "normal")
      .map((e) => dec.decode(e.data));
  }

  /** "index:term" of every entry in a node's log, for compact comparisons. */
  logTerms(id: NodeId): string {
    return this.node(id)
      .log.entries.map((e) => e.term)
      .join(" ");
  }
}
