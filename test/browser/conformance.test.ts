/**
 * The storage and transport conformance suites in real Chromium: IndexedDbStorage on the page's
 * IndexedDB, BroadcastChannelTransport on the page's BroadcastChannel, in a page served from
 * http://127.0.0.1. Each case runs in the page and is reported here as a test case of its own.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, openPage, type PageProblem } from "./chromium.ts";
import { registerCases } from "./pages/conformance-cases.ts";
import { servePages, type ServedPages } from "./serve.ts";

/** The names only: the bodies run in the page. */
const names = [
  ...registerCases(() => {
    throw new Error("conformance cases run in Chromium, not in vitest");
  }).keys(),
];

let pages: ServedPages;
let browser: Browser;
let page: Page;
let problems: PageProblem[];

type Handle = {
  names(): string[];
  run(name: string): Promise<void>;
  storageTransactions(): Promise<{ database: string; mode: string; durability: string }[]>;
};

beforeAll(async () => {
  pages = await servePages(["conformance"]);
  browser = await launchChromium();
  ({ page, problems } = await openPage(browser));
  await page.goto(pages.url("conformance"));
  await page.waitForFunction(() => "meshraftConformance" in globalThis, null, { timeout: 60_000 });
  // The page registered the same cases as this file did.
  expect(await page.evaluate(() => (globalThis as unknown as { meshraftConformance: Handle }).meshraftConformance.names())).toEqual(names);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await pages?.close();
});

describe("conformance in Chromium", () => {
  for (const name of names) {
    it(name, async () => {
      await page.evaluate((n) => (globalThis as unknown as { meshraftConformance: Handle }).meshraftConformance.run(n), name);
    }, 120_000);
  }

  it("IndexedDbStorage opens every write transaction with strict durability, as Chromium reports it", async () => {
    const txs = await page.evaluate(() => (globalThis as unknown as { meshraftConformance: Handle }).meshraftConformance.storageTransactions());
    const writes = txs.filter((t) => t.mode === "readwrite");
    // Two saves and a compaction: three write transactions at least.
    expect(writes.length).toBeGreaterThanOrEqual(3);
    expect(writes.map((t) => t.durability)).toEqual(writes.map(() => "strict"));
    expect(txs.map((t) => t.durability)).toEqual(txs.map(() => "strict"));
  });

  it("the page logged no errors", () => {
    expect(problems).toEqual([]);
  });
});
