/**
 * Shared settings of the fast-check properties (`*.fuzz.test.ts` and the fuzz blocks of other
 * tests). `npm test` runs each with a fixed seed and its default run count, so a failure replays
 * exactly; `npm run fuzz` (test/fuzz.mjs) runs the same properties with FUZZ_RUNS runs each and a
 * fresh seed (printed, and settable with FUZZ_SEED to replay a failure).
 */
import type { Parameters as FcParameters } from "fast-check";

export const FUZZ_SEED: number = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20_261_207;

/** fast-check parameters: `defaultRuns` runs, or FUZZ_RUNS when set. */
export function fuzzParams<T>(defaultRuns: number): FcParameters<T> {
  const runs = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : defaultRuns;
  return { seed: FUZZ_SEED, numRuns: runs, endOnFailure: true };
}

/** Test timeout for a property of `defaultRuns` runs that take about `msPerRun` each. */
export function fuzzTimeout(defaultRuns: number, msPerRun: number): number {
  const runs = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : defaultRuns;
  return 30_000 + runs * msPerRun * 4;
}
