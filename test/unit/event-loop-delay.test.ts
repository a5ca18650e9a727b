/**
 * Event-loop delay (src/event-loop-delay.ts, adapters/node/event-loop-delay.ts): a loop blocked
 * for a known time is seen as at least that late, by the runtime-neutral timer sampler and by
 * Node's monitorEventLoopDelay, and /metrics shows it. Only lower bounds are asserted: a busy
 * machine makes the delay longer, never shorter.
 */
import { afterEach, describe, expect, it } from "vitest";
import { nodeEventLoopDelay } from "../../adapters/node/event-loop-delay.ts";
import { realClock } from "../../src/clock.ts";
import { DelayHistogram, sampleEventLoopDelay, type EventLoopDelaySource } from "../../src/event-loop-delay.ts";
import { PROMETHEUS_LINE, sleep, startHttpCluster, type HttpCluster } from "./http-harness.ts";

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: nothing else runs on this loop meanwhile
  }
}

const sources: EventLoopDelaySource[] = [];
let cluster: HttpCluster | null = null;
afterEach(async () => {
  for (const s of sources.splice(0)) s.stop();
  await cluster?.close();
  cluster = null;
});

describe("event-loop delay", () => {
  it("the histogram's quantiles are within its 2% buckets, and the max is exact", () => {
    const h = new DelayHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 .. 100 ms
    const s = h.stats(1000);
    expect(s.count).toBe(1000);
    expect(s.maxMs).toBe(100);
    expect(s.p50Ms).toBeGreaterThanOrEqual(50);
    expect(s.p50Ms).toBeLessThanOrEqual(50 * 1.02);
    expect(s.p99Ms).toBeGreaterThanOrEqual(99);
    expect(s.p99Ms).toBeLessThanOrEqual(100);
    expect(s.meanMs).toBeCloseTo(50.05, 5);
    h.reset();
    expect(h.stats(0)).toMatchObject({ count: 0, maxMs: 0, p99Ms: 0 });
  });

  it("the timer sampler sees a 150 ms block as a delay of at least 100 ms", async () => {
    const s = sampleEventLoopDelay(realClock, { intervalMs: 5, windowMs: 60_000 });
    sources.push(s);
    await sleep(30);
    block(150);
    await sleep(30);
    const stats = s.stats();
    expect(stats).not.toBeNull();
    expect(stats!.maxMs).toBeGreaterThanOrEqual(100);
  });

  it("Node's monitor sees it too, and /metrics reports it as meshraft_event_loop_delay_seconds", async () => {
    const s = nodeEventLoopDelay({ resolutionMs: 5, windowMs: 60_000 });
    sources.push(s);
    cluster = await startHttpCluster({ ids: ["n1"], app: { eventLoopDelay: s } });
    await cluster.leader();
    block(150);
    await sleep(30);
    expect(s.stats()!.maxMs).toBeGreaterThanOrEqual(100);
    const body = await (await fetch(`${cluster.url("n1")}/metrics`)).text();
    const lines = body.split("\n").filter((l) => l.startsWith("meshraft_event_loop_delay"));
    for (const l of lines) expect(l).toMatch(PROMETHEUS_LINE);
    const max = lines.find((l) => l.startsWith('meshraft_event_loop_delay_seconds{quantile="1"} '));
    expect(max, body).toBeDefined();
    expect(Number(max!.split(" ")[1])).toBeGreaterThanOrEqual(0.1);
    expect(lines.some((l) => l.startsWith('meshraft_event_loop_delay_seconds{quantile="0.99"} '))).toBe(true);
  });
});
