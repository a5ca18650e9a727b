/**
 * The tab cluster's logic in Node: TabCluster instances ("tabs") in one process, on
 * fake-indexeddb, Node's BroadcastChannel and an in-memory Web Locks manager (Node 20 has none;
 * the Chromium tests use the browser's). Covered: which tab runs which id (one tab runs all, ids
 * spread to waiting tabs, a stopped tab's ids are taken over and resume from IndexedDB), requests
 * relayed to the leader's tab from tabs with and without members, and the retry rules.
 */
import { IDBKeyRange, indexedDB } from "fake-indexeddb";
import { afterEach, describe, expect, it } from "vitest";
import { chooseHandOver, leaderFrom, TabCluster, type TabMemberStatus } from "../../adapters/browser/tab-cluster.ts";
import { kvQueries, tabsKvHandle, type TabsKvHandle } from "../../adapters/browser/tab-kv.ts";
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

async function openTab(clusterId: string, locks: InMemoryLocks, extra: { retryBudgetMs?: number } = {}): Promise<{ tab: TabCluster<KvResult>; kv: TabsKvHandle }> {
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
