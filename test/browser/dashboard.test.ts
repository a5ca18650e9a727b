/**
 * The live dashboard (GET /dashboard) in real Chromium against three real member processes on
 * 127.0.0.1, with an API token and an admin token, as a user would run them. The tests run in
 * order on one cluster and one page: each starts from the state the previous one left.
 *
 * Screenshots of each state go to a temporary directory whose path the test prints.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, freePorts, sleep } from "../integration/process-cluster.ts";
import { launchChromium, openPage, type PageProblem } from "./chromium.ts";

const API_TOKEN = "dashboard-api-token";
const ADMIN_TOKEN = "dashboard-admin-token";
/** Generous: only to keep a broken page from hanging the suite. */
const WAIT_MS = 30_000;

let cluster: ProcessCluster;
let browser: Browser;
let page: Page;
let problems: PageProblem[];
let shots: string;
/** The member that served the page. */
const served = "n1";
/** The member the page adds (outside the ProcessCluster: it joins by itself once started). */
const added = "n4";
let addedUrl: string;
let addedProc: ChildProcess | undefined;
/** Members killed at some point: their URLs may log failed loads while they are down. */
const killed = new Set<string>();
/** Requests the tests expect to be refused (the admin call without the admin token). */
const refusedUrls = new Set<string>();
/** Transfers that failed for want of time and were clicked again (503 TRANSFER_FAILED). */
const retriedUrls = new Set<string>();

beforeAll(async () => {
  shots = mkdtempSync(join(tmpdir(), "meshraft-dashboard-"));
  console.log(`dashboard screenshots: ${shots}`);
  cluster = await ProcessCluster.start({ nodes: 3, extraArgs: () => ["--token", API_TOKEN, "--admin-token", ADMIN_TOKEN] });
  await cluster.waitForLeader(90_000); // a loaded machine starts three processes slowly
  addedUrl = `http://127.0.0.1:${(await freePorts(1))[0]}`;
  browser = await launchChromium();
  ({ page, problems } = await openPage(browser));
  // The API token only (in the fragment, which never reaches a server): admin calls must be refused.
  await page.goto(`${cluster.url(served)}/dashboard#token=${API_TOKEN}`);
}, 180_000);

afterAll(async () => {
  if (addedProc && addedProc.exitCode === null) {
    const exited = new Promise((resolve) => addedProc!.once("exit", resolve));
    addedProc.kill("SIGKILL");
    await exited;
  }
  await browser?.close();
  await cluster?.stop();
});

const ring = (p: Page) => p.locator("svg#ring [data-member]");
const inRing = (p: Page, id: string) => p.locator(`svg#ring [data-member="${id}"]`);

/** The ids the page draws with `role`, once it draws exactly `count` of them. */
async function waitForRole(role: string, count: number): Promise<string[]> {
  const nodes = page.locator(`svg#ring [data-role="${role}"]`);
  await expect.poll(() => nodes.count(), { timeout: WAIT_MS }).toBe(count);
  return nodes.evaluateAll((els) => els.map((e) => e.getAttribute("data-member")!));
}

async function leaderShown(): Promise<string> {
  const [id] = await waitForRole("leader", 1);
  return id;
}

/** The snapshot index the members table shows for `id`. */
async function snapshotIndexOf(id: string): Promise<number> {
  return Number(await page.locator(`#members tr[data-member="${id}"] td:nth-child(10)`).textContent());
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** The leader a majority of the live processes agree on. */
async function clusterLeader(): Promise<string> {
  return cluster.waitForLeader(WAIT_MS, cluster.ids.filter((id) => cluster.alive(id)));
}

describe("the dashboard against three member processes", () => {
  it("shows the three members and exactly one leader, the cluster's", async () => {
    await expect.poll(() => ring(page).count(), { timeout: WAIT_MS }).toBe(3);
    const leader = await clusterLeader();
    await expect.poll(() => leaderShown(), { timeout: WAIT_MS }).toBe(leader);
    await expect.poll(() => waitForRole("follower", 2), { timeout: WAIT_MS }).toHaveLength(2);
    for (const id of cluster.ids) {
      const label = await inRing(page, id).getAttribute("aria-label");
      expect(label).toMatch(new RegExp(`^${id}: (leader|follower), term \\d+, commit \\d+, voter$`));
    }
    // The leader's view of each follower is drawn as a table row.
    await expect.poll(() => page.locator("#progress tr").count(), { timeout: WAIT_MS }).toBe(2);
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: WAIT_MS }).toMatch(/3 of 3 voters up; can lose 1 more voter/);
    // Each member's log size on disk (its FileStorage segments), from its own stream.
    for (const id of cluster.ids) {
      const cell = page.locator(`#members tr[data-member="${id}"] td[data-log-bytes]`);
      await expect.poll(async () => Number(await cell.getAttribute("data-log-bytes")), { timeout: WAIT_MS }).toBeGreaterThan(0);
      expect(await cell.textContent()).toMatch(/^\d+(\.\d)? (B|KiB|MiB)$/);
    }
    await shot("1-three-members");
  });

  it("refuses the admin controls without the admin token", async () => {
    const leader = await clusterLeader();
    const target = cluster.ids.find((id) => id !== leader)!;
    refusedUrls.add(`${cluster.url(leader)}/admin/transfer-leader`);
    await page.locator(`#members button[data-action="transfer"][data-target="${target}"]`).click();
    const result = page.locator("#admin-result");
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("refused");
    expect(await result.textContent()).toMatch(/^refused \(401\): UNAUTHORIZED/);
    // Nothing changed: the same leader, in the cluster and on the page.
    expect(await clusterLeader()).toBe(leader);
    expect(await leaderShown()).toBe(leader);
    await shot("2-admin-refused");
  });

  it("refuses adding a member and taking a snapshot without the admin token", async () => {
    const leader = await clusterLeader();
    const result = page.locator("#admin-result");
    refusedUrls.add(`${cluster.url(leader)}/admin/snapshot`);
    await page.locator(`#members button[data-action="snapshot"][data-target="${leader}"]`).click();
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("refused");
    expect(await result.textContent()).toMatch(/^refused \(401\): UNAUTHORIZED/);
    await page.locator("#admin-result").evaluate((e) => e.removeAttribute("data-outcome"));
    refusedUrls.add(`${cluster.url(leader)}/admin/members`);
    await page.locator("#add-id").fill(added);
    await page.locator("#add-url").fill(addedUrl);
    await page.locator("#add-role").selectOption("learner");
    await page.locator('#add-member button[type=submit]').click();
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("refused");
    expect(await result.textContent()).toMatch(/^refused \(401\): UNAUTHORIZED/);
    expect(await snapshotIndexOf(leader)).toBe(0);
    await expect.poll(() => ring(page).count(), { timeout: WAIT_MS }).toBe(3);
  });

  it("transfers leadership from the page with the admin token", async () => {
    await page.locator("#admin-token").fill(ADMIN_TOKEN);
    await page.locator("#tokens button[type=submit]").click();
    const leader = await clusterLeader();
    // To the member that served the page, so a later test kills the leader and that member at once.
    const target = leader === served ? cluster.ids.find((id) => id !== served)! : served;
    const result = page.locator("#admin-result");
    // A transfer the target does not complete within an election timeout fails with
    // TRANSFER_FAILED (503, retry); on a loaded machine that happens. The user clicks again.
    for (let attempt = 1; ; attempt++) {
      await page.locator(`#members button[data-action="transfer"][data-target="${target}"]`).click();
      await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toMatch(/^(ok|refused)$/);
      if ((await result.getAttribute("data-outcome")) === "ok" || attempt === 3) break;
      expect(await result.textContent()).toMatch(/^refused \(503\): TRANSFER_FAILED/);
      retriedUrls.add(`${cluster.url(leader)}/admin/transfer-leader`);
    }
    expect(await result.getAttribute("data-outcome")).toBe("ok");
    expect(await result.textContent()).toContain(`"leader":"${target}"`);
    expect(await clusterLeader()).toBe(target);
    await expect.poll(() => leaderShown(), { timeout: WAIT_MS }).toBe(target);
    await shot("3-transferred");
  });

  it("after SIGKILL of the leader shows a new leader and the killed member unreachable, then back after a restart", async () => {
    const old = await clusterLeader();
    const marksBefore = await page.locator("#chart [data-leader-change]").count();
    killed.add(cluster.url(old));
    await cluster.kill(old);
    await expect.poll(() => inRing(page, old).getAttribute("data-role"), { timeout: WAIT_MS }).toBe("unreachable");
    const next = await clusterLeader();
    expect(next).not.toBe(old);
    await expect.poll(() => leaderShown(), { timeout: WAIT_MS }).toBe(next);
    expect(await inRing(page, old).getAttribute("aria-label")).toBe(`${old}: unreachable, voter`);
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: WAIT_MS }).toMatch(/2 of 3 voters up; can lose 0 more voters/);
    // The chart marks the change. (Which id the mark names depends on what the page saw in
    // between: under load an election may pass through another leader first.)
    await expect.poll(() => page.locator("#chart [data-leader-change]").count(), { timeout: WAIT_MS }).toBeGreaterThan(marksBefore);
    await shot("4-leader-killed");

    cluster.spawn(old);
    await expect.poll(() => inRing(page, old).getAttribute("data-role"), { timeout: WAIT_MS }).toBe("follower");
    expect(await leaderShown()).toBe(next);
    await shot("5-restarted");
  });

  it("keeps working when the member that served it is killed", async () => {
    // The page came from `served`; kill it (the leader or not) and check the page still follows
    // the cluster: the others' commit index, read from their own streams, moves with a write.
    killed.add(cluster.url(served));
    await cluster.kill(served);
    await expect.poll(() => inRing(page, served).getAttribute("data-role"), { timeout: WAIT_MS }).toBe("unreachable");
    const leader = await clusterLeader();
    await expect.poll(() => leaderShown(), { timeout: WAIT_MS }).toBe(leader);
    const commitShown = async (): Promise<number> => Number(await page.locator(`#members tr[data-member="${leader}"] td:nth-child(7)`).textContent());
    const before = await commitShown();
    const res = await fetch(`${cluster.url(leader)}/kv/seen-by-the-page`, { method: "PUT", body: "yes", headers: { Authorization: `Bearer ${API_TOKEN}` } });
    expect(res.status).toBe(200);
    const { index } = (await res.json()) as { index: number };
    expect(index).toBeGreaterThan(before);
    await expect.poll(() => commitShown(), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(index);
    // Commits per second, from the frames of the members still up: a burst of 20 writes shows as
    // a peak no election or transfer before made (each of those commits one entry).
    const peak = async (): Promise<number> => Number(await page.locator("#chart").getAttribute("data-peak-rate"));
    expect(await peak()).toBeLessThan(5);
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${cluster.url(leader)}/kv/burst-${i}`, { method: "PUT", body: "x", headers: { Authorization: `Bearer ${API_TOKEN}` } }),
      ),
    );
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(200));
    await expect.poll(() => peak(), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(5);
    // Writes and reads per second and their latency, from the members' own counters and
    // histograms over the page's last 5 s: a client keeps writing and reading meanwhile.
    const writes = page.locator("#load-writes");
    const reads = page.locator("#load-reads");
    let loading = true;
    const client = (async () => {
      const auth = { Authorization: `Bearer ${API_TOKEN}` };
      for (let i = 0; loading && i < 1000; i++) {
        await fetch(`${cluster.url(leader)}/kv/load`, { method: "PUT", body: String(i), headers: auth });
        expect((await fetch(`${cluster.url(leader)}/kv/load`, { headers: auth })).status).toBe(200);
        await sleep(50);
      }
    })();
    try {
      await expect.poll(async () => Number(await writes.getAttribute("data-rate")), { timeout: WAIT_MS }).toBeGreaterThan(0);
      await expect.poll(async () => Number(await reads.getAttribute("data-rate")), { timeout: WAIT_MS }).toBeGreaterThan(0);
      expect(Number(await writes.getAttribute("data-p99-ms"))).toBeGreaterThan(0);
      expect(Number(await reads.getAttribute("data-p50-ms"))).toBeGreaterThan(0);
      expect(await writes.textContent()).toMatch(/^writes \d+\.\d\/s, p50 <= [\d.]+ ms, p99 <= [\d.]+ ms$/);
      // The members' fsync p99 and event-loop delay p99, one series pair per member.
      const health = page.locator("#health-chart");
      await expect.poll(async () => Number(await health.getAttribute("data-points")), { timeout: WAIT_MS }).toBeGreaterThan(0);
      expect(await health.locator(".u-title").textContent()).toBe("fsync p99 and event-loop delay p99 (ms)");
    } finally {
      loading = false;
      await client;
    }
    await shot("6-serving-member-killed");
  });

  it("adds a member as a learner from the page, then promotes it (refused without the admin token)", async () => {
    const leaderNow = await clusterLeader();
    const result = page.locator("#admin-result");
    await page.locator("#add-id").fill(added);
    await page.locator("#add-url").fill(addedUrl);
    await page.locator("#add-role").selectOption("learner");
    await page.locator('#add-member button[type=submit]').click();
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("ok");
    expect(await result.textContent()).toMatch(new RegExp(`^done: .*"id":"${added}"`));
    await expect.poll(() => inRing(page, added).count(), { timeout: WAIT_MS }).toBe(1);
    expect(await page.locator(`#members tr[data-member="${added}"] td:nth-child(3)`).textContent()).toBe("learner");
    // The process joins as what the cluster already made it: a learner (its join is a retry).
    killed.add(addedUrl); // the page dials it before it listens
    const root = join(import.meta.dirname, "../..");
    addedProc = spawn(process.execPath, ["--import", "tsx", join(root, "adapters/node/cli.ts"),
      "start", "--id", added, "--listen", addedUrl.replace("http://", ""), "--data-dir", join(shots, added),
      "--join", cluster.url(leaderNow), "--learner", "--token", API_TOKEN, "--admin-token", ADMIN_TOKEN,
    ], { cwd: root, stdio: "ignore" });
    await expect.poll(() => inRing(page, added).getAttribute("data-role"), { timeout: WAIT_MS }).toBe("learner");
    await shot("8-learner-added");

    // Promote: refused without the admin token, done with it (once the learner has caught up).
    const leader = leaderNow;
    await page.locator("#admin-token").fill("");
    await page.locator("#tokens button[type=submit]").click();
    refusedUrls.add(`${cluster.url(leader)}/admin/members`);
    await page.locator(`#members button[data-action="promote"][data-target="${added}"]`).click();
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("refused");
    expect(await result.textContent()).toMatch(/^refused \(401\): UNAUTHORIZED/);
    await page.locator("#admin-token").fill(ADMIN_TOKEN);
    await page.locator("#tokens button[type=submit]").click();
    for (let attempt = 1; ; attempt++) {
      await page.locator("#admin-result").evaluate((e) => e.removeAttribute("data-outcome"));
      await page.locator(`#members button[data-action="promote"][data-target="${added}"]`).click();
      await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toMatch(/^(ok|refused)$/);
      if ((await result.getAttribute("data-outcome")) === "ok" || attempt === 5) break;
      // Not caught up yet (409 LEARNER_BEHIND), or the joint change still in progress: click again.
      expect(await result.textContent()).toMatch(/^refused \(409\): (LEARNER_BEHIND|CONF_CHANGE_IN_PROGRESS)/);
      retriedUrls.add(`${cluster.url(leader)}/admin/members`);
      await sleep(1000);
    }
    expect(await result.getAttribute("data-outcome")).toBe("ok");
    await expect.poll(() => page.locator(`#members tr[data-member="${added}"] td:nth-child(3)`).textContent(), { timeout: WAIT_MS }).toBe("voter");
    await expect.poll(() => inRing(page, added).getAttribute("data-role"), { timeout: WAIT_MS }).toBe("follower");
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: WAIT_MS }).toMatch(/3 of 4 voters up; can lose 0 more voters/);
    await shot("9-learner-promoted");
  });

  it("takes a snapshot of a member now from the page with the admin token", async () => {
    const leader = await clusterLeader();
    const before = (await cluster.status(leader))!.appliedIndex;
    const result = page.locator("#admin-result");
    await page.locator("#admin-result").evaluate((e) => e.removeAttribute("data-outcome"));
    await page.locator(`#members button[data-action="snapshot"][data-target="${leader}"]`).click();
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("ok");
    const { id, index } = JSON.parse((await result.textContent())!.replace(/^done: /, "")) as { id: string; index: number };
    expect(id).toBe(leader);
    expect(index).toBeGreaterThanOrEqual(before);
    await expect.poll(() => snapshotIndexOf(leader), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(index);
    await shot("10-snapshot-taken");
  });

  it("removes a member from the page with the admin token: the ring no longer draws it", async () => {
    // The dead member that served the page: the other two still make both majorities.
    page.once("dialog", (d) => void d.accept());
    await page.locator(`#members button[data-action="remove"][data-target="${served}"]`).click();
    const result = page.locator("#admin-result");
    await expect.poll(() => result.getAttribute("data-outcome"), { timeout: WAIT_MS }).toBe("ok");
    expect(await result.textContent()).toMatch(/^done: /);
    await expect.poll(() => ring(page).count(), { timeout: WAIT_MS }).toBe(3);
    expect(await inRing(page, served).count()).toBe(0);
    await expect.poll(() => page.locator("#summary").textContent(), { timeout: WAIT_MS }).toMatch(/3 of 3 voters up; can lose 1 more voter/);
    await shot("7-member-removed");
  });

  it("logged no console error but the failed loads of killed members and the refused admin call", () => {
    const unexpected = problems.filter((p) => {
      if (p.kind !== "console") return true;
      if (/^Failed to load resource: net::ERR_/.test(p.text) && [...killed].some((u) => p.url.startsWith(u))) return false;
      if (/status of 401/.test(p.text) && refusedUrls.has(p.url)) return false;
      if (/status of 503/.test(p.text) && retriedUrls.has(p.url)) return false;
      // The member the page added knows no other member's URL (the page's origin) until it has
      // the cluster's configuration: its first answers to the page carry no CORS header.
      if (/blocked by CORS policy/.test(p.text) && p.text.includes(`'${addedUrl}/dashboard/events'`)) return false;
      // A restarted member answers 503 while it starts, before its app exists.
      if (/status of 503/.test(p.text) && [...killed].some((u) => p.url === `${u}/dashboard/events`)) return false;
      return true;
    });
    expect(unexpected).toEqual([]);
  });
});
