/**
 * The live dashboard's routes (issue 14):
 *
 *   GET /dashboard          the page (public: it holds no data; it asks for the token itself)
 *   GET /dashboard/events   Server-Sent Events: `status` (a DashboardStatus) every `intervalMs`
 *                           and at once on connect; `event` (a DashboardEvent) as things happen
 *
 * The event stream is behind the API token like every route but `/status` (EventSource cannot
 * send headers, so the page reads it with fetch). A member with nobody watching pays nothing: the
 * timer and the node listener exist only while at least one subscriber is connected, and each
 * frame is encoded once for all subscribers.
 */
import type { Context, Hono } from "hono";
import { cors } from "hono/cors";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import { realClock, type Clock } from "../clock.ts";
import type { ProgressState } from "../core/progress.ts";
import type { ConfState, Index, NodeId, Role, Term } from "../core/types.ts";
import type { RaftNode } from "../node.ts";
import type { EventLoopDelaySource } from "../event-loop-delay.ts";
import type { PeerLinkCounters } from "../transport/transport.ts";
import { DASHBOARD_HTML } from "./dashboard-page.ts";
import type { NodeInstruments } from "./metrics-instruments.ts";
import type { HttpMetrics } from "./metrics.ts";

/** What the page draws of one member; `members` is the configuration this member works with. */
export interface DashboardStatus {
  id: NodeId;
  url: string;
  /** "node", "deno", "browser", or "unknown" (from the host's `navigator.userAgent`). */
  runtime: string;
  role: Role;
  term: Term;
  leader: NodeId | null;
  commitIndex: Index;
  appliedIndex: Index;
  lastIndex: Index;
  snapshotIndex: Index;
  /** Bytes the member's stored log takes (on disk for file storage), when its storage tells. */
  logBytes?: number;
  /** Every member of the configuration; "leaving" are voters of the outgoing half of a joint one. */
  members: { id: NodeId; url: string | null; role: "voter" | "learner" | "leaving" }[];
  joint: boolean;
  /** While joint: the voters of the outgoing (old) configuration; `members`' voters are the new one's. */
  outgoing?: NodeId[];
  /** The leader's view of each other member; empty on a follower. */
  progress: DashboardProgress[];
  stopped: boolean;
  /** Wall-clock time of this status (ms since the epoch). */
  time: number;
  /** Totals since start of what this member served; the page turns them into rates and quantiles. */
  load?: DashboardLoad;
  /** This member's mesh link to each peer: state, and totals since start (the page makes rates). */
  links?: DashboardLink[];
  /** Under the local demo (`meshraft demo`): the URL of its controls (kill, pause, cut, load). */
  demo?: string;
  /**
   * p99 of the storage saves (write and fsync) over the last SAVE_WINDOW_MS, in ms (the upper
   * bound of its bucket; the first frame of a stream covers everything since start); null: no
   * save in the window or no instruments. Absent in a simulator replay.
   */
  saveP99Ms?: number | null;
  /** p99 of the event-loop delay over its source's last window, in ms; null: not measured. */
  eventLoopP99Ms?: number | null;
}

export interface DashboardLink {
  peer: NodeId;
  state: PeerLinkCounters["state"];
  bytesOut: number;
  messagesOut: number;
  /** Messages dropped for want of a link, for backpressure, or unencodable. */
  dropped: number;
}

export interface DashboardLoad {
  /** Writes that succeeded here (they are proposed on the leader). */
  writes: number;
  /** Reads served here, linearizable and stale. */
  reads: number;
  /** Write latency (propose to result), in seconds: bucket bounds and non-cumulative counts. */
  writeSeconds: { le: readonly number[]; counts: number[] };
  /** Linearizable read latency (ReadIndex confirmation and apply), same form. */
  readSeconds: { le: readonly number[]; counts: number[] };
}

export interface DashboardProgress {
  id: NodeId;
  match: Index;
  next: Index;
  /** Entries the follower is behind this leader's last index. */
  lag: number;
  state: ProgressState;
  inflight: number;
  /** ms since this leader last heard from it; null: not since it started. */
  lastContactMs: number | null;
}

export type DashboardEvent =
  | { type: "role"; time: number; role: Role; term: Term; leader: NodeId | null }
  | { type: "membership"; time: number; voters: NodeId[]; learners: NodeId[]; leaving: NodeId[] }
  | { type: "snapshot-taken"; time: number; index: Index }
  | { type: "snapshot-restored"; time: number; index: Index; term: Term }
  | { type: "error"; time: number; message: string };

export interface DashboardOptions {
  // deno-lint-ignore no-explicit-any
  node: RaftNode<any>;
  selfUrl: string;
  urlOf: (id: NodeId) => string | null;
  /** How often a status frame is sent while someone watches, in ms. Default 400. */
  intervalMs?: number;
  clock?: Clock;
  /** The app's metrics, for the load figures of each status. */
  metrics?: HttpMetrics;
  /** The transport's links (Transport.linkStats), drawn between the members. */
  linkStats?: () => Record<NodeId, PeerLinkCounters>;
  /** The node's instruments: their storage save histogram gives `saveP99Ms`. */
  instruments?: NodeInstruments;
  /** The runtime's event-loop delay: gives `eventLoopP99Ms`. */
  eventLoopDelay?: EventLoopDelaySource;
}

/** The window `saveP99Ms` covers, in ms. */
export const SAVE_WINDOW_MS = 5_000;

/**
 * Bucket counts of a histogram over a sliding window: `p99Ms` diffs the current totals with the
 * last ones taken at or before the window's start (zeros until one is that old).
 */
export class HistogramWindow {
  private readonly history: { t: number; counts: number[] }[] = [];
  constructor(private readonly windowMs: number = SAVE_WINDOW_MS) {}

  /** p99 in ms (upper bound of its bucket; the largest bound if beyond), or null without observations. */
  p99Ms(now: number, h: { le: readonly number[]; counts: number[] }): number | null {
    const hist = this.history;
    hist.push({ t: now, counts: h.counts.slice() });
    while (hist.length > 1 && hist[1].t <= now - this.windowMs) hist.shift();
    const base = hist.length > 1 ? hist[0].counts : null;
    const delta = h.counts.map((c, i) => Math.max(0, c - (base?.[i] ?? 0)));
    const total = delta.reduce((a, b) => a + b, 0);
    if (total === 0 || h.le.length === 0) return null;
    let seen = 0;
    for (let i = 0; i < delta.length; i++) {
      seen += delta[i];
      if (seen >= 0.99 * total) return h.le[Math.min(i, h.le.length - 1)] * 1000;
    }
    return h.le[h.le.length - 1] * 1000;
  }

  reset(): void {
    this.history.length = 0;
  }
}

let controlUrl: string | null = null;

/**
 * Declares that this process's member runs under a demo whose controls are at `url` (the demo's
 * member processes call it at start; one member per process). Its dashboard status says so.
 */
export function setDemoControlUrl(url: string | null): void {
  controlUrl = url;
}

/** The URL `setDemoControlUrl` declared, or null outside a demo. */
export function demoControlUrl(): string | null {
  return controlUrl;
}

/** The member's status as the dashboard draws it. */
export function dashboardStatus(
  o: Pick<DashboardOptions, "node" | "selfUrl" | "urlOf" | "metrics" | "linkStats" | "instruments" | "eventLoopDelay"> & { saveWindow?: HistogramWindow },
): DashboardStatus {
  const { node } = o;
  const s = node.status();
  const conf = node.membership();
  const members: DashboardStatus["members"] = [];
  const add = (id: NodeId, role: "voter" | "learner" | "leaving"): void => {
    if (!members.some((m) => m.id === id)) members.push({ id, url: memberUrl(conf, id, o), role });
  };
  for (const id of conf.voters) add(id, "voter");
  for (const id of conf.votersOutgoing) add(id, "leaving");
  for (const id of conf.learners) add(id, "learner");
  const progress: DashboardProgress[] = [];
  if (s.role === "leader") {
    for (const m of members) {
      const pr = m.id === s.id ? undefined : node.progress(m.id);
      if (!pr) continue;
      const lastContactMs = pr.lastContactMs === null ? null : Math.round(pr.lastContactMs);
      progress.push({ id: m.id, ...pr, lastContactMs, lag: Math.max(0, s.lastIndex - pr.match) });
    }
  }
  const logBytes = node.storageBytes();
  return {
    id: s.id,
    url: o.selfUrl,
    runtime: runtimeName(),
    role: s.role,
    term: s.term,
    leader: s.leaderId,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastIndex: s.lastIndex,
    snapshotIndex: node.lastSnapshotIndex,
    ...(logBytes !== undefined ? { logBytes } : {}),
    members,
    joint: conf.votersOutgoing.length > 0,
    ...(conf.votersOutgoing.length > 0 ? { outgoing: conf.votersOutgoing.slice() } : {}),
    progress,
    stopped: node.stopped,
    time: Date.now(),
    ...(o.metrics ? { load: loadOf(o.metrics) } : {}),
    ...(o.linkStats ? { links: linksOf(o.linkStats()) } : {}),
    ...(demoControlUrl() !== null ? { demo: demoControlUrl()! } : {}),
    saveP99Ms: o.instruments ? (o.saveWindow ?? new HistogramWindow()).p99Ms(Date.now(), o.instruments.fsyncSeconds.merged()) : null,
    eventLoopP99Ms: o.eventLoopDelay?.stats()?.p99Ms ?? null,
  };
}

function linksOf(stats: Record<NodeId, PeerLinkCounters>): DashboardLink[] {
  return Object.entries(stats).map(([peer, l]) => ({
    peer,
    state: l.state,
    bytesOut: l.bytesOut,
    messagesOut: l.messagesOut,
    dropped: l.droppedDisconnected + l.droppedBackpressure + l.droppedUnencodable,
  }));
}

function loadOf(m: HttpMetrics): DashboardLoad {
  return {
    writes: m.proposals.total({ outcome: "ok" }),
    reads: m.reads.total({ outcome: "ok" }),
    writeSeconds: m.proposalSeconds.merged(),
    readSeconds: m.readIndexSeconds.merged(),
  };
}

function memberUrl(conf: ConfState, id: NodeId, o: Pick<DashboardOptions, "selfUrl" | "urlOf" | "node">): string | null {
  if (id === o.node.id) return o.selfUrl;
  return o.urlOf(id) ?? conf.urls?.[id] ?? null;
}

/** Which runtime serves this member: Deno and browsers say so in `navigator`, Node (20) in `process`. */
function runtimeName(): string {
  const g = globalThis as { navigator?: { userAgent?: string }; process?: { versions?: { node?: string } } };
  const agent = g.navigator?.userAgent ?? "";
  if (/^Deno\//.test(agent)) return "deno";
  if (g.process?.versions?.node) return "node";
  if (/Mozilla\//.test(agent)) return "browser";
  return "unknown";
}

/** A subscriber waiting for its previous write holds at most this many frames before it is cut. */
const MAX_QUEUED_FRAMES = 64;

interface Subscriber {
  stream: SSEStreamingApi;
  /** Frames not yet handed to the stream because an earlier write is still pending. */
  queue: Uint8Array[];
  writing: boolean;
  /** Cut for not reading: nothing more is written to it. */
  cut: boolean;
  close: () => void;
}

/**
 * The subscribers of one member's stream. Exposed for tests (subscriber count, whether the timer
 * runs) through `mountDashboardEvents`'s return value.
 */
export class DashboardHub {
  private readonly subscribers = new Set<Subscriber>();
  private cancelTimer: (() => void) | null = null;
  private unlisten: (() => void) | null = null;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly utf8 = new TextEncoder();
  private readonly saveWindow = new HistogramWindow();

  constructor(private readonly o: DashboardOptions) {
    this.intervalMs = o.intervalMs ?? 400;
    if (!(this.intervalMs >= 10)) throw new RangeError(`intervalMs must be at least 10 (ms), got ${o.intervalMs}`);
    this.clock = o.clock ?? realClock;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Whether the status timer or the node listener exist (only while someone watches). */
  get active(): boolean {
    return this.cancelTimer !== null || this.unlisten !== null;
  }

  /** Serves one subscriber until it disconnects. */
  async serve(stream: SSEStreamingApi): Promise<void> {
    let done!: () => void;
    const closed = new Promise<void>((resolve) => (done = resolve));
    const sub: Subscriber = { stream, queue: [], writing: false, cut: false, close: done };
    stream.onAbort(() => done());
    this.subscribers.add(sub);
    if (this.subscribers.size === 1) this.activate();
    this.write(sub, this.statusFrame());
    try {
      await closed;
    } finally {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0) this.deactivate();
    }
  }

  private activate(): void {
    const { node } = this.o;
    this.unlisten = node.on((e) => {
      const time = Date.now();
      let ev: DashboardEvent | null = null;
      if (e.type === "role") ev = { type: "role", time, role: e.role, term: e.term, leader: e.leaderId };
      else if (e.type === "membership") ev = { type: "membership", time, voters: e.conf.voters, learners: e.conf.learners, leaving: e.conf.votersOutgoing };
      else if (e.type === "snapshot-taken") ev = { type: "snapshot-taken", time, index: e.index };
      else if (e.type === "snapshot-restored") ev = { type: "snapshot-restored", time, index: e.index, term: e.term };
      else if (e.type === "error") ev = { type: "error", time, message: e.error instanceof Error ? e.error.message : String(e.error) };
      if (ev) this.broadcast(this.frame("event", ev));
    });
    const tick = (): void => {
      this.broadcast(this.statusFrame());
      this.cancelTimer = this.clock.setTimer(this.intervalMs, tick);
    };
    this.cancelTimer = this.clock.setTimer(this.intervalMs, tick);
  }

  private deactivate(): void {
    this.saveWindow.reset();
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.unlisten?.();
    this.unlisten = null;
  }

  private statusFrame(): Uint8Array {
    return this.frame("status", dashboardStatus({ ...this.o, saveWindow: this.saveWindow }));
  }

  /** One SSE frame, encoded once for every subscriber. JSON has no raw newline, so one data line. */
  private frame(event: string, data: unknown): Uint8Array {
    return this.utf8.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcast(frame: Uint8Array): void {
    for (const sub of this.subscribers) this.write(sub, frame);
  }

  /**
   * Writes in order, one at a time; a subscriber that stops reading is cut once MAX_QUEUED_FRAMES
   * wait (its page reconnects), so a stalled tab cannot make the member buffer without limit.
   */
  private write(sub: Subscriber, frame: Uint8Array): void {
    if (sub.cut) return;
    if (sub.writing) {
      if (sub.queue.length >= MAX_QUEUED_FRAMES) {
        // abort(), not close(): close() would wait for the writes the reader never takes.
        sub.queue.length = 0;
        sub.cut = true;
        sub.stream.abort();
        sub.close();
        return;
      }
      sub.queue.push(frame);
      return;
    }
    sub.writing = true;
    sub.stream.write(frame).then(
      () => {
        sub.writing = false;
        const next = sub.queue.shift();
        if (next) this.write(sub, next);
      },
      () => sub.close(),
    );
  }
}

/**
 * The routes that must run before the auth middleware: the page (public: it holds no data) and
 * the CORS preflights of the calls a page served by one member makes to the others (browsers send
 * preflights without the token). Only members' own origins are allowed: a page elsewhere cannot
 * use a token typed into a member's dashboard.
 */
export function mountDashboardPage(app: Hono, o: Pick<DashboardOptions, "node" | "selfUrl" | "urlOf">): void {
  const memberOrigin = (origin: string): string | null => {
    const conf = o.node.membership();
    const ids = [...conf.voters, ...conf.votersOutgoing, ...conf.learners];
    const urls = ids.map((id) => memberUrl(conf, id, o));
    return urls.some((u) => u !== null && originOf(u) === origin) ? origin : null;
  };
  const crossMember = cors({ origin: memberOrigin, allowHeaders: ["Authorization", "Content-Type"], allowMethods: ["GET", "POST", "DELETE"] });
  app.use("/dashboard/events", crossMember);
  app.use("/admin/*", crossMember);
  app.get("/dashboard", (c) => {
    c.header("Cache-Control", "no-cache");
    // The page and its script come from this member only; it reads the other members by fetch.
    c.header("Content-Security-Policy", "default-src 'self' 'unsafe-inline'; connect-src *; img-src 'self' data:");
    return c.html(DASHBOARD_HTML);
  });
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** The event stream, behind the auth middleware. Returns the hub (tests read its subscribers). */
export function mountDashboardEvents(app: Hono, o: DashboardOptions): DashboardHub {
  const hub = new DashboardHub(o);
  app.get("/dashboard/events", (c: Context) => streamSSE(c, (stream) => hub.serve(stream)));
  return hub;
}
