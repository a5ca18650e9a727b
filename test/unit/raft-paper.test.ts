/**
 * The rules of the Raft paper (§5.1-§5.4, Figure 2), one test each, named after the rule.
 * Nodes are bare cores: we step messages in and read the messages they answer with.
 */
import { describe, expect, it } from "vitest";
import { Raft } from "../../src/core/raft.ts";
import { SeededRandom } from "../../src/core/random.ts";
import type { Entry, Message, NodeId } from "../../src/core/types.ts";
import { CoreCluster } from "../../src/testing/core-cluster.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A core with a log of the given terms (index i+1 has terms[i]) at `term`. */
function core(id: NodeId, opts: { terms?: number[]; term?: number; voters?: NodeId[]; seed?: number; preVote?: boolean; checkQuorum?: boolean; commit?: number } = {}): Raft {
  const entries: Entry[] = (opts.terms ?? []).map((t, i) => ({ index: i + 1, term: t, type: "normal", data: enc(`e${i + 1}`) }));
  return new Raft(
    { id, random: new SeededRandom(opts.seed ?? 7), preVote: opts.preVote ?? false, checkQuorum: opts.checkQuorum ?? false },
    {
      hardState: { term: opts.term ?? 0, votedFor: null, commit: opts.commit ?? 0 },
      snapshot: null,
      entries,
      conf: { voters: opts.voters ?? ["n1", "n2", "n3"], learners: [], votersOutgoing: [] },
    },
  );
}

/** Perform the pending Ready and return the messages it sends. */
function drain(r: Raft): Message[] {
  if (!r.hasReady()) return [];
  const rd = r.ready();
  r.advance();
  return [...rd.earlyMessages, ...rd.messages];
}

function makeLeader(r: Raft, voters: NodeId[]): void {
  r.campaign();
  drain(r);
  for (const v of voters) {
    if (v === r.id) continue;
    r.step({ type: "RequestVoteResponse", from: v, to: r.id, term: r.term, voteGranted: true, preVote: false });
    if (r.role === "leader") break;
  }
  drain(r);
}

function append(from: NodeId, to: NodeId, term: number, prevLogIndex: number, prevLogTerm: number, entryTerms: number[], leaderCommit: number): Message {
  return {
    type: "AppendEntries",
    from,
    to,
    term,
    prevLogIndex,
    prevLogTerm,
    entries: entryTerms.map((t, i) => ({ index: prevLogIndex + 1 + i, term: t, type: "normal" as const, data: enc(`x${prevLogIndex + 1 + i}`) })),
    leaderCommit,
  };
}

describe("§5.1 terms", () => {
  it("a follower, candidate or leader that sees a higher term adopts it and becomes follower", () => {
    const follower = core("n1", { term: 1 });
    follower.step(append("n2", "n1", 3, 0, 0, [], 0));
    expect([follower.role, follower.term, follower.leaderId]).toEqual(["follower", 3, "n2"]);

    const candidate = core("n1", { term: 1 });
    candidate.campaign();
    expect(candidate.role).toBe("candidate");
    candidate.step({ type: "RequestVoteResponse", from: "n2", to: "n1", term: 5, voteGranted: false, preVote: false });
    expect([candidate.role, candidate.term]).toEqual(["follower", 5]);

    const leader = core("n1", { term: 1 });
    makeLeader(leader, ["n1", "n2", "n3"]);
    expect(leader.role).toBe("leader");
    leader.step({ type: "HeartbeatResponse", from: "n2", to: "n1", term: 9, readRound: 0 });
    expect([leader.role, leader.term]).toEqual(["follower", 9]);
  });

  it("messages from a stale term are ignored, and a stale leader is told the current term", () => {
    const f = core("n1", { term: 3, checkQuorum: true });
    drain(f);
    f.step(append("n2", "n1", 2, 0, 0, [2], 0));
    expect(f.log.lastIndex()).toBe(0);
    expect(f.term).toBe(3);
    const out = drain(f);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: "AppendEntriesResponse", to: "n2", term: 3, success: false });

    // A stale vote request changes nothing and gets no vote.
    f.step({ type: "RequestVote", from: "n3", to: "n1", term: 2, lastLogIndex: 10, lastLogTerm: 2, preVote: false, transfer: false });
    expect(f.votedFor).toBeNull();
    expect(drain(f)).toEqual([]);
  });
});

describe("§5.2 leader election", () => {
  it("a follower that hears nothing for an election timeout starts an election", () => {
    const r = core("n1", { term: 1 });
    drain(r);
    for (let i = 0; i < 19 && r.role === "follower"; i++) r.tick();
    expect(r.role).toBe("candidate");
    expect(r.term).toBe(2);
    expect(r.votedFor).toBe("n1");
    const votes = drain(r).filter((m) => m.type === "RequestVote");
    expect(votes.map((m) => m.to).sort()).toEqual(["n2", "n3"]);
    expect(votes.every((m) => m.term === 2)).toBe(true);
  });

  it("randomized election timeouts are spread over [et, 2et)", () => {
    const et = 10;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 300; seed++) {
      const r = core("n1", { seed });
      let ticks = 0;
      while (r.role === "follower" && ticks < 100) {
        r.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(et);
      expect(ticks).toBeLessThan(2 * et);
      seen.add(ticks);
    }
    // Every value in the range shows up: no clustering that would cause repeated split votes.
    expect(seen.size).toBe(et);
  });

  it("a candidate that wins votes from a majority becomes leader", () => {
    for (const [size, grants, wins] of [
      [1, 0, true],
      [3, 1, true],
      [3, 0, false],
      [5, 2, true],
      [5, 1, false],
    ] as const) {
      const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
      const r = core("n1", { voters });
      r.campaign();
      drain(r);
      for (let i = 0; i < grants; i++) {
        r.step({ type: "RequestVoteResponse", from: voters[i + 1], to: "n1", term: r.term, voteGranted: true, preVote: false });
      }
      expect(r.role === "leader").toBe(wins);
    }
  });

  it("a candidate rejected by a majority returns to follower", () => {
    const r = core("n1", { voters: ["n1", "n2", "n3"] });
    r.campaign();
    r.step({ type: "RequestVoteResponse", from: "n2", to: "n1", term: 1, voteGranted: false, preVote: false });
    expect(r.role).toBe("candidate");
    r.step({ type: "RequestVoteResponse", from: "n3", to: "n1", term: 1, voteGranted: false, preVote: false });
    expect(r.role).toBe("follower");
  });

  it("each node votes for at most one candidate per term, first come first served", () => {
    const r = core("n1", { term: 1 });
    drain(r);
    const ask = (from: NodeId): boolean => {
      r.step({ type: "RequestVote", from, to: "n1", term: 2, lastLogIndex: 0, lastLogTerm: 0, preVote: false, transfer: false });
      const resp = drain(r).find((m) => m.type === "RequestVoteResponse");
      return resp !== undefined && resp.type === "RequestVoteResponse" && resp.voteGranted;
    };
    expect(ask("n2")).toBe(true);
    expect(ask("n3")).toBe(false);
    // A retransmitted request from the candidate we voted for is granted again.
    expect(ask("n2")).toBe(true);
    expect(r.votedFor).toBe("n2");
  });

  it("the vote is durable before it is sent", () => {
    const r = core("n1", { term: 1 });
    drain(r);
    r.step({ type: "RequestVote", from: "n2", to: "n1", term: 2, lastLogIndex: 0, lastLogTerm: 0, preVote: false, transfer: false });
    const rd = r.ready();
    expect(rd.hardState).toEqual({ term: 2, votedFor: "n2", commit: 0 });
    expect(rd.messages.some((m) => m.type === "RequestVoteResponse")).toBe(true);
  });

  it("a candidate steps down when it receives AppendEntries from a leader of its term", () => {
    const r = core("n1", { term: 1 });
    r.campaign();
    expect(r.role).toBe("candidate");
    r.step(append("n2", "n1", 2, 0, 0, [], 0));
    expect([r.role, r.term, r.leaderId]).toEqual(["follower", 2, "n2"]);
  });

  it("a leader sends heartbeats every heartbeat interval", () => {
    const r = core("n1");
    makeLeader(r, ["n1", "n2", "n3"]);
    r.tick();
    const hb = drain(r).filter((m) => m.type === "Heartbeat");
    expect(hb.map((m) => m.to).sort()).toEqual(["n2", "n3"]);
  });

  it("split votes are resolved by a later election", () => {
    const c = new CoreCluster(["n1", "n2", "n3", "n4"], { seed: 3, preVote: false });
    // n1 and n3 campaign at once; n2 hears only n1 and n4 only n3: 2 votes each of 4.
    c.cutLink("n1", "n4");
    c.cutLink("n3", "n2");
    c.node("n1").campaign();
    c.node("n3").campaign();
    c.stabilize();
    expect(c.leader()).toBeNull();
    expect([c.node("n1").term, c.node("n3").term]).toEqual([1, 1]);
    c.heal();
    for (let i = 0; i < 100 && c.leader() === null; i++) {
      c.tickAll();
      c.stabilize();
    }
    expect(c.leader()).not.toBeNull();
  });
});

describe("§5.3 log replication", () => {
  it("the leader appends a proposal and replicates it; it commits once a majority has it", () => {
    const c = new CoreCluster(["n1", "n2", "n3"]);
    c.campaign("n1");
    c.stabilize();
    const res = c.propose("n1", "hello");
    expect(res).toMatchObject({ status: "appended", index: 2 });
    c.isolate("n3");
    c.stabilize();
    expect(c.node("n1").log.committed).toBe(2);
    expect(c.appliedData("n1")).toEqual(["hello"]);
    expect(c.appliedData("n2")).toEqual(["hello"]);
    expect(c.appliedData("n3")).toEqual([]);
  });

  it("a follower rejects AppendEntries whose previous entry does not match", () => {
    const f = core("n1", { terms: [1, 1, 2], term: 2 });
    drain(f);
    f.step(append("n2", "n1", 3, 3, 3, [3], 0));
    const resp = drain(f).find((m) => m.type === "AppendEntriesResponse");
    expect(resp).toMatchObject({ success: false, matchIndex: 3 });
    expect(f.log.lastIndex()).toBe(3);
  });

  it("conflicting entries are truncated and replaced by the leader's", () => {
    const f = core("n1", { terms: [1, 1, 2, 2], term: 2 });
    drain(f);
    f.step(append("n2", "n1", 3, 2, 1, [3, 3], 0));
    const rd = f.ready();
    // The conflicting suffix (3, 4 of term 2) is replaced: storage is told to overwrite from 3.
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([
      [3, 3],
      [4, 3],
    ]);
    f.advance();
    expect(f.log.entries.map((e) => e.term)).toEqual([1, 1, 3, 3]);
  });

  it("an AppendEntries already applied (a duplicate) changes nothing", () => {
    const f = core("n1", { terms: [1, 1, 1], term: 1 });
    drain(f);
    f.step(append("n2", "n1", 1, 0, 0, [1], 0));
    expect(f.log.entries.map((e) => e.term)).toEqual([1, 1, 1]);
  });

  // Figure 7: followers (a)-(f) in every possible state of divergence are made identical to the
  // leader, whatever they lack or have in excess.
  const figure7Leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const figure7: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, followerTerms] of Object.entries(figure7)) {
    it(`Figure 7 follower (${name}) is brought in line with the leader`, () => {
      const voters = ["n1", "n2", "n3"];
      const leader = core("n1", { terms: figure7Leader, term: 7, voters });
      const follower = core("n2", { terms: followerTerms, term: 7, voters });
      // n3 has an empty log and votes for n1.
      const third = core("n3", { term: 7, voters });
      const nodes = new Map<NodeId, Raft>([["n1", leader], ["n2", follower], ["n3", third]]);
      leader.campaign();
      let queue = drain(leader);
      for (let round = 0; round < 100 && queue.length > 0; round++) {
        const next: Message[] = [];
        for (const m of queue) {
          nodes.get(m.to)!.step(m);
        }
        for (const n of nodes.values()) next.push(...drain(n));
        queue = next;
      }
      expect(leader.role).toBe("leader");
      expect(leader.term).toBe(8);
      const terms = (r: Raft): number[] => r.log.entries.map((e) => e.term);
      expect(terms(leader)).toEqual([...figure7Leader, 8]);
      expect(terms(follower)).toEqual(terms(leader));
      expect(follower.log.committed).toBe(11);
    });
  }

  it("followers commit up to the leader's commit index, and no further than they hold", () => {
    const f = core("n1", { term: 1 });
    drain(f);
    f.step(append("n2", "n1", 1, 0, 0, [1, 1, 1], 2));
    expect(f.log.committed).toBe(2);
    f.step({ type: "Heartbeat", from: "n2", to: "n1", term: 1, leaderCommit: 3, readRound: 0 });
    expect(f.log.committed).toBe(3);
    // A leader commit beyond the last entry received commits only what matches.
    f.step(append("n2", "n1", 1, 3, 1, [1], 10));
    expect(f.log.committed).toBe(4);
  });

  it("a follower far behind on a conflicting branch converges in a few round trips, not one per entry", () => {
    const n = 10_000;
    const leaderTerms = [1, 1, 1, 1, 1, ...Array(n).fill(3)];
    const followerTerms = [1, 1, 1, 1, 1, ...Array(n).fill(2)];
    const voters = ["n1", "n2", "n3"];
    const leader = core("n1", { terms: leaderTerms, term: 3, voters });
    const follower = core("n2", { terms: followerTerms, term: 3, voters });
    const third = core("n3", { terms: leaderTerms, term: 3, voters });
    const nodes = new Map<NodeId, Raft>([["n1", leader], ["n2", follower], ["n3", third]]);
    leader.campaign();
    let queue = drain(leader);
    let rejections = 0;
    for (let round = 0; round < 100 && queue.length > 0; round++) {
      const next: Message[] = [];
      for (const m of queue) {
        if (m.type === "AppendEntriesResponse" && m.from === "n2" && !m.success) rejections++;
        nodes.get(m.to)!.step(m);
      }
      for (const r of nodes.values()) next.push(...drain(r));
      queue = next;
    }
    expect(follower.log.lastIndex()).toBe(leader.log.lastIndex());
    expect(follower.log.term(n + 5)).toBe(3);
    expect(rejections).toBeLessThanOrEqual(3);
  });
});

describe("§5.4 safety", () => {
  it("votes go only to candidates whose log is at least as up-to-date (§5.4.1)", () => {
    // Voter's log: last entry index 3, term 2.
    const cases: [lastLogIndex: number, lastLogTerm: number, granted: boolean][] = [
      [3, 2, true], // same
      [4, 2, true], // longer, same term
      [2, 2, false], // shorter, same term
      [1, 3, true], // shorter but a later term
      [10, 1, false], // longer but an earlier term
    ];
    for (const [lastLogIndex, lastLogTerm, granted] of cases) {
      const r = core("n1", { terms: [1, 2, 2], term: 2 });
      drain(r);
      r.step({ type: "RequestVote", from: "n2", to: "n1", term: 3, lastLogIndex, lastLogTerm, preVote: false, transfer: false });
      const resp = drain(r).find((m) => m.type === "RequestVoteResponse");
      expect(resp && resp.type === "RequestVoteResponse" && resp.voteGranted, `candidate ${lastLogIndex}/${lastLogTerm}`).toBe(granted);
    }
  });

  it("Figure 8: a leader never commits an entry of an earlier term by counting replicas (§5.4.2)", () => {
    // s1 leads term 4 with an entry of term 2 at index 2 that s5 (term 3 at index 2) could still
    // overwrite. Even replicated on a majority, index 2 must not commit until an entry of term 4
    // does.
    const voters = ["s1", "s2", "s3", "s4", "s5"];
    const s1 = core("s1", { terms: [1, 2], term: 3, voters });
    makeLeader(s1, voters);
    expect(s1.role).toBe("leader");
    expect(s1.term).toBe(4);
    expect(s1.log.lastIndex()).toBe(3); // the no-op of term 4
    const ack = (from: NodeId, matchIndex: number): void => {
      s1.step({ type: "AppendEntriesResponse", from, to: "s1", term: 4, success: true, matchIndex, hintIndex: 0, hintTerm: 0 });
      drain(s1);
    };
    ack("s2", 2);
    ack("s3", 2);
    expect(s1.log.committed).toBe(0);
    ack("s2", 3);
    ack("s3", 3);
    // Now the term-4 entry is on a majority, and index 2 commits with it.
    expect(s1.log.committed).toBe(3);
  });

  it("a leader counts itself only for entries durable on its own storage", () => {
    const s1 = core("n1");
    makeLeader(s1, ["n1", "n2", "n3"]);
    s1.propose([{ data: enc("x") }]);
    // Followers acknowledge index 2 before the leader's own Ready for it has been persisted.
    s1.step({ type: "AppendEntriesResponse", from: "n2", to: "n1", term: 1, success: true, matchIndex: 2, hintIndex: 0, hintTerm: 0 });
    // One follower + a non-durable leader is not a majority of durable copies... but n2 alone
    // with the leader's durable copy of index 1 commits index 1 only.
    expect(s1.log.committed).toBeLessThan(2);
    drain(s1); // persist the leader's entry
    expect(s1.log.committed).toBe(2);
  });

  it("leader completeness: only a node holding every committed entry can be elected", () => {
    const c = new CoreCluster(["n1", "n2", "n3", "n4", "n5"], { seed: 11 });
    c.campaign("n1");
    c.stabilize();
    c.partition(["n1", "n2", "n3"], ["n4", "n5"]);
    c.propose("n1", "committed");
    c.stabilize();
    expect(c.node("n1").log.committed).toBe(2);
    // n1 and n2 go away; n3 (with the entry), n4 and n5 (without it) are a majority. n4 and n5
    // cannot win (n3 refuses them), so the only possible leader is n3, which has the entry.
    c.crash("n1");
    c.crash("n2");
    c.heal();
    for (let i = 0; i < 300 && c.leader() === null; i++) {
      c.tickAll();
      c.stabilize();
    }
    expect(c.leader()).toBe("n3");
    for (let i = 0; i < 5; i++) {
      c.tickAll();
      c.stabilize();
    }
    expect(c.appliedData("n3")).toEqual(["committed"]);
    expect(c.appliedData("n4")).toEqual(["committed"]);
  });
});
