/**
 * The pending-requests registry (src/node/pending.ts): when a caller's request resolves, when it
 * is known dropped (PROPOSAL_DROPPED), when its fate is unknown (OUTCOME_UNKNOWN), expiry, and
 * failing everything when the node stops or a leader refuses.
 */
import { describe, expect, it } from "vitest";
import type { ConfState, Entry } from "../../src/core/types.ts";
import { MeshraftError, NotLeaderError, NodeStoppedError } from "../../src/errors.ts";
import { PendingRequests } from "../../src/node/pending.ts";

type Outcome<T> = { settled: false } | { settled: true; ok: true; value: T } | { settled: true; ok: false; error: unknown };

/** A caller's request: what it settled with, recorded synchronously (the registry calls resolve/reject directly). */
function caller<T>(deadline: number) {
  let outcome: Outcome<T> = { settled: false };
  let settles = 0;
  return {
    deadline,
    resolve: (value: T) => {
      settles++;
      outcome = { settled: true, ok: true, value };
    },
    reject: (error: unknown) => {
      settles++;
      outcome = { settled: true, ok: false, error };
    },
    get outcome(): Outcome<T> {
      return outcome;
    },
    get settles(): number {
      return settles;
    },
    /** The error code it failed with, "resolved", or "pending". */
    get code(): string {
      if (!outcome.settled) return "pending";
      if (outcome.ok) return "resolved";
      return outcome.error instanceof MeshraftError ? outcome.error.code : String(outcome.error);
    },
  };
}

const TIMEOUTS = { proposalTimeoutMs: 1000, readTimeoutMs: 500, transferTimeoutMs: 600 };
const entry = (index: number, term: number, type: Entry["type"] = "normal"): Entry => ({ index, term, type, data: new Uint8Array(3) });
const conf = (voters: string[], votersOutgoing: string[] = []): ConfState => ({ voters, learners: [], votersOutgoing });
const notLeader = (leaderId: string | null, detail: string) => new NotLeaderError(leaderId, leaderId ? `http://${leaderId}` : null, detail);

function proposal(reg: PendingRequests<string>, index: number, term: number, deadline = 1000) {
  const c = caller<{ index: number; term: number; result: string }>(deadline);
  reg.trackAt(index, { term, ...c });
  return c;
}

describe("PendingRequests: proposals", () => {
  it("a proposal applied with the term it was appended in resolves with index, term and result", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const p = proposal(reg, 5, 2);
    reg.applied(entry(4, 2), "other");
    expect(p.code).toBe("pending");
    reg.applied(entry(5, 2), "done");
    expect(p.outcome).toEqual({ settled: true, ok: true, value: { index: 5, term: 2, result: "done" } });
    expect(reg.proposalCount).toBe(0);
  });

  it("PROPOSAL_DROPPED: the index was applied with another term's entry, so the proposal is known not committed", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const p = proposal(reg, 5, 2);
    reg.applied(entry(5, 3), "theirs");
    expect(p.code).toBe("PROPOSAL_DROPPED");
    expect(String((p.outcome as { error: Error }).error.message)).toMatch(/index 5 was taken by an entry of term 3/);
  });

  it("OUTCOME_UNKNOWN, not dropped: a later term reuses the index before it committed here (the old entry may live on elsewhere)", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const old = proposal(reg, 5, 2);
    const next = proposal(reg, 5, 3);
    expect(old.code).toBe("OUTCOME_UNKNOWN");
    expect(next.code).toBe("pending");
    reg.applied(entry(5, 3), "mine");
    expect(next.code).toBe("resolved");
    expect(old.settles).toBe(1);
  });

  it("queued proposals are handed over in order and counted until they settle", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const a = caller<unknown>(1000);
    const b = caller<unknown>(1000);
    reg.queue(new Uint8Array([1]), a);
    reg.queue(new Uint8Array([2]), b);
    expect(reg.hasQueued).toBe(true);
    expect(reg.proposalCount).toBe(2);
    const batch = reg.takeQueued();
    expect(batch.map((q) => [...q.data])).toEqual([[1], [2]]);
    expect(batch.every((q) => q.pending.term === 0)).toBe(true);
    expect(reg.hasQueued).toBe(false);
    expect(reg.proposalCount).toBe(0);
    reg.trackForwarded(7, batch.map((q) => q.pending));
    expect(reg.proposalCount).toBe(2);
  });

  it("a forwarded batch the leader placed is tracked at consecutive indexes in the leader's term; placed at an index already applied here, OUTCOME_UNKNOWN", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const [a, b, c] = [caller<unknown>(1000), caller<unknown>(1000), caller<unknown>(1000)];
    reg.trackForwarded(9, [a, b, c].map((x) => ({ term: 0, ...x })));
    reg.placed([{ requestId: 9, index: 10, term: 4 }], 10);
    expect(a.code).toBe("OUTCOME_UNKNOWN");
    expect([b.code, c.code]).toEqual(["pending", "pending"]);
    reg.applied(entry(11, 4), "b");
    reg.applied(entry(12, 5), "c");
    expect([b.code, c.code]).toEqual(["resolved", "PROPOSAL_DROPPED"]);
    // An answer for a batch no longer held (expired, or answered twice) changes nothing.
    reg.placed([{ requestId: 9, index: 20, term: 4 }], 0);
    expect(reg.proposalCount).toBe(0);
  });

  it("a snapshot that replaced the log up to an index: proposals and membership changes at or below it are OUTCOME_UNKNOWN, those above wait on", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const below = proposal(reg, 8, 2);
    const at = proposal(reg, 10, 2);
    const above = proposal(reg, 11, 2);
    const change = caller<unknown>(1000);
    reg.trackConfChange(9, { term: 2, ...change });
    reg.snapshotRestored(10, conf(["n1", "n2", "n3"]));
    expect([below.code, at.code, above.code, change.code]).toEqual(["OUTCOME_UNKNOWN", "OUTCOME_UNKNOWN", "pending", "OUTCOME_UNKNOWN"]);
    expect((below.outcome as { error: Error }).error.message).toMatch(/a snapshot up to index 10 replaced the log before index 8/);
  });
});

describe("PendingRequests: membership changes and transfers", () => {
  it("a learner-only change resolves when its entry is applied; a voter change waits in joint consensus for the entry that leaves it", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const learner = caller<{ index: number; conf: ConfState }>(1000);
    reg.trackConfChange(4, { term: 1, ...learner });
    reg.confApplied(entry(4, 1, "config"), { ...conf(["n1"]), learners: ["n2"] });
    expect(learner.outcome).toEqual({ settled: true, ok: true, value: { index: 4, conf: { ...conf(["n1"]), learners: ["n2"] } } });

    const voter = caller<{ index: number; conf: ConfState }>(1000);
    reg.trackConfChange(5, { term: 1, ...voter });
    reg.confApplied(entry(5, 1, "config"), conf(["n1", "n2"], ["n1"]));
    expect(voter.code).toBe("pending");
    reg.confApplied(entry(6, 1, "config"), conf(["n1", "n2"]));
    expect(voter.outcome).toEqual({ settled: true, ok: true, value: { index: 6, conf: conf(["n1", "n2"]) } });
  });

  it("a change whose index was applied with another term is PROPOSAL_DROPPED; one whose index a later change reused is OUTCOME_UNKNOWN", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const reused = caller<unknown>(1000);
    reg.trackConfChange(4, { term: 1, ...reused });
    const dropped = caller<unknown>(1000);
    reg.trackConfChange(4, { term: 2, ...dropped });
    expect(reused.code).toBe("OUTCOME_UNKNOWN");
    reg.confApplied(entry(4, 3, "config"), conf(["n1"]));
    expect(dropped.code).toBe("PROPOSAL_DROPPED");
  });

  it("a snapshot outside joint consensus ends the wait of a voter change: it resolves with the snapshot's index and configuration", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const voter = caller<{ index: number; conf: ConfState }>(1000);
    reg.trackConfChange(5, { term: 1, ...voter });
    reg.confApplied(entry(5, 1, "config"), conf(["n1", "n2"], ["n1"]));
    reg.snapshotRestored(7, conf(["n1", "n2"], ["n1"]));
    expect(voter.code).toBe("pending");
    reg.snapshotRestored(9, conf(["n1", "n2"]));
    expect(voter.outcome).toEqual({ settled: true, ok: true, value: { index: 9, conf: conf(["n1", "n2"]) } });
  });

  it("every transfer asked for resolves with the new leader once another member leads", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const t1 = caller<string>(1000);
    const t2 = caller<string>(1000);
    reg.trackTransfer(t1);
    reg.trackTransfer(t2);
    reg.leaderElected("n2");
    expect([t1.outcome, t2.outcome]).toEqual([
      { settled: true, ok: true, value: "n2" },
      { settled: true, ok: true, value: "n2" },
    ]);
  });
});

describe("PendingRequests: reads", () => {
  it("a confirmed read resolves at once when its index is applied, else when the state machine gets there, in index order", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const order: number[] = [];
    const reads = [1, 2, 3, 4].map((id) => {
      const c = caller<number>(500);
      reg.trackRead(id, { ...c, resolve: (i) => (order.push(id), c.resolve(i)) });
      return c;
    });
    // Answers arrive out of order: 9, 7, 3 (already applied), 8.
    reg.confirmed(
      [
        { requestId: 1, index: 9 },
        { requestId: 2, index: 7 },
        { requestId: 3, index: 3 },
      ],
      5,
    );
    reg.confirmed([{ requestId: 4, index: 8 }], 5);
    expect(order).toEqual([3]);
    expect(reg.readCount).toBe(3);
    reg.appliedTo(7);
    expect(order).toEqual([3, 2]);
    reg.appliedTo(9);
    expect(order).toEqual([3, 2, 4, 1]);
    expect(reads.map((r) => r.outcome)).toEqual([9, 7, 3, 8].map((value) => ({ settled: true, ok: true, value })));
    expect(reg.readCount).toBe(0);
  });

  it("leadership lost or refused: reads and forwarded batches fail with NotLeaderError naming the leader; proposals in the log stay", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const read = caller<number>(500);
    reg.trackRead(1, read);
    const fwd = caller<unknown>(1000);
    reg.trackForwarded(2, [{ term: 0, ...fwd }]);
    const appended = proposal(reg, 5, 2);
    reg.refused(
      [
        { requestId: 1, leaderId: "n3", reason: "leadership-lost" },
        { requestId: 2, leaderId: null, reason: "not-leader" },
        { requestId: 99, leaderId: null, reason: "not-leader" },
      ],
      notLeader,
    );
    expect([read.code, fwd.code]).toEqual(["NOT_LEADER", "NOT_LEADER"]);
    const readErr = (read.outcome as { error: NotLeaderError }).error;
    expect(readErr.leaderId).toBe("n3");
    expect(readErr.leaderUrl).toBe("http://n3");
    expect((fwd.outcome as { error: Error }).error.message).toMatch(/the node it was forwarded to is not the leader/);
    // A deposed leader's appended proposal may still commit under the next leader: it waits for
    // its index (resolved, or dropped) or its deadline.
    expect(appended.code).toBe("pending");
  });
});

describe("PendingRequests: expiry", () => {
  it("each kind expires at its deadline (inclusive) with its own error; requests not yet due stay", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const p1 = proposal(reg, 1, 1, 100);
    const p2 = proposal(reg, 2, 1, 200);
    const fwd = caller<unknown>(100);
    reg.trackForwarded(1, [{ term: 0, ...fwd }]);
    const change = caller<unknown>(100);
    reg.trackConfChange(3, { term: 1, ...change });
    const transfer = caller<string>(100);
    reg.trackTransfer(transfer);
    const unconfirmed = caller<number>(100);
    reg.trackRead(1, unconfirmed);
    const unapplied = caller<number>(100);
    reg.trackRead(2, unapplied);
    reg.confirmed([{ requestId: 2, index: 50 }], 0);
    const laterRead = caller<number>(200);
    reg.trackRead(3, laterRead);

    reg.expire(99);
    const all = [p1, p2, fwd, change, transfer, unconfirmed, unapplied, laterRead];
    expect(all.map((c) => c.code)).toEqual(Array(8).fill("pending"));
    reg.expire(100);
    expect(all.map((c) => c.code)).toEqual([
      "OUTCOME_UNKNOWN",
      "pending",
      "OUTCOME_UNKNOWN",
      "OUTCOME_UNKNOWN",
      "TRANSFER_FAILED",
      "READ_TIMEOUT",
      "READ_TIMEOUT",
      "pending",
    ]);
    const message = (c: { outcome: Outcome<unknown> }) => ((c.outcome as { error: Error }).error as Error).message;
    expect(message(p1)).toContain("not applied within 1000 ms (index 1)");
    expect(message(transfer)).toContain("no other member took over within 600 ms");
    expect(message(unconfirmed)).toContain("no quorum confirmed the leader within 500 ms");
    expect(message(unapplied)).toContain("not applied up to 50 within 500 ms");
    reg.expire(200);
    expect([p2.code, laterRead.code]).toEqual(["OUTCOME_UNKNOWN", "READ_TIMEOUT"]);
    expect([reg.proposalCount, reg.readCount]).toEqual([0, 0]);
    expect(all.every((c) => c.settles === 1)).toBe(true);
  });

  it("a voter change waiting in joint consensus expires as OUTCOME_UNKNOWN: the leader leaves joint consensus by itself", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const voter = caller<unknown>(100);
    reg.trackConfChange(5, { term: 1, ...voter });
    reg.confApplied(entry(5, 1, "config"), conf(["n1", "n2"], ["n1"]));
    reg.expire(100);
    expect(voter.code).toBe("OUTCOME_UNKNOWN");
    expect((voter.outcome as { error: Error }).error.message).toMatch(/joint consensus was entered but not left within 1000 ms/);
  });

  it("reads parked for apply expire by deadline, not index order: a later index with an earlier deadline goes first", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const early = caller<number>(300);
    const late = caller<number>(100);
    reg.trackRead(1, early);
    reg.trackRead(2, late);
    reg.confirmed(
      [
        { requestId: 1, index: 5 },
        { requestId: 2, index: 9 },
      ],
      0,
    );
    reg.expire(100);
    expect([early.code, late.code]).toEqual(["pending", "READ_TIMEOUT"]);
    reg.appliedTo(9);
    expect(early.outcome).toEqual({ settled: true, ok: true, value: 5 });
  });
});

describe("PendingRequests: fail-all when the node stops", () => {
  it("what may be in a log is OUTCOME_UNKNOWN with the reason's message; what never left this node fails with the reason itself", () => {
    const reg = new PendingRequests<string>(TIMEOUTS);
    const appended = proposal(reg, 5, 2);
    const fwd = caller<unknown>(1000);
    reg.trackForwarded(1, [{ term: 0, ...fwd }]);
    const queued = caller<unknown>(1000);
    reg.queue(new Uint8Array(1), queued);
    const change = caller<unknown>(1000);
    reg.trackConfChange(6, { term: 2, ...change });
    const joint = caller<unknown>(1000);
    reg.trackConfChange(4, { term: 2, ...joint });
    reg.confApplied(entry(4, 2, "config"), conf(["n1", "n2"], ["n1"]));
    const read = caller<number>(1000);
    reg.trackRead(1, read);
    const parked = caller<number>(1000);
    reg.trackRead(2, parked);
    reg.confirmed([{ requestId: 2, index: 50 }], 0);
    const transfer = caller<string>(1000);
    reg.trackTransfer(transfer);

    const reason = new NodeStoppedError("node n1 was stopped");
    reg.failAll(reason);
    expect([appended, fwd, change, joint].map((c) => c.code)).toEqual(Array(4).fill("OUTCOME_UNKNOWN"));
    for (const c of [appended, fwd, change, joint]) expect((c.outcome as { error: Error }).error.message).toContain("node n1 was stopped");
    for (const c of [queued, read, parked, transfer]) expect((c.outcome as { error: unknown }).error).toBe(reason);
    expect([reg.proposalCount, reg.readCount, reg.hasQueued]).toEqual([0, 0, false]);

    // Nothing is held any more: later events settle nothing twice.
    reg.applied(entry(5, 2), "late");
    reg.appliedTo(100);
    reg.leaderElected("n2");
    reg.expire(Number.MAX_SAFE_INTEGER);
    const all = [appended, fwd, queued, change, joint, read, parked, transfer];
    expect(all.every((c) => c.settles === 1)).toBe(true);
  });
});
