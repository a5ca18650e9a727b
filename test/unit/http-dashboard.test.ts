/**
 * The dashboard's routes over real HTTP (src/http/dashboard.ts): the event stream's frames, its
 * events, its cost when nobody watches, its token, the page, and the CORS a page served by one
 * member needs to read the others.
 */
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { encodeKvCommand } from "../../src/kv/kv.ts";
import { HistogramWindow, mountDashboardEvents, type DashboardEvent, type DashboardStatus } from "../../src/http/dashboard.ts";
import { realClock } from "../../src/clock.ts";
import { sampleEventLoopDelay } from "../../src/event-loop-delay.ts";
import { closeServer, startHttpCluster, waitFor, type HttpCluster } from "./http-harness.ts";

interface Frame {
  event: string;
  data: unknown;
}

/** Reads SSE frames from `url` until `until` says stop (or `ms` pass); then closes the stream. */
async function readFrames(url: string, until: (frames: Frame[]) => boolean, ms = 5_000, headers: Record<string, string> = {}): Promise<Frame[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const frames: Frame[] = [];
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (!until(frames)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
        const text = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const event = /^event: (.*)$/m.exec(text)?.[1] ?? "message";
        const data = /^data: (.*)$/m.exec(text)?.[1];
        if (data !== undefined) frames.push({ event, data: JSON.parse(data) });
      }
    }
    await reader.cancel();
  } catch (e) {
    if (!controller.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  return frames;
}

const statuses = (frames: Frame[]): DashboardStatus[] => frames.filter((f) => f.event === "status").map((f) => f.data as DashboardStatus);
const events = (frames: Frame[]): DashboardEvent[] => frames.filter((f) => f.event === "event").map((f) => f.data as DashboardEvent);

let cluster: HttpCluster | null = null;
let extraServer: ServerType | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
  if (extraServer) await closeServer(extraServer);
  extraServer = null;
});

describe("GET /dashboard/events", () => {
  it("sends the member's status at once and then every interval, with the leader's view of each follower", async () => {
    cluster = await startHttpCluster();
    const leader = await cluster.leader();
    const started = Date.now();
    const frames = await readFrames(`${leader.url}/dashboard/events`, (f) => statuses(f).length >= 3);
    const got = statuses(frames);
    expect(got.length).toBeGreaterThanOrEqual(3);
    // Three frames: the first at once, then two intervals of 400 ms (generous bound against hangs only).
    expect(Date.now() - started).toBeLessThan(5_000);
    const s = got[got.length - 1];
    expect(s).toMatchObject({ id: leader.id, url: leader.url, role: "leader", leader: leader.id, runtime: "node", joint: false, stopped: false });
    expect(s.term).toBe(leader.node.status().term);
    expect(s.commitIndex).toBeGreaterThanOrEqual(1);
    expect(s.members.map((m) => [m.id, m.role])).toEqual([
      ["n1", "voter"],
      ["n2", "voter"],
      ["n3", "voter"],
    ]);
    expect(s.members.find((m) => m.id === "n2")!.url).toBe(cluster.url("n2"));
    const others = ["n1", "n2", "n3"].filter((id) => id !== leader.id);
    expect(s.progress.map((p) => p.id).sort()).toEqual(others);
    for (const p of s.progress) {
      expect(p.state).toBe("replicate");
      expect(p.match).toBeLessThanOrEqual(s.lastIndex);
      expect(p.next).toBeGreaterThan(p.match);
      expect(p.lag).toBe(s.lastIndex - p.match);
      expect(p.inflight).toBeGreaterThanOrEqual(0);
      // Heartbeats every 30 ms: the leader heard from each follower recently.
      expect(p.lastContactMs).not.toBeNull();
      expect(p.lastContactMs!).toBeLessThan(2_000);
    }
  });

  it("carries the member's write and read totals and latency histograms (the page's rates and quantiles)", async () => {
    cluster = await startHttpCluster();
    const leader = await cluster.leader();
    for (let i = 0; i < 3; i++) expect((await fetch(`${leader.url}/kv/k${i}`, { method: "PUT", body: "v" })).status).toBe(200);
    expect((await fetch(`${leader.url}/kv/k0`)).status).toBe(200);
    expect((await fetch(`${leader.url}/kv/k1?stale`)).status).toBe(200);
    const [s] = statuses(await readFrames(`${leader.url}/dashboard/events`, (f) => statuses(f).length >= 1));
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    expect(s.load).toBeDefined();
    expect(s.load!.writes).toBe(3);
    expect(s.load!.reads).toBe(2);
    expect(sum(s.load!.writeSeconds.counts)).toBe(3);
    expect(s.load!.writeSeconds.counts).toHaveLength(s.load!.writeSeconds.le.length + 1);
    // Only the linearizable read waits for a read index.
    expect(sum(s.load!.readSeconds.counts)).toBe(1);
  });

  it("carries the member's fsync p99 and event-loop delay p99 once a write happened (null when unknown)", async () => {
    const loop = sampleEventLoopDelay(realClock, { intervalMs: 5, windowMs: 50 });
    try {
      cluster = await startHttpCluster({ instruments: true, app: { eventLoopDelay: loop } });
      const leader = await cluster.leader();
      expect((await fetch(`${leader.url}/kv/saved`, { method: "PUT", body: "v" })).status).toBe(200);
      await waitFor(() => loop.stats() !== null, "an event-loop delay sample");
      const [s] = statuses(await readFrames(`${leader.url}/dashboard/events`, (f) => statuses(f).length >= 1));
      // The write was saved (and timed) on the leader: a bucket bound in ms.
      expect(s.saveP99Ms).toBeGreaterThan(0);
      expect(s.saveP99Ms).toBeLessThanOrEqual(10_000);
      expect(typeof s.eventLoopP99Ms).toBe("number");
      expect(s.eventLoopP99Ms).toBeGreaterThanOrEqual(0);
    } finally {
      loop.stop();
    }
    // Without instruments or an event-loop source, both are unknown.
    await cluster.close();
    cluster = await startHttpCluster();
    const other = await cluster.leader();
    const [u] = statuses(await readFrames(`${other.url}/dashboard/events`, (f) => statuses(f).length >= 1));
    expect(u.saveP99Ms).toBeNull();
    expect(u.eventLoopP99Ms).toBeNull();
  });

  it("saveP99Ms covers the last window only: older saves drop out, none in the window is null", () => {
    const w = new HistogramWindow(1_000);
    const le = [0.001, 0.01, 0.1];
    // Since start: 10 saves under 1 ms; the first call has no older totals, so it covers them all.
    expect(w.p99Ms(0, { le, counts: [10, 0, 0, 0] })).toBe(1);
    // 1 s later, one slow save (<= 100 ms): the window holds only it.
    expect(w.p99Ms(1_000, { le, counts: [10, 0, 1, 0] })).toBe(100);
    // Nothing new for a whole window: unknown.
    expect(w.p99Ms(2_000, { le, counts: [10, 0, 1, 0] })).toBeNull();
    // Beyond the largest bound: the largest bound.
    expect(w.p99Ms(3_000, { le, counts: [10, 0, 1, 5] })).toBe(100);
  });

  it("a follower reports no progress, and the leader it follows", async () => {
    cluster = await startHttpCluster();
    const leader = await cluster.leader();
    const follower = await cluster.follower();
    const [s] = statuses(await readFrames(`${follower.url}/dashboard/events`, (f) => statuses(f).length >= 1));
    expect(s).toMatchObject({ id: follower.id, role: "follower", leader: leader.id, progress: [] });
  });

  it("pushes role and membership events as they happen", async () => {
    cluster = await startHttpCluster();
    const leader = await cluster.leader();
    const target = (await cluster.follower()).id;
    const reading = readFrames(`${cluster.url(target)}/dashboard/events`, (f) => events(f).some((e) => e.type === "role" && e.role === "leader"), 10_000);
    // Let the stream connect before the change.
    await new Promise((r) => setTimeout(r, 300));
    await leader.node.transferLeadership(target);
    const got = events(await reading);
    const role = got.find((e) => e.type === "role" && e.role === "leader");
    expect(role).toMatchObject({ type: "role", role: "leader", leader: target });
    expect(typeof role!.time).toBe("number");

    const onLeader = readFrames(`${cluster.url(target)}/dashboard/events`, (f) => events(f).some((e) => e.type === "membership" && e.leaving.length === 0), 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const removed = ["n1", "n2", "n3"].find((id) => id !== target)!;
    await cluster.member(target).node.removeMember(removed);
    const membership = events(await onLeader).find((e) => e.type === "membership" && e.leaving.length === 0);
    expect(membership).toMatchObject({ type: "membership", leaving: [] });
    expect((membership as { voters: string[] }).voters).not.toContain(removed);
  });

  it("runs no timer and no listener while nobody watches, and stops them when the last one leaves", async () => {
    cluster = await startHttpCluster();
    const leader = await cluster.leader();
    const app = new Hono();
    const hub = mountDashboardEvents(app, { node: leader.node, selfUrl: leader.url, urlOf: (id) => leader.node.urlOf(id), intervalMs: 50 });
    const url = await new Promise<string>((resolve) => {
      extraServer = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => resolve(`http://127.0.0.1:${info.port}`));
    });
    expect(hub.active).toBe(false);
    expect(hub.subscriberCount).toBe(0);

    // Two subscribers share the timer; it stops only when both have gone.
    const controllers = [new AbortController(), new AbortController()];
    const readers = await Promise.all(
      controllers.map(async (c) => {
        const res = await fetch(`${url}/dashboard/events`, { signal: c.signal });
        return res.body!.getReader();
      }),
    );
    await waitFor(() => hub.subscriberCount === 2, "two subscribers");
    expect(hub.active).toBe(true);
    // The timer runs: frames keep coming (the first at once, then every 50 ms).
    for (let i = 0; i < 3; i++) expect((await readers[0].read()).done).toBe(false);

    controllers[0].abort();
    await waitFor(() => hub.subscriberCount === 1, "one subscriber left");
    expect(hub.active).toBe(true);
    controllers[1].abort();
    await waitFor(() => hub.subscriberCount === 0, "no subscriber left");
    expect(hub.active).toBe(false);
  });
});

describe("a subscriber that stops reading", () => {
  it("is cut once 64 frames wait for it, so the member never buffers without limit", async () => {
    cluster = await startHttpCluster({ ids: ["n1"] });
    const leader = await cluster.leader();
    const app = new Hono();
    const hub = mountDashboardEvents(app, { node: leader.node, selfUrl: leader.url, urlOf: () => null, intervalMs: 10 });
    // In process, with nobody pulling the body: every write after the first waits.
    const res = await app.request("/dashboard/events");
    expect(res.status).toBe(200);
    await waitFor(() => hub.subscriberCount === 1, "the subscriber");
    // 64 frames at one per 10 ms: cut within a second or so (5 s only against hangs).
    await waitFor(() => hub.subscriberCount === 0, "the stalled subscriber cut", 5_000);
    expect(hub.active).toBe(false);
    // The response ends: the stalled page sees its stream close and reconnects.
    const text = await Promise.race([res.text(), new Promise<string>((_, reject) => setTimeout(() => reject(new Error("the stream did not end")), 5_000))]);
    expect(text.startsWith("event: status\n")).toBe(true);
  });
});

describe("the dashboard behind a token", () => {
  it("the stream needs the API token; the page does not", async () => {
    cluster = await startHttpCluster({ app: { apiToken: "api-secret", adminToken: "admin-secret" } });
    const leader = await cluster.leader();
    const refused = await fetch(`${leader.url}/dashboard/events`);
    expect(refused.status).toBe(401);
    expect((await refused.json()).error.code).toBe("UNAUTHORIZED");
    const wrong = await fetch(`${leader.url}/dashboard/events`, { headers: { Authorization: "Bearer admin-secret" } });
    expect(wrong.status).toBe(401);
    await wrong.body?.cancel();
    const [s] = statuses(await readFrames(`${leader.url}/dashboard/events`, (f) => f.length >= 1, 5_000, { Authorization: "Bearer api-secret" }));
    expect(s.id).toBe(leader.id);

    const page = await fetch(`${leader.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain("/dashboard/events");
    expect(html).toContain("data-member");
  });

  it("answers the preflights of another member's page, and of no other origin", async () => {
    cluster = await startHttpCluster({ app: { apiToken: "api-secret", adminToken: "admin-secret" } });
    await cluster.leader();
    const preflight = (path: string, origin: string, method: string): Promise<Response> =>
      fetch(`${cluster!.url("n1")}${path}`, {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "authorization,content-type" },
      });
    for (const [path, method] of [
      ["/dashboard/events", "GET"],
      ["/admin/transfer-leader", "POST"],
      ["/admin/members/n3", "DELETE"],
    ]) {
      const ok = await preflight(path, cluster.url("n2"), method);
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe(cluster.url("n2"));
      expect(ok.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
      const stranger = await preflight(path, "http://evil.example", method);
      expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
    }
  });
});

describe("GET /metrics for dashboards and operators", () => {
  const sample = async (url: string, name: string): Promise<number> => {
    const body = await (await fetch(`${url}/metrics`)).text();
    const line = body.split("\n").find((l) => l.startsWith(`${name} `));
    if (!line) throw new Error(`no sample ${name} in:\n${body}`);
    return Number(line.slice(name.length + 1));
  };

  it("has_leader, leader changes seen, snapshots taken and the snapshot index", async () => {
    cluster = await startHttpCluster({ node: { snapshotEveryEntries: 5, snapshotMarginEntries: 0 } });
    const leader = await cluster.leader();
    const follower = await cluster.follower();
    expect(await sample(follower.url, "meshraft_has_leader")).toBe(1);
    const seen = await sample(follower.url, "meshraft_leader_changes_seen_total");
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(await sample(leader.url, 'meshraft_snapshots_total{kind="taken"}')).toBe(0);
    expect(await sample(leader.url, "meshraft_snapshot_index")).toBe(0);

    for (let i = 0; i < 6; i++) await leader.node.propose(encodeKvCommand({ op: "put", key: `k${i}`, value: new Uint8Array([i]) }));
    await waitFor(() => leader.node.lastSnapshotIndex > 0, "a snapshot on the leader");
    expect(await sample(leader.url, 'meshraft_snapshots_total{kind="taken"}')).toBeGreaterThanOrEqual(1);
    expect(await sample(leader.url, "meshraft_snapshot_index")).toBe(leader.node.lastSnapshotIndex);

    await leader.node.transferLeadership(follower.id);
    await waitFor(() => follower.node.isLeader, "the transfer");
    expect(await sample(follower.url, "meshraft_leader_changes_seen_total")).toBe(seen + 1);
  });
});
