/**
 * RaftNode on top of the WebSocket mesh: three nodes on 127.0.0.1 with real time elect a leader,
 * commit writes on every node, and carry on without a stopped leader.
 */
import { afterEach, describe, expect, it } from "vitest";
import { KvStateMachine, encodeKvCommand, type KvResult } from "../../src/kv/kv.ts";
import { RaftNode } from "../../src/node.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import { addressesOf, closeAll, meshCluster, meshNode, type MeshNode, waitFor } from "./mesh-fixtures.ts";

const text = new TextEncoder();
const put = (key: string, value: string): Uint8Array => encodeKvCommand({ op: "put", key, value: text.encode(value) });
const read = (kv: KvStateMachine, key: string): string | null => {
  const value = kv.get(key);
  return value === null ? null : new TextDecoder().decode(value);
};

let meshes: MeshNode[] = [];
let nodes: RaftNode<KvResult>[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await closeAll(meshes);
  meshes = [];
  nodes = [];
});

describe("RaftNode over the WebSocket mesh", () => {
  it("3 nodes elect a leader, commit writes on every node, and elect another when the leader stops", async () => {
    const ids = ["n1", "n2", "n3"];
    const cluster = await meshCluster(ids, { secret: "raft-test" });
    meshes = [...cluster.values()];
    const kvs = new Map<string, KvStateMachine>();
    for (const id of ids) {
      const kv = new KvStateMachine();
      kvs.set(id, kv);
      const node = new RaftNode<KvResult>({
        id,
        members: ids.map((m) => ({ id: m, url: cluster.get(m)!.server.url })),
        storage: new MemoryStorage(),
        transport: cluster.get(id)!.mesh,
        stateMachine: kv,
        tickMs: 10,
        electionTimeoutMs: 150,
        heartbeatIntervalMs: 30,
      });
      nodes.push(node);
      await node.start();
    }
    const leader = (among = nodes): RaftNode<KvResult> | undefined => among.find((n) => n.isLeader);
    await waitFor("a leader", () => leader() !== undefined, 10_000);

    const first = leader()!;
    const writes = Array.from({ length: 20 }, (_, i) => first.propose(put(`k${i}`, `v${i}`)));
    const outcomes = await Promise.all(writes);
    expect(outcomes.map((o) => o.result.ok)).toEqual(Array(20).fill(true));
    await waitFor("every node to apply the writes", () => ids.every((id) => read(kvs.get(id)!, "k19") === "v19"), 10_000);
    for (const id of ids) expect(read(kvs.get(id)!, "k0")).toBe("v0");

    // Stopping the leader closes its mesh; the other two elect a new leader and keep committing.
    await first.stop();
    const rest = nodes.filter((n) => n !== first);
    await waitFor("a new leader", () => leader(rest) !== undefined, 10_000);
    const second = leader(rest)!;
    expect(second.status().term).toBeGreaterThan(first.status().term);
    await second.propose(put("after", "failover"));
    await waitFor("both survivors to apply", () => rest.every((n) => read(kvs.get(n.id)!, "after") === "failover"), 10_000);

    for (const n of rest) {
      const stats = cluster.get(n.id)!.mesh.stats();
      for (const peer of Object.values(stats.peers)) expect(peer).toMatchObject({ malformed: 0, droppedUnencodable: 0 });
      expect(stats.handlerErrors).toBe(0);
    }
  });

  it("a member whose URL is 1,500 characters long gets a snapshot: its URL rides in the SnapshotMeta sent to it", async () => {
    const options = { secret: "raft-test" };
    const timing = { tickMs: 10, electionTimeoutMs: 150, heartbeatIntervalMs: 30, snapshotEveryEntries: 10, snapshotMarginEntries: 0 };
    const cluster = await meshCluster(["n1", "n2"], options);
    meshes = [...cluster.values()];
    const kvs = new Map<string, KvStateMachine>();
    const start = async (id: string, transport: MeshNode, members: { id: string; url: string }[]): Promise<RaftNode<KvResult>> => {
      const kv = new KvStateMachine();
      kvs.set(id, kv);
      const node = new RaftNode<KvResult>({
        id,
        members,
        join: members.length === 0,
        storage: new MemoryStorage(),
        transport: transport.mesh,
        stateMachine: kv,
        ...timing,
      });
      nodes.push(node);
      await node.start();
      return node;
    };
    for (const m of meshes) await start(m.id, m, addressesOf(meshes));
    await waitFor("a leader", () => nodes.some((n) => n.isLeader), 10_000);
    const leader = nodes.find((n) => n.isLeader)!;

    // n3 is served under a long path prefix (a proxy's, say): its URL is far beyond the 256 bytes of an id.
    const n3mesh = await meshNode("n3", addressesOf(meshes), options, 0, `/${"p".repeat(1_480)}`);
    meshes.push(n3mesh);
    const longUrl = n3mesh.server.url;
    expect(longUrl.length).toBeGreaterThanOrEqual(1_500);
    const added = await leader.addLearner("n3", longUrl);
    expect(added.conf.urls?.n3).toBe(longUrl);

    // Snapshots taken after the change carry n3's URL, and the log below them is gone: n3, which
    // has nothing yet, can only catch up from such a snapshot.
    let snapshotIndex = 0;
    leader.on((e) => {
      if (e.type === "snapshot-taken" && e.compactedTo > added.index) snapshotIndex = e.index;
    });
    for (let i = 0; i < 30; i++) await leader.propose(put(`k${i}`, `v${i}`));
    await waitFor("a snapshot past the change, and the log compacted", () => snapshotIndex > added.index, 10_000);

    const n3 = await start("n3", n3mesh, []);
    await waitFor("n3 to restore the snapshot and apply the writes", () => read(kvs.get("n3")!, "k29") === "v29", 15_000);
    expect(n3.membership().urls?.n3).toBe(longUrl);
    for (const m of meshes) {
      for (const peer of Object.values(m.mesh.stats().peers)) expect(peer).toMatchObject({ malformed: 0, droppedUnencodable: 0 });
    }
  });
});
