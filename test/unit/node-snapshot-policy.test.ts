/**
 * The snapshot policy (src/node/snapshot-policy.ts): when a snapshot is due, how far the log is
 * compacted, and the growing pause after a save that failed for a passing reason.
 */
import { describe, expect, it } from "vitest";
import { SNAPSHOT_RETRY_MAX_MS, SNAPSHOT_RETRY_MS, SnapshotPolicy, isTransient } from "../../src/node/snapshot-policy.ts";

const policy = (everyEntries: number, everyBytes: number, marginEntries = 0) => new SnapshotPolicy({ everyEntries, everyBytes, marginEntries });

describe("SnapshotPolicy", () => {
  it("is due once `everyEntries` entries were applied since the last snapshot, counted from the one taken", () => {
    const p = policy(100, 0);
    expect(p.due(99, 0)).toBe(false);
    expect(p.due(100, 0)).toBe(true);
    p.taken(100);
    expect(p.lastIndex).toBe(100);
    expect(p.due(199, 0)).toBe(false);
    expect(p.due(200, 0)).toBe(true);
  });

  it("is due once the entries applied since the last snapshot hold `everyBytes` data bytes, however few they are", () => {
    const p = policy(10_000, 1000);
    p.applied(600);
    expect(p.due(1, 0)).toBe(false);
    p.applied(400);
    expect(p.due(2, 0)).toBe(true);
    p.taken(2);
    expect(p.due(2, 0)).toBe(false);
  });

  it("a request makes it due once something was applied since the last snapshot, until one is taken", () => {
    const p = policy(0, 0);
    p.request();
    expect(p.due(0, 0)).toBe(false); // nothing to snapshot
    expect(p.due(3, 0)).toBe(true);
    p.taken(3);
    expect(p.due(4, 0)).toBe(false);
  });

  it("with both thresholds at 0 it is never due", () => {
    const p = policy(0, 0);
    p.applied(1e12);
    expect(p.due(1e9, 0)).toBe(false);
  });

  it("a snapshot installed from the leader counts as the last one (never moving back) and resets the byte count", () => {
    const p = policy(100, 1000);
    p.applied(5000);
    p.installed(500);
    expect(p.lastIndex).toBe(500);
    expect(p.due(599, 0)).toBe(false);
    p.installed(300);
    expect(p.lastIndex).toBe(500);
    p.loaded(700);
    expect(p.lastIndex).toBe(700);
  });

  it("after a transient save failure it waits, doubling the pause per failure up to the maximum; a save resets it", () => {
    const p = policy(10, 0);
    const pauses: number[] = [];
    let now = 0;
    for (let i = 0; i < 8; i++) {
      const pause = p.saveFailed(now);
      pauses.push(pause);
      expect(p.due(10, now + pause - 1)).toBe(false);
      now += pause;
      expect(p.due(10, now)).toBe(true);
    }
    expect(pauses).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(pauses[0]).toBe(SNAPSHOT_RETRY_MS);
    expect(Math.max(...pauses)).toBe(SNAPSHOT_RETRY_MAX_MS);
    p.saved();
    expect(p.due(10, 0)).toBe(true);
    expect(p.saveFailed(0)).toBe(SNAPSHOT_RETRY_MS);
  });

  it("compacts up to the snapshot index minus the margin, never past the floor and never below 0", () => {
    expect(policy(1, 0, 100).compactTo(1000, 5000)).toBe(900);
    expect(policy(1, 0, 100).compactTo(1000, 400)).toBe(400);
    expect(policy(1, 0, 100).compactTo(50, 5000)).toBe(0);
    expect(policy(1, 0, 0).compactTo(1000, 5000)).toBe(1000);
  });
});

describe("isTransient", () => {
  it("recognises EMFILE, ENFILE and EAGAIN as code or errno, also on a cause up to two levels down", () => {
    expect(isTransient(Object.assign(new Error("x"), { code: "EMFILE" }))).toBe(true);
    expect(isTransient({ errno: "ENFILE" })).toBe(true);
    expect(isTransient(new Error("wrapped", { cause: { code: "EAGAIN" } }))).toBe(true);
    expect(isTransient(new Error("a", { cause: new Error("b", { cause: { code: "EMFILE" } }) }))).toBe(true);
    expect(isTransient(new Error("a", { cause: new Error("b", { cause: new Error("c", { cause: { code: "EMFILE" } }) }) }))).toBe(false);
  });

  it("anything else is not transient: a full disk, a missing file, a non-object", () => {
    expect(isTransient(Object.assign(new Error("x"), { code: "ENOSPC" }))).toBe(false);
    expect(isTransient({ code: "ENOENT" })).toBe(false);
    expect(isTransient("EMFILE")).toBe(false);
    expect(isTransient(null)).toBe(false);
  });
});
