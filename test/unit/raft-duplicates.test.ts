/**
 * Copies the leader must not make and copies it must not act on twice: a snapshot chunk is
 * re-sent only after a timeout, not on every heartbeat answer; a ForwardProposal delivered twice
 * is appended once.
 */
import { describe, expect, it } from "vitest";
import type { Message } from "../../src/core/types.ts";
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
    // Nine heartbeat rounds (less than an election timeout): n3 answers each heartbeat.
    for (let round = 0; round < 9; round++) roundLosingChunks(c);
    expect(c.node("n1").progress("n3")?.state).toBe("snapshot");
    expect(c.sent.filter((m) => m.type === "HeartbeatResponse" && m.from === "n3").length).toBeGreaterThanOrEqual(9);
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
