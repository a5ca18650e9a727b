/**
 * Who runs which id, in real Chromium: pages whose tab clusters start at the same instant (their
 * Workers wait on one BroadcastChannel message) never run one id at once, and pages beyond the
 * number of ids are clients whose writes and reads work. Each page's Worker records when it ran
 * which id (pages/tabs-worker.ts); intervals of one id from two pages must never overlap.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, type PageProblem } from "./chromium.ts";
import { servePages, type ServedPages } from "./serve.ts";
import { getEventually, heldIntervals, openTabsAtOnce, overlappingRuns, putEventually, TAB_PAGES, tabStatus, waitForSpread } from "./tabs.ts";

const ROUNDS = 5;
let served: ServedPages;
let browser: Browser;
const problems: PageProblem[] = [];

beforeAll(async () => {
  served = await servePages(TAB_PAGES);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
});

/** A context of its own per case: its pages' Workers die with it. */
async function withContext(body: (context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext();
  try {
    await body(context);
  } finally {
    await context.close();
  }
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("tab ids in Chromium", () => {
  it(`two pages started at the same instant never run the same id (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      await withContext(async (context) => {
        const cluster = `same-instant-${Date.now().toString(36)}-${round}`;
        const pages = await openTabsAtOnce(context, served, cluster, 2, problems);
        // The ids spread: both pages run members (2 + 1), every id exactly once.
        const statuses = await waitForSpread(pages, (all) => all.every((s) => s.ids.length >= 1));
        expect(statuses.map((s) => s.ids.length).sort()).toEqual([1, 2]);
        await settle(500);
        const runs = await Promise.all(pages.map(heldIntervals));
        expect(overlappingRuns(runs)).toEqual([]);
        expect(new Set(runs.flat().map((r) => r.id))).toEqual(new Set(["t1", "t2", "t3"]));
      });
    }
  }, 600_000);

  it("five pages started at once for three ids: three run one each, two are clients whose writes and reads work", async () => {
    await withContext(async (context) => {
      const cluster = `more-pages-${Date.now().toString(36)}`;
      const pages = await openTabsAtOnce(context, served, cluster, 5, problems);
      const statuses = await waitForSpread(pages, (all) => all.filter((s) => s.ids.length === 1).length === 3);
      const clients = pages.filter((_, i) => statuses[i].ids.length === 0);
      const members = pages.filter((_, i) => statuses[i].ids.length === 1);
      expect(clients).toHaveLength(2);
      for (const [i, page] of clients.entries()) {
        for (let j = 0; j < 5; j++) await putEventually(page, `client${i}-k${j}`, `c${i}.${j}`);
      }
      // A client's write reads back on every page, member or client.
      for (const page of [...clients, ...members]) {
        for (let i = 0; i < clients.length; i++) expect(await getEventually(page, `client${i}-k4`)).toBe(`c${i}.4`);
      }
      // A write from a member page reads back on the clients.
      await putEventually(members[0], "from-member", "m");
      for (const page of clients) expect(await getEventually(page, "from-member")).toBe("m");
      for (const page of clients) expect((await tabStatus(page)).ids).toEqual([]);
      const runs = await Promise.all(pages.map(heldIntervals));
      expect(overlappingRuns(runs)).toEqual([]);
    });
  }, 300_000);

  it("no page threw an uncaught error", () => {
    expect(problems.filter((p) => p.kind === "pageerror")).toEqual([]);
  });
});
