/**
 * Lease reads (readMode "lease", thesis §6.4.1) must never return what a newer leader has
 * overwritten. The leader's lease starts when a heartbeat round is sent and holds only for rounds a
 * quorum acknowledged, until electionTicks - leaseDriftTicks ticks after the send; followers keep
 * their side (no vote within an election timeout of hearing a leader, also after a restart).
 * Each test sets up one of the ways an "is leader" lease served stale reads.
 */
import { describe, expect, it } from "vitest";
import { Raft } from "../../src/core/raft.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { encodeKvCommand } from "../../src/kv/kv.ts";
import { CoreCluster } from "../../src/testing/core-cluster.ts";
import { TestCluster } from "../../src/testing/cluster.ts";

const ids = ["n1", "n2", "n3"];

/** Whether `id` answers a read at once (a ReadState in the same step): a lease read. */
function servesLeaseRead(c: CoreCluster, id: string): { served: boolean; index: number } {
  const states = c.readStates.get(id)!;
  const before = states.length;
  c.node(id).readIndex();
  c.process();
  return { served: states.length > before, index: states.at(-1)?.index ?? 0 };
}

/** The node other than `old` that leads in a higher term and has committed `data`, if any. */
function newerLeaderWith(c: CoreCluster, old: string, data: string): string | null {
  const l = c.leader();
  if (l === null || l === old || c.node(l).term <= c.node(old).term) return null;
  return c.appliedData(l).includes(data) ? l : null;
}

/** n1 leads with x=1 committed, and every follower answered its last heartbeat round. */
function clusterWithLease(seed: number): CoreCluster {
  const c = new CoreCluster(ids, { readMode: "lease", seed });
  c.campaign("n1");
  c.stabilize();
  c.propose("n1", "x=1");
  c.stabilize();
  c.tickAll();
  c.stabilize();
  expect(servesLeaseRead(c, "n1").served).toBe(true); // the lease works: no heartbeat round for this read
  return c;
}

describe("lease reads", () => {
  it("a leader cut off right after its heartbeats were answered stops serving before anyone else can lead (nodes ticked in lockstep)", () => {
    const c = clusterWithLease(3);
    c.isolate("n1");

    let proposed = false;
    let staleWindow = 0; // ticks during which another leader had committed x=2 while n1 still led
    for (let tick = 1; tick <= 40 && c.node("n1").role === "leader"; tick++) {
      c.tickAll();
      c.stabilize();
      const other = c.leader();
      if (!proposed && other !== null && other !== "n1") {
        c.propose(other, "x=2");
        c.stabilize();
        proposed = true;
      }
      const read = servesLeaseRead(c, "n1");
      if (newerLeaderWith(c, "n1", "x=2") !== null) {
        staleWindow++;
        // x=2 is committed elsewhere and n1 has not applied it: any answer here is stale.
        expect(read.served, `n1 answered a read at index ${read.index} at tick ${tick}, after another leader committed x=2`).toBe(false);
      }
    }
    // The scenario really happened: n1 still believed it led after the new leader committed.
    expect(staleWindow).toBeGreaterThan(0);
  });

  it("no lease reads once TimeoutNow went out: the transfer target campaigns past every follower's lease", () => {
    const c = clusterWithLease(5);
    c.node("n1").transferLeader("n2"); // n2 is up to date: TimeoutNow goes out at once
    c.process();
    expect(c.queue.some((m) => m.type === "TimeoutNow" && m.to === "n2")).toBe(true);
    // n1 hears nothing more: it does not learn of the new term.
    for (const other of ["n2", "n3"]) c.cutLink(other, "n1");
    c.stabilize();
    expect(c.node("n2").role).toBe("leader");
    expect(c.node("n2").term).toBe(2);
    c.propose("n2", "x=2");
    c.stabilize();
    expect(newerLeaderWith(c, "n1", "x=2")).toBe("n2");
    expect(c.node("n1").role).toBe("leader"); // still believes it leads term 1
    expect(servesLeaseRead(c, "n1").served).toBe(false);
  });

  it("while a transfer is pending (target still catching up), reads take a heartbeat round", () => {
    const c = new CoreCluster(ids, { readMode: "lease", seed: 5 });
    c.campaign("n1");
    c.stabilize();
    c.tickAll();
    c.stabilize();
    c.cutLink("n1", "n3");
    c.propose("n1", "x=1"); // n3 misses it
    c.stabilize();
    expect(servesLeaseRead(c, "n1").served).toBe(true);
    c.node("n1").transferLeader("n3"); // n3 lags: n1 first brings it up to date
    c.process();
    expect(c.queue.some((m) => m.type === "TimeoutNow")).toBe(false);
    expect(servesLeaseRead(c, "n1").served).toBe(false);
  });

  it("a follower that restarts grants no vote for an election timeout: it may have answered the round a lease rests on", () => {
    const c = new CoreCluster(ids, { readMode: "lease", seed: 7, preVote: false });
    c.campaign("n1");
    c.stabilize();
    c.tickAll();
    c.stabilize(); // n2 acknowledged a round: n1's lease counts on n2 not voting for 8 more ticks
    c.crash("n2");
    c.restart("n2");
    c.cutLink("n1", "n2");
    c.cutLink("n1", "n3");
    c.campaign("n3"); // a candidate that n3 alone cannot elect; n2 must refuse
    c.stabilize();
    expect(c.node("n3").role).toBe("candidate");
    expect(c.node("n2").term).toBe(1); // n3's request for term 2 was ignored
    expect(c.node("n2").votedFor).toBe("n1");
    expect(servesLeaseRead(c, "n1").served).toBe(true);
  });

  it("a member of a lease-mode cluster that never was in a term votes at once (a fresh cluster elects without waiting)", () => {
    const c = new CoreCluster(ids, { readMode: "lease", seed: 7 });
    c.campaign("n1");
    c.stabilize();
    expect(c.node("n1").role).toBe("leader");
  });

  it("leaseDriftTicks is validated: a whole number of ticks in [1, electionTicks)", () => {
    const make = (leaseDriftTicks: number): Raft =>
      new Raft(
        { id: "n1", electionTicks: 10, readMode: "lease", leaseDriftTicks, random: new SeededRandom(1) },
        { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], conf: { voters: ["n1"], learners: [], votersOutgoing: [] } },
      );
    for (const bad of [0, 10, 11, 1.5, -1, Number.NaN]) expect(() => make(bad)).toThrow(/leaseDriftTicks/);
    expect(() => make(1)).not.toThrow();
    expect(() => make(9)).not.toThrow();
  });
});

describe("lease reads through the driver", () => {
  it("a leader whose ticks fell behind its clock (a paused process) counts the lost time before answering a read", async () => {
    const c = new TestCluster({ nodes: 3, seed: 11, nodeOptions: { readMode: "lease" } });
    await c.start();
    try {
      const leader = await c.waitForLeader();
      let written = false;
      void c.node(leader).propose(encodeKvCommand({ op: "put", key: "x", value: new Uint8Array([1]) })).then(() => (written = true));
      expect(await c.runUntil(() => written, 1_000)).toBe(true);
      await c.run(50); // heartbeat rounds answered: a lease is in place
      /** Starts a read at the leader; whether it was answered after `ms` more virtual ms. */
      const readAnsweredWithin = async (ms: number): Promise<boolean> => {
        let answered = false;
        c.node(leader)
          .read()
          .then(
            () => (answered = true),
            () => {},
          );
        await c.run(ms);
        return answered;
      };
      // Served from the lease: before any message could travel (the network takes >= 1 ms).
      expect(await readAnsweredWithin(0.5)).toBe(true);

      c.pause(leader); // no tick timers fire, nothing goes out; its clock runs on
      await c.run(300); // far past its lease: the others may have elected someone else
      expect(await readAnsweredWithin(5)).toBe(false);
    } finally {
      await c.stop();
    }
  });
});
