/**
 * TabCluster: the members of a tab cluster that one tab runs, and that tab's way to the leader.
 *
 * A tab cluster has a fixed set of voter ids (t1..t3 by default). Each id is guarded by a Web Lock
 * (./tab-ids.ts); a TabCluster runs the member of an id (RaftNode on IndexedDbStorage, over
 * BroadcastChannelTransport, with the application's state machine) only while it holds that lock.
 * It is meant to run in a dedicated Worker, whose timers browsers do not throttle in hidden tabs
 * (./tab-worker.ts serves it to its page), but needs nothing of a Worker: in Node tests it runs on
 * fake-indexeddb, Node's BroadcastChannel and an in-memory lock manager.
 *
 * Who runs which id:
 * 1. At start a TabCluster takes every id whose lock is free (`ifAvailable`): the first tab runs
 *    them all, and the cluster is available with one tab open.
 * 2. A TabCluster that got none waits on all of them (`acquireTabId`): it is a client until the
 *    first is granted. Waiting requests are the only queued requests on the member locks.
 * 3. Every `pollMs`, a TabCluster that runs members
 *    - takes any id whose lock is free (its holder closed or crashed; a waiting tab would have
 *      been granted it at once, so a free lock means nobody waits), resuming it from IndexedDB;
 *    - when it runs two or more and `navigator.locks.query()` shows a request waiting on one of
 *      its locks (a tab that runs none), stops one of its followers (RaftNode.stop() lets the
 *      save in flight finish and closes storage: after its last save) and releases its lock,
 *      which the browser grants to that waiting tab. So three tabs end up running one id each.
 * A TabCluster never steals a lock: a frozen tab keeps its ids, a paused member to Raft.
 *
 * Everyone on the cluster's control channel (`meshraft:<clusterId>:tabs`) hears every running
 * member's status (role, term, indexes, the tab that runs it) every `statusMs` and on role
 * changes: that is how a tab without members knows the leader, and what `status()` reports.
 * A tab that is going away (its page's `pagehide`, relayed by ./tab-worker.ts: `leaving()`) says
 * so on that channel; the others count its members offline at once instead of after `staleMs`,
 * so their leader guess moves on and their requests in flight to it end at once (by the rules
 * below, as if unanswered). It publishes nothing more until `returned()` (back from the
 * back/forward cache).
 *
 * Requests (`propose`, `read`) go to the leader: to the local member when this tab runs it, else
 * over the control channel to the tab that does (the in-browser form of a leader redirect). The
 * rules are the HTTP API's (src/http/app.ts):
 * - NOT_LEADER (with the leader's id when known) and the 503 codes (NO_LEADER, NODE_STOPPED,
 *   OVERLOADED, PROPOSAL_DROPPED, READ_TIMEOUT) mean nothing was proposed: resent freely;
 * - a request unanswered within `attemptTimeoutMs` (BroadcastChannel buffers nothing: the tab may
 *   have closed), or whose tab said it is leaving before answering, and OUTCOME_UNKNOWN mean a
 *   write may or may not commit: resent only when the caller says it is safe (`retrySafe`: the
 *   command carries an exactly-once session, as the KV's client/seq), else the call fails with
 *   OUTCOME_UNKNOWN at once;
 * - when the statuses show a new leader, a request in flight to the old one that is safe to resend
 *   (a read, or a write with `retrySafe`) is resent to the new one at once, without waiting out
 *   `attemptTimeoutMs` (the old leader's tab may have crashed: no `pagehide`); a write without a
 *   session keeps waiting for its answer;
 * - after `retryBudgetMs` a write that may have reached a log fails with OUTCOME_UNKNOWN, anything
 *   else with the last code (NO_LEADER when no leader was ever found).
 */
import { realClock } from "../../src/clock.ts";
import { NotLeaderError } from "../../src/errors.ts";
import { apiErrorFrom } from "../../src/http/errors.ts";
import { RaftNode, type RaftNodeOptions } from "../../src/node.ts";
import type { Role } from "../../src/core/types.ts";
import type { StateMachine } from "../../src/statemachine.ts";
import { MeshraftError } from "../../src/errors.ts";
import { BroadcastChannelTransport } from "./broadcast-transport.ts";
import { type IndexedDbEnvironment, IndexedDbStorage } from "./idb-storage.ts";
import { acquireTabId, type HeldTabId, type LockManagerLike, tabLockName } from "./tab-ids.ts";

/** `navigator.locks.query()`'s answer, the part used here. */
export interface LockSnapshot {
  held?: { name?: string; clientId?: string }[];
  pending?: { name?: string; clientId?: string }[];
}

/** The Web Locks API as TabCluster uses it; `query` drives the hand-over (without it ids never spread). */
export interface TabLockManager extends LockManagerLike {
  query?(): Promise<LockSnapshot>;
}

/** The status of one member as its tab last published it. */
export interface TabMemberStatus {
  id: string;
  /** "offline": no tab has published it within `staleMs` (nobody runs it, or its tab is frozen). */
  role: Role | "offline" | "failed";
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** The leader this member knows of. */
  leader: string | null;
  /** The TabCluster (tab) running it; null when offline. */
  tab: string | null;
  /** Why the member stopped (storage refused a write, ...), when it failed. */
  error?: string;
}

export interface TabClusterStatus {
  /** This TabCluster's instance id. */
  tab: string;
  /** The ids this tab runs now. */
  ids: string[];
  /** The leader's id, or null. */
  leader: string | null;
  /** Every id of the cluster, in the configured order. */
  members: TabMemberStatus[];
}

export interface TabClusterOptions<Result> {
  /** Names the locks, the channels and (with the id) the IndexedDB databases. */
  clusterId: string;
  /** The voter ids. Default ["t1", "t2", "t3"]. Every tab of the cluster must use the same. */
  ids?: readonly string[];
  /** A fresh state machine for a member this tab starts (again). */
  stateMachine: (id: string) => StateMachine<Result>;
  /** Named read-only queries, run on the leader's state machine after a linearizable read. */
  queries?: Record<string, (stateMachine: StateMachine<Result>, arg: unknown) => unknown>;
  /** RaftNode settings (timeouts, snapshots, read mode). */
  node?: Omit<Partial<RaftNodeOptions<Result>>, "id" | "members" | "storage" | "transport" | "stateMachine" | "join">;
  /** Default `navigator.locks`. */
  locks?: TabLockManager;
  /** Default `globalThis.BroadcastChannel`. */
  BroadcastChannel?: typeof BroadcastChannel;
  /** Default: the global indexedDB. */
  env?: IndexedDbEnvironment;
  /** How often to look for free ids and waiting tabs, in ms. Default 200. */
  pollMs?: number;
  /** How often to publish member status, in ms. Default 200. */
  statusMs?: number;
  /** A member not heard from for this long is "offline". Default 1500. */
  staleMs?: number;
  /** Wait this long for the leader's tab to answer one attempt, in ms. Default 1000. */
  attemptTimeoutMs?: number;
  /** Longest time one request spends across its attempts, in ms. Default 10000. */
  retryBudgetMs?: number;
  /** This instance's id on the control channel. Default: random. */
  tab?: string;
  /** A member failed (its RaftNode stopped on an error). Default: console.error. */
  onMemberError?: (id: string, error: unknown) => void;
}

/** A request failed; `code` is the HTTP API's error code (OUTCOME_UNKNOWN, NO_LEADER, ...). */
export class TabClusterError extends MeshraftError {}

/** What `propose` resolves with: where the command landed and what the state machine returned. */
export interface TabProposeResult<Result> {
  index: number;
  result: Result;
}

/** The control channel of a cluster: statuses, requests and answers. */
export function controlChannelName(clusterId: string): string {
  return `meshraft:${clusterId}:tabs`;
}

type Answer = { ok: true; value: unknown } | { ok: false; code: string; message: string; leader?: string | null };

type ControlMessage =
  | { t: "status"; tab: string; members: TabMemberStatus[] }
  | { t: "leaving"; tab: string; ids: string[] }
  | { t: "req"; rid: string; from: string; to: string; kind: "propose"; data: Uint8Array }
  | { t: "req"; rid: string; from: string; to: string; kind: "read"; name: string; arg: unknown }
  | { t: "res"; rid: string; to: string; answer: Answer };

interface RunningMember<Result> {
  id: string;
  lock: HeldTabId;
  node: RaftNode<Result> | null;
  stateMachine: StateMachine<Result> | null;
  error: string | null;
  /** Being stopped to hand the id over. */
  leaving: boolean;
}

/** A relayed request in flight: where it went and how it ends. */
interface PendingRelay {
  /** The member it was sent to. */
  to: string;
  /** The tab that ran `to` when it was sent, as far as statuses told. */
  tab: string | null;
  /** A read, or a write with an exactly-once session: resending it cannot apply it twice. */
  safe: boolean;
  settle(answer: Answer | "timeout" | "left" | "deposed"): void;
}

/** Codes after which nothing was proposed: the request is resent after a short wait. */
const RETRY_LATER = new Set(["NO_LEADER", "NODE_STOPPED", "OVERLOADED", "PROPOSAL_DROPPED", "READ_TIMEOUT"]);

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/** A member's failure as its status shows it: the code first when meshraft named one. */
const failureText = (e: unknown): string => (e instanceof MeshraftError ? `${e.code}: ${e.message}` : errorText(e));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => realClock.setTimer(ms, resolve));

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Which of the ids a tab runs it hands to a waiting tab: none unless it runs two or more and a
 * request waits on one of its locks; then a member that is not the leader (handing the leader over
 * would cost an election), the last in the cluster's order.
 */
export function chooseHandOver(
  clusterId: string,
  running: { id: string; role: string }[],
  snapshot: LockSnapshot,
): string | null {
  if (running.length < 2) return null;
  const mine = new Set(running.map((m) => tabLockName(clusterId, m.id)));
  const waited = (snapshot.pending ?? []).some((p) => p.name !== undefined && mine.has(p.name));
  if (!waited) return null;
  const followers = running.filter((m) => m.role !== "leader");
  return followers.length > 0 ? followers[followers.length - 1].id : null;
}

/**
 * The leader as far as `statuses` tell: among the members heard from, those of the highest term
 * vote; a member that says it leads wins, else the leader the others name.
 */
export function leaderFrom(statuses: TabMemberStatus[]): string | null {
  const live = statuses.filter((s) => s.role !== "offline" && s.role !== "failed");
  if (live.length === 0) return null;
  const term = Math.max(...live.map((s) => s.term));
  const atTerm = live.filter((s) => s.term === term);
  const gone = new Set(statuses.filter((s) => s.role === "offline" || s.role === "failed").map((s) => s.id));
  // A leader the others still name but that is offline (its tab left or stopped) is no guess.
  const named = atTerm.map((s) => s.leader).find((l) => l !== null && !gone.has(l));
  return atTerm.find((s) => s.role === "leader")?.id ?? named ?? null;
}

export class TabCluster<Result = unknown> {
  readonly clusterId: string;
  readonly ids: readonly string[];
  /** This instance's id on the control channel. */
  readonly tab: string;
  readonly #opts: TabClusterOptions<Result>;
  readonly #locks: TabLockManager;
  readonly #channel: BroadcastChannel;
  readonly #members = new Map<string, RunningMember<Result>>();
  /** The latest status each member's tab published, with when it arrived. */
  readonly #heard = new Map<string, { status: TabMemberStatus; at: number }>();
  readonly #pending = new Map<string, PendingRelay>();
  readonly #stopping = new AbortController();
  readonly #pollMs: number;
  readonly #statusMs: number;
  readonly #staleMs: number;
  readonly #attemptMs: number;
  readonly #budgetMs: number;
  #state: "new" | "running" | "stopped" = "new";
  #waiting = false;
  #polling = false;
  #cancelPoll: (() => void) | null = null;
  #cancelStatus: (() => void) | null = null;
  #requests = 0;
  /** This tab said it is leaving: it publishes no status until `returned()`. */
  #left = false;
  /** The leader as statuses last told, to see it change. */
  #lastLeader: string | null = null;
  readonly #listeners = new Set<() => void>();

  constructor(options: TabClusterOptions<Result>) {
    if (typeof options.clusterId !== "string" || options.clusterId === "") throw new RangeError("TabCluster: clusterId must be a non-empty string");
    const ids = options.ids ?? ["t1", "t2", "t3"];
    if (ids.length === 0 || new Set(ids).size !== ids.length || ids.some((id) => typeof id !== "string" || id === "")) {
      throw new RangeError(`TabCluster: ids must be distinct non-empty strings, got ${JSON.stringify(ids)}`);
    }
    const locks = options.locks ?? (globalThis.navigator as { locks?: TabLockManager } | undefined)?.locks;
    if (!locks) throw new TypeError("TabCluster: this environment has no Web Locks (navigator.locks needs a secure context: https or http://127.0.0.1)");
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel;
    if (typeof Channel !== "function") throw new TypeError("TabCluster: this environment has no BroadcastChannel");
    this.clusterId = options.clusterId;
    this.ids = [...ids];
    this.tab = options.tab ?? randomId();
    this.#opts = options;
    this.#locks = locks;
    this.#channel = new Channel(controlChannelName(options.clusterId));
    this.#pollMs = options.pollMs ?? 200;
    this.#statusMs = options.statusMs ?? 200;
    this.#staleMs = options.staleMs ?? 1500;
    this.#attemptMs = options.attemptTimeoutMs ?? 1000;
    this.#budgetMs = options.retryBudgetMs ?? 10_000;
  }

  /** Takes the free ids (or starts waiting for one), then keeps balancing them. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("TabCluster: already started");
    this.#state = "running";
    this.#channel.onmessage = (event: MessageEvent) => this.#receive(event.data as ControlMessage);
    for (const id of this.ids) await this.#tryTake(id);
    if (this.#members.size === 0) this.#wait();
    this.#publish();
    const tick = (): void => {
      if (this.#state !== "running") return;
      this.#publish();
      this.#cancelStatus = realClock.setTimer(this.#statusMs, tick);
    };
    this.#cancelStatus = realClock.setTimer(this.#statusMs, tick);
    this.#schedulePoll();
  }

  /** Stops this tab's members (each after its save in flight) and lets their ids go. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#stopping.abort(new TabClusterError("NODE_STOPPED", "the tab cluster was stopped"));
    this.#cancelPoll?.();
    this.#cancelStatus?.();
    await Promise.all([...this.#members.values()].map((m) => this.#stopMember(m)));
    this.#publish();
    this.#channel.onmessage = null;
    this.#channel.close();
    for (const p of this.#pending.values()) p.settle({ ok: false, code: "NODE_STOPPED", message: "the tab cluster was stopped" });
  }

  /**
   * This tab is going away (its page's `pagehide`): tells the other tabs, which count its members
   * offline at once and end their requests in flight to it, and publishes no more status (the
   * members keep running until the page is gone, or until `returned()`).
   */
  leaving(): void {
    if (this.#state !== "running") return;
    this.#left = true;
    try {
      this.#channel.postMessage({ t: "leaving", tab: this.tab, ids: this.heldIds() } satisfies ControlMessage);
    } catch {
      // closed: stopping
    }
  }

  /** The page came back (`pageshow` from the back/forward cache): publish status again. */
  returned(): void {
    if (!this.#left) return;
    this.#left = false;
    this.#publish();
  }

  /** Called when the ids this tab runs change (taken, handed over, failed). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The ids this tab runs now (a member that failed still holds its id). */
  heldIds(): string[] {
    return this.ids.filter((id) => this.#members.has(id));
  }

  /** The RaftNode of a member this tab runs (for tests and devtools), or null. */
  node(id: string): RaftNode<Result> | null {
    return this.#members.get(id)?.node ?? null;
  }

  status(): TabClusterStatus {
    const members = this.ids.map((id) => this.#memberStatus(id));
    return { tab: this.tab, ids: this.heldIds(), leader: leaderFrom(members), members };
  }

  /**
   * Replicates `data` through the leader and resolves with where it landed and the state
   * machine's result. `retrySafe`: the command carries an exactly-once session, so resending it
   * after an unknown outcome cannot apply it twice.
   * @throws TabClusterError with the HTTP API's code.
   */
  propose(data: Uint8Array, options: { retrySafe?: boolean } = {}): Promise<TabProposeResult<Result>> {
    return this.#call({ kind: "propose", data }, options.retrySafe ?? false) as Promise<TabProposeResult<Result>>;
  }

  /** A linearizable read: the leader confirms it leads, then runs the named query on its state machine. */
  read(name: string, arg?: unknown): Promise<unknown> {
    return this.#call({ kind: "read", name, arg }, true);
  }

  // --- ids --------------------------------------------------------------------------------

  async #tryTake(id: string): Promise<boolean> {
    if (this.#state !== "running" || this.#members.has(id)) return false;
    const held = await acquireTabId({ clusterId: this.clusterId, ids: [id], wait: false, locks: this.#locks });
    if (!held) return false;
    if (this.#state !== "running") {
      await held.release();
      return false;
    }
    await this.#startMember(held);
    return true;
  }

  /** Queues on every id; the first granted starts a member. */
  #wait(): void {
    if (this.#waiting || this.#state !== "running") return;
    this.#waiting = true;
    acquireTabId({ clusterId: this.clusterId, ids: this.ids, locks: this.#locks, signal: this.#stopping.signal }).then(
      async (held) => {
        this.#waiting = false;
        if (held === null) return;
        if (this.#state !== "running") return void (await held.release());
        await this.#startMember(held);
      },
      () => {
        this.#waiting = false;
      },
    );
  }

  #schedulePoll(): void {
    if (this.#state !== "running") return;
    this.#cancelPoll = realClock.setTimer(this.#pollMs, () => {
      this.#poll().finally(() => this.#schedulePoll());
    });
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#state !== "running") return;
    this.#polling = true;
    try {
      if (this.#members.size === 0) {
        this.#wait();
        return;
      }
      let snapshot: LockSnapshot | null = null;
      if (typeof this.#locks.query === "function") snapshot = await this.#locks.query();
      const heldNames = new Set((snapshot?.held ?? []).map((h) => h.name));
      for (const id of this.ids) {
        if (this.#members.has(id)) continue;
        if (snapshot && heldNames.has(tabLockName(this.clusterId, id))) continue;
        await this.#tryTake(id);
      }
      if (snapshot) {
        const running = [...this.#members.values()].filter((m) => m.node && !m.node.stopped && !m.leaving);
        const id = chooseHandOver(this.clusterId, running.map((m) => ({ id: m.id, role: m.node!.status().role })), snapshot);
        if (id !== null) await this.#handOver(id);
      }
    } catch (error) {
      if (this.#state === "running") console.error(`meshraft tabs: balancing ids failed: ${errorText(error)}`);
    } finally {
      this.#polling = false;
    }
  }

  async #handOver(id: string): Promise<void> {
    const member = this.#members.get(id);
    if (!member) return;
    member.leaving = true;
    await this.#stopMember(member);
    this.#publish();
  }

  async #startMember(lock: HeldTabId): Promise<void> {
    const id = lock.id;
    const member: RunningMember<Result> = { id, lock, node: null, stateMachine: null, error: null, leaving: false };
    this.#members.set(id, member);
    const o = this.#opts;
    try {
      const storage = await IndexedDbStorage.open({ clusterId: this.clusterId, nodeId: id, env: o.env });
      const stateMachine = o.stateMachine(id);
      const node = new RaftNode<Result>({
        ...o.node,
        id,
        members: [...this.ids],
        storage,
        transport: new BroadcastChannelTransport({ clusterId: this.clusterId, nodeId: id, BroadcastChannel: o.BroadcastChannel }),
        stateMachine,
        onError: (error) => {
          member.error = failureText(error);
          (o.onMemberError ?? ((i, e) => console.error(`meshraft tabs: member ${i} stopped: ${errorText(e)}`)))(id, error);
          this.#publish();
          this.#changed();
        },
      });
      node.on((event) => {
        if (event.type === "role") this.#publish();
      });
      member.node = node;
      member.stateMachine = stateMachine;
      await node.start();
    } catch (error) {
      // The id stays held: another tab would meet the same storage. The status says why.
      member.error = failureText(error);
      (o.onMemberError ?? ((i, e) => console.error(`meshraft tabs: member ${i} could not start: ${errorText(e)}`)))(id, error);
    }
    if (this.#state !== "running") await this.#stopMember(member);
    this.#publish();
    this.#changed();
  }

  async #stopMember(member: RunningMember<Result>): Promise<void> {
    if (this.#members.get(member.id) !== member) return;
    try {
      await member.node?.stop();
    } catch (error) {
      console.error(`meshraft tabs: stopping member ${member.id}: ${errorText(error)}`);
    }
    this.#members.delete(member.id);
    await member.lock.release();
    this.#changed();
  }

  #changed(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        console.error(`meshraft tabs: a change listener threw: ${errorText(error)}`);
      }
    }
  }

  // --- status -----------------------------------------------------------------------------

  #localStatus(member: RunningMember<Result>): TabMemberStatus {
    const s = member.node?.status();
    const failed = member.error !== null;
    return {
      id: member.id,
      role: failed ? "failed" : (s?.role ?? "follower"),
      term: s?.term ?? 0,
      commitIndex: s?.commitIndex ?? 0,
      appliedIndex: s?.appliedIndex ?? 0,
      lastIndex: s?.lastIndex ?? 0,
      leader: failed ? null : (s?.leaderId ?? null),
      tab: this.tab,
      ...(failed ? { error: member.error! } : {}),
    };
  }

  #memberStatus(id: string): TabMemberStatus {
    const local = this.#members.get(id);
    if (local && !local.leaving) return this.#localStatus(local);
    const heard = this.#heard.get(id);
    if (heard && realClock.now() - heard.at <= this.#staleMs && heard.status.tab !== this.tab) return heard.status;
    const last = heard?.status;
    return { id, role: "offline", term: last?.term ?? 0, commitIndex: last?.commitIndex ?? 0, appliedIndex: last?.appliedIndex ?? 0, lastIndex: last?.lastIndex ?? 0, leader: null, tab: null };
  }

  #publish(): void {
    if (this.#state === "new" || this.#left) return;
    const members = [...this.#members.values()].filter((m) => !m.leaving).map((m) => this.#localStatus(m));
    try {
      this.#channel.postMessage({ t: "status", tab: this.tab, members } satisfies ControlMessage);
    } catch {
      // closed: stopping
    }
  }

  // --- requests ---------------------------------------------------------------------------

  #receive(message: ControlMessage): void {
    if (typeof message !== "object" || message === null) return;
    if (message.t === "status" && message.tab !== this.tab && Array.isArray(message.members)) {
      const now = realClock.now();
      // A member its tab no longer lists (handed over, stopped) is offline until someone lists it.
      const listed = new Set(message.members.map((s) => s.id));
      for (const [id, heard] of this.#heard) if (heard.status.tab === message.tab && !listed.has(id)) heard.at = -Infinity;
      for (const s of message.members) if (this.ids.includes(s.id)) this.#heard.set(s.id, { status: s, at: now });
      this.#leaderMayHaveChanged();
    } else if (message.t === "leaving" && message.tab !== this.tab && typeof message.tab === "string") {
      const ids = new Set(Array.isArray(message.ids) ? message.ids : []);
      for (const [id, heard] of this.#heard) if (heard.status.tab === message.tab || ids.has(id)) heard.at = -Infinity;
      for (const p of [...this.#pending.values()]) if (p.tab === message.tab || ids.has(p.to)) p.settle("left");
      this.#leaderMayHaveChanged();
    } else if (message.t === "req" && this.#members.has(message.to)) {
      const { rid, from } = message;
      const answer = message.kind === "propose" ? this.#serve(message.to, { kind: "propose", data: message.data }) : this.#serve(message.to, { kind: "read", name: message.name, arg: message.arg });
      void answer.then((a) => {
        if (this.#state === "stopped") return;
        try {
          this.#channel.postMessage({ t: "res", rid, to: from, answer: a } satisfies ControlMessage);
        } catch (error) {
          // An answer that cannot be cloned (a state machine result with functions): say so.
          this.#channel.postMessage({ t: "res", rid, to: from, answer: { ok: false, code: "INTERNAL", message: `the answer cannot be sent: ${errorText(error)}` } } satisfies ControlMessage);
        }
      });
    } else if (message.t === "res" && message.to === this.tab) {
      this.#pending.get(message.rid)?.settle(message.answer);
    }
  }

  /** When statuses name a new leader, ends the requests in flight to the old one that are safe to resend. */
  #leaderMayHaveChanged(): void {
    const leader = this.status().leader;
    const old = this.#lastLeader;
    this.#lastLeader = leader;
    if (leader === null || old === null || leader === old) return;
    for (const p of [...this.#pending.values()]) if (p.to === old && p.safe) p.settle("deposed");
  }

  /** Runs a request on the local member `to` if it leads. */
  async #serve(to: string, req: { kind: "propose"; data: Uint8Array } | { kind: "read"; name: string; arg: unknown }): Promise<Answer> {
    const member = this.#members.get(to);
    const node = member?.node;
    if (!member || !node || node.stopped || member.leaving) return { ok: false, code: "NODE_STOPPED", message: `tab ${this.tab} does not run ${to} now` };
    const s = node.status();
    if (s.role !== "leader") return { ok: false, code: "NOT_LEADER", message: `${to} is not the leader`, leader: s.leaderId };
    try {
      if (req.kind === "propose") {
        const outcome = await node.propose(req.data);
        return { ok: true, value: { index: outcome.index, result: outcome.result } };
      }
      const query = this.#opts.queries?.[req.name];
      if (!query) return { ok: false, code: "BAD_REQUEST", message: `no query named ${JSON.stringify(req.name)}` };
      await node.read();
      return { ok: true, value: query(member.stateMachine!, req.arg) };
    } catch (error) {
      if (error instanceof NotLeaderError) return { ok: false, code: "NOT_LEADER", message: error.message, leader: error.leaderId };
      const e = apiErrorFrom(error);
      return { ok: false, code: e.code, message: e.message };
    }
  }

  /** Counts `id` offline (keeping what it last said) until its tab publishes again. */
  #suspect(id: string): void {
    const heard = this.#heard.get(id);
    if (heard) heard.at = -Infinity;
  }

  /**
   * One attempt on the leader's tab: its answer; "timeout"; "left" (its tab said it is leaving);
   * "deposed" (statuses name another leader; only for a request `safe` to resend).
   */
  #send(to: string, req: { kind: "propose"; data: Uint8Array } | { kind: "read"; name: string; arg: unknown }, safe: boolean): Promise<Answer | "timeout" | "left" | "deposed"> {
    const rid = `${this.tab}:${++this.#requests}`;
    return new Promise((resolve) => {
      const settle = (answer: Answer | "timeout" | "left" | "deposed"): void => {
        cancel();
        this.#pending.delete(rid);
        resolve(answer);
      };
      const cancel = realClock.setTimer(this.#attemptMs, () => settle("timeout"));
      this.#pending.set(rid, { to, tab: this.#heard.get(to)?.status.tab ?? null, safe, settle });
      this.#channel.postMessage({ t: "req", rid, from: this.tab, to, ...req } as ControlMessage);
    });
  }

  async #call(req: { kind: "propose"; data: Uint8Array } | { kind: "read"; name: string; arg: unknown }, retrySafe: boolean): Promise<unknown> {
    if (this.#state !== "running") throw new TabClusterError("NODE_STOPPED", "the tab cluster is not running");
    const deadline = realClock.now() + this.#budgetMs;
    const write = req.kind === "propose";
    let uncertain = false;
    let last: { code: string; message: string } = { code: "NO_LEADER", message: "no leader is known in the tab cluster" };
    let hint: string | null = null;
    let backoff = 20;
    const unknown = (why: string): TabClusterError => new TabClusterError("OUTCOME_UNKNOWN", `the write may or may not have been applied: ${why}`);
    while (realClock.now() < deadline && this.#state === "running") {
      const leader: string | null = hint ?? this.status().leader;
      hint = null;
      if (leader === null) {
        await sleep(Math.min(backoff, 50));
        backoff = Math.min(backoff * 2, 250);
        continue;
      }
      const answer: Answer | "timeout" | "left" | "deposed" = this.#members.has(leader) ? await this.#serve(leader, req) : await this.#send(leader, req, !write || retrySafe);
      if (answer === "timeout" || answer === "left" || answer === "deposed") {
        // Sent and not answered: a write may have reached the leader's log.
        const why = answer === "timeout" ? `did not answer within ${this.#attemptMs} ms` : answer === "left" ? "left before answering" : "lost the lead before answering";
        if (write) uncertain = true;
        if (write && !retrySafe) throw unknown(`the tab running ${leader} ${why}`);
        if (answer === "timeout") this.#suspect(leader);
        last = { code: "NO_LEADER", message: `the tab running ${leader} ${why}` };
        continue;
      }
      if (answer.ok) return answer.value;
      last = answer;
      if (answer.code === "NOT_LEADER") {
        hint = answer.leader && answer.leader !== leader ? answer.leader : null;
        if (hint === null) {
          this.#suspect(leader);
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 250);
        }
        continue;
      }
      if (answer.code === "OUTCOME_UNKNOWN") {
        uncertain = true;
        if (!retrySafe) throw new TabClusterError("OUTCOME_UNKNOWN", answer.message);
        continue;
      }
      if (RETRY_LATER.has(answer.code)) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 250);
        continue;
      }
      throw new TabClusterError(answer.code, answer.message);
    }
    if (write && uncertain) throw unknown(`no answer within ${this.#budgetMs} ms (last: ${last.code}: ${last.message})`);
    const code = last.code === "NOT_LEADER" ? "NO_LEADER" : last.code;
    throw new TabClusterError(code, `${last.message} (gave up after ${this.#budgetMs} ms)`);
  }
}
