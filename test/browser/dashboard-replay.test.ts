/**
 * The replay page in real Chromium, opened from a file:// URL with every other request refused:
 * `npm run sim -- --seed N --html run.html` as a user runs it, then play, step and seek; and a
 * recording with a linearizability violation, highlighted on the timeline.
 *
 * Screenshots go to a temporary directory whose path the test prints.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayHtml, type DashboardRecording } from "../../src/http/dashboard-replay.ts";
import { launchChromium, openPage, type PageProblem } from "./chromium.ts";

const root = join(import.meta.dirname, "../..");
const SEED = 3;
const WAIT_MS = 30_000;

let dir: string;
let browser: Browser;
/** Requests to anything but a file:// URL: there must be none. */
const network: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshraft-replay-"));
  console.log(`replay pages and screenshots: ${dir}`);
  // The README's command, writing into the test's directory.
  expect(readFileSync(join(root, "README.md"), "utf8")).toContain(`npm run sim -- --seed ${SEED} --quiet --html run.html`);
  execFileSync("npm", ["run", "sim", "--", "--seed", String(SEED), "--quiet", "--html", join(dir, "run.html")], { cwd: root, stdio: "pipe", timeout: 300_000 });
  browser = await launchChromium();
}, 360_000);

afterAll(async () => {
  await browser?.close();
});

async function open(file: string): Promise<{ page: Page; problems: PageProblem[] }> {
  const opened = await openPage(browser);
  await opened.page.context().route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    network.push(url);
    return route.abort();
  });
  await opened.page.goto(pathToFileURL(file).href);
  return opened;
}

const time = async (page: Page): Promise<number> => Number(await page.locator("#replay-time").getAttribute("data-t"));

describe("the replay page of a simulator run", () => {
  let page: Page;
  let problems: PageProblem[];

  it("loads from a file with no network and draws the run's members and its client operations", async () => {
    ({ page, problems } = await open(join(dir, "run.html")));
    await expect.poll(() => page.locator("#replay").isVisible(), { timeout: WAIT_MS }).toBe(true);
    expect(await page.locator("#replay-title").textContent()).toBe(`npm run sim -- --seed ${SEED}`);
    const rec = (await page.evaluate(() => (window as unknown as { MESHRAFT_REPLAY: DashboardRecording }).MESHRAFT_REPLAY)) as DashboardRecording;
    expect(rec.source).toBe("simulator");
    // One bar per client operation, in one lane per client, with its outcome.
    expect(rec.operations.length).toBeGreaterThan(10);
    expect(await page.locator("#timeline [data-op]").count()).toBe(rec.operations.length);
    const outcomes = await page.locator("#timeline [data-op]").evaluateAll((els) => els.map((e) => e.getAttribute("data-outcome")));
    expect(outcomes).toEqual(rec.operations.map((o) => o.outcome));
    // Crashes and partitions of the fault schedule are shaded.
    expect(await page.locator("#timeline [data-fault]").count()).toBe(rec.faults.length);
    expect(rec.faults.length).toBeGreaterThan(0);
    expect(await page.locator("svg#ring [data-member]").count()).toBe(3);
    await page.screenshot({ path: join(dir, "1-start.png"), fullPage: true });
  });

  it("seeks: at the time of a recorded leader the ring draws that one leader", async () => {
    const rec = (await page.evaluate(() => (window as unknown as { MESHRAFT_REPLAY: DashboardRecording }).MESHRAFT_REPLAY)) as DashboardRecording;
    // The first leader's term, some time after it took office (its followers know it by then).
    const first = rec.frames.find((f) => f.kind === "event" && (f.data as { role?: string }).role === "leader")!;
    const at = first.t + 30;
    await page.locator("#replay-slider").evaluate((el: HTMLInputElement, t) => {
      el.value = String(t);
      el.dispatchEvent(new Event("input"));
    }, at);
    expect(await time(page)).toBe(at);
    await expect.poll(() => page.locator(`svg#ring [data-role="leader"]`).getAttribute("data-member"), { timeout: WAIT_MS }).toBe(first.member);
    expect(await page.locator("#leader").textContent()).toBe(first.member);
    await page.screenshot({ path: join(dir, "2-seeked.png"), fullPage: true });
  });

  it("steps to the next event, and plays forward until paused", async () => {
    const t0 = await time(page);
    const eventsBefore = await page.locator("#events li").count();
    await page.locator("#replay-step").click();
    const t1 = await time(page);
    expect(t1).toBeGreaterThan(t0);
    expect(await page.locator("#events li").count()).toBeGreaterThan(eventsBefore);

    await page.locator("#replay-speed").selectOption("1");
    await page.locator("#replay-play").click();
    expect(await page.locator("#replay-play").getAttribute("aria-pressed")).toBe("true");
    await expect.poll(() => time(page), { timeout: WAIT_MS }).toBeGreaterThan(t1 + 200);
    await page.locator("#replay-play").click();
    const paused = await time(page);
    await new Promise((r) => setTimeout(r, 500));
    expect(await time(page)).toBe(paused);
    await page.screenshot({ path: join(dir, "3-played.png"), fullPage: true });
  });

  it("logged no console error and made no request beyond the file", () => {
    expect(problems).toEqual([]);
    expect(network).toEqual([]);
  });
});

describe("a recording with a linearizability violation", () => {
  it("is highlighted: a banner, a marker on the timeline, and the operations on the key", async () => {
    const status = (id: string, t: number) => ({
      id, url: "", runtime: "simulator", role: id === "n1" ? "leader" : "follower", term: 1, leader: "n1", commitIndex: 3, appliedIndex: 3, lastIndex: 3, snapshotIndex: 0,
      members: ["n1", "n2", "n3"].map((m) => ({ id: m, url: null, role: "voter" as const })), joint: false, progress: [], stopped: false, time: t,
    });
    const rec: DashboardRecording = {
      version: 1, source: "simulator", title: "a stale read", start: 0, end: 100, linkUnit: "messages",
      frames: [0, 50, 100].flatMap((t) => ["n1", "n2", "n3"].map((id) => ({ t, member: id, kind: "status" as const, data: status(id, t) as never }))),
      operations: [
        { client: "c0", label: "put x=1", key: "x", call: 10, return: 20, outcome: "ok" },
        { client: "c1", label: 'get x -> null', key: "x", call: 30, return: 40, outcome: "ok" },
        { client: "c2", label: "put y=2", key: "y", call: 15, return: null, outcome: "unknown" },
      ],
      faults: [{ start: 5, end: 60, what: "partition n1 | n2,n3" }],
      violation: { t: null, message: "linearizability: key x: no order explains get x -> null", key: "x" },
    };
    const file = join(dir, "violation.html");
    writeFileSync(file, replayHtml(rec));
    const { page, problems } = await open(file);
    await expect.poll(() => page.locator("#violation").isVisible(), { timeout: WAIT_MS }).toBe(true);
    expect(await page.locator("#violation").textContent()).toBe("violation: linearizability: key x: no order explains get x -> null");
    expect(await page.locator(`#timeline [data-violation="marker"]`).count()).toBe(1);
    const flagged = await page.locator(`#timeline [data-violation="true"]`).evaluateAll((els) => els.map((e) => e.getAttribute("data-op")));
    expect(flagged).toEqual(["0", "1"]);
    expect(await page.locator(`#timeline [data-op="2"]`).getAttribute("data-outcome")).toBe("unknown");
    await page.screenshot({ path: join(dir, "4-violation.png"), fullPage: true });
    expect(problems).toEqual([]);
    expect(network).toEqual([]);
  });
});
