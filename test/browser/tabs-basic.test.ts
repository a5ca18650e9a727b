/**
 * The tab cluster in real Chromium, as a user runs it: the example of examples/browser-tabs
 * (bundled with esbuild, served from http://127.0.0.1), three pages of one browser context
 * (one origin: shared Web Locks, BroadcastChannel and IndexedDB). They form a cluster with one
 * leader and one id each; every page writes through `globalThis.meshraftTabs`, and every page reads
 * every write back. A fourth page holds no id and is a client whose requests its Worker relays.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StaticServer } from "../../scripts/static-server.ts";
import { serveTabsExample } from "../../examples/browser-tabs/serve.ts";
import { launchChromium, type PageProblem } from "./chromium.ts";

/** Generous: only to keep a broken page from hanging the suite. */
const WAIT_MS = 45_000;

let server: StaticServer;
let browser: Browser;
let context: BrowserContext;
const problems: PageProblem[] = [];
const cluster = `basic-${Date.now().toString(36)}`;

beforeAll(async () => {
  server = await serveTabsExample();
  browser = await launchChromium();
  context = await browser.newContext();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(): Promise<Page> {
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push({ kind: "console", text: m.text(), url: m.location().url });
  });
  page.on("pageerror", (e) => problems.push({ kind: "pageerror", text: `${e.name}: ${e.message}`, url: "" }));
  await page.goto(`${server.url}?cluster=${cluster}`);
  await page.waitForFunction(() => globalThis.meshraftTabs !== undefined, null, { timeout: WAIT_MS });
  return page;
}

interface Status {
  tab: string;
  ids: string[];
  leader: string | null;
  persistent: boolean;
  members: { id: string; role: string; term: number; commitIndex: number; appliedIndex: number }[];
}
const status = (page: Page): Promise<Status> => page.evaluate(() => globalThis.meshraftTabs!.status()) as Promise<Status>;

describe("a tab cluster in Chromium", () => {
  const pages: Page[] = [];

  it("the first page runs every id and elects itself a leader", async () => {
    pages.push(await open());
    await expect.poll(async () => (await status(pages[0])).leader, { timeout: WAIT_MS }).not.toBeNull();
    const s = await status(pages[0]);
    expect(s.ids).toEqual(["t1", "t2", "t3"]);
    expect(s.members.map((m) => m.id)).toEqual(["t1", "t2", "t3"]);
    expect(typeof s.persistent).toBe("boolean");
    // The page draws it too.
    await expect.poll(() => pages[0].locator("#ids").textContent(), { timeout: WAIT_MS }).toBe("t1, t2, t3");
  });

  it("three pages run one id each and agree on one leader", async () => {
    pages.push(await open(), await open());
    await expect
      .poll(async () => (await Promise.all(pages.map(status))).map((s) => s.ids.length), { timeout: WAIT_MS })
      .toEqual([1, 1, 1]);
    const all = await Promise.all(pages.map(status));
    expect(all.flatMap((s) => s.ids).sort()).toEqual(["t1", "t2", "t3"]);
    await expect
      .poll(
        async () => {
          const st = await Promise.all(pages.map(status));
          const leaders = new Set(st.map((s) => s.leader));
          const roles = st[0].members.filter((m) => m.role === "leader").length;
          return leaders.size === 1 && !leaders.has(null) && roles === 1;
        },
        { timeout: WAIT_MS },
      )
      .toBe(true);
  });

  it("writes from every page are read back on every page", async () => {
    for (const [i, page] of pages.entries()) {
      const res = await page.evaluate((n) => globalThis.meshraftTabs!.put(`key-${n}`, `from page ${n}`), i);
      expect(res.index).toBeGreaterThan(0);
    }
    for (const page of pages) {
      const got = await page.evaluate(() => Promise.all([0, 1, 2].map((n) => globalThis.meshraftTabs!.get(`key-${n}`))));
      expect(got).toEqual(["from page 0", "from page 1", "from page 2"]);
    }
    const cas = await pages[1].evaluate(async () => {
      const t = globalThis.meshraftTabs!;
      return [await t.cas("key-0", "wrong", "x"), await t.cas("key-0", "from page 0", "swapped"), await t.get("key-0"), await t.get("absent")];
    });
    expect(cas).toEqual([{ ok: false }, { ok: true }, "swapped", null]);
  });

  it("a fourth page runs no id and its writes and reads work through the leader", async () => {
    const client = await open();
    pages.push(client);
    const s = await status(client);
    expect(s.ids).toEqual([]);
    await client.evaluate(() => globalThis.meshraftTabs!.put("from-client", "relayed"));
    expect(await pages[0].evaluate(() => globalThis.meshraftTabs!.get("from-client"))).toBe("relayed");
    expect(await client.evaluate(() => globalThis.meshraftTabs!.get("key-1"))).toBe("from page 1");
  });

  it("a refused call rejects with the HTTP API's code", async () => {
    const code = await pages[0].evaluate(() => globalThis.meshraftTabs!.put("k".repeat(2000), "v").then(() => "resolved", (e: Error & { code?: string }) => e.code));
    expect(code).toBe("KEY_TOO_LARGE");
  });

  it("no page logged an error", () => {
    expect(problems).toEqual([]);
  });
});
