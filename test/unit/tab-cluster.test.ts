/**
 * The tab cluster's logic in Node: TabCluster instances ("tabs") in one process, on
 * fake-indexeddb, Node's BroadcastChannel and an in-memory Web Locks manager (Node 20 has none;
 * the Chromium tests use the browser's). Covered: which tab runs which id (one tab runs all, ids
 * spread to waiting tabs, a stopped tab's ids are taken over and resume from IndexedDB), requests
 * relayed to the leader's tab from tabs with and without members, and the retry rules.
 */
import { IDBKeyRange, indexedDB } from "fake-indexeddb";
import { afterEach, describe, expect, it } from "vitest";
import { chooseHandOver, controlChannelName, leaderFrom, TabCluster, type TabMemberStatus } from "../../adapters/browser/tab-cluster.ts";
import { kvQueries, tabsKvHandle, type TabsKvHandle } from "../../adapters/browser/tab-kv.ts";
import { connectTabCluster, type MessageEndpoint, type PageEvents, serveTabCluster } from "../../adapters/browser/tab-worker.ts";
import { tabLockName } from "../../adapters/browser/tab-ids.ts";
import { realClock } from "../../src/clock.ts";
import { type KvResult, KvStateMachine } from "../../src/kv/kv.ts";
import type { StateMachine } from "../../src/statemachine.ts";
import { InMemoryLocks } from "./in-memory-locks.ts";

const env = { indexedDB, IDBKeyRange };
let clusters = 0;
const freshCluster = (): string => `tabs-${process.pid}-${Date.now().toString(36)}-${++clusters}`;

async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = realClock.now() + timeoutMs;
  while (!done()) {
    if (realClock.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => realClock.setTimer(20, resolve));
  }
}

const started: TabCluster<KvResult>[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.stop()));
});

/** A tab on the built-in KV, not started yet. */
function kvTab(clusterId: string, locks: InMemoryLocks, extra: { retryBudgetMs?: number } = {}): TabCluster<KvResult> {
  const tab = new TabCluster<KvResult>({
    clusterId,
    locks,
    env,
    stateMachine: () => new KvStateMachine(),
    queries: kvQueries as Record<string, (sm: StateMachine<KvResult>, arg: unknown) => unknown>,
    pollMs: 50,
    statusMs: 50,
    ...extra,
  });
  started.push(tab);
  return tab;
}

async function openTab(clusterId: string, locks: InMemoryLocks, extra: { retryBudgetMs?: number } = {}): Promise<{ tab: TabCluster<KvResult>; kv: TabsKvHandle }> {
  const tab = kvTab(clusterId, locks, extra);
  await tab.start();
  const kv = tabsKvHandle({ status: async () => tab.status(), propose: (d, o) => tab.propose(d, o), read: (n, a) => tab.read(n, a) });
  return { tab, kv };
}

const status = (id: string, role: TabMemberStatus["role"], term: number, leader: string | null): TabMemberStatus => ({
  id,
  role,
  term,
  leader,
  commitIndex: 0,
  appliedIndex: 0,
  lastIndex: 0,
  tab: "x",
});

describe("hand-over choice", () => {
  const pending = (...ids: string[]) => ({ held: [], pending: ids.map((id) => ({ name: tabLockName("c", id) })) });

  it("a tab with one id keeps it", () => {
    expect(chooseHandOver("c", [{ id: "t1", role: "follower" }], pending("t1"))).toBeNull();
  });

  it("a tab with several ids hands a follower over only while a request waits on one of its locks", () => {
    const running = [
      { id: "t1", role: "leader" },
      { id: "t2", role: "follower" },
      { id: "t3", role: "follower" },
    ];
    expect(chooseHandOver("c", running, pending())).toBeNull();
    expect(chooseHandOver("c", running, pending("t9"))).toBeNull();
    expect(chooseHandOver("other", running, pending("t1"))).toBeNull();
    expect(chooseHandOver("c", running, pending("t1"))).toBe("t3");
  });

  it("the leader is never the one handed over", () => {
    expect(chooseHandOver("c", [{ id: "t1", role: "follower" }, { id: "t2", role: "leader" }], pending("t2"))).toBe("t1");
  });
});

describe("leader from statuses", () => {
  it("the highest term decides; a member that leads wins over what others name", () => {
    expect(leaderFrom([])).toBeNull();
    expect(leaderFrom([status("t1", "leader", 2, "t1"), status("t2", "leader", 3, "t2")])).toBe("t2");
    expect(leaderFrom([status("t1", "follower", 3, "t2"), status("t3", "candidate", 3, null)])).toBe("t2");
    expect(leaderFrom([status("t1", "leader", 5, "t1"), status("t2", "offline", 9, null)])).toBe("t1");
    expect(leaderFrom([status("t1", "follower", 4, null)])).toBeNull();
  });
});

describe("TabCluster in Node (fake-indexeddb, in-memory Web Locks)", () => {
  it("one tab runs every id and serves writes and linearizable reads", async () => {
    const clusterId = freshCluster();
    const { tab, kv } = await openTab(clusterId, new InMemoryLocks());
    expect(tab.heldIds()).toEqual(["t1", "t2", "t3"]);
    await until("a leader", () => tab.status().leader !== null);
    const { index } = await kv.put("a", "1");
    expect(index).toBeGreaterThan(0);
    expect(await kv.get("a")).toBe("1");
    expect(await kv.get("missing")).toBeNull();
    expect(await kv.cas("a", "0", "2")).toEqual({ ok: false });
    expect(await kv.cas("a", "1", "2")).toEqual({ ok: true });
    expect(await kv.get("a")).toBe("2");
    const s = tab.status();
    expect(s.members.map((m) => m.id)).toEqual(["t1", "t2", "t3"]);
    expect(s.members.filter((m) => m.role === "leader")).toHaveLength(1);
  });

  it("ids spread to tabs that open later, writes work from every tab, a stopped tab's ids are taken over with their data", async () => {
    const clusterId = freshCluster();
    const locks = new InMemoryLocks();
    const a = await openTab(clusterId, locks);
    await until("a leader", () => a.tab.status().leader !== null);
    const b = await openTab(clusterId, locks);
    await until("b runs an id", () => b.tab.heldIds().length === 1);
    const c = await openTab(clusterId, locks);
    await until("three tabs run one id each", () => [a, b, c].every((t) => t.tab.heldIds().length === 1));
    expect(new Set([a, b, c].flatMap((t) => t.tab.heldIds()))).toEqual(new Set(["t1", "t2", "t3"]));

    for (const [i, t] of [a, b, c].entries()) await t.kv.put(`k${i}`, `v${i}`);
    for (const t of [a, b, c]) expect(await t.kv.get("k2")).toBe("v2");

    // A fourth tab has no id: a client whose requests its tab relays to the leader.
    const d = await openTab(clusterId, locks);
    expect(d.tab.heldIds()).toEqual([]);
    await d.kv.put("from-client", "yes");
    expect(await d.kv.get("from-client")).toBe("yes");
    expect(await a.kv.get("from-client")).toBe("yes");

    // Stop the tab running the leader: the waiting client tab is granted its id, resumes it from
    // IndexedDB, and writes go on.
    await until("a leader is known", () => a.tab.status().leader !== null);
    const leader = a.tab.status().leader!;
    const leaderTab = [a, b, c].find((t) => t.tab.heldIds().includes(leader))!;
    await leaderTab.tab.stop();
    await until(`d takes ${leader} over`, () => d.tab.heldIds().includes(leader));
    const rest = [a, b, c].filter((t) => t !== leaderTab);
    await rest[0].kv.put("after", "failover");
    for (const t of [...rest, d]) {
      expect(await t.kv.get("after")).toBe("failover");
      expect(await t.kv.get("k0")).toBe("v0");
    }

    // Down to one tab: it takes every id (nobody waits, so it finds their locks free) and writes.
    await Promise.all([rest[0].tab.stop(), d.tab.stop()]);
    const last = rest[1];
    await until("the last tab runs every id", () => last.tab.heldIds().length === 3);
    await last.kv.put("alone", "still");
    expect(await last.kv.get("alone")).toBe("still");
    expect(await last.kv.get("from-client")).toBe("yes");
  }, 90_000);

  it("without a leader a write fails with NO_LEADER (nothing proposed), never OUTCOME_UNKNOWN", async () => {
    const clusterId = freshCluster();
    const locks = new InMemoryLocks();
    // Every id held by someone who runs no member: no leader can ever be elected.
    const release: (() => void)[] = [];
    for (const id of ["t1", "t2", "t3"]) {
      void locks.request(tabLockName(clusterId, id), {}, () => new Promise<void>((r) => release.push(r)));
    }
    const { tab, kv } = await openTab(clusterId, locks, { retryBudgetMs: 500 });
    expect(tab.heldIds()).toEqual([]);
    await expect(kv.put("k", "v")).rejects.toMatchObject({ code: "NO_LEADER" });
    await expect(kv.get("k")).rejects.toMatchObject({ code: "NO_LEADER" });
    for (const r of release) r();
  });

  it("KV arguments are checked with the HTTP API's codes", async () => {
    const { kv } = await openTab(freshCluster(), new InMemoryLocks());
    await expect(kv.put("", "v")).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(kv.put("k".repeat(1025), "v")).rejects.toMatchObject({ code: "KEY_TOO_LARGE" });
    await expect(kv.put("k", "v".repeat(1024 * 1024 + 1))).rejects.toMatchObject({ code: "VALUE_TOO_LARGE" });
    await expect(kv.put("k", 5 as unknown as string)).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});

/**
 * A tab that says (on the control channel) it runs the leader `id`, and answers requests with
 * `answer` (or never, with null): what a real tab does, reduced to what the relay rules need.
 */
function fakeLeaderTab(
  clusterId: string,
  id: string,
  answer: ((req: { rid: string; from: string; kind: string }) => unknown) | null,
  { tab = "fake", term = 7 } = {},
): { requests: number; close(): void; leave(): void } {
  const channel = new BroadcastChannel(controlChannelName(clusterId));
  const seen = { requests: 0, close: () => {}, leave: () => {} };
  const publish = (): void =>
    channel.postMessage({ t: "status", tab, members: [{ ...status(id, "leader", term, id), tab }] });
  publish();
  const timer = setInterval(publish, 30);
  channel.onmessage = (event: MessageEvent) => {
    const m = event.data as { t: string; rid: string; from: string; to: string; kind: string };
    if (m.t !== "req" || m.to !== id) return;
    seen.requests++;
    if (answer) channel.postMessage({ t: "res", rid: m.rid, to: m.from, answer: answer(m) });
  };
  seen.close = () => {
    clearInterval(timer);
    channel.close();
  };
  // What a TabCluster does on its page's pagehide: says so, then publishes no more status.
  seen.leave = () => {
    clearInterval(timer);
    channel.postMessage({ t: "leaving", tab, ids: [id] });
  };
  return seen;
}

/** Settles with the promise's outcome, or "pending" when it has not settled within `ms`. */
function within<T>(ms: number, p: Promise<T>): Promise<{ value: T } | { error: unknown } | "pending"> {
  return Promise.race([
    p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<"pending">((resolve) => realClock.setTimer(ms, () => resolve("pending"))),
  ]);
}

/** A client tab: every id is held elsewhere (by this test), so it runs no member. */
async function clientTab(
  clusterId: string,
  timing: { attemptTimeoutMs: number; retryBudgetMs: number; staleMs?: number },
): Promise<{ tab: TabCluster<KvResult>; release: () => void }> {
  const locks = new InMemoryLocks();
  const releases: (() => void)[] = [];
  for (const id of ["t1", "t2", "t3"]) void locks.request(tabLockName(clusterId, id), {}, () => new Promise<void>((r) => releases.push(r)));
  const tab = new TabCluster<KvResult>({ clusterId, locks, env, stateMachine: () => new KvStateMachine(), pollMs: 50, statusMs: 50, ...timing });
  started.push(tab);
  await tab.start();
  await until("the fake leader is heard", () => tab.status().leader !== null);
  return { tab, release: () => releases.forEach((r) => r()) };
}

describe("relay rules (a client tab and a leader's tab that misbehaves)", () => {
  it("an unanswered write without a session fails OUTCOME_UNKNOWN after one attempt, never resent", async () => {
    const clusterId = freshCluster();
    const fake = fakeLeaderTab(clusterId, "t1", null);
    try {
      const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 200, retryBudgetMs: 5_000 });
      await expect(tab.propose(new Uint8Array([1]))).rejects.toMatchObject({ code: "OUTCOME_UNKNOWN" });
      expect(fake.requests).toBe(1);
      release();
    } finally {
      fake.close();
    }
  });

  it("an unanswered write with a session is resent until the budget runs out, then OUTCOME_UNKNOWN; a read says NO_LEADER", async () => {
    const clusterId = freshCluster();
    const fake = fakeLeaderTab(clusterId, "t1", null);
    try {
      const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 200, retryBudgetMs: 1_500 });
      await expect(tab.propose(new Uint8Array([1]), { retrySafe: true })).rejects.toMatchObject({ code: "OUTCOME_UNKNOWN" });
      expect(fake.requests).toBeGreaterThan(1);
      await expect(tab.read("get", "k")).rejects.toMatchObject({ code: "NO_LEADER" });
      release();
    } finally {
      fake.close();
    }
  });

  it("answers with the HTTP API's codes: 503s are resent, a 4xx is the caller's answer, OUTCOME_UNKNOWN without a session is final", async () => {
    const clusterId = freshCluster();
    let n = 0;
    const fake = fakeLeaderTab(clusterId, "t1", (req) => {
      n++;
      if (req.kind === "read") return { ok: false, code: "BAD_REQUEST", message: "no such query" };
      if (n === 1) return { ok: false, code: "OVERLOADED", message: "busy" };
      if (n === 2) return { ok: true, value: { index: 42, result: "done" } };
      return { ok: false, code: "OUTCOME_UNKNOWN", message: "leader lost" };
    });
    try {
      const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 200, retryBudgetMs: 5_000 });
      await expect(tab.propose(new Uint8Array([1]))).resolves.toEqual({ index: 42, result: "done" });
      expect(n).toBe(2);
      await expect(tab.propose(new Uint8Array([2]))).rejects.toMatchObject({ code: "OUTCOME_UNKNOWN" });
      expect(n).toBe(3);
      await expect(tab.read("nope")).rejects.toMatchObject({ code: "BAD_REQUEST" });
      release();
    } finally {
      fake.close();
    }
  });
});

describe("failover without waiting out attemptTimeoutMs", () => {
  it("a leaving tab's members are offline at once; a write without a session sent to it fails OUTCOME_UNKNOWN at once, never resent", async () => {
    const clusterId = freshCluster();
    const fake = fakeLeaderTab(clusterId, "t1", null);
    const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 60_000, retryBudgetMs: 120_000, staleMs: 600_000 });
    try {
      expect(tab.status().leader).toBe("t1");
      const write = tab.propose(new Uint8Array([1]));
      await until("the write reached t1's tab", () => fake.requests === 1);
      fake.leave();
      const outcome = await within(5_000, write);
      expect(outcome).toMatchObject({ error: { code: "OUTCOME_UNKNOWN" } });
      expect(String((outcome as { error: unknown }).error)).toMatch(/left before answering/);
      expect(fake.requests).toBe(1);
      // Offline although staleMs (600 s) has not passed; what it said last is kept.
      expect(tab.status().members[0]).toMatchObject({ id: "t1", role: "offline", term: 7, tab: null });
      expect(tab.status().leader).toBeNull();
    } finally {
      fake.close();
      release();
    }
  });

  it("a leaving tab ends a read and a write with a session sent to it at once; they go to the next leader", async () => {
    const clusterId = freshCluster();
    const first = fakeLeaderTab(clusterId, "t1", null);
    const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 60_000, retryBudgetMs: 120_000, staleMs: 600_000 });
    let next: ReturnType<typeof fakeLeaderTab> | null = null;
    try {
      const write = tab.propose(new Uint8Array([1]), { retrySafe: true });
      const read = tab.read("get", "k");
      await until("both reached t1's tab", () => first.requests === 2);
      first.leave();
      // The next leader is at the same term (only the leaving message, not a new term, moves the guess).
      next = fakeLeaderTab(clusterId, "t2", (req) => (req.kind === "read" ? { ok: true, value: "v" } : { ok: true, value: { index: 9, result: "r" } }), { tab: "fake2", term: 7 });
      expect(await within(5_000, write)).toEqual({ value: { index: 9, result: "r" } });
      expect(await within(5_000, read)).toEqual({ value: "v" });
      expect(first.requests).toBe(2);
      expect(next.requests).toBe(2);
    } finally {
      first.close();
      next?.close();
      release();
    }
  });

  it("a new leader in the statuses (the old tab crashed: no leaving message) ends a write with a session at once; one without keeps waiting and is never resent", async () => {
    const clusterId = freshCluster();
    const crashed = fakeLeaderTab(clusterId, "t1", null);
    const { tab, release } = await clientTab(clusterId, { attemptTimeoutMs: 3_000, retryBudgetMs: 120_000, staleMs: 600_000 });
    let next: ReturnType<typeof fakeLeaderTab> | null = null;
    try {
      const safe = tab.propose(new Uint8Array([1]), { retrySafe: true });
      const unsafe = tab.propose(new Uint8Array([2]));
      await until("both reached t1's tab", () => crashed.requests === 2);
      crashed.close(); // no leaving message; its last status stays fresh (staleMs 600 s)
      next = fakeLeaderTab(clusterId, "t2", () => ({ ok: true, value: { index: 3, result: "r" } }), { tab: "fake2", term: 8 });
      expect(await within(2_000, safe)).toEqual({ value: { index: 3, result: "r" } });
      expect(next.requests).toBe(1);
      // The write without a session may have reached t1's log: it waits out its attempt, then says so.
      await expect(unsafe).rejects.toMatchObject({ code: "OUTCOME_UNKNOWN" });
      expect(next.requests).toBe(1);
    } finally {
      crashed.close();
      next?.close();
      release();
    }
  });
});

describe("leader guess", () => {
  it("a leader the others name but that is offline is no guess", () => {
    expect(leaderFrom([status("t1", "offline", 7, null), status("t2", "follower", 7, "t1")])).toBeNull();
    expect(leaderFrom([status("t1", "failed", 7, null), status("t2", "follower", 7, "t1"), status("t3", "follower", 7, "t1")])).toBeNull();
    expect(leaderFrom([status("t1", "offline", 7, null), status("t2", "follower", 8, "t3"), status("t3", "candidate", 8, null)])).toBe("t3");
  });
});

describe("status from the control channel", () => {
  it("a member its tab stops listing is offline at once, not after staleMs", async () => {
    const clusterId = freshCluster();
    const locks = new InMemoryLocks();
    const releases: (() => void)[] = [];
    for (const id of ["t1", "t2", "t3"]) void locks.request(tabLockName(clusterId, id), {}, () => new Promise<void>((r) => releases.push(r)));
    const tab = new TabCluster<KvResult>({ clusterId, locks, env, stateMachine: () => new KvStateMachine(), statusMs: 50, staleMs: 600_000 });
    started.push(tab);
    await tab.start();
    const other = new BroadcastChannel(controlChannelName(clusterId));
    try {
      other.postMessage({ t: "status", tab: "other", members: [{ ...status("t2", "leader", 3, "t2"), tab: "other" }] });
      await until("t2 is the leader", () => tab.status().leader === "t2");
      other.postMessage({ t: "status", tab: "other", members: [] });
      await until("t2 is offline", () => tab.status().members[1].role === "offline", 5_000);
      expect(tab.status().leader).toBeNull();
      // What it said last is kept.
      expect(tab.status().members[1].term).toBe(3);
    } finally {
      other.close();
      releases.forEach((r) => r());
    }
  });
});

describe("exactly-once across a lost answer", () => {
  it("a KV write whose answer is lost is resent under its session and applied once", async () => {
    const clusterId = freshCluster();
    const leaderTab = await openTab(clusterId, new InMemoryLocks());
    await until("a leader", () => leaderTab.tab.status().leader !== null);

    // The client tab's control channel loses the first answer addressed to it.
    let lost = 0;
    class LosesFirstAnswer extends BroadcastChannel {}
    Object.defineProperty(LosesFirstAnswer.prototype, "onmessage", {
      set(this: BroadcastChannel, handler: ((e: MessageEvent) => void) | null) {
        const wrapped = handler && ((e: MessageEvent) => (e.data?.t === "res" && lost++ === 0 ? undefined : handler.call(this, e)));
        Object.getOwnPropertyDescriptor(BroadcastChannel.prototype, "onmessage")!.set!.call(this, wrapped);
      },
    });
    const locks = new InMemoryLocks();
    const releases: (() => void)[] = [];
    for (const id of ["t1", "t2", "t3"]) void locks.request(tabLockName(clusterId, id), {}, () => new Promise<void>((r) => releases.push(r)));
    const client = new TabCluster<KvResult>({
      clusterId,
      locks,
      env,
      BroadcastChannel: LosesFirstAnswer,
      stateMachine: () => new KvStateMachine(),
      statusMs: 50,
      attemptTimeoutMs: 300,
    });
    started.push(client);
    await client.start();
    await until("the client hears the leader", () => client.status().leader !== null);
    const kv = tabsKvHandle({ status: async () => client.status(), propose: (d, o) => client.propose(d, o), read: (n, a) => client.read(n, a) });

    // Applied on the first attempt (its answer lost), answered from the session table on the
    // resend: ok, as the first attempt was. Without the session the resend would find the key.
    expect(await kv.cas("once", null, "first")).toEqual({ ok: true });
    expect(lost).toBeGreaterThan(1);
    expect(await kv.get("once")).toBe("first");
    expect(await kv.cas("once", null, "second")).toEqual({ ok: false });
    releases.forEach((r) => r());
  });
});

describe("page and Worker (serveTabCluster / connectTabCluster over a MessageChannel)", () => {
  it("the page's KV handle works through the Worker protocol; stop() releases the ids; failures keep their code", async () => {
    const clusterId = freshCluster();
    const locks = new InMemoryLocks();
    const tab = kvTab(clusterId, locks);
    const { port1: workerSide, port2: pageSide } = new MessageChannel();
    try {
      await serveTabCluster(tab, workerSide as unknown as MessageEndpoint);
      workerSide.start();
      pageSide.start();
      const connection = connectTabCluster<KvResult>(pageSide as unknown as Worker);
      const kv = tabsKvHandle(connection);
      await until("a leader", () => tab.status().leader !== null);
      expect((await kv.status()).ids).toEqual(["t1", "t2", "t3"]);
      expect(await kv.put("k", "v")).toMatchObject({ index: expect.any(Number) });
      expect(await kv.get("k")).toBe("v");
      await expect(connection.read("no-such-query")).rejects.toMatchObject({ code: "BAD_REQUEST" });
      await connection.stop();
      expect(locks.held.size).toBe(0);
      await expect(kv.put("k", "w")).rejects.toMatchObject({ code: "NODE_STOPPED" });
    } finally {
      workerSide.close();
      pageSide.close();
    }
  });

  it("the page's pagehide makes the Worker's cluster say 'leaving' on the control channel and stop publishing; pageshow from the bfcache resumes", async () => {
    const clusterId = freshCluster();
    const tab = kvTab(clusterId, new InMemoryLocks());
    const { port1: workerSide, port2: pageSide } = new MessageChannel();
    const page = new EventTarget();
    const heard: { t: string; tab: string; ids?: string[] }[] = [];
    const control = new BroadcastChannel(controlChannelName(clusterId));
    control.onmessage = (event: MessageEvent) => heard.push(event.data);
    try {
      await serveTabCluster(tab, workerSide as unknown as MessageEndpoint);
      workerSide.start();
      pageSide.start();
      connectTabCluster<KvResult>(pageSide as unknown as Worker, page as unknown as PageEvents);
      await until("its statuses", () => heard.some((m) => m.t === "status" && m.tab === tab.tab));
      page.dispatchEvent(new Event("pagehide"));
      await until("the leaving message", () => heard.some((m) => m.t === "leaving"));
      expect(heard.find((m) => m.t === "leaving")).toEqual({ t: "leaving", tab: tab.tab, ids: ["t1", "t2", "t3"] });
      const at = heard.length;
      await new Promise<void>((resolve) => realClock.setTimer(300, resolve)); // 6 status periods
      expect(heard.slice(at).filter((m) => m.t === "status")).toEqual([]);
      page.dispatchEvent(Object.assign(new Event("pageshow"), { persisted: true }));
      await until("statuses again", () => heard.slice(at).some((m) => m.t === "status" && m.tab === tab.tab));
    } finally {
      control.close();
      workerSide.close();
      pageSide.close();
    }
  });
});
