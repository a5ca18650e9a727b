/**
 * Chaos in a real tab cluster: while several pages write, read and compare-and-swap through their
 * page handles, pages' renderers are crashed (CDP Page.crash: the page and its Worker die at once,
 * no unload) and pages are closed, at random, and new pages open. Every call is recorded with when
 * it was made and answered (a write that failed in any way, or whose page died under it, counts
 * as outcome unknown); the history, with a final read of every key, must pass checkLinearizable,
 * and every acknowledged write to a key of its own must read back. Bounded: FAULTS faults, each
 * call bounded by the tab cluster's retry budget.
 *
 * The schedule comes from a seed (printed; set MESHRAFT_CHAOS_SEED to replay the schedule, though
 * not the browser's timing).
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { checkLinearizable, type KvOperation } from "../../src/testing/linearizability.ts";
import { tabRig } from "./tab-rig.ts";
import { getEventually, openTab, tabCas, tabGet, tabPut, tabStatus, waitForSpread } from "./tabs.ts";

const FAULTS = 8;
const SHARED_KEYS = ["a", "b", "c"];
const MAX_PAGES = 4;
const seed = Number(process.env.MESHRAFT_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator for the schedule. */
function seeded(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Served pages and Chromium on a profile on disk (IndexedDB on disk with strict durability, not in memory). */
const rig = tabRig();


describe("a tab cluster under crashes and closes", () => {
  it("no acknowledged write is lost and the history is linearizable", async () => {
    console.log(`chaos seed ${seed} (MESHRAFT_CHAOS_SEED=${seed} replays the schedule)`);
    const random = seeded(seed);
    const cluster = `chaos-${Date.now().toString(36)}`;
    const history: KvOperation[] = [];
    /** Keys of their own that a client wrote once: key -> value, when acknowledged. */
    const acked = new Map<string, string>();
    const uniqueKeys: string[] = [];
    const live = new Set<Page>();
    const dead = new Set<Page>();
    const loops: Promise<void>[] = [];
    let stopping = false;
    let clients = 0;
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;

    /**
     * One client per page: one call at a time, until its page dies or the chaos ends. Each call
     * is recorded when made, as outcome unknown, and completed when answered: a write refused in
     * any way stays unknown (it may have reached a log), so does one whose page died under it; an
     * unknown get constrains nothing.
     */
    async function client(page: Page, name: string): Promise<void> {
      let n = 0;
      let lastSeen: string | null = null;
      while (!stopping && !dead.has(page)) {
        const r = random();
        const shared = SHARED_KEYS[Math.floor(random() * SHARED_KEYS.length)];
        const value = `${name}.${n++}`;
        const own = `own-${name}-${n}`;
        const op: KvOperation =
          r < 0.3
            ? { client: name, input: { op: "put", key: shared, value }, call: now(), return: Infinity }
            : r < 0.5
              ? { client: name, input: { op: "put", key: own, value }, call: now(), return: Infinity }
              : r < 0.65
                ? { client: name, input: { op: "cas", key: shared, expect: lastSeen, value }, call: now(), return: Infinity }
                : { client: name, input: { op: "get", key: shared }, call: now(), return: Infinity };
        history.push(op);
        if (op.input.key === own) uniqueKeys.push(own);
        try {
          if (op.input.op === "put") {
            const out = await tabPut(page, op.input.key, value);
            if (out.ok) op.return = now();
            if (out.ok && op.input.key === own) acked.set(own, value);
          } else if (op.input.op === "cas") {
            const out = await tabCas(page, shared, lastSeen, value);
            if (out.ok) {
              op.return = now();
              op.output = { ok: out.value.ok };
            }
          } else {
            const out = await tabGet(page, shared);
            if (out.ok) {
              op.return = now();
              op.output = { value: out.value };
              lastSeen = out.value;
            }
          }
        } catch {
          break; // the page crashed or closed under the call
        }
      }
    }

    async function open(): Promise<void> {
      const page = await openTab(rig.profile.context, rig.served, cluster, rig.problems);
      live.add(page);
      page.on("crash", () => {
        live.delete(page);
        dead.add(page);
      });
      page.on("close", () => {
        live.delete(page);
        dead.add(page);
      });
      loops.push(client(page, `c${++clients}`));
    }

    for (let i = 0; i < 3; i++) await open();
    await waitForSpread([...live]);

    const faults: string[] = [];
    for (let f = 0; f < FAULTS; f++) {
      await new Promise((r) => setTimeout(r, 500 + random() * 2000));
      const pages = [...live];
      // Half the time the page that runs the leader (as it last said), else any page.
      let victim = pages[Math.floor(random() * pages.length)];
      if (random() < 0.5) {
        const statuses = await Promise.all(pages.map((p) => tabStatus(p).catch(() => null)));
        const at = statuses.findIndex((st) => st !== null && st.leader !== null && st.ids.includes(st.leader));
        if (at >= 0 && live.has(pages[at])) victim = pages[at];
      }
      const seen = await tabStatus(victim).catch(() => null);
      const what = seen === null ? "?" : seen.ids.length === 0 ? "client" : seen.leader !== null && seen.ids.includes(seen.leader) ? "leader" : "follower";
      if (random() < 0.5) {
        faults.push(`crash ${what} (${pages.length} pages)`);
        const cdp = await rig.profile.context.newCDPSession(victim);
        // The answer never comes: the renderer is gone.
        void cdp.send("Page.crash").catch(() => undefined);
        await new Promise<void>((resolve) => {
          if (dead.has(victim)) resolve();
          victim.once("crash", () => resolve());
          setTimeout(resolve, 10_000);
        });
        await victim.close().catch(() => undefined);
      } else {
        faults.push(`close ${what} (${pages.length} pages)`);
        await victim.close();
      }
      // Keep 1 to MAX_PAGES pages: always at least one, often a new one.
      while (live.size === 0 || (live.size < MAX_PAGES && random() < 0.6)) await open();
    }
    console.log(`faults: ${faults.join(", ")}`);
    stopping = true;
    await Promise.all(loops);

    // Settle: three pages, then read every key once more (recorded too).
    while (live.size < 3) await open();
    const pages = [...live];
    await waitForSpread(pages);
    for (const key of [...SHARED_KEYS, ...uniqueKeys]) {
      const call = now();
      const value = await getEventually(pages[0], key);
      history.push({ client: "final", input: { op: "get", key }, call, return: now(), output: { value } });
      if (acked.has(key)) expect(value, `acknowledged write to ${key}`).toBe(acked.get(key));
    }
    stopping = true;
    const writes = history.filter((o) => o.input.op !== "get");
    const ackedWrites = writes.filter((o) => o.return !== Infinity);
    console.log(`${history.length} operations, ${writes.length} writes (${ackedWrites.length} acknowledged, ${writes.length - ackedWrites.length} unknown), ${acked.size} own-key writes acknowledged`);
    expect(faults).toHaveLength(FAULTS);
    expect(ackedWrites.length).toBeGreaterThan(0);
    const result = checkLinearizable(history, { timeoutMs: 60_000 });
    if (result.ok !== true) console.log(JSON.stringify(result, null, 2).slice(0, 4000));
    expect(result.ok).toBe(true);
  }, 600_000);

  it("no page threw an uncaught error", () => {
    expect(rig.problems.filter((p) => p.kind === "pageerror")).toEqual([]);
  });
});
