/**
 * The logic of acquireTabId against a small in-memory LockManager with the Web Locks semantics it
 * relies on (exclusive grants in request order, ifAvailable, signal withdrawal). Node 20 has no
 * navigator.locks; the real test needs Chromium (tabs opened at the same instant, a closed tab's
 * locks released by the browser).
 */
import { describe, expect, it } from "vitest";
import { acquireTabId, type HeldTabId, tabLockName } from "../../adapters/browser/tab-ids.ts";
import { InMemoryLocks } from "./in-memory-locks.ts";

const ids = ["t1", "t2", "t3"];
const cluster = "c1";
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("acquireTabId (Web Locks identities)", () => {
  it("takes the first free id in order; with every id held and wait: false, resolves null", async () => {
    const locks = new InMemoryLocks();
    const got: (HeldTabId | null)[] = [];
    for (let i = 0; i < 4; i++) got.push(await acquireTabId({ clusterId: cluster, ids, locks, wait: false }));
    expect(got.map((h) => h?.id ?? null)).toEqual(["t1", "t2", "t3", null]);
    expect([...locks.held].sort()).toEqual(ids.map((id) => tabLockName(cluster, id)));
  });

  it("tabs acquiring at the same instant get different ids", async () => {
    const locks = new InMemoryLocks();
    const held = await Promise.all([1, 2, 3].map(() => acquireTabId({ clusterId: cluster, ids, locks })));
    expect(held.map((h) => h!.id).sort()).toEqual(ids);
  });

  it("a tab waiting with every id held takes the first one released, and withdraws from the others", async () => {
    const locks = new InMemoryLocks();
    const [a, b] = await Promise.all([acquireTabId({ clusterId: cluster, ids, locks }), acquireTabId({ clusterId: cluster, ids, locks })]);
    const c = await acquireTabId({ clusterId: cluster, ids, locks });
    let waiter: HeldTabId | null = null;
    void acquireTabId({ clusterId: cluster, ids, locks }).then((h) => (waiter = h));
    await tick();
    expect(waiter).toBeNull();
    await b!.release();
    await tick();
    expect(waiter!.id).toBe(b!.id);
    // Its requests for the other ids are gone: releasing them hands them to nobody.
    expect(ids.map((id) => locks.waiting(tabLockName(cluster, id)))).toEqual([0, 0, 0]);
    await a!.release();
    await c!.release();
    expect([...locks.held]).toEqual([tabLockName(cluster, b!.id)]);
  });

  it("release lets go of the lock once (idempotent), and the id is free again", async () => {
    const locks = new InMemoryLocks();
    const a = await acquireTabId({ clusterId: cluster, ids, locks });
    await a!.release();
    await a!.release();
    expect(locks.held.size).toBe(0);
    expect((await acquireTabId({ clusterId: cluster, ids, locks, wait: false }))!.id).toBe("t1");
  });

  it("an aborted wait rejects with the signal's reason and takes nothing later", async () => {
    const locks = new InMemoryLocks();
    const held = await Promise.all(ids.map(() => acquireTabId({ clusterId: cluster, ids, locks })));
    const stop = new AbortController();
    const waiting = acquireTabId({ clusterId: cluster, ids, locks, signal: stop.signal });
    await tick();
    stop.abort(new Error("tab is closing"));
    await expect(waiting).rejects.toThrow("tab is closing");
    await held[0]!.release();
    await tick();
    expect(locks.held.has(tabLockName(cluster, held[0]!.id))).toBe(false);
  });

  it("refuses an empty or duplicate id list, and an environment without Web Locks", async () => {
    await expect(acquireTabId({ clusterId: cluster, ids: [], locks: new InMemoryLocks() })).rejects.toBeInstanceOf(RangeError);
    await expect(acquireTabId({ clusterId: cluster, ids: ["t1", "t1"], locks: new InMemoryLocks() })).rejects.toBeInstanceOf(RangeError);
    await expect(acquireTabId({ clusterId: cluster, ids })).rejects.toThrow(/no Web Locks/);
  });
});
