/**
 * The driver's promises: persist before send, group commit, typed errors with leader hints,
 * forwarding, follower reads, fail-stop on storage errors, events.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/core/random.ts";
import { NodeStoppedError, NotLeaderError, OutcomeUnknownError, ProposalDroppedError } from "../../src/errors.ts";
import { KvStateMachine, encodeKvCommand, type KvResult } from "../../src/kv/kv.ts";
import { RaftNode, type RaftNodeEvent, type RaftNodeOptions } from "../../src/node.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import type { SaveBatch } from "../../src/storage/storage.ts";
import { VirtualClock } from "../../src/testing/clock.ts";
import { TestCluster } from "../../src/testing/cluster.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";

const ids = ["n1", "n2", "n3"];
const members = ids.map((id) => ({ id, url: `http://127.0.0.1:700${id.slice(1)}` }));
const put = (key: string, value: string): Uint8Array => encodeKvCommand({ op: "put", key, value: new TextEncoder().encode(value) });

async function settle(): Promise<void> {
  for (let i = 0; i < 24; i++) await null;
}

async function setup(opts: Partial<RaftNodeOptions<KvResult>> = {}, storageFor?: (id: string, clock: VirtualClock) => MemoryStorage) {
  const clock = new VirtualClock();
  const network = new MemoryNetwork({ clock, random: new SeededRandom(5), faults: { minDelayMs: 1, maxDelayMs: 1 } });
  const nodes = new Map<string, RaftNode<KvResult>>();
  const kvs = new Map<string, KvStateMachine>();
  const storages = new Map<string, MemoryStorage>();
  for (const id of ids) {
    const kv = new KvStateMachine();
    const storage = storageFor?.(id, clock) ?? new MemoryStorage({ clock, saveLatencyMs: 2 });
    const node = new RaftNode<KvResult>({
      id,
      members,
      storage,
      transport: network.connect(id),
      stateMachine: kv,
      clock,
      random: new SeededRandom(id.charCodeAt(1)),
      tickMs: 10,
      electionTimeoutMs: 100,
      heartbeatIntervalMs: 20,
      ...opts,
    });
    nodes.set(id, node);
    kvs.set(id, kv);
    storages.set(id, storage);
    await node.start();
  }
  const run = async (ms: number, until?: () => boolean): Promise<void> => {
    const end = clock.now() + ms;
    while (clock.nextTime() !== undefined && clock.nextTime()! <= end) {
      clock.fireNext();
      await settle();
      if (until?.()) return;
    }
  };
  const leader = (): RaftNode<KvResult> | undefined => [...nodes.values()].find((n) => n.isLeader);
  nodes.get("n1")!.campaign();
  await run(1000, () => leader() !== undefined && [...nodes.values()].every((n) => n.status().commitIndex >= 1));
  return { clock, network, nodes, kvs, storages, run, leader };
}

describe("RaftNode", () => {
  it("resolves a proposal with its index, term and the state machine's result once applied", async () => {
    const { nodes, run } = await setup();
    const n1 = nodes.get("n1")!;
    expect(n1.isLeader).toBe(true);
    const p = n1.propose(put("a", "1"));
    let out: Awaited<typeof p> | undefined;
    void p.then((o) => (out = o));
    await run(200, () => out !== undefined);
    expect(out).toMatchObject({ index: 2, term: 1, result: { ok: true, prev: null } });
    const p2 = n1.propose(put("a", "2"));
    let out2: Awaited<typeof p2> | undefined;
    void p2.then((o) => (out2 = o));
    await run(200, () => out2 !== undefined);
    expect(new TextDecoder().decode(out2!.result.prev!)).toBe("1");
  });

  it("snapshots once the entries applied since the last snapshot hold snapshotEveryBytes, however few they are", async () => {
    const { nodes, run } = await setup({ snapshotEveryEntries: 10_000, snapshotEveryBytes: 64 * 1024, snapshotMarginEntries: 0 });
    const n1 = nodes.get("n1")!;
    const taken: { index: number; compactedTo: number }[] = [];
    n1.on((e) => {
      if (e.type === "snapshot-taken") taken.push(e);
    });
    const big = "x".repeat(20 * 1024);
    for (let i = 0; i < 3; i++) await Promise.all([n1.propose(put(`k${i}`, big)), run(200)]);
    expect(taken).toEqual([]); // 60 KiB of entries: not yet
    await Promise.all([n1.propose(put("k3", big)), run(200)]);
    expect(taken).toHaveLength(1); // 80 KiB, after 5 entries
    expect(taken[0].index).toBe(n1.status().appliedIndex);
    for (let i = 4; i < 7; i++) await Promise.all([n1.propose(put(`k${i}`, big)), run(200)]);
    expect(taken).toHaveLength(1); // counted again from the snapshot
    await Promise.all([n1.propose(put("k7", big)), run(200)]);
    expect(taken).toHaveLength(2);
  });

  it("snapshotNow takes a snapshot at the applied index whatever the settings say, and resolves at once when the last one covers it", async () => {
    const { nodes, run } = await setup({ snapshotEveryEntries: 10_000, snapshotEveryBytes: 0, snapshotMarginEntries: 0 });
    const n1 = nodes.get("n1")!;
    for (let i = 0; i < 3; i++) await Promise.all([n1.propose(put(`k${i}`, "v")), run(200)]);
    expect(n1.lastSnapshotIndex).toBe(0);
    const applied = n1.status().appliedIndex;
    let index: number | undefined;
    void n1.snapshotNow().then((i) => (index = i));
    await run(200, () => index !== undefined);
    expect(index).toBe(applied);
    expect(n1.lastSnapshotIndex).toBe(applied);
    await expect(n1.snapshotNow()).resolves.toBe(applied); // nothing applied since: that one
    expect(nodes.get("n2")!.lastSnapshotIndex).toBe(0); // only the node asked
  });

  it("group commit: proposals made while a batch is being persisted share the next fsync", async () => {
    const { nodes, storages, run } = await setup();
    const n1 = nodes.get("n1")!;
    const savesBefore = storages.get("n1")!.saves;
    const promises = Array.from({ length: 200 }, (_, i) => n1.propose(put(`k${i}`, `v${i}`)));
    let done = 0;
    for (const p of promises) void p.then(() => done++);
    await run(1000, () => done === 200);
    expect(done).toBe(200);
    // 200 proposals, a handful of durable batches on the leader (not 200).
    expect(storages.get("n1")!.saves - savesBefore).toBeLessThan(10);
  });

  it("a follower rejects a proposal with NotLeaderError naming the leader and its URL", async () => {
    const { nodes } = await setup();
    const err = await nodes.get("n2")!.propose(put("a", "1")).catch((e) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err.code).toBe("NOT_LEADER");
    expect(err.leaderId).toBe("n1");
    expect(err.leaderUrl).toBe("http://127.0.0.1:7001");
    expect(err.message).toContain("the leader is n1 at http://127.0.0.1:7001");
  });

  it("with forwarding, a follower's proposal is committed through the leader and resolves there", async () => {
    const { nodes, kvs, run } = await setup({ forwardProposals: true });
    let out: { index: number; result: KvResult } | undefined;
    void nodes.get("n3")!.propose(put("fwd", "yes")).then((o) => (out = o));
    await run(500, () => out !== undefined);
    expect(out!.result.ok).toBe(true);
    expect(new TextDecoder().decode(kvs.get("n3")!.get("fwd")!)).toBe("yes");
    expect(new TextDecoder().decode(kvs.get("n1")!.get("fwd")!)).toBe("yes");
  });

  it("a linearizable read on a follower waits until it has applied the leader's commit index", async () => {
    const { nodes, kvs, run } = await setup();
    let wrote = false;
    void nodes.get("n1")!.propose(put("r", "1")).then(() => (wrote = true));
    await run(500, () => wrote);
    let readAt: number | undefined;
    void nodes.get("n2")!.read().then((i) => (readAt = i));
    await run(500, () => readAt !== undefined);
    expect(readAt).toBeGreaterThanOrEqual(2);
    expect(nodes.get("n2")!.status().appliedIndex).toBeGreaterThanOrEqual(readAt!);
    expect(new TextDecoder().decode(kvs.get("n2")!.get("r")!)).toBe("1");
  });

  it("a read waiting for its index to be applied is served when a snapshot install reaches that index", async () => {
    // n3 hears heartbeats (and so answers reads) but gets no entries until the leader has
    // compacted them: it catches up by InstallSnapshot alone, with no entry after the snapshot.
    let starve = true;
    const c = new TestCluster({
      nodes: 3,
      seed: 11,
      filter: (m) => (starve && m.to === "n3" && (m.type === "AppendEntries" || m.type === "InstallSnapshot") ? null : m),
      nodeOptions: { snapshotEveryEntries: 10, snapshotMarginEntries: 0, readTimeoutMs: 1_000 },
    });
    try {
      await c.start();
      const leader = await c.waitForLeader();
      expect(leader).not.toBe("n3");
      // The leader's no-op plus nine writes: it snapshots at 10, the last index, and compacts.
      let snapshotAt = 0;
      c.on((e) => {
        if (e.type === "snapshot-taken" && e.id === leader) snapshotAt = e.index;
      });
      for (let i = 0; i < 9; i++) {
        let done = false;
        void c.node(leader).propose(put(`k${i}`, "v")).then(() => (done = true));
        expect(await c.runUntil(() => done, 1_000)).toBe(true);
      }
      expect(await c.runUntil(() => snapshotAt > 0, 1_000)).toBe(true);
      const commit = c.node(leader).status().commitIndex;
      expect(snapshotAt).toBe(commit);

      // n3's read is confirmed at the commit index, which n3 cannot apply yet.
      let read: { index?: number; error?: unknown } | undefined;
      c.node("n3").read().then(
        (index) => (read = { index }),
        (error) => (read = { error }),
      );
      await c.run(100);
      expect(c.network.stats.sentByType.ReadIndexResponse).toBeGreaterThan(0);
      expect(read).toBeUndefined();
      expect(c.node("n3").status().appliedIndex).toBeLessThan(commit);

      // Now the snapshot gets through; it ends exactly at the read's index.
      starve = false;
      let restored = false;
      c.on((e) => {
        if (e.type === "snapshot-restored" && e.id === "n3") restored = true;
      });
      expect(await c.runUntil(() => read !== undefined, 2_000)).toBe(true);
      expect(restored).toBe(true);
      expect(c.node("n3").status().lastIndex).toBe(commit);
      expect(read).toEqual({ index: commit });
    } finally {
      await c.stop();
    }
  });

  it("waitForLeader waits through an election, then resolves at once; with no quorum it fails with NOT_LEADER", async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: new SeededRandom(9), faults: { minDelayMs: 1, maxDelayMs: 1 } });
    const make = (id: string): RaftNode<KvResult> =>
      new RaftNode<KvResult>({ id, members, storage: new MemoryStorage({ clock }), transport: network.connect(id), stateMachine: new KvStateMachine(), clock, random: new SeededRandom(id.charCodeAt(1)), tickMs: 10, electionTimeoutMs: 100, heartbeatIntervalMs: 20 });
    const runFor = async (ms: number, until: () => boolean): Promise<void> => {
      const end = clock.now() + ms;
      while (!until() && clock.nextTime() !== undefined && clock.nextTime()! <= end) {
        clock.fireNext();
        await settle();
      }
    };
    // n1 alone of three voters: no election can succeed.
    const lone = make("n1");
    await lone.start();
    let loneErr: unknown;
    void lone.waitForLeader(1_000).catch((e) => (loneErr = e));
    await runFor(2_000, () => loneErr !== undefined);
    expect(loneErr).toBeInstanceOf(NotLeaderError);
    expect((loneErr as NotLeaderError).message).toContain("none elected within 1000 ms");
    // n2 and n3 start: n3, asked right after its start, learns the leader the election makes.
    const n2 = make("n2");
    const n3 = make("n3");
    await n2.start();
    await n3.start();
    let leaderId: string | undefined;
    void n3.waitForLeader(5_000).then((id) => (leaderId = id));
    await runFor(5_000, () => leaderId !== undefined);
    expect(ids).toContain(leaderId);
    expect(await n3.waitForLeader()).toBe(n3.status().leaderId);
    await Promise.all([lone.stop(), n2.stop(), n3.stop()]);
  });

  it("a leader cut off from the others cannot confirm a read, and fails it after the timeout", async () => {
    const { nodes, network, run } = await setup({ readTimeoutMs: 300 });
    network.isolate("n1");
    let err: unknown;
    void nodes.get("n1")!.read().catch((e) => (err = e));
    await run(1000, () => err !== undefined);
    expect((err as { code: string }).code).toMatch(/READ_TIMEOUT|NOT_LEADER/);
  });

  it("reports status and emits role and applied events", async () => {
    const { nodes, run } = await setup();
    const n1 = nodes.get("n1")!;
    const events: RaftNodeEvent<KvResult>[] = [];
    n1.on((e) => events.push(e));
    let done = false;
    void n1.propose(put("s", "1")).then(() => (done = true));
    await run(300, () => done);
    const s = n1.status();
    expect(s).toMatchObject({ id: "n1", role: "leader", term: 1, leaderId: "n1", voters: ids, learners: [] });
    expect(s.commitIndex).toBe(2);
    expect(s.appliedIndex).toBe(2);
    expect(s.lastIndex).toBe(2);
    expect(events.some((e) => e.type === "applied" && e.entry.index === 2)).toBe(true);
  });

  it("a storage failure stops the node (fail-stop) and rejects what was pending", async () => {
    class FailingStorage extends MemoryStorage {
      fail = false;
      override save(batch: SaveBatch): Promise<void> {
        if (this.fail) return Promise.reject(new Error("ENOSPC: no space left on device"));
        return super.save(batch);
      }
    }
    const errors: unknown[] = [];
    const { nodes, storages, run } = await setup({ onError: (e) => errors.push(e) }, (_id, clock) => new FailingStorage({ clock, saveLatencyMs: 1 }));
    (storages.get("n1") as FailingStorage).fail = true;
    const n1 = nodes.get("n1")!;
    let err: unknown;
    void n1.propose(put("x", "1")).catch((e) => (err = e));
    await run(200, () => err !== undefined);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(n1.stopped).toBe(true);
    expect(String((errors[0] as Error).message)).toContain("ENOSPC");
    await expect(n1.propose(put("y", "1"))).rejects.toBeInstanceOf(NodeStoppedError);
    // The others carry on: a new leader is elected among n2 and n3.
    await run(2000, () => nodes.get("n2")!.isLeader || nodes.get("n3")!.isLeader);
    expect(nodes.get("n2")!.isLeader || nodes.get("n3")!.isLeader).toBe(true);
  });

  it("stopping rejects a proposal the core never took with NodeStoppedError (nothing proposed), one it took with OutcomeUnknownError", async () => {
    const { leader, run } = await setup();
    const n = leader()!;
    const lastIndex = n.status().lastIndex;
    // Appended to the leader's log (a save is in flight), then the node stops: fate unknown.
    const appended = n.propose(put("a", "1")).catch((e: unknown) => e);
    await settle();
    expect(n.status().lastIndex).toBe(lastIndex + 1);
    // Still queued (proposals reach the core on the next turn of the loop) when the node stops.
    const queued = n.propose(put("b", "1")).catch((e: unknown) => e);
    const stopping = n.stop();
    expect(await queued).toBeInstanceOf(NodeStoppedError);
    expect(await appended).toBeInstanceOf(OutcomeUnknownError);
    await run(100); // the save in flight completes, so storage can close
    await stopping;
    expect(n.status().lastIndex).toBe(lastIndex + 1);
    await expect(n.propose(put("c", "1"))).rejects.toBeInstanceOf(NodeStoppedError);
  });

  it("a deposed leader: its pending read fails with NotLeaderError on step-down, and its proposal, overwritten by the next leader, is PROPOSAL_DROPPED", async () => {
    const { network, nodes, run, leader } = await setup();
    const n1 = nodes.get("n1")!;
    expect(n1.isLeader).toBe(true);
    network.isolate("n1");
    const proposed = n1.propose(put("lost", "1")).catch((e: unknown) => e);
    const read = n1.read().catch((e: unknown) => e);
    await run(50);
    const placedAt = n1.status().lastIndex;
    // check-quorum: n1 hears from no quorum within an election timeout and steps down; the others elect a leader.
    await run(2000, () => !n1.isLeader && leader() !== undefined && leader() !== n1);
    const err = await read;
    expect(err).toBeInstanceOf(NotLeaderError);
    const next = leader()!;
    await run(500, () => next.status().commitIndex >= placedAt);
    network.heal();
    let outcome: unknown;
    void proposed.then((o) => (outcome = o));
    await run(2000, () => outcome !== undefined);
    expect(outcome).toBeInstanceOf(ProposalDroppedError);
    expect((outcome as ProposalDroppedError).code).toBe("PROPOSAL_DROPPED");
    expect(n1.status().appliedIndex).toBeGreaterThanOrEqual(placedAt);
  });

  it("rejects bad configuration with a clear error", () => {
    const base = { id: "n1", storage: new MemoryStorage(), transport: { start() {}, send() {}, close: async () => {} }, stateMachine: new KvStateMachine() };
    expect(() => new RaftNode({ ...base, members: ["n2", "n3"] })).toThrow(/must include this node's id "n1"/);
    expect(() => new RaftNode({ ...base, members: ["n1"], tickMs: 0 })).toThrow(/tickMs must be a positive number/);
  });
});
