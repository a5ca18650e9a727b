/** A seed is a complete description of a run: replaying it reproduces every event. */
import { describe, expect, it } from "vitest";
import { simulate } from "../../src/testing/sim.ts";

describe("simulator determinism", () => {
  it("the same seed replays byte for byte, and another seed does not", async () => {
    const lines1: string[] = [];
    const lines2: string[] = [];
    const a = await simulate({ seed: 4242, nodes: 5, onTrace: (l) => lines1.push(l) });
    const b = await simulate({ seed: 4242, nodes: 5, onTrace: (l) => lines2.push(l) });
    const c = await simulate({ seed: 4243, nodes: 5 });
    expect(lines1.length).toBeGreaterThan(20);
    expect(lines2.join("\n")).toBe(lines1.join("\n"));
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.events).toBe(a.events);
    expect(b.operations).toEqual(a.operations);
    expect(c.traceHash).not.toBe(a.traceHash);
  });
});
