import { expect } from "vitest";
import { simulate, type SimOptions, type SimResult } from "../../src/testing/sim.ts";

/** The sweeps run every third seed with lease reads, the others with ReadIndex. */
export function sweepReadMode(seed: number): "read-index" | "lease" {
  return seed % 3 === 0 ? "lease" : "read-index";
}

/**
 * Run seeds [from, from+count) and fail with the first failing seed's trace and replay command.
 * Without `opts.readMode`, each seed's read mode is `sweepReadMode(seed)`.
 */
export async function expectSeedsPass(from: number, count: number, opts: Omit<SimOptions, "seed"> = {}): Promise<SimResult[]> {
  const results: SimResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const readMode = opts.readMode ?? sweepReadMode(seed);
    const r = await simulate({ ...opts, readMode, seed });
    results.push(r);
    if (!r.ok) {
      const replay = `npm run sim -- --seed ${seed}${opts.nodes ? ` --nodes ${opts.nodes}` : ""}${opts.faults ? ` --faults ${opts.faults.join(",")}` : ""}${readMode === "lease" ? " --read-mode lease" : ""}`;
      expect.fail(`seed ${seed}: ${r.failure}\nreplay: ${replay}\n${r.traceTail.slice(-40).join("\n")}`);
    }
  }
  return results;
}
