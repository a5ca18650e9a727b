import { expect } from "vitest";
import { simulate, type SimOptions, type SimResult } from "../../src/testing/sim.ts";

/** Run seeds [from, from+count) and fail with the first failing seed's trace and replay command. */
export async function expectSeedsPass(from: number, count: number, opts: Omit<SimOptions, "seed"> = {}): Promise<SimResult[]> {
  const results: SimResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = await simulate({ ...opts, seed });
    results.push(r);
    if (!r.ok) {
      const replay = `npm run sim -- --seed ${seed}${opts.nodes ? ` --nodes ${opts.nodes}` : ""}${opts.faults ? ` --faults ${opts.faults.join(",")}` : ""}`;
      expect.fail(`seed ${seed}: ${r.failure}\nreplay: ${replay}\n${r.traceTail.slice(-40).join("\n")}`);
    }
  }
  return results;
}
