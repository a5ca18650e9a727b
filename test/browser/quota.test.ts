/**
 * A member whose IndexedDB refuses writes, in real Chromium: three members in three pages of one
 * origin (IndexedDbStorage, BroadcastChannelTransport, RaftNode), t3's database in a Storage
 * Bucket with a small quota. Writes fill t3's bucket until Chromium refuses one: t3 stops with an
 * error that names the quota, and t1 and t2 keep electing, committing and reading.
 */
import { randomBytes } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, type PageProblem, recordProblems } from "./chromium.ts";
import { servePages, type ServedPages } from "./serve.ts";

const ids = ["t1", "t2", "t3"];
const QUOTA_BYTES = 256 * 1024;
/** Random text: Chromium compresses what it stores, so a repeated character would hardly count. */
const value = (): string => randomBytes(12 * 1024).toString("base64");
const VALUE_CHARS = 16 * 1024;
const WAIT_MS = 60_000;

type Status = { id: string; role: string; term: number; leader: string | null; commitIndex: number; stopped: boolean; failure: { code?: string; name: string; message: string } | null };
type Member = {
  ready(): Promise<boolean>;
  status(): Promise<Status>;
  put(key: string, value: string): Promise<number>;
  get(key: string): Promise<string | null>;
  local(key: string): string | null;
};

let served: ServedPages;
let browser: Browser;
let context: BrowserContext;
const pages = new Map<string, Page>();
const problems: PageProblem[] = [];

const status = (id: string): Promise<Status> => pages.get(id)!.evaluate(() => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.status());

/** The leader the running members of `live` agree on: one that says it leads, and every one of them names it. */
async function leader(live: string[]): Promise<string> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const all = (await Promise.all(live.map(status))).filter((s) => !s.stopped);
    const leaders = all.filter((s) => s.role === "leader" && !s.stopped);
    if (leaders.length === 1 && all.every((s) => s.leader === leaders[0].id)) return leaders[0].id;
    if (Date.now() > deadline) throw new Error(`no leader all of ${live.join(", ")} agree on: ${JSON.stringify(all)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A put on the current leader among `live`, retried (a new key each time is not needed: puts are idempotent here). */
async function put(live: string[], key: string, value: string): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const at = await leader(live);
    try {
      return await pages.get(at)!.evaluate(([k, v]) => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.put(k, v), [key, value] as const);
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

beforeAll(async () => {
  served = await servePages(["member"]);
  browser = await launchChromium();
  context = await browser.newContext();
  const cluster = `quota-${Date.now().toString(36)}`;
  for (const id of ids) {
    const page = await context.newPage();
    recordProblems(page, problems);
    const query: Record<string, string> = { cluster, id, members: ids.join(",") };
    if (id === "t3") query.quota = String(QUOTA_BYTES);
    await page.goto(served.url("member", query));
    await page.waitForFunction(() => "meshraftMember" in globalThis, null, { timeout: WAIT_MS });
    await page.evaluate(() => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.ready());
    pages.set(id, page);
  }
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
});

describe("a member whose IndexedDB refuses writes", () => {
  it("stops with an error naming the quota; the other two keep committing and reading", async () => {
    await leader(ids);
    // Fill t3's bucket: 16 KiB a write, at most four times its quota.
    let written = 0;
    for (; written < (4 * QUOTA_BYTES) / VALUE_CHARS; written++) {
      const t3Stopped = (await status("t3")).stopped;
      if (t3Stopped) break;
      await put(ids, `fill${written}`, value());
    }
    await expect.poll(() => status("t3").then((s) => s.stopped), { timeout: WAIT_MS }).toBe(true);
    const t3 = await status("t3");
    console.log(`t3 stopped after ${written} writes: ${t3.failure?.message}`);
    expect(t3.failure?.code).toBe("STORAGE_QUOTA_EXCEEDED");
    expect(t3.failure?.message).toMatch(/quota/);
    expect(t3.failure?.message).toMatch(/QuotaExceededError/);
    expect(t3.failure?.message).toContain(`meshraft:`);
    // The other two elect (t3 may have been the leader) and go on.
    const live = ["t1", "t2"];
    for (let i = 0; i < 20; i++) await put(live, `after${i}`, `v${i}`);
    const at = await leader(live);
    const other = live.find((id) => id !== at)!;
    for (let i = 0; i < 20; i++) {
      expect(await pages.get(at)!.evaluate((k) => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.get(k), `after${i}`)).toBe(`v${i}`);
    }
    await expect
      .poll(() => pages.get(other)!.evaluate(() => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.local("after19")), { timeout: WAIT_MS })
      .toBe("v19");
    expect((await status("t3")).stopped).toBe(true);
    // Every fill write the two acknowledged is still there.
    for (let i = 0; i < written; i++) {
      expect(await pages.get(at)!.evaluate((k) => (globalThis as unknown as { meshraftMember: Member }).meshraftMember.local(k)?.length ?? 0, `fill${i}`)).toBe(VALUE_CHARS);
    }
  }, 240_000);

  it("the pages logged no uncaught errors", () => {
    // t3's failure is reported through onError, not thrown; a console error from it is allowed.
    expect(problems.filter((p) => p.kind === "pageerror")).toEqual([]);
  });
});
