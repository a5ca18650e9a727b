/**
 * A member works with the latest configuration entry of its log (thesis §4.1), wherever that
 * entry is: in the log window, compacted into the snapshot, or truncated away by a new leader.
 * Finding it must not cost a scan of the whole in-memory log on every AppendEntries.
 */
import { describe, expect, it } from "vitest";
import type { NodeId } from "../../src/core/types.ts";
import { CoreCluster } from "../../src/testing/core-cluster.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Take a snapshot at `id`'s applied index and drop the in-memory log up to it, as the driver does. */
function compact(c: CoreCluster, id: NodeId): number {
  const r = c.node(id);
  const index = r.log.applied;
  r.snapshotTaken({ meta: { index, term: r.log.term(index)!, conf: r.confAt(index) }, data: enc(`state@${index}`) }, index);
  return index;
}

describe("tracking the latest configuration entry", () => {
  it("a follower whose compacted log holds no config entry does not rescan its log on each append", () => {
    const c = new CoreCluster(["n1", "n2", "n3"]);
    c.campaign("n1");
    c.stabilize();
    for (let i = 0; i < 20; i++) c.propose("n1", `a${i}`);
    c.stabilize();
    // n2 compacts half of its log; the rest (no config entry in it) stays in memory.
    const n2 = c.node("n2");
    compact(c, "n2");
    for (let i = 0; i < 10; i++) c.propose("n1", `b${i}`);
    c.stabilize();
    expect(n2.log.offset).toBeGreaterThan(0);
    expect(n2.log.entries.length).toBeGreaterThan(0);
    const before = n2.confScanSteps;
    // Ten appends, one at a time, each with the follower's log in memory.
    for (let i = 0; i < 10; i++) {
      c.propose("n1", `c${i}`);
      c.stabilize();
    }
    expect(n2.log.lastIndex()).toBe(c.node("n1").log.lastIndex());
    expect(n2.confScanSteps - before).toBe(0);
    expect(n2.conf.voters).toEqual(["n1", "n2", "n3"]);
  });

  it("a config entry compacted into the snapshot still rules, and a later one replaces it", () => {
    const c = new CoreCluster(["n1", "n2", "n3"]);
    c.campaign("n1");
    c.stabilize();
    c.node("n1").proposeConfChange([{ op: "add-learner", id: "n4" }]);
    c.stabilize();
    for (let i = 0; i < 5; i++) c.propose("n1", `a${i}`);
    c.stabilize();
    const n2 = c.node("n2");
    expect(n2.conf.learners).toEqual(["n4"]);
    // The config entry (index 2) goes into n2's snapshot; n2 keeps working with it.
    expect(compact(c, "n2")).toBeGreaterThan(2);
    expect(n2.confAt(n2.log.lastIndex()).learners).toEqual(["n4"]);
    for (let i = 0; i < 3; i++) c.propose("n1", `b${i}`);
    c.stabilize();
    expect(n2.conf.learners).toEqual(["n4"]);
    // A new change reaches n2 by AppendEntries and takes effect there.
    c.node("n1").proposeConfChange([{ op: "remove", id: "n4" }]);
    c.stabilize();
    expect(n2.conf.learners).toEqual([]);
    expect(n2.conf.voters).toEqual(["n1", "n2", "n3"]);
    // Compacted again past that entry, it still rules.
    compact(c, "n2");
    c.propose("n1", "c");
    c.stabilize();
    expect(n2.conf.learners).toEqual([]);
    expect(n2.confAt(n2.log.lastIndex()).learners).toEqual([]);
  });

  it("a config entry truncated by a new leader gives way to the configuration before it", () => {
    const ids = ["n1", "n2", "n3", "n4", "n5"];
    const c = new CoreCluster(ids, { checkQuorum: false, preVote: false });
    c.campaign("n1");
    c.stabilize();
    for (let i = 0; i < 3; i++) c.propose("n1", `a${i}`);
    c.stabilize();
    // Compact n2 first, so that the configuration it falls back to is the snapshot's.
    compact(c, "n2");
    // The change reaches n2 only, and n2's answer does not reach n1: it cannot commit.
    c.partition(["n1", "n2"], ["n3", "n4", "n5"]);
    c.cutLink("n2", "n1");
    c.node("n1").proposeConfChange([{ op: "add-learner", id: "n6" }]);
    c.stabilize();
    const n2 = c.node("n2");
    expect(n2.conf.learners).toEqual(["n6"]);
    const confIndex = n2.log.lastIndex();
    expect(c.node("n1").log.committed).toBeLessThan(confIndex);
    // n3 leads term 2 with n4 and n5; its log overwrites n2's uncommitted config entry.
    c.campaign("n3");
    c.stabilize();
    expect(c.node("n3").role).toBe("leader");
    c.partition(["n2", "n3", "n4", "n5"], ["n1"]);
    c.propose("n3", "after");
    c.tick("n3");
    c.stabilize();
    expect(n2.log.term(confIndex)).toBe(c.node("n3").term);
    expect(n2.log.lastIndex()).toBe(c.node("n3").log.lastIndex());
    expect(n2.conf.learners).toEqual([]);
    expect(n2.conf.voters).toEqual(ids);
    // A config entry from the new leader is found again after that.
    c.node("n3").proposeConfChange([{ op: "add-learner", id: "n7" }]);
    c.stabilize();
    expect(n2.conf.learners).toEqual(["n7"]);
  });
});
