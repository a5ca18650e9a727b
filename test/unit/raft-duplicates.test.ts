/**
 * Copies the leader must not make and copies it must not act on twice: a snapshot chunk is
 * re-sent only after a timeout, not on every heartbeat answer; a ForwardProposal delivered twice
 * is appended once.
 */
import { describe, expect, it } from "vitest";
import type { ForwardProposal, ForwardProposalResponse, Message } from "../../src/core/types.ts";
import { CoreCluster } from "../../src/testing/core-cluster.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** n1 leads; n3 missed five entries that n1 then compacted into a snapshot. */
function leaderWithSnapshotForN3(): CoreCluster {
  const c = new CoreCluster(["n1", "n2", "n3"], { electionTicks: 10, heartbeatTicks: 1 });
  c.campaign("n1");
  c.stabilize();
  c.isolate("n3");
  for (let i = 0; i < 5; i++) c.propose("n1", `e${i}`);
  c.stabilize();
  const n1 = c.node("n1");
  const index = n1.log.applied;
  expect(index).toBe(6);
  n1.snapshotTaken({ meta: { index, term: n1.term, conf: n1.confAt(index) }, data: enc("state up to 6") }, index);
  c.heal();
  return c;
}

const installSnapshotsTo = (c: CoreCluster, to: string): number =>
  c.sent.filter((m) => m.type === "InstallSnapshot" && m.to === to).length;

/** One heartbeat round from n1; InstallSnapshot messages are lost (the follower never answers them). */
function roundLosingChunks(c: CoreCluster): void {
  c.tick("n1");
  const keep = (m: Message): boolean => m.type !== "InstallSnapshot";
  c.deliver(keep);
  c.deliver(keep);
}

describe("InstallSnapshot pacing", () => {
  it("a chunk in flight is not sent again on every heartbeat answer", () => {
    const c = leaderWithSnapshotForN3();
    const before = installSnapshotsTo(c, "n3");
    const answers = (): number => c.sent.filter((m) => m.type === "HeartbeatResponse" && m.from === "n3").length;
    const answersBefore = answers();
    // Nine heartbeat rounds (less than an election timeout): n3 answers each heartbeat.
    for (let round = 0; round < 9; round++) roundLosingChunks(c);
    expect(c.node("n1").progress("n3")?.state).toBe("snapshot");
    expect(answers() - answersBefore).toBe(9);
    expect(installSnapshotsTo(c, "n3") - before).toBe(1);
  });

  it("a lost chunk is sent again once an election timeout passed without an answer, and the transfer completes", () => {
    const c = leaderWithSnapshotForN3();
    let rounds = 0;
    const sent = (): number => installSnapshotsTo(c, "n3");
    const first = sent();
    while (sent() === first && rounds < 100) {
      roundLosingChunks(c);
      rounds++;
    }
    const firstSent = sent();
    expect(firstSent).toBe(first + 1);
    // The resend comes one election timeout (10 ticks) after the first copy, not before.
    while (sent() === firstSent && rounds < 100) {
      roundLosingChunks(c);
      rounds++;
    }
    expect(sent()).toBe(firstSent + 1);
    const resentAfter = rounds;
    expect(resentAfter).toBeGreaterThanOrEqual(10);
    expect(resentAfter).toBeLessThanOrEqual(12);
    // A second loss in a row waits twice as long.
    while (sent() === firstSent + 1 && rounds < 100) {
      roundLosingChunks(c);
      rounds++;
    }
    expect(rounds - resentAfter).toBeGreaterThanOrEqual(20);
    expect(rounds - resentAfter).toBeLessThanOrEqual(22);
    // The network recovers: the next resend gets through and n3 installs the snapshot.
    for (let i = 0; i < 60 && c.node("n3").log.offset < 6; i++) {
      c.tick("n1");
      c.stabilize();
    }
    expect(c.node("n3").log.offset).toBe(6);
    c.propose("n1", "after");
    c.tick("n1");
    c.stabilize();
    expect(c.node("n3").log.lastIndex()).toBe(c.node("n1").log.lastIndex());
    expect(c.node("n3").log.committed).toBe(c.node("n1").log.committed);
  });
});

describe("ForwardProposal delivered more than once", () => {
  const dec = new TextDecoder();
  /** Indexes of n1's log entries holding `data`. */
  const placed = (c: CoreCluster, data: string): number[] =>
    c.node("n1").log.entries.filter((e) => e.type === "normal" && dec.decode(e.data) === data).map((e) => e.index);
  const answers = (c: CoreCluster, requestId: number): ForwardProposalResponse[] =>
    c.sent.filter((m): m is ForwardProposalResponse => m.type === "ForwardProposalResponse" && m.requestId === requestId);
  /** n2 forwards `data`; returns the ForwardProposal, still queued. */
  const forward = (c: CoreCluster, data: string): ForwardProposal => {
    const res = c.propose("n2", data);
    expect(res.status).toBe("forwarded");
    const m = c.queue.find((q): q is ForwardProposal => q.type === "ForwardProposal" && dec.decode(q.entries[0].data) === data);
    expect(m).toBeDefined();
    return m!;
  };

  it("a copy delivered with the original is appended once, and answered with the same index", () => {
    const c = new CoreCluster(["n1", "n2", "n3"], { forwardProposals: true });
    c.campaign("n1");
    c.stabilize();
    const m = forward(c, "once");
    c.queue.push({ ...m }, { ...m });
    c.stabilize();
    expect(placed(c, "once")).toHaveLength(1);
    const got = answers(c, m.requestId);
    expect(got).toHaveLength(3);
    expect(got.every((a) => !a.rejected && a.index === placed(c, "once")[0] && a.entryTerm === 1)).toBe(true);
    expect(c.appliedData("n3").filter((d) => d === "once")).toHaveLength(1);
  });

  it("a late copy, after the leader's term changed, gets the original answer and appends nothing", () => {
    const c = new CoreCluster(["n1", "n2", "n3"], { forwardProposals: true, preVote: false, checkQuorum: false });
    c.campaign("n1");
    c.stabilize();
    const m = forward(c, "late");
    c.stabilize();
    expect(placed(c, "late")).toHaveLength(1);
    const index = placed(c, "late")[0];
    // n3 takes the lead, then n1 takes it back in a later term.
    c.campaign("n3");
    c.stabilize();
    c.campaign("n1");
    c.stabilize();
    expect(c.leader()).toBe("n1");
    expect(c.node("n1").term).toBeGreaterThan(1);
    c.queue.push({ ...m });
    c.stabilize();
    expect(placed(c, "late")).toEqual([index]);
    const last = answers(c, m.requestId).at(-1)!;
    expect([last.rejected, last.index, last.entryTerm]).toEqual([false, index, 1]);
  });

  it("a forward sent in an older term that n1 never saw is refused, not appended", () => {
    const c = new CoreCluster(["n1", "n2", "n3"], { forwardProposals: true, preVote: false, checkQuorum: false });
    c.campaign("n1");
    c.stabilize();
    const m = forward(c, "stale");
    c.queue = c.queue.filter((q) => q !== m); // lost on the way
    c.campaign("n3");
    c.stabilize();
    c.campaign("n1");
    c.stabilize();
    expect(c.leader()).toBe("n1");
    c.queue.push({ ...m });
    c.stabilize();
    expect(placed(c, "stale")).toEqual([]);
    expect(answers(c, m.requestId).map((a) => a.rejected)).toEqual([true]);
  });

  it("a restarted forwarder's new request is not taken for a copy of one from its previous life", () => {
    const c = new CoreCluster(["n1", "n2", "n3"], { forwardProposals: true });
    c.campaign("n1");
    c.stabilize();
    const before = forward(c, "first life");
    c.stabilize();
    c.crash("n2");
    c.restart("n2");
    c.tick("n1");
    c.stabilize();
    expect(c.node("n2").leaderId).toBe("n1");
    expect(c.node("n2").term).toBe(before.term);
    const after = forward(c, "second life");
    expect(after.requestId).not.toBe(before.requestId);
    c.stabilize();
    expect(placed(c, "second life")).toHaveLength(1);
  });
});
