/**
 * The Ready loop (src/node/ready-loop.ts) on a real core, storage and state machine: nothing of a
 * Ready but its early messages leaves before its state is durable; entries apply after the save
 * and before advance; a node stopped while persisting lets nothing of that Ready escape; snapshots
 * are taken when the policy says, and put off after a transient failure.
 */
import { describe, expect, it } from "vitest";
import { NotLeaderError } from "../../src/errors.ts";
import { Raft } from "../../src/core/raft.ts";
import { SeededRandom } from "../../src/core/random.ts";
import type { Message } from "../../src/core/types.ts";
import { KvStateMachine, encodeKvCommand, type KvResult } from "../../src/kv/kv.ts";
import { AddressBook } from "../../src/node/address-book.ts";
import { Listeners, type RaftNodeEvent } from "../../src/node/events.ts";
import { PendingRequests, type ProposeOutcome } from "../../src/node/pending.ts";
import { ReadyLoop } from "../../src/node/ready-loop.ts";
import { SnapshotPolicy } from "../../src/node/snapshot-policy.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import type { SaveBatch } from "../../src/storage/storage.ts";
import type { Transport } from "../../src/transport/transport.ts";

async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await null;
}

/** Real memory storage whose saves can be held open (a slow disk) or made to fail once. */
class SlowStorage extends MemoryStorage {
  held: (() => void)[] = [];
  hold = false;
  failNext: unknown = null;
  /** Fail the next snapshot save (only) with this error. */
  failNextSnapshot: unknown = null;
  constructor(private readonly log: string[]) {
    super();
  }
  override async save(batch: SaveBatch): Promise<void> {
    const what = batch.snapshot && batch.snapshot.meta.index > 0 ? `snapshot ${batch.snapshot.meta.index}` : `term ${batch.hardState?.term ?? "-"} entries ${batch.entries?.map((e) => e.index).join(",") ?? ""}`;
    const isSnapshot = batch.snapshot !== undefined && batch.snapshot.meta.index > 0;
    if (this.failNext !== null || (isSnapshot && this.failNextSnapshot !== null)) {
      const err = this.failNext ?? this.failNextSnapshot;
      if (this.failNext !== null) this.failNext = null;
      else this.failNextSnapshot = null;
      this.log.push(`save failed: ${what}`);
      throw err;
    }
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    await super.save(batch);
    this.log.push(`saved: ${what}`);
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
  override async compact(index: number): Promise<void> {
    await super.compact(index);
    this.log.push(`compacted to ${index}`);
  }
}

function setup(voters: string[], snapshotEveryEntries = 0) {
  const log: string[] = [];
  const storage = new SlowStorage(log);
  const sent: Message[] = [];
  const transport: Transport = {
    start: () => {},
    send: (m: Message) => {
      sent.push(m);
      log.push(`send ${m.type} to ${m.to}`);
    },
    close: async () => {},
  };
  const raft = new Raft(
    { id: "n1", electionTicks: 10, heartbeatTicks: 1, preVote: false, checkQuorum: false, random: new SeededRandom(1) },
    { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], conf: { voters, learners: [], votersOutgoing: [] } },
  );
  const advance = raft.advance.bind(raft);
  raft.advance = () => {
    log.push("advance");
    advance();
  };
  const kv = new KvStateMachine();
  const apply = kv.apply.bind(kv);
  kv.apply = (entry) => {
    log.push(`apply ${entry.index}`);
    return apply(entry);
  };
  const pending = new PendingRequests<KvResult>({ proposalTimeoutMs: 1000, readTimeoutMs: 1000, transferTimeoutMs: 1000 });
  const snapshots = new SnapshotPolicy({ everyEntries: snapshotEveryEntries, everyBytes: 0, marginEntries: 0 });
  const events = new Listeners<KvResult>();
  const seen: RaftNodeEvent<KvResult>[] = [];
  events.add((e) => seen.push(e));
  const state = { running: true, now: 0, failures: [] as unknown[] };
  const loop = new ReadyLoop<KvResult>({
    id: "n1",
    storage,
    transport,
    stateMachine: kv,
    pending,
    addresses: new AddressBook("n1", transport),
    snapshots,
    events,
    core: () => (state.running ? raft : null),
    now: () => state.now,
    fail: (error) => {
      state.failures.push(error);
      state.running = false;
    },
    notLeader: (leaderId, detail) => new NotLeaderError(leaderId, null, detail),
  });
  const propose = (key: string): { outcome: () => ProposeOutcome<KvResult> | unknown } => {
    let outcome: unknown;
    pending.queue(encodeKvCommand({ op: "put", key, value: new Uint8Array([1]) }), {
      deadline: 1000,
      resolve: (o) => (outcome = o),
      reject: (e) => (outcome = e),
    });
    loop.schedule();
    return { outcome: () => outcome };
  };
  return { log, storage, sent, raft, kv, loop, pending, seen, state, propose };
}

describe("ReadyLoop", () => {
  it("holds a Ready's messages until its term and vote are durable", async () => {
    const { raft, loop, storage, sent, log } = setup(["n1", "n2"]);
    storage.hold = true;
    raft.campaign();
    loop.schedule();
    await settle();
    expect(raft.role).toBe("candidate");
    expect(sent).toEqual([]);
    storage.release();
    await settle();
    expect(sent.map((m) => `${m.type} ${m.term}`)).toEqual(["RequestVote 1"]);
    expect(log.slice(0, 3)).toEqual(["saved: term 1 entries ", "send RequestVote to n2", "advance"]);
  });

  it("a leader's AppendEntries are early messages: they leave before its own save, which runs beside the followers'", async () => {
    const { raft, loop, storage, log } = setup(["n1", "n2"]);
    raft.campaign();
    loop.schedule();
    await settle();
    log.length = 0;
    storage.hold = true;
    raft.step({ type: "RequestVoteResponse", from: "n2", to: "n1", term: 1, voteGranted: true, preVote: false });
    loop.schedule();
    await settle();
    expect(raft.role).toBe("leader");
    expect(log).toEqual(["send AppendEntries to n2"]);
    storage.release();
    await settle();
    expect(log).toEqual(["send AppendEntries to n2", "saved: term - entries 1", "advance"]);
  });

  it("persist, then apply, then advance: a proposal resolves only after its entry was saved and applied", async () => {
    const { raft, loop, storage, log, propose, kv } = setup(["n1"]);
    raft.campaign();
    loop.schedule();
    await settle();
    log.length = 0;
    storage.hold = true;
    const p = propose("a");
    await settle();
    expect(log).toEqual([]);
    expect(p.outcome()).toBeUndefined();
    storage.release();
    await settle();
    // The entry is saved (with the hard state), the core told it is stable; the commit that
    // follows is applied in the next Ready, and only then is that Ready advanced.
    expect(log).toEqual(["saved: term 1 entries 2", "advance", "apply 2", "advance"]);
    expect(p.outcome()).toMatchObject({ index: 2, term: 1, result: { ok: true } });
    expect(kv.get("a")).toEqual(new Uint8Array([1]));
    expect(loop.appliedIndex).toBe(2);
  });

  it("a node stopped while persisting lets nothing of that Ready out: no message, no apply, no advance", async () => {
    const { raft, loop, storage, sent, log, state } = setup(["n1", "n2"]);
    storage.hold = true;
    raft.campaign();
    loop.schedule();
    await settle();
    state.running = false;
    storage.release();
    await loop.idle();
    await settle();
    expect(sent).toEqual([]);
    expect(log).toEqual(["saved: term 1 entries "]);
  });

  it("queued proposals refused by a core that does not lead fail with NotLeaderError, nothing proposed", async () => {
    const { raft, propose } = setup(["n1", "n2"]);
    const p = propose("a");
    await settle();
    expect(p.outcome()).toBeInstanceOf(NotLeaderError);
    expect(raft.log.lastIndex()).toBe(0);
  });

  it("takes a snapshot when the policy says and compacts up to it; a transient failure puts it off and it is retried once due", async () => {
    const { raft, loop, storage, log, propose, seen, state } = setup(["n1"], 3);
    raft.campaign();
    loop.schedule();
    await settle();
    storage.failNextSnapshot = Object.assign(new Error("too many open files"), { code: "EMFILE" });
    propose("a");
    propose("b");
    await settle();
    expect(loop.appliedIndex).toBe(3);
    expect(log).toContain("save failed: snapshot 3");
    expect(seen.filter((e) => e.type.startsWith("snapshot"))).toMatchObject([{ type: "snapshot-deferred", index: 3, retryInMs: 1000 }]);
    // Not due again before the pause ends, however often the loop runs.
    state.now = 999;
    propose("c");
    await settle();
    expect(seen.filter((e) => e.type === "snapshot-taken")).toEqual([]);
    state.now = 1000;
    loop.schedule();
    await settle();
    expect(seen.filter((e) => e.type === "snapshot-taken")).toEqual([{ type: "snapshot-taken", index: 4, compactedTo: 4 }]);
    expect(log.slice(-2)).toEqual(["saved: snapshot 4", "compacted to 4"]);
    expect(raft.log.offset).toBe(4);
  });

  it("a storage failure that is not transient fails the node", async () => {
    const { raft, loop, storage, state } = setup(["n1"]);
    const err = Object.assign(new Error("disk full"), { code: "ENOSPC" });
    storage.failNext = err;
    raft.campaign();
    loop.schedule();
    await settle();
    expect(state.failures).toEqual([err]);
  });
});
