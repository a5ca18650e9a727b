/**
 * Requests per second per client address (issue 15): a client over its rate gets 429 RATE_LIMITED
 * with Retry-After before any work, while another client keeps being served. The bucket itself on
 * a hand-driven clock; the HTTP behaviour on real HTTP in front of a real cluster.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MeshraftClient } from "../../src/client/index.ts";
import { RateLimiter } from "../../src/http/rate-limit.ts";
import { type HttpCluster, startHttpCluster } from "./http-harness.ts";

describe("RateLimiter", () => {
  it("allows a burst of twice the rate, then the rate; each client has its own bucket", () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 10 }, { now: () => now });
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (limiter.take("a")) allowed++;
    expect(allowed).toBe(20);
    expect(limiter.take("b")).toBe(true);
    now += 500; // half a second: 5 more for a
    allowed = 0;
    for (let i = 0; i < 100; i++) if (limiter.take("a")) allowed++;
    expect(allowed).toBe(5);
    now += 60_000; // idle for long: the burst again, not more
    allowed = 0;
    for (let i = 0; i < 100; i++) if (limiter.take("a")) allowed++;
    expect(allowed).toBe(20);
  });

  it("tracks at most maxClients addresses, dropping the least recently seen", () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1, maxClients: 3 }, { now: () => 0 });
    for (const c of ["a", "b", "c"]) expect(limiter.take(c)).toBe(true);
    expect(limiter.take("a")).toBe(false); // a is now the most recent
    expect(limiter.take("d")).toBe(true); // b dropped
    expect(limiter.clients).toBe(3);
    expect(limiter.take("b")).toBe(true); // forgotten, so a fresh bucket
    expect(limiter.take("a")).toBe(false); // still tracked: c was dropped, not a
  });

  it("refuses a rate that is not a positive number", () => {
    expect(() => new RateLimiter({ ratePerSecond: 0 }, { now: () => 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ ratePerSecond: Number.NaN }, { now: () => 0 })).toThrow(RangeError);
  });
});

let cluster: HttpCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe("limits.requestsPerSecondPerClient", () => {
  it("a client over its rate gets 429 RATE_LIMITED with Retry-After; another client is still served", async () => {
    cluster = await startHttpCluster({
      app: { limits: { requestsPerSecondPerClient: 5 }, remoteAddress: (c) => c.req.header("x-test-client") },
    });
    const leader = await cluster.leader();
    const from = (client: string) => ({ headers: { "x-test-client": client } });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${leader.url}/kv/nope${i}`, from("flooder"));
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get("Retry-After")).toBe("1");
        expect(await res.json()).toMatchObject({ error: { code: "RATE_LIMITED" } });
      } else await res.arrayBuffer();
    }
    // The burst (10) passes, at most a few more refill while the loop runs; the rest are refused.
    expect(statuses.filter((s) => s === 404).length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(5);
    const other = await fetch(`${leader.url}/kv/k`, { method: "PUT", body: "v", ...from("writer") });
    expect(other.status).toBe(200);
  });

  it("counts each 429 answer in meshraft_http_requests_total as 429", async () => {
    cluster = await startHttpCluster({
      app: { limits: { requestsPerSecondPerClient: 5 }, remoteAddress: (c) => c.req.header("x-test-client") },
    });
    const leader = await cluster.leader();
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${leader.url}/kv/nope${i}`, { headers: { "x-test-client": "flooder" } });
      if (res.status === 429) refused++;
      await res.arrayBuffer();
    }
    expect(refused).toBeGreaterThan(5);
    const text = await (await fetch(`${leader.url}/metrics`, { headers: { "x-test-client": "reader" } })).text();
    const count = (status: string): number =>
      Number(new RegExp(`^meshraft_http_requests_total\\{[^}]*route="/kv/:key"[^}]*status="${status}"[^}]*\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count("429")).toBe(refused);
    expect(count("404")).toBe(30 - refused);
  });

  it("MeshraftClient waits out a 429 and gets its answer", async () => {
    cluster = await startHttpCluster({ app: { limits: { requestsPerSecondPerClient: 2 }, remoteAddress: () => "one address" } });
    const leader = await cluster.leader();
    const client = new MeshraftClient({ urls: [leader.url], retryBudgetMs: 20_000, backoff: { initialMs: 100, maxMs: 1000 } });
    for (let i = 0; i < 8; i++) await client.put(`k${i}`, "v");
    expect(await client.get("k7")).toEqual(new TextEncoder().encode("v"));
  });
});
