/**
 * A tab cluster in real Chromium (pages/tabs.ts: a TabCluster in each page's dedicated Worker, the
 * page handle `meshraftTabs`), through its life: three pages share the ids, the leader's page
 * closes, one page runs everything, every page reloads, the browser restarts on its profile. The
 * cases run in order on one cluster; each starts from the state the previous one left, and every
 * acknowledged write must still read back at the end of each.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { tabRig } from "./tab-rig.ts";
import { getEventually, openTab, putEventually, tabStatus, waitForSpread } from "./tabs.ts";

const cluster = `failover-${Date.now().toString(36)}`;
const ALL_IDS = ["t1", "t2", "t3"];
/** Served pages and Chromium on a profile on disk (IndexedDB on disk with strict durability, not in memory). */
const rig = tabRig();
let pages: Page[] = [];
/** Every acknowledged write: key -> value. */
const written = new Map<string, string>();

async function write(page: Page, key: string, value: string): Promise<void> {
  await putEventually(page, key, value);
  written.set(key, value);
}

/** Every acknowledged write reads back (linearizably) through `page`. */
async function expectAllWritten(page: Page): Promise<void> {
  for (const [key, value] of written) expect(await getEventually(page, key), key).toBe(value);
}

const oneEach = (statuses: { ids: string[] }[]): boolean => statuses.every((s) => s.ids.length === 1);


describe("a three-page tab cluster in Chromium", () => {
  it("three pages form a cluster with one leader, one id each", async () => {
    for (let i = 0; i < 3; i++) pages.push(await openTab(rig.profile.context, rig.served, cluster, rig.problems));
    const statuses = await waitForSpread(pages, oneEach);
    expect(statuses.flatMap((s) => s.ids).sort()).toEqual(ALL_IDS);
    expect(statuses.filter((s) => s.members.find((m) => m.id === s.ids[0])?.role === "leader")).toHaveLength(1);
  }, 120_000);

  it("writes from every page commit and read back from every page", async () => {
    for (const [i, page] of pages.entries()) {
      for (let j = 0; j < 5; j++) await write(page, `page${i}-k${j}`, `v${i}.${j}`);
    }
    for (const page of pages) await expectAllWritten(page);
  }, 180_000);

  it("the leader's page closes: another page takes its id over and writes continue", async () => {
    const before = await waitForSpread(pages, oneEach);
    const leader = before[0].leader!;
    const at = before.findIndex((s) => s.ids.includes(leader));
    await pages[at].close();
    pages = pages.filter((_, i) => i !== at);
    const after = await waitForSpread(pages);
    // The closed page's id runs again, in one of the two pages left.
    expect(after.flatMap((s) => s.ids).sort()).toEqual(ALL_IDS);
    expect(after.some((s) => s.ids.includes(leader))).toBe(true);
    for (const [i, page] of pages.entries()) {
      for (let j = 0; j < 3; j++) await write(page, `after-leader-${i}-k${j}`, `w${i}.${j}`);
    }
    for (const page of pages) await expectAllWritten(page);
  }, 180_000);

  it("one page left runs every id and still writes", async () => {
    await pages[1].close();
    pages = [pages[0]];
    const [only] = await waitForSpread(pages);
    expect(only.ids.sort()).toEqual(ALL_IDS);
    for (let j = 0; j < 5; j++) await write(pages[0], `alone-k${j}`, `a${j}`);
    await expectAllWritten(pages[0]);
  }, 180_000);

  it("three pages again, every one reloaded at once: the data is there", async () => {
    for (let i = 0; i < 2; i++) pages.push(await openTab(rig.profile.context, rig.served, cluster, rig.problems));
    await waitForSpread(pages, oneEach);
    await Promise.all(pages.map((p) => p.reload()));
    await Promise.all(pages.map((p) => p.waitForFunction(() => "meshraftTabs" in globalThis, null, { timeout: 60_000 })));
    const statuses = await waitForSpread(pages);
    expect(statuses.flatMap((s) => s.ids).sort()).toEqual(ALL_IDS);
    for (const page of pages) await expectAllWritten(page);
    await write(pages[2], "after-reload", "r");
    await expectAllWritten(pages[0]);
  }, 240_000);

  it("the browser closes and starts again on the same profile: the data is there", async () => {
    pages = [];
    await rig.profile.restart();
    pages.push(await openTab(rig.profile.context, rig.served, cluster, rig.problems));
    const [only] = await waitForSpread(pages);
    expect(only.ids.sort()).toEqual(ALL_IDS);
    await expectAllWritten(pages[0]);
    await write(pages[0], "after-restart", "s");
    expect((await tabStatus(pages[0])).leader).not.toBeNull();
  }, 240_000);

  it("no page threw an uncaught error", () => {
    expect(rig.problems.filter((p) => p.kind === "pageerror")).toEqual([]);
  });
});
