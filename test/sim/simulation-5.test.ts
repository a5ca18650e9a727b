/** Seeded runs of a 5-node cluster under all faults, including majority rings and bridges. */
import { describe, expect, it } from "vitest";
import { expectSeedsPass } from "./helpers.ts";

describe("simulation, 5 nodes, all faults", () => {
  for (let chunk = 0; chunk < 12; chunk++) {
    const from = 10_001 + chunk * 50;
    it(`seeds ${from}-${from + 49}`, async () => {
      const results = await expectSeedsPass(from, 50, { nodes: 5 });
      expect(results.reduce((n, r) => n + r.operations.ok, 0)).toBeGreaterThan(50 * 20);
      expect(results.reduce((n, r) => n + r.leaders, 0)).toBeGreaterThan(100);
    }, 300_000);
  }
});
