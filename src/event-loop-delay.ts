/**
 * Event-loop delay: how late the loop runs what is due, the measure of a stall (a long snapshot,
 * a large restore) that keeps a member from answering heartbeats, requests and the mesh.
 *
 * Runtime-neutral: a runtime that can measure it precisely feeds `EventLoopDelaySource` (the Node
 * adapter uses `perf_hooks.monitorEventLoopDelay`); any other gets `sampleEventLoopDelay`, a timer
 * on the injected Clock that records how late each tick fires. `/metrics` shows the last window's
 * quantiles (see `eventLoopDelayGauges`).
 */
import type { Clock } from "./clock.ts";
import { Gauge, type Registry } from "./http/metrics.ts";

/** Delay quantiles over one window, in milliseconds. */
export interface EventLoopDelayStats {
  /** Samples in the window. */
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Length of the window the figures cover, ms. */
  windowMs: number;
}

/** Where `/metrics` reads the event-loop delay from. */
export interface EventLoopDelaySource {
  /** The last complete window (or the current one, until one completes); null before any sample. */
  stats(): EventLoopDelayStats | null;
  /** Stops sampling. */
  stop(): void;
}

/** Log-bucketed histogram of delays, 2% resolution from 10 µs to about an hour: no per-sample allocation. */
export class DelayHistogram {
  private static readonly BASE = Math.log(1.02);
  private readonly counts = new Float64Array(1000);
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    const us = ms * 1000;
    let b = us <= 10 ? 0 : Math.ceil(Math.log(us / 10) / DelayHistogram.BASE);
    if (b >= this.counts.length) b = this.counts.length - 1;
    this.counts[b]++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The upper bound (ms) of the bucket that holds quantile q, capped by the max. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b];
      if (seen >= rank) return Math.min(this.max, (10 * Math.pow(1.02, b)) / 1000);
    }
    return this.max;
  }

  stats(windowMs: number): EventLoopDelayStats {
    return {
      count: this.count,
      p50Ms: this.quantile(0.5),
      p99Ms: this.quantile(0.99),
      maxMs: this.max,
      meanMs: this.count === 0 ? 0 : this.sum / this.count,
      windowMs,
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }
}

/**
 * Samples the delay with a timer on `clock`: every `intervalMs` it records how much later than
 * asked the timer fired. Its resolution is the runtime's timer granularity (about 1 ms), so it
 * sees stalls, not microseconds. Windows of `windowMs` rotate: `stats()` is the last complete one.
 */
export function sampleEventLoopDelay(clock: Clock, options: { intervalMs?: number; windowMs?: number } = {}): EventLoopDelaySource {
  const intervalMs = options.intervalMs ?? 20;
  const windowMs = options.windowMs ?? 10_000;
  const current = new DelayHistogram();
  let last: EventLoopDelayStats | null = null;
  let windowStart = clock.now();
  let cancel: (() => void) | null = null;
  const arm = (): void => {
    const due = clock.now() + intervalMs;
    cancel = clock.setTimer(intervalMs, () => {
      const now = clock.now();
      current.record(Math.max(0, now - due));
      if (now - windowStart >= windowMs) {
        last = current.stats(now - windowStart);
        current.reset();
        windowStart = now;
      }
      arm();
    });
  };
  arm();
  return {
    stats: () => last ?? (current.count > 0 ? current.stats(clock.now() - windowStart) : null),
    stop: () => {
      cancel?.();
      cancel = null;
    },
  };
}

/**
 * Adds `meshraft_event_loop_delay_seconds{quantile="0.5"|"0.99"|"1"}` (1: the max) and
 * `meshraft_event_loop_delay_window_seconds` to `registry`, read from `source` when scraped.
 */
export function eventLoopDelayGauges(registry: Registry, source: EventLoopDelaySource): void {
  registry.add(
    new Gauge(
      "meshraft_event_loop_delay_seconds",
      "Event-loop delay over the last window, by quantile (1 is the max): how late the loop ran what was due.",
      () => {
        const s = source.stats();
        if (s === null) return [];
        return [
          [{ quantile: "0.5" }, s.p50Ms / 1000],
          [{ quantile: "0.99" }, s.p99Ms / 1000],
          [{ quantile: "1" }, s.maxMs / 1000],
        ];
      },
    ),
  );
  registry.add(
    new Gauge("meshraft_event_loop_delay_window_seconds", "Length of the window the event-loop delay quantiles cover.", () => {
      const s = source.stats();
      return s === null ? [] : [[{}, s.windowMs / 1000]];
    }),
  );
}
