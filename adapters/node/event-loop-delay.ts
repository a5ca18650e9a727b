/**
 * Node's event-loop delay for `/metrics`: `perf_hooks.monitorEventLoopDelay`, which samples in
 * libuv at `resolutionMs` and records in nanoseconds, read in windows of `windowMs` (the last
 * complete window is what `stats()` reports). The timer is unref'd: it never keeps a process up.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { EventLoopDelaySource, EventLoopDelayStats } from "../../src/event-loop-delay.ts";

export function nodeEventLoopDelay(options: { resolutionMs?: number; windowMs?: number } = {}): EventLoopDelaySource {
  const windowMs = options.windowMs ?? 10_000;
  const h = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 10 });
  h.enable();
  let windowStart = performance.now();
  const read = (): EventLoopDelayStats | null => {
    if (h.count === 0) return null;
    const ms = (ns: number): number => ns / 1e6;
    return { count: h.count, p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max), meanMs: ms(h.mean), windowMs: performance.now() - windowStart };
  };
  let last: EventLoopDelayStats | null = null;
  const timer = setInterval(() => {
    last = read();
    h.reset();
    windowStart = performance.now();
  }, windowMs);
  timer.unref();
  return {
    stats: () => last ?? read(),
    stop: () => {
      clearInterval(timer);
      h.disable();
    },
  };
}
