/**
 * Snapshots and log compaction (§7), after the MIT 6.824 snapshot lab: the log stays bounded,
 * followers that fall behind the compacted log catch up through InstallSnapshot (disconnected,
 * crashed, or on an unreliable network), and restarts come back from snapshot + log tail.
 * Invariants are checked after every event.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { NodeId } from "../../src/core/types.ts";
import { encodeKvCommand } from "../../src/kv/kv.ts";
import { TestCluster, type TestClusterOptions } from "../../src/testing/cluster.ts";
import { InvariantChecker } from "../../src/testing/invariants.ts";

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

const dec = new TextDecoder();

async function setup(seed: number, opts: Partial<TestClusterOptions> = {}) {
  const c = new TestCluster({
    nodes: 3,
    seed,
    ...opts,
    nodeOptions: { snapshotEveryEntries: 10, snapshotMarginEntries: 2, snapshotChunkBytes: 64, ...opts.nodeOptions },
  });
  cluster = c;
  const checker = new InvariantChecker(c);
  const snapshotsRestored = new Map<NodeId, number>();
  c.on((e) => {
    if (e.type === "snapshot-restored") snapshotsRestored.set(e.id, (snapshotsRestored.get(e.id) ?? 0) + 1);
  });
  await c.start();
  const check = (): void => checker.check();
  /** Write `n` keys through whoever leads, one after another; returns how many committed. */
  const write = async (prefix: string, n: number, among?: NodeId[]): Promise<number> => {
    let done = 0;
    for (let i = 0; i < n; i++) {
      for (let attempt = 0; attempt < 50; attempt++) {
        const leader = c.leaders().find((l) => !among || among.includes(l));
        if (!leader) {
          await c.run(50, check);
          continue;
        }
        let settled: boolean | null = null;
        c.node(leader)
          .propose(encodeKvCommand({ op: "put", key: `${prefix}${i}`, value: new TextEncoder().encode(`${prefix}-value-${i}`) }))
          .then(
            () => (settled = true),
            () => (settled = false),
          );
        await c.runUntil(() => settled !== null, 3_000, check);
        if (settled) {
          done++;
          break;
        }
      }
    }
    return done;
  };
  /** Every live node's KV holds the same state. */
  const converged = async (): Promise<boolean> =>
    c.runUntil(() => {
      const ups = c.ids.filter((id) => c.member(id).up);
      const states = ups.map((id) => c.member(id).kv.snapshot());
      return states.every((s) => s.length === states[0].length && s.every((b, i) => b === states[0][i]));
    }, 5_000, check);
  return { c, check, write, converged, snapshotsRestored };
}

describe("snapshots and log compaction", () => {
  it("basic: the in-memory log and the stored log stay bounded while writes go on", async () => {
    const { c, write, check } = await setup(301);
    await c.waitForLeader();
    expect(await write("k", 200)).toBe(200);
    await c.run(500, check);
    for (const id of c.ids) {
      const m = c.member(id);
      // Snapshot every 10 entries with a margin of 2: a handful of entries in memory and on disk,
      // not 200.
      expect(m.node.core!.log.entries.length, id).toBeLessThan(30);
      expect(m.storage.storedEntryCount, id).toBeLessThan(30);
      expect(m.storage.snapshotIndex, id).toBeGreaterThan(180);
      expect(m.kv.size).toBe(200);
    }
  });

  it("a disconnected follower catches up by InstallSnapshot (the entries it needs are compacted)", async () => {
    const { c, write, check, converged, snapshotsRestored } = await setup(302);
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader)!;
    c.disconnect(follower);
    expect(await write("a", 60, c.ids.filter((id) => id !== follower))).toBe(60);
    expect(c.node(leader).core!.log.offset).toBeGreaterThan(c.node(follower).status().lastIndex);
    c.connect(follower);
    expect(await converged()).toBe(true);
    expect(snapshotsRestored.get(follower) ?? 0).toBeGreaterThanOrEqual(1);
    expect(dec.decode(c.member(follower).kv.get("a59")!)).toBe("a-value-59");
    await c.run(300, check);
  });

  it("a follower receiving a snapshot while the leader takes newer ones continues from the log: one transfer, not a chase", async () => {
    // 16-byte chunks: the transfer takes many round trips, and writes go on meanwhile, so the
    // leader snapshots (every 10 entries) several times before the follower has the first one.
    const { c, write, check, converged, snapshotsRestored } = await setup(306, { nodeOptions: { snapshotChunkBytes: 16 } });
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader)!;
    c.disconnect(follower);
    expect(await write("f", 60, c.ids.filter((id) => id !== follower))).toBe(60);
    c.connect(follower);
    expect(await write("g", 40, c.ids.filter((id) => id !== follower))).toBe(40);
    expect(await converged()).toBe(true);
    expect(c.member(follower).kv.size).toBe(100);
    expect(snapshotsRestored.get(follower)).toBe(1);
    await c.run(300, check);
  });

  it("a crashed follower restarts from its snapshot and log tail, then catches up by snapshot", async () => {
    const { c, write, check, converged } = await setup(303);
    await c.waitForLeader();
    expect(await write("b", 30)).toBe(30);
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader)!;
    c.crash(follower);
    expect(await write("c", 40, c.ids.filter((id) => id !== follower))).toBe(40);
    await c.restart(follower);
    // Right after restart it has its own snapshot state (no leader contact needed for that).
    expect(c.member(follower).storage.snapshotIndex).toBeGreaterThan(0);
    expect(await converged()).toBe(true);
    expect(c.member(follower).kv.size).toBe(70);
    await c.run(300, check);
  });

  it("a follower on an unreliable network catches up by snapshot, with chunks lost, duplicated and reordered", async () => {
    const { c, write, check, converged } = await setup(304);
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader)!;
    c.disconnect(follower);
    expect(await write("d", 50, c.ids.filter((id) => id !== follower))).toBe(50);
    c.setUnreliable(true);
    c.connect(follower);
    await c.run(3_000, check);
    c.setUnreliable(false);
    expect(await converged()).toBe(true);
    expect(c.member(follower).kv.size).toBe(50);
  });

  it("all nodes crash and restart from their snapshots; nothing committed is lost, no snapshot is lost", async () => {
    const { c, write, check, converged } = await setup(305);
    await c.waitForLeader();
    expect(await write("e", 45)).toBe(45);
    await c.run(300, check);
    const snapIndexes = new Map(c.ids.map((id) => [id, c.member(id).storage.snapshotIndex]));
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) await c.restart(id);
    for (const id of c.ids) {
      expect(c.member(id).storage.snapshotIndex).toBe(snapIndexes.get(id));
      expect(c.node(id).status().appliedIndex).toBeGreaterThanOrEqual(snapIndexes.get(id)!);
    }
    await c.waitForLeader();
    expect(await write("f", 15)).toBe(15);
    expect(await converged()).toBe(true);
    for (const id of c.ids) expect(c.member(id).kv.size).toBe(60);
  });
});
