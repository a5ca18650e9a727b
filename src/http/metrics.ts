import type { KvStateMachine } from "../kv/kv.ts";
import type { NodeStatus, RaftNode } from "../node.ts";
import type { PeerLinkCounters } from "../transport/transport.ts";
import type { NodeInstruments } from "./metrics-instruments.ts";

/**
 * Just enough of a Prometheus client for `GET /metrics`: labelled counters, labelled histograms
 * and gauges read at scrape time, rendered in the text exposition format (version 0.0.4).
 */

type Labels = Record<string, string>;

interface Family {
  render(out: string[]): void;
}

/** Latency buckets in seconds: 0.25 ms to 10 s, dense where a loopback cluster answers. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return Number.isNaN(n) ? "NaN" : String(n);
}

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`);
}

export class Counter implements Family {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }

  /** The sum over every series whose labels include `match`. */
  total(match: Labels = {}): number {
    let sum = 0;
    for (const { labels, value } of this.values.values()) {
      if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += value;
    }
    return sum;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "counter");
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Family {
  private readonly series = new Map<string, HistogramSeries>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[] = LATENCY_BUCKETS_SECONDS,
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]) i++;
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.series.get(keyOf(labels))?.count ?? 0;
  }

  /** Every series added up: bucket bounds, and non-cumulative counts per bucket (the last: +Inf). */
  merged(): { le: readonly number[]; counts: number[] } {
    const counts = new Array<number>(this.buckets.length + 1).fill(0);
    for (const s of this.series.values()) for (let i = 0; i < counts.length; i++) counts[i] += s.counts[i];
    return { le: this.buckets, counts };
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "histogram");
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += s.counts[i];
        const le = i < this.buckets.length ? formatNumber(this.buckets[i]) : "+Inf";
        out.push(`${this.name}_bucket${labelText(s.labels, ["le", le])} ${cumulative}`);
      }
      out.push(`${this.name}_sum${labelText(s.labels)} ${formatNumber(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
  }
}

/** A gauge (or a counter kept elsewhere, `type` "counter") whose samples are read when scraped. */
export class Gauge implements Family {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly read: () => [Labels, number][],
    private readonly type: "gauge" | "counter" = "gauge",
  ) {}

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    for (const [labels, value] of this.read()) out.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
  }
}

export class Registry {
  private readonly families: Family[] = [];

  add<F extends Family>(family: F): F {
    this.families.push(family);
    return family;
  }

  /** The exposition text; serve it as `text/plain; version=0.0.4`. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families) f.render(out);
    return out.join("\n") + "\n";
  }
}

/** The content type of `Registry.render()`. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metric families of one node's app. */
export interface HttpMetrics {
  registry: Registry;
  /** HTTP answers by method, route pattern and status. */
  requests: Counter;
  requestSeconds: Histogram;
  /** Error answers by code. */
  errors: Counter;
  /** Proposals by op and outcome (ok, not_leader, unknown, proposal_dropped, ...). */
  proposals: Counter;
  /** Time from propose to applied, for proposals that succeeded, by op. */
  proposalSeconds: Histogram;
  /** Reads by mode (linearizable, stale) and outcome. */
  reads: Counter;
  /** Time a linearizable read waited for its read index to be confirmed and applied. */
  readIndexSeconds: Histogram;
}

const ROLES = ["follower", "pre-candidate", "candidate", "leader"] as const;

/** The families, with gauges that read `node` and `kv` at scrape time. */
export function createHttpMetrics<R>(
  node: RaftNode<R>,
  kv: KvStateMachine,
  linkStats?: () => Record<string, PeerLinkCounters>,
  instruments?: NodeInstruments,
): HttpMetrics {
  const registry = new Registry();
  const status = (): NodeStatus => node.status();
  const gauge = (name: string, help: string, read: () => number): void => {
    registry.add(new Gauge(name, help, () => [[{}, read()]]));
  };
  registry.add(
    new Gauge("meshraft_role", "1 for this node's current Raft role, 0 for the others.", () => {
      const role = status().role;
      return ROLES.map((r) => [{ role: r }, r === role ? 1 : 0]);
    }),
  );
  gauge("meshraft_up", "1 while the node runs, 0 once stopped or failed.", () => (node.stopped ? 0 : 1));
  gauge("meshraft_term", "Current Raft term.", () => status().term);
  gauge("meshraft_commit_index", "Highest log index known to be committed.", () => status().commitIndex);
  gauge("meshraft_applied_index", "Highest log index applied to the state machine.", () => status().appliedIndex);
  gauge("meshraft_last_index", "Index of the last entry in this node's log.", () => status().lastIndex);
  gauge("meshraft_voters", "Voting members in the current configuration.", () => status().voters.length);
  gauge("meshraft_learners", "Non-voting members in the current configuration.", () => status().learners.length);
  gauge("meshraft_kv_keys", "Keys held by the KV state machine.", () => kv.size);
  gauge("meshraft_kv_sessions", "Exactly-once client sessions the KV state machine remembers.", () => kv.sessionCount);
  // etcd's names, for operators who know its dashboards.
  gauge("meshraft_has_leader", "1 while this node knows a leader (itself included), else 0.", () => (status().leaderId === null ? 0 : 1));
  gauge("meshraft_snapshot_index", "Index of the last snapshot taken or installed here (0: none).", () => node.lastSnapshotIndex);
  const leaderChanges = registry.add(new Counter("meshraft_leader_changes_seen_total", "Times this node saw a new leader (another node, or itself)."));
  const snapshots = registry.add(new Counter("meshraft_snapshots_total", "Snapshots taken here, or restored (from the leader, or at start), by kind."));
  leaderChanges.inc({}, 0);
  snapshots.inc({ kind: "taken" }, 0);
  snapshots.inc({ kind: "restored" }, 0);
  // As etcd counts: a leader after a time without one counts again, even the same node.
  let lastLeader: string | null = null;
  node.on((e) => {
    if (e.type === "role") {
      if (e.leaderId !== null && e.leaderId !== lastLeader) leaderChanges.inc();
      lastLeader = e.leaderId;
    } else if (e.type === "snapshot-taken") snapshots.inc({ kind: "taken" });
    else if (e.type === "snapshot-restored") snapshots.inc({ kind: "restored" });
  });
  if (linkStats) addPeerFamilies(registry, linkStats);
  if (instruments) {
    registry.add(instruments.fsyncSeconds);
    registry.add(instruments.applySeconds);
    registry.add(instruments.snapshotsSent);
    registry.add(instruments.snapshotsReceived);
  }
  const proposals = registry.add(new Counter("meshraft_proposals_total", "Writes proposed through the HTTP API, by op and outcome."));
  // etcd's proposal series: committed and applied count entries (this node's indexes), pending
  // the entries the leader appended but has not committed, failed the HTTP writes that did not succeed.
  registry.add(new Gauge("meshraft_proposals_committed_total", "Entries committed (this node's commit index).", () => [[{}, status().commitIndex]], "counter"));
  registry.add(new Gauge("meshraft_proposals_applied_total", "Entries applied (this node's applied index).", () => [[{}, status().appliedIndex]], "counter"));
  gauge("meshraft_proposals_pending", "On the leader, entries appended but not yet committed; 0 elsewhere.", () => {
    const s = status();
    return s.role === "leader" ? Math.max(0, s.lastIndex - s.commitIndex) : 0;
  });
  registry.add(
    new Gauge("meshraft_proposals_failed_total", "Writes through the HTTP API that did not succeed (any outcome but ok).", () => [[{}, proposals.total() - proposals.total({ outcome: "ok" })]], "counter"),
  );
  return {
    registry,
    requests: registry.add(new Counter("meshraft_http_requests_total", "HTTP requests answered, by method, route and status.")),
    requestSeconds: registry.add(new Histogram("meshraft_http_request_duration_seconds", "Time to answer an HTTP request, by route.")),
    errors: registry.add(new Counter("meshraft_http_errors_total", "Error answers, by error code.")),
    proposals,
    proposalSeconds: registry.add(
      new Histogram("meshraft_proposal_duration_seconds", "Time from proposing a write to its result, for successful writes, by op."),
    ),
    reads: registry.add(new Counter("meshraft_reads_total", "Reads through the HTTP API, by mode and outcome.")),
    readIndexSeconds: registry.add(
      new Histogram("meshraft_read_index_duration_seconds", "Time a linearizable read waited for ReadIndex confirmation and apply."),
    ),
  };
}

/** Per-peer mesh series, etcd's `peer_sent_bytes_total` and kin, read from the transport at scrape. */
function addPeerFamilies(registry: Registry, linkStats: () => Record<string, PeerLinkCounters>): void {
  const perPeer = (name: string, help: string, read: (l: PeerLinkCounters) => number, type: "gauge" | "counter" = "counter"): void => {
    registry.add(new Gauge(name, help, () => Object.entries(linkStats()).map(([peer, l]) => [{ peer }, read(l)]), type));
  };
  perPeer("meshraft_peer_link_up", "1 while this node's mesh link to the peer is open, else 0.", (l) => (l.state === "open" ? 1 : 0), "gauge");
  perPeer("meshraft_peer_sent_messages_total", "Raft messages sent to the peer.", (l) => l.messagesOut);
  perPeer("meshraft_peer_received_messages_total", "Raft messages received from the peer.", (l) => l.messagesIn);
  perPeer("meshraft_peer_sent_bytes_total", "Bytes of frames sent to the peer (handshake and pings included).", (l) => l.bytesOut);
  perPeer("meshraft_peer_received_bytes_total", "Bytes of frames received from the peer.", (l) => l.bytesIn);
  registry.add(
    new Gauge(
      "meshraft_peer_dropped_messages_total",
      "Messages to the peer dropped by the mesh, by reason (disconnected, backpressure, unencodable).",
      () =>
        Object.entries(linkStats()).flatMap(([peer, l]): [Labels, number][] => [
          [{ peer, reason: "disconnected" }, l.droppedDisconnected],
          [{ peer, reason: "backpressure" }, l.droppedBackpressure],
          [{ peer, reason: "unencodable" }, l.droppedUnencodable],
        ]),
      "counter",
    ),
  );
}
