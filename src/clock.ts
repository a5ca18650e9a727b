/**
 * Time for the driver and the transports. The core never sees it: the driver turns it into ticks.
 * Production uses `realClock`; tests and the simulator use `VirtualClock` from meshraft/testing.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences are meaningful. */
  now(): number;
  /** Run `fn` once after `ms` milliseconds. Returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** Wall-clock time from the Web-standard timer globals (present in Node, Deno and browsers). */
export const realClock: Clock = {
  now: (): number => (globalThis.performance ? performance.now() : Date.now()),
  setTimer(ms: number, fn: () => void): () => void {
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
};
