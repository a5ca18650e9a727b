/**
 * `describe` / `it` for Deno's test runner, in the shape meshraft's framework-free suites take
 * (`runStorageConformance(name, make, { describe, it })`, and the adapter suites to come).
 *
 * Each `it` becomes its own top-level `Deno.test` named "outer > inner > case", so Deno counts,
 * filters (`deno test --filter`) and reports every case separately. Suites call `describe`/`it`
 * synchronously at module load, which is when Deno.test must be called.
 */
import type { ConformanceHarness } from "../../src/testing/index.ts";

const path: string[] = [];

export function describe(name: string, fn: () => void): void {
  path.push(name);
  try {
    fn();
  } finally {
    path.pop();
  }
}

export function it(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name: [...path, name].join(" > "), fn: async () => await fn() });
}

export const harness: ConformanceHarness = { describe, it };
