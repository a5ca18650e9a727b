/**
 * A joint configuration in the dashboard's ring, in real Chromium: a recording (the frames the
 * page reads from members' streams) of a cluster moving from voters n1,n2,n3 to n1,n2,n4 is
 * replayed from a file; while joint the page draws two rings, the old voters' and the new
 * voters', and each member on the side it belongs to. Once the change is done: one ring again.
 *
 * Screenshots go to a temporary directory whose path the test prints.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DashboardStatus } from "../../src/http/dashboard.ts";
import { replayHtml, type DashboardRecording } from "../../src/http/dashboard-replay.ts";
import { launchChromium, openPage, type PageProblem } from "./chromium.ts";

const WAIT_MS = 30_000;
let dir: string;
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshraft-joint-"));
  console.log(`joint configuration screenshots: ${dir}`);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

/** A member's status: joint (old n1,n2,n3; new n1,n2,n4) or not (n1,n2,n4). */
function status(id: string, t: number, joint: boolean): DashboardStatus {
  const members: DashboardStatus["members"] = [
    { id: "n1", url: null, role: "voter" },
    { id: "n2", url: null, role: "voter" },
    { id: "n4", url: null, role: "voter" },
  ];
  if (joint) members.push({ id: "n3", url: null, role: "leaving" });
  members.push({ id: "n5", url: null, role: "learner" });
  return {
    id, url: "", runtime: "simulator", role: id === "n1" ? "leader" : "follower", term: 2, leader: "n1",
    commitIndex: 9, appliedIndex: 9, lastIndex: 9, snapshotIndex: 0, members, joint,
    ...(joint ? { outgoing: ["n1", "n2", "n3"] } : {}),
    progress: [], stopped: false, time: t,
  };
}

async function open(rec: DashboardRecording, name: string): Promise<{ page: Page; problems: PageProblem[] }> {
  const file = join(dir, name);
  writeFileSync(file, replayHtml(rec));
  const opened = await openPage(browser);
  await opened.page.goto(pathToFileURL(file).href);
  return opened;
}

const recording = (joint: boolean): DashboardRecording => ({
  version: 1, source: "live", title: joint ? "joint" : "not joint", start: 0, end: 100, linkUnit: "bytes",
  frames: [0, 50, 100].flatMap((t) => ["n1", "n2", "n3", "n4", "n5"].map((id) => ({ t, member: id, kind: "status" as const, data: status(id, t, joint) }))),
  operations: [], faults: [], violation: null,
});

const ringMembers = async (page: Page, k: string): Promise<string | null> => page.locator(`svg#ring [data-ring="${k}"]`).getAttribute("aria-label");
const side = async (page: Page, id: string): Promise<string | null> => page.locator(`svg#ring [data-member="${id}"]`).getAttribute("data-joint");

describe("a joint configuration", () => {
  it("is drawn as two rings, the old voters' and the new voters', with each member on its side", async () => {
    const { page, problems } = await open(recording(true), "joint.html");
    await expect.poll(() => page.locator("svg#ring [data-member]").count(), { timeout: WAIT_MS }).toBe(5);
    expect(await page.locator("svg#ring [data-ring]").count()).toBe(2);
    expect(await ringMembers(page, "old")).toBe("old configuration: n1, n2, n3");
    expect(await ringMembers(page, "new")).toBe("new configuration: n1, n2, n4");
    expect(await side(page, "n1")).toBe("both");
    expect(await side(page, "n3")).toBe("old");
    expect(await side(page, "n4")).toBe("new");
    expect(await side(page, "n5")).toBe("learner");
    // Old-only members are drawn left of the shared ones, new-only right of them.
    const x = async (id: string): Promise<number> => (await page.locator(`svg#ring [data-member="${id}"] circle`).boundingBox())!.x;
    expect(await x("n3")).toBeLessThan(await x("n1"));
    expect(await x("n4")).toBeGreaterThan(await x("n1"));
    // A majority of each configuration: 3 of 3 up in both, so each can lose 1.
    expect(await page.locator("#summary").textContent()).toMatch(/can lose 1 more voter; joint configuration/);
    await page.screenshot({ path: join(dir, "joint.png"), fullPage: true });
    expect(problems).toEqual([]);
  });

  it("once the change is done, one ring again", async () => {
    const { page, problems } = await open(recording(false), "single.html");
    await expect.poll(() => page.locator("svg#ring [data-member]").count(), { timeout: WAIT_MS }).toBe(4);
    expect(await page.locator("svg#ring [data-ring]").count()).toBe(0);
    expect(await page.locator("svg#ring [data-joint]").count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
