/**
 * Driving tab-cluster pages (pages/tabs.ts) from the tests and the bench: every call goes through
 * the page handle `globalThis.meshraftTabs`, as a script or devtools would; failures come back
 * with the HTTP API's `code`.
 */
import type { BrowserContext, Page } from "playwright-core";
import type { TabClusterStatus } from "../../adapters/browser/tab-cluster.ts";
import type { TabsKvHandle } from "../../adapters/browser/tab-kv.ts";
import { type PageProblem, recordProblems } from "./chromium.ts";
import type { ServedPages } from "./serve.ts";

export type { TabClusterStatus };

/** The pages a tab-cluster test serves. */
export const TAB_PAGES: string[] = ["tabs", "tabs-worker"];

/** The outcome of one call through the page handle. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

type Handle = { meshraftTabs: TabsKvHandle };

/** Opens the tab-cluster page of `cluster` in `context` and waits for its handle. */
export async function openTab(context: BrowserContext, served: ServedPages, cluster: string, problems?: PageProblem[], query: Record<string, string> = {}): Promise<Page> {
  const page = await context.newPage();
  if (problems) recordProblems(page, problems);
  await page.goto(served.url("tabs", { cluster, ...query }));
  await page.waitForFunction(() => "meshraftTabs" in globalThis, null, { timeout: 60_000 });
  return page;
}

/**
 * Opens `count` pages of `cluster` whose Workers wait on a gate, then opens the gate: the pages'
 * tab clusters start at the same instant (one BroadcastChannel message reaches them all).
 */
export async function openTabsAtOnce(context: BrowserContext, served: ServedPages, cluster: string, count: number, problems?: PageProblem[]): Promise<Page[]> {
  const gate = `gate-${cluster}-${Math.random().toString(36).slice(2)}`;
  const pages: Page[] = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    if (problems) recordProblems(page, problems);
    await page.goto(served.url("tabs", { cluster, gate }));
    await page.waitForFunction(() => "meshraftGate" in globalThis, null, { timeout: 60_000 });
    pages.push(page);
  }
  await pages[0].evaluate((name) => {
    const channel = new BroadcastChannel(name);
    channel.postMessage("go");
    channel.close();
  }, gate);
  await Promise.all(pages.map((p) => p.waitForFunction(() => "meshraftTabs" in globalThis, null, { timeout: 60_000 })));
  return pages;
}

/** When a page's Worker ran which id: intervals [from, to] in Date.now() time (pages/tabs-worker.ts). */
export interface HeldInterval {
  id: string;
  from: number;
  to: number;
}

export function heldIntervals(page: Page): Promise<HeldInterval[]> {
  return page.evaluate(() => (globalThis as unknown as { meshraftTest: { held(): Promise<HeldInterval[]> } }).meshraftTest.held());
}

/** Pairs of intervals of one id, from different pages, that overlap: two tabs ran it at once. */
export function overlappingRuns(perPage: HeldInterval[][]): string[] {
  const found: string[] = [];
  for (let a = 0; a < perPage.length; a++) {
    for (let b = a + 1; b < perPage.length; b++) {
      for (const x of perPage[a]) {
        for (const y of perPage[b]) {
          if (x.id === y.id && x.from <= y.to && y.from <= x.to) found.push(`${x.id}: page ${a} ran it ${x.from}..${x.to}, page ${b} ${y.from}..${y.to}`);
        }
      }
    }
  }
  return found;
}

export function tabStatus(page: Page): Promise<TabClusterStatus> {
  return page.evaluate(() => (globalThis as unknown as Handle).meshraftTabs.status());
}

/** A put through the page handle; never throws for a refused or failed call. */
export function tabPut(page: Page, key: string, value: string): Promise<Outcome<{ index: number }>> {
  return page.evaluate(
    ([k, v]) =>
      (globalThis as unknown as Handle).meshraftTabs.put(k, v).then(
        (value) => ({ ok: true as const, value }),
        (e: { code?: string; message?: string }) => ({ ok: false as const, code: String(e?.code ?? "ERROR"), message: String(e?.message ?? e) }),
      ),
    [key, value] as const,
  );
}

/** A linearizable get through the page handle; never throws for a refused or failed call. */
export function tabGet(page: Page, key: string): Promise<Outcome<string | null>> {
  return page.evaluate(
    (k) =>
      (globalThis as unknown as Handle).meshraftTabs.get(k).then(
        (value) => ({ ok: true as const, value }),
        (e: { code?: string; message?: string }) => ({ ok: false as const, code: String(e?.code ?? "ERROR"), message: String(e?.message ?? e) }),
      ),
    key,
  );
}

/** A compare-and-swap through the page handle; never throws for a refused or failed call. */
export function tabCas(page: Page, key: string, expect: string | null, value: string | null): Promise<Outcome<{ ok: boolean }>> {
  return page.evaluate(
    ([k, e, v]) =>
      (globalThis as unknown as Handle).meshraftTabs.cas(k, e, v).then(
        (value) => ({ ok: true as const, value }),
        (err: { code?: string; message?: string }) => ({ ok: false as const, code: String(err?.code ?? "ERROR"), message: String(err?.message ?? err) }),
      ),
    [key, expect, value] as const,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it answers something other than undefined; throws after `timeoutMs` with `what` and the last value. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== undefined ? ` (last: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ""}`);
    await sleep(everyMs);
  }
}

/**
 * The statuses of `pages` once they agree: every id runs in exactly one of them (none twice, none
 * missing), each runs `perPage(i)` ids when given, and all name the same leader.
 */
export async function waitForSpread(pages: Page[], perPage?: (statuses: TabClusterStatus[]) => boolean, timeoutMs = 60_000): Promise<TabClusterStatus[]> {
  return waitFor(
    `${pages.length} pages to run every id once and agree on a leader`,
    async () => {
      const all = await Promise.all(pages.map(tabStatus));
      const ids = all.flatMap((s) => s.ids);
      const every = all[0].members.map((m) => m.id);
      if (ids.length !== every.length || new Set(ids).size !== every.length) return undefined;
      const leader = all[0].leader;
      if (leader === null || all.some((s) => s.leader !== leader)) return undefined;
      if (all.some((s) => s.members.find((m) => m.id === leader)?.role !== "leader")) return undefined;
      if (perPage && !perPage(all)) return undefined;
      return all;
    },
    timeoutMs,
  );
}

/** A put retried on retryable refusals (nothing proposed) until it succeeds or `timeoutMs` passes. */
export async function putEventually(page: Page, key: string, value: string, timeoutMs = 60_000): Promise<{ index: number }> {
  let last: Outcome<{ index: number }> | undefined;
  return waitFor(
    `put ${key}`,
    async () => {
      last = await tabPut(page, key, value);
      if (last.ok) return last.value;
      throw new Error(`${last.code}: ${last.message}`);
    },
    timeoutMs,
    200,
  );
}

/** A linearizable get retried until it answers. */
export async function getEventually(page: Page, key: string, timeoutMs = 60_000): Promise<string | null> {
  return waitFor(
    `get ${key}`,
    async () => {
      const r = await tabGet(page, key);
      if (r.ok) return { v: r.value };
      throw new Error(`${r.code}: ${r.message}`);
    },
    timeoutMs,
    200,
  ).then((x) => x.v);
}
