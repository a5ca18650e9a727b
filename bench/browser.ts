/**
 * A tab cluster in headless Chromium, measured (never asserted):
 *
 *   npm run bench:browser [-- --seconds 5] [--warmup 1] [--failovers 3] [--entries 2000]
 *
 * Three pages of one origin (test/browser/pages/tabs.ts: a TabCluster in each page's dedicated
 * Worker, one id each, IndexedDbStorage with strict durability) in a Chromium launched on a
 * temporary profile directory, so IndexedDB is on disk as for a user (an incognito context keeps
 * it in memory). Every call goes through the page handle `meshraftTabs`, from inside a page.
 *
 * - writes: W puts in flight (W = 1, 16, 64), each a 100-character value over 1,000 keys, for
 *   `--seconds` after `--warmup`; committed writes per second and p50/p99 latency (from the call
 *   to the handle's answer, which comes once the leader applied the write), from the page that
 *   runs the leader and from a page that runs a follower (its requests relayed to the leader's
 *   tab over BroadcastChannel);
 * - failover: the leader's page closes; time from the close until a put from another page, begun
 *   once the page is gone, succeeds; and until another page's status names a new leader
 *   (`--failovers` rounds, a fresh page opened after each);
 * - takeover: a follower's page closes; time until another page runs its id (Web Lock granted,
 *   member started from IndexedDB);
 * - the floor: one 100-byte put per IndexedDB transaction, one at a time, strict and relaxed;
 * - IndexedDB bytes per entry: navigator.storage.estimate() of the origin before and after
 *   `--entries` puts of 100 random base64 characters to distinct keys, per member (three
 *   databases hold each entry).
 *
 * Prints a markdown table. The machine's load shows in the numbers: run it on a quiet one.
 */
import type { Page } from "playwright-core";
import { ChromiumProfile } from "../test/browser/chromium.ts";
import { servePages } from "../test/browser/serve.ts";
import { openTab, putEventually, TAB_PAGES, tabStatus, type TabClusterStatus, waitForSpread } from "../test/browser/tabs.ts";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
if (process.argv.includes("--help")) {
  console.log("npm run bench:browser [-- --seconds 5] [--warmup 1] [--failovers 3] [--entries 2000]");
  process.exit(0);
}
const SECONDS = arg("seconds", 5);
const WARMUP = arg("warmup", 1);
const FAILOVERS = arg("failovers", 3);
const ENTRIES = arg("entries", 2000);
const INFLIGHT = [1, 16, 64];

type Handle = { meshraftTabs: { put(k: string, v: string): Promise<{ index: number }>; status(): Promise<TabClusterStatus> } };

interface LoadResult {
  writes: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
}

/** W loops of puts in the page for `seconds` (after `warmup` unmeasured); latencies in ms. */
function load(page: Page, inflight: number, seconds: number, warmup: number, keyPrefix: string): Promise<LoadResult> {
  return page.evaluate(
    async ({ inflight, seconds, warmup, keyPrefix }) => {
      const tabs = (globalThis as unknown as Handle).meshraftTabs;
      const bytes = new Uint8Array(75);
      crypto.getRandomValues(bytes);
      const value = btoa(String.fromCharCode(...bytes));
      const latencies: number[] = [];
      let failed = 0;
      const start = performance.now();
      const measureFrom = start + warmup * 1000;
      const end = measureFrom + seconds * 1000;
      await Promise.all(
        Array.from({ length: inflight }, async (_, w) => {
          for (let n = 0; performance.now() < end; n++) {
            const t = performance.now();
            try {
              await tabs.put(`${keyPrefix}${(w * 7919 + n) % 1000}`, value);
              if (t >= measureFrom) latencies.push(performance.now() - t);
            } catch {
              if (t >= measureFrom) failed++;
            }
          }
        }),
      );
      const measured = (performance.now() - measureFrom) / 1000;
      latencies.sort((a, b) => a - b);
      // No named functions in here: tsx would wrap them in a helper the page does not have.
      const p50 = latencies[Math.min(latencies.length - 1, Math.floor(0.5 * latencies.length))] ?? NaN;
      const p99 = latencies[Math.min(latencies.length - 1, Math.floor(0.99 * latencies.length))] ?? NaN;
      return { writes: latencies.length, failed, seconds: measured, p50, p99 };
    },
    { inflight, seconds, warmup, keyPrefix },
  );
}

/** The page running `id`, given the pages' statuses. */
const pageRunning = (pages: Page[], statuses: TabClusterStatus[], id: string): Page => pages[statuses.findIndex((s) => s.ids.includes(id))];
const oneEach = (all: TabClusterStatus[]): boolean => all.every((s) => s.ids.length === 1);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Polls, inside each page, its own status every 5 ms until it runs `id`; the Date.now() when one did. */
async function whenRuns(pages: Page[], id: string, timeoutMs = 30_000): Promise<number> {
  const found = await Promise.all(
    pages.map((p) =>
      p.evaluate(
        async ({ id, timeoutMs }) => {
          const g = globalThis as unknown as Handle & { benchStop?: boolean };
          g.benchStop = false;
          const deadline = Date.now() + timeoutMs;
          while (!g.benchStop && Date.now() < deadline) {
            if ((await g.meshraftTabs.status()).ids.includes(id)) {
              g.benchStop = true;
              return Date.now();
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          return null;
        },
        { id, timeoutMs },
      ),
    ),
  );
  // Each page stops polling on its own once it saw the id or its deadline passed; tell the others.
  await Promise.all(pages.map((p) => p.evaluate(() => ((globalThis as unknown as { benchStop: boolean }).benchStop = true))));
  const times = found.filter((t): t is number => t !== null);
  if (times.length === 0) throw new Error(`no page took ${id} over within ${timeoutMs} ms`);
  return Math.min(...times);
}

/** Polls `page`'s status (in the page, every 5 ms) until it names a leader other than `old`; the Date.now() it did. */
function whenNewLeader(page: Page, old: string): Promise<number> {
  return page.evaluate(async (old) => {
    const tabs = (globalThis as unknown as Handle).meshraftTabs;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const s = await tabs.status();
      if (s.leader !== null && s.leader !== old) return Date.now();
      await new Promise((r) => setTimeout(r, 5));
    }
    return NaN;
  }, old);
}

/** Keeps putting from `page` (in the page) until one put succeeds; the Date.now() it did. */
function whenWrites(page: Page, key: string): Promise<number> {
  return page.evaluate(async (key) => {
    const tabs = (globalThis as unknown as Handle).meshraftTabs;
    for (;;) {
      try {
        await tabs.put(key, "after-failover");
        return Date.now();
      } catch {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }, key);
}

/**
 * The floor under the cluster's numbers: one small put per IndexedDB transaction, one at a time,
 * for `seconds`, with the given durability, on a database of its own (deleted after).
 */
function rawTransactions(page: Page, durability: "strict" | "relaxed", seconds: number): Promise<{ rate: number; p50: number }> {
  return page.evaluate(
    async ({ durability, seconds }) => {
      const name = `bench-raw-${durability}-${Date.now()}`;
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("s");
      const db = await new Promise<IDBDatabase>((ok, fail) => {
        req.onsuccess = () => ok(req.result);
        req.onerror = () => fail(req.error);
      });
      const latencies: number[] = [];
      const end = performance.now() + seconds * 1000;
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        const tx = db.transaction("s", "readwrite", { durability });
        tx.objectStore("s").put(new Uint8Array(100), i % 1000);
        await new Promise((ok, fail) => {
          tx.oncomplete = ok;
          tx.onabort = () => fail(tx.error);
        });
        latencies.push(performance.now() - t);
      }
      db.close();
      indexedDB.deleteDatabase(name);
      latencies.sort((a, b) => a - b);
      return { rate: latencies.length / seconds, p50: latencies[Math.floor(latencies.length / 2)] };
    },
    { durability, seconds },
  );
}

async function usage(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const e = (await navigator.storage.estimate()) as StorageEstimate & { usageDetails?: { indexedDB?: number } };
    return e.usageDetails?.indexedDB ?? e.usage ?? 0;
  });
}

async function main(): Promise<void> {
  const served = await servePages(TAB_PAGES);
  let profile: ChromiumProfile | null = null;
  const rows: string[][] = [];
  const cluster = `bench-${Date.now().toString(36)}`;
  try {
    profile = await ChromiumProfile.open();
    const context = profile.context;
    let pages: Page[] = [];
    for (let i = 0; i < 3; i++) pages.push(await openTab(context, served, cluster));
    let statuses = await waitForSpread(pages, oneEach, 120_000);
    const version = context.browser()?.version() ?? (await pages[0].evaluate(() => navigator.userAgent.match(/Chrome\/([\d.]+)/)?.[1] ?? "?"));

    // IndexedDB bytes per entry, on the fresh cluster.
    {
      const leaderPage = pageRunning(pages, statuses, statuses[0].leader!);
      await putEventually(leaderPage, "warm", "x");
      const before = await usage(leaderPage);
      await leaderPage.evaluate(async (n) => {
        const tabs = (globalThis as unknown as Handle).meshraftTabs;
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < n) {
              const i = next++;
              const bytes = new Uint8Array(75);
              crypto.getRandomValues(bytes);
              await tabs.put(`size-${i}`, btoa(String.fromCharCode(...bytes)));
            }
          }),
        );
      }, ENTRIES);
      // Every member applied them (and so stored them).
      const target = (await tabStatus(leaderPage)).members.find((m) => m.role === "leader")!.commitIndex;
      const deadline = Date.now() + 60_000;
      while ((await tabStatus(leaderPage)).members.some((m) => m.appliedIndex < target) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 1000));
      const after = await usage(leaderPage);
      const perEntry = (after - before) / ENTRIES / 3;
      rows.push([`IndexedDB bytes per entry (100-char random value, per member)`, `${perEntry.toFixed(0)} B`, `${ENTRIES} entries; origin usage ${before} -> ${after} B over 3 databases`]);
      console.error(`bytes per entry: ${perEntry.toFixed(1)}`);
    }

    // Throughput and latency.
    for (const from of ["leader", "follower"] as const) {
      for (const w of INFLIGHT) {
        statuses = await waitForSpread(pages, oneEach, 120_000);
        const leader = statuses[0].leader!;
        const page = from === "leader" ? pageRunning(pages, statuses, leader) : pages[statuses.findIndex((s) => !s.ids.includes(leader))];
        const r = await load(page, w, SECONDS, WARMUP, `load-${from}-${w}-`);
        const rate = r.writes / r.seconds;
        rows.push([`writes from the ${from}'s page, ${w} in flight`, `${rate.toFixed(0)} writes/s`, `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${r.failed > 0 ? `, ${r.failed} failed` : ""}`]);
        console.error(`${from} w=${w}: ${rate.toFixed(0)}/s p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} failed ${r.failed}`);
      }
    }

    // The floor: IndexedDB alone, one transaction at a time.
    for (const durability of ["strict", "relaxed"] as const) {
      const r = await rawTransactions(pages[0], durability, Math.max(1, Math.min(SECONDS, 3)));
      rows.push([`raw IndexedDB: one 100-byte put per ${durability} transaction, 1 in flight`, `${r.rate.toFixed(0)} transactions/s`, `p50 ${r.p50.toFixed(1)} ms (no Raft: the floor under the rows above)`]);
      console.error(`raw ${durability}: ${r.rate.toFixed(0)}/s p50 ${r.p50.toFixed(1)}`);
    }

    // Takeover of a released id: a follower's page closes.
    const takeovers: number[] = [];
    const failovers: number[] = [];
    const elections: number[] = [];
    for (let round = 0; round < FAILOVERS; round++) {
      statuses = await waitForSpread(pages, oneEach, 120_000);
      const leader = statuses[0].leader!;
      const victim = statuses.findIndex((s) => !s.ids.includes(leader));
      const id = statuses[victim].ids[0];
      const rest = pages.filter((_, i) => i !== victim);
      const watching = whenRuns(rest, id);
      const t0 = Date.now();
      await pages[victim].close();
      takeovers.push((await watching) - t0);
      pages = rest;
      pages.push(await openTab(context, served, cluster));
    }
    // Failover: the leader's page closes; time to the next successful write from another page.
    for (let round = 0; round < FAILOVERS; round++) {
      statuses = await waitForSpread(pages, oneEach, 120_000);
      const leader = statuses[0].leader!;
      const victim = statuses.findIndex((s) => s.ids.includes(leader));
      const rest = pages.filter((_, i) => i !== victim);
      // From the close's start to a write that began once the page was gone (a write begun
      // earlier could commit through the old leader while its page is still closing).
      await putEventually(rest[0], "pre-failover", "x");
      const t0 = Date.now();
      await pages[victim].close();
      const elected = whenNewLeader(rest[1], leader);
      failovers.push((await whenWrites(rest[0], `failover-${round}`)) - t0);
      elections.push((await elected) - t0);
      pages = rest;
      pages.push(await openTab(context, served, cluster));
    }
    rows.push([`takeover of a released id (follower's page closed)`, `${median(takeovers)} ms median`, `rounds: ${takeovers.join(", ")} ms`]);
    rows.push([`failover (leader's page closed, to the next successful write)`, `${median(failovers)} ms median`, `rounds: ${failovers.join(", ")} ms`]);
    rows.push([`failover (leader's page closed, to a new leader in another page's status)`, `${median(elections)} ms median`, `rounds: ${elections.join(", ")} ms`]);

    console.log(`\nTab cluster in headless Chromium ${version}, 3 pages, strict durability, profile on disk (${SECONDS} s per load after ${WARMUP} s warm-up)\n`);
    console.log("| measure | result | detail |");
    console.log("|---|---|---|");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  } finally {
    await profile?.close();
    await served.close();
  }
}

await main();
