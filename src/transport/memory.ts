import type { Clock } from "../clock.ts";
import type { Random } from "../core/random.ts";
import type { Message, MessageType, NodeId } from "../core/types.ts";
import type { Transport } from "./transport.ts";

/** Fault rates of a `MemoryNetwork`. Rates are probabilities in [0, 1]; delays are in ms. */
export interface NetworkFaults {
  /** Probability that a message is lost. Default 0. */
  dropRate: number;
  /** Probability that a message is delivered twice (the copy gets its own delay). Default 0. */
  duplicateRate: number;
  /** Delivery delay is uniform in [minDelayMs, maxDelayMs]. Defaults 1 and 1. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability that a message is held back for `longDelayMs` instead (long reordering). Default 0. */
  longDelayRate: number;
  /** Default 500. */
  longDelayMs: number;
}

export interface MemoryNetworkOptions {
  clock: Clock;
  /** Every fault decision and delay comes from here: the same seed gives the same run. */
  random: Random;
  /** Initial faults; change them any time with `setFaults`. */
  faults?: Partial<NetworkFaults>;
  /** Encoded size of a message (plug in the wire codec) to count `stats.bytes`. */
  sizeOf?: (message: Message) => number;
  /** Drop (return null) or rewrite messages at send time; for mutation tests. */
  filter?: (message: Message) => Message | null;
  /** Deliver deep copies (structuredClone) instead of the sender's objects. Default false. */
  copy?: boolean;
}

export interface NetworkStats {
  /** `send` calls on open transports. */
  sent: number;
  /** `send` calls per message type. */
  sentByType: Partial<Record<MessageType, number>>;
  /** Handler invocations, duplicates included. */
  delivered: number;
  /** Lost by `dropRate`. */
  dropped: number;
  /** Refused by a cut, partition or isolation, at send or at delivery time. */
  blocked: number;
  /** Dropped by the `filter` hook. */
  filtered: number;
  /** Addressed to a node that is unknown, closed or not started at delivery time. */
  unreachable: number;
  /** Extra copies scheduled by `duplicateRate`. */
  duplicated: number;
  /** Messages that got the long delay. */
  longDelayed: number;
  /** Handler calls that threw; the network caught them and went on. */
  handlerErrors: number;
  /** Sum of `sizeOf` over sent messages (0 without `sizeOf`). */
  bytes: number;
}

const DEFAULT_FAULTS: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  minDelayMs: 1,
  maxDelayMs: 1,
  longDelayRate: 0,
  longDelayMs: 500,
};

function emptyStats(): NetworkStats {
  return {
    sent: 0,
    sentByType: {},
    delivered: 0,
    dropped: 0,
    blocked: 0,
    filtered: 0,
    unreachable: 0,
    duplicated: 0,
    longDelayed: 0,
    handlerErrors: 0,
    bytes: 0,
  };
}

/** One node's attachment. Replaced (and detached) when its id connects again. */
class Endpoint implements Transport {
  handler: ((message: Message) => void) | null = null;
  closed = false;

  constructor(
    readonly id: NodeId,
    private readonly route: (from: NodeId, message: Message) => void,
    private readonly detach: (endpoint: Endpoint) => void,
  ) {}

  start(handler: (message: Message) => void): void {
    this.handler = handler;
  }

  send(message: Message): void {
    if (!this.closed) this.route(this.id, message);
  }

  close(): Promise<void> {
    this.closed = true;
    this.handler = null;
    this.detach(this);
    return Promise.resolve();
  }
}

/**
 * An in-process network for tests and the simulator: seeded loss, delay, duplication, long
 * reordering, directed link cuts and partitions, all on virtual time.
 *
 * Delivery always goes through `clock.setTimer`, never synchronously inside `send`, so a handler
 * that sends never re-enters another handler. Connectivity is checked at send time and again at
 * delivery time (a partition drops what is already in flight). A message is delivered to
 * whichever transport holds the recipient's id when it arrives, so messages sent to a node before
 * it restarted may reach the restarted node, as stray datagrams would.
 */
export class MemoryNetwork {
  /** Live counters; reset with `resetStats()`. */
  readonly stats: NetworkStats = emptyStats();
  /** The last error a handler threw, for debugging failed tests. */
  lastHandlerError: unknown = undefined;

  private readonly clock: Clock;
  private readonly random: Random;
  private readonly sizeOf: ((message: Message) => number) | undefined;
  private readonly filter: ((message: Message) => Message | null) | undefined;
  private readonly copy: boolean;
  private faults: NetworkFaults = { ...DEFAULT_FAULTS };
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** Directed cuts, keyed `from + "\0" + to`. */
  private readonly cuts = new Set<string>();
  /** Group number of each node while a partition is in force; null when there is none. */
  private groups: Map<NodeId, number> | null = null;
  private readonly isolated = new Set<NodeId>();
  private inFlightCount = 0;

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random;
    this.sizeOf = options.sizeOf;
    this.filter = options.filter;
    this.copy = options.copy ?? false;
    if (options.faults) this.setFaults(options.faults);
  }

  /** The transport for `id`. Connecting an id again replaces (and detaches) its old transport. */
  connect(id: NodeId): Transport {
    const old = this.endpoints.get(id);
    if (old) {
      old.closed = true;
      old.handler = null;
    }
    const endpoint = new Endpoint(
      id,
      (from, message) => this.route(from, message),
      (e) => {
        if (this.endpoints.get(e.id) === e) this.endpoints.delete(e.id);
      },
    );
    this.endpoints.set(id, endpoint);
    return endpoint;
  }

  /** Change fault rates; fields left out keep their current values. */
  setFaults(faults: Partial<NetworkFaults>): void {
    const next: NetworkFaults = { ...this.faults };
    for (const [key, value] of Object.entries(faults) as [keyof NetworkFaults, number | undefined][]) {
      if (value !== undefined) next[key] = value;
    }
    for (const key of ["dropRate", "duplicateRate", "longDelayRate"] as const) {
      if (!(next[key] >= 0 && next[key] <= 1)) throw new RangeError(`MemoryNetwork: ${key} must be in [0, 1], got ${next[key]}`);
    }
    for (const key of ["minDelayMs", "maxDelayMs", "longDelayMs"] as const) {
      if (!(next[key] >= 0)) throw new RangeError(`MemoryNetwork: ${key} must be >= 0, got ${next[key]}`);
    }
    if (next.minDelayMs > next.maxDelayMs) {
      throw new RangeError(`MemoryNetwork: minDelayMs (${next.minDelayMs}) exceeds maxDelayMs (${next.maxDelayMs})`);
    }
    this.faults = next;
  }

  /** The fault rates in force. */
  getFaults(): NetworkFaults {
    return { ...this.faults };
  }

  /** Stop messages from `from` to `to` (one direction only). */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}\0${to}`);
  }

  uncut(from: NodeId, to: NodeId): void {
    this.cuts.delete(`${from}\0${to}`);
  }

  /** Only nodes in the same group can talk; a node listed in no group is cut off from everyone. */
  partition(...groups: NodeId[][]): void {
    const map = new Map<NodeId, number>();
    groups.forEach((group, i) => {
      for (const id of group) {
        if (map.has(id)) throw new Error(`MemoryNetwork.partition: node ${id} is listed in two groups`);
        map.set(id, i);
      }
    });
    this.groups = map;
  }

  /** Cut `id` off from every other node until `heal()`. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Remove every cut, partition and isolation. Fault rates stay. */
  heal(): void {
    this.cuts.clear();
    this.groups = null;
    this.isolated.clear();
  }

  /** Whether a message from `from` to `to` would pass right now (ignoring random loss). */
  canReach(from: NodeId, to: NodeId): boolean {
    if (from === to) return true;
    if (this.isolated.has(from) || this.isolated.has(to)) return false;
    if (this.cuts.has(`${from}\0${to}`)) return false;
    if (this.groups !== null) {
      const a = this.groups.get(from);
      if (a === undefined || a !== this.groups.get(to)) return false;
    }
    return true;
  }

  /** Messages scheduled for delivery and not yet delivered or dropped. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  private route(from: NodeId, original: Message): void {
    const stats = this.stats;
    stats.sent++;
    stats.sentByType[original.type] = (stats.sentByType[original.type] ?? 0) + 1;
    if (this.sizeOf) stats.bytes += this.sizeOf(original);
    if (!this.canReach(from, original.to)) {
      stats.blocked++;
      return;
    }
    let message: Message | null = original;
    if (this.filter) {
      message = this.filter(original);
      if (message === null) {
        stats.filtered++;
        return;
      }
    }
    const f = this.faults;
    if (f.dropRate > 0 && this.random.next() < f.dropRate) {
      stats.dropped++;
      return;
    }
    this.schedule(from, message);
    if (f.duplicateRate > 0 && this.random.next() < f.duplicateRate) {
      stats.duplicated++;
      this.schedule(from, message);
    }
  }

  private delay(): number {
    const f = this.faults;
    if (f.longDelayRate > 0 && this.random.next() < f.longDelayRate) {
      this.stats.longDelayed++;
      return f.longDelayMs;
    }
    if (f.maxDelayMs === f.minDelayMs) return f.minDelayMs;
    return f.minDelayMs + this.random.next() * (f.maxDelayMs - f.minDelayMs);
  }

  private schedule(from: NodeId, message: Message): void {
    // Copy at send time, one copy per delivery, so neither the sender's later mutations nor one
    // recipient's mutations reach another delivery.
    const payload = this.copy ? structuredClone(message) : message;
    this.inFlightCount++;
    this.clock.setTimer(this.delay(), () => {
      this.inFlightCount--;
      this.deliver(from, payload);
    });
  }

  private deliver(from: NodeId, message: Message): void {
    if (!this.canReach(from, message.to)) {
      this.stats.blocked++;
      return;
    }
    const handler = this.endpoints.get(message.to)?.handler;
    if (!handler) {
      this.stats.unreachable++;
      return;
    }
    this.stats.delivered++;
    try {
      handler(message);
    } catch (error) {
      this.stats.handlerErrors++;
      this.lastHandlerError = error;
    }
  }
}
