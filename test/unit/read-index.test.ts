/**
 * ReadIndex coalescing (src/core/read-index.ts): at most one heartbeat round in flight; reads that
 * arrive meanwhile wait and join the next round, which starts once the round in flight is
 * confirmed. A read is only ever served from a round sent after it arrived.
 */
import { describe, expect, it } from "vitest";
import { ReadIndexQueue } from "../../src/core/read-index.ts";
import type { Heartbeat, ReadState } from "../../src/core/types.ts";
import { CoreCluster } from "../../src/testing/core-cluster.ts";

const ids = (reads: { requestId: number }[]): number[] => reads.map((r) => r.requestId);

describe("ReadIndexQueue", () => {
  it("asks for a round only when none is in flight; reads arriving meanwhile join the next one", () => {
    const q = new ReadIndexQueue();
    q.add(1, "n1", 5);
    expect(q.roundRequested).toBe(true);
    expect(q.roundSent()).toBe(1);
    expect(q.roundInFlight).toBe(1);
    q.add(2, "n1", 6);
    q.add(3, "n2", 6);
    expect(q.roundRequested).toBe(false); // round 1 is in flight: no second round
    // Round 1 was sent before reads 2 and 3 arrived: it confirms read 1 only, then asks for round 2.
    expect(ids(q.confirm(1))).toEqual([1]);
    expect(q.roundInFlight).toBe(0);
    expect(q.roundRequested).toBe(true);
    expect(q.roundSent()).toBe(2);
    q.add(4, "n1", 7);
    const released = q.confirm(2);
    expect(ids(released)).toEqual([2, 3]);
    expect(released.map((r) => r.index)).toEqual([6, 6]);
    expect(q.roundRequested).toBe(true); // for read 4
    expect(ids(q.confirm(q.roundSent()))).toEqual([4]);
    expect(q.roundRequested).toBe(false); // nobody waits: no round
    expect(q.pendingCount).toBe(0);
  });

  it("a periodic round is not waited for unless a read needs it, and serves the reads that came before it", () => {
    const q = new ReadIndexQueue();
    q.roundSent(); // 1: a periodic heartbeat, nobody waits for it
    expect(q.roundInFlight).toBe(0);
    q.add(1, "n1", 1); // cannot use round 1: asks for round 2 at once
    expect(q.roundRequested).toBe(true);
    q.roundSent(); // 2: the read round
    expect(q.roundInFlight).toBe(2);
    q.roundSent(); // 3: a periodic heartbeat while round 2 is in flight
    expect(q.roundInFlight).toBe(2);
    q.add(2, "n1", 1); // waits for round 4: round 2 is in flight
    expect(q.roundRequested).toBe(false);
    expect(ids(q.confirm(2))).toEqual([1]);
    expect(q.roundInFlight).toBe(0);
    expect(q.roundRequested).toBe(true); // round 3 was sent before read 2 came: it cannot serve it
    expect(ids(q.confirm(3))).toEqual([]);
    q.roundSent(); // 4
    q.add(3, "n1", 1); // waits for round 5
    q.roundSent(); // 5: a periodic heartbeat, the first round read 3 can use: now it is the read round
    expect(q.roundInFlight).toBe(5);
    expect(ids(q.confirm(5))).toEqual([2, 3]);
  });

  it("a lost round holds reads until a later round (the periodic heartbeat) is confirmed", () => {
    const q = new ReadIndexQueue();
    q.add(1, "n1", 3);
    q.roundSent(); // round 1: no quorum ever answers it
    q.add(2, "n1", 3);
    q.add(3, "n1", 3);
    expect(q.roundRequested).toBe(false);
    expect(q.confirm(0)).toEqual([]); // an acknowledgement of nothing new
    expect(q.roundSent()).toBe(2); // the leader's periodic heartbeat
    expect(ids(q.confirm(2))).toEqual([1, 2, 3]);
    expect(q.roundInFlight).toBe(0);
    expect(q.roundRequested).toBe(false);
  });

  it("leadership lost: every read is handed back, awaiting-commit ones too, and no round is in flight", () => {
    const q = new ReadIndexQueue();
    q.awaitCommit(9, "n3");
    q.add(1, "n1", 3);
    q.roundSent();
    q.add(2, "n2", 3);
    expect(ids(q.takeAll()).sort()).toEqual([1, 2, 9]);
    expect(q.roundRequested).toBe(false);
    expect(q.roundInFlight).toBe(0);
    q.add(3, "n1", 4); // leader again: the first read asks for a round at once
    expect(q.roundRequested).toBe(true);
    expect(q.takeAwaitingCommit()).toEqual([]);
  });
});

describe("ReadIndex coalescing in a cluster", () => {
  function elected(): CoreCluster {
    const c = new CoreCluster(["n1", "n2", "n3"], { seed: 3 });
    c.campaign("n1");
    c.stabilize();
    expect(c.leader()).toBe("n1");
    return c;
  }

  const rounds = (c: CoreCluster, from: number): Set<number> =>
    new Set(c.sent.slice(from).filter((m): m is Heartbeat => m.type === "Heartbeat").map((m) => m.readRound));

  it("many concurrent reads share few rounds, and each is served at an index covering every write committed before it", () => {
    const c = elected();
    const sentBefore = c.sent.length;
    /** Per request id: the highest commit index any node had when the read was issued. */
    const issued = new Map<string, number>();
    const maxCommit = (): number => Math.max(...c.ids.map((id) => c.node(id).log.committed));
    const steps = 40;
    let reads = 0;
    for (let step = 0; step < steps; step++) {
      if (step % 3 === 0) c.propose("n1", `w${step}`);
      for (const id of ["n1", "n1", "n1", "n2", "n3"]) {
        const res = c.node(id).readIndex();
        expect(res.status).toBe("pending");
        if (res.status === "pending") issued.set(`${id}#${res.requestId}`, maxCommit());
        c.process(); // each read in a Ready of its own: before coalescing, each one started a round
        reads++;
      }
      c.deliver();
    }
    c.stabilize();
    const served: [string, ReadState][] = c.ids.flatMap((id) => c.readStates.get(id)!.map((s): [string, ReadState] => [id, s]));
    expect(served.length).toBe(reads);
    for (const [id, s] of served) expect(s.index).toBeGreaterThanOrEqual(issued.get(`${id}#${s.requestId}`)!);
    // A round trip takes two deliveries, so at most one round per two steps (plus the last ones).
    const n = rounds(c, sentBefore).size;
    expect(n).toBeLessThanOrEqual(steps / 2 + 2);
    expect(n / reads).toBeLessThan(0.15); // one round per read before coalescing
  });

  it("a round nobody answers holds the reads until the next heartbeat round is confirmed", () => {
    const c = elected();
    c.cutLink("n2", "n1");
    c.cutLink("n3", "n1");
    c.node("n1").readIndex();
    c.stabilize();
    c.node("n1").readIndex(); // waits behind round in flight that nobody answers
    c.stabilize();
    expect(c.readStates.get("n1")).toEqual([]);
    c.heal();
    const sentBefore = c.sent.length;
    c.tick("n1");
    c.stabilize();
    expect(c.readStates.get("n1")!.length).toBe(2);
    expect(rounds(c, sentBefore).size).toBe(1); // recovered by the periodic round alone
  });

  it("a leader change fails the waiting reads; the new leader starts with no round in flight", () => {
    const c = elected();
    c.isolate("n1");
    c.node("n1").readIndex();
    c.process();
    c.node("n1").readIndex(); // waits behind the round in flight
    c.process();
    for (let i = 0; i < 40 && (c.leader() === null || c.leader() === "n1"); i++) {
      c.tickAll();
      c.stabilize();
    }
    const leader = c.leader()!;
    expect(leader).not.toBe("n1");
    c.heal();
    c.tick(leader);
    c.stabilize();
    expect(c.node("n1").role).toBe("follower");
    expect(c.readStates.get("n1")).toEqual([]);
    const sentBefore = c.sent.length;
    const res = c.node(leader).readIndex();
    expect(res.status).toBe("pending");
    c.process();
    expect(rounds(c, sentBefore).size).toBe(1); // asked for at once
    c.stabilize();
    expect(c.readStates.get(leader)!.length).toBe(1);
  });
});
