/**
 * Hundreds of seeded runs of a 3-node cluster under every fault the nemesis knows (drops,
 * duplicates, delays, long reordering, partitions of every shape, crashes losing undurable
 * state, pauses), with invariants checked after every event, liveness after the faults stop,
 * and the clients' history checked for linearizability.
 */
import { describe, expect, it } from "vitest";
import { expectSeedsPass } from "./helpers.ts";

describe("simulation, 3 nodes, all faults", () => {
  for (let chunk = 0; chunk < 20; chunk++) {
    const from = 1 + chunk * 50;
    it(`seeds ${from}-${from + 49}`, async () => {
      const results = await expectSeedsPass(from, 50, { nodes: 3 });
      // The runs did real work: leaders came and went, clients completed operations.
      expect(results.reduce((n, r) => n + r.operations.ok, 0)).toBeGreaterThan(50 * 20);
      expect(results.reduce((n, r) => n + r.crashes, 0)).toBeGreaterThan(50);
    }, 300_000);
  }
});
