/**
 * The browser adapter's storage and transport under the real driver: three RaftNodes on
 * IndexedDbStorage (fake-indexeddb) talking over BroadcastChannelTransport (Node's
 * BroadcastChannel), real clock. They elect a leader, commit writes, stop, and come back from
 * IndexedDB with every write. (The tab member itself, Web Locks and Chromium come later.)
 */
import { IDBKeyRange, indexedDB } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { BroadcastChannelTransport } from "../../adapters/browser/broadcast-transport.ts";
import { IndexedDbStorage } from "../../adapters/browser/idb-storage.ts";
import { realClock } from "../../src/clock.ts";
import { encodeKvCommand, type KvResult, KvStateMachine } from "../../src/kv/kv.ts";
import { RaftNode } from "../../src/node.ts";

const ids = ["t1", "t2", "t3"];
const env = { indexedDB, IDBKeyRange };
const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = realClock.now() + timeoutMs;
  while (!done()) {
    if (realClock.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => realClock.setTimer(10, resolve));
  }
}

describe("IndexedDbStorage and BroadcastChannelTransport under RaftNode", () => {
  it("three members elect a leader, commit writes, and keep them across a restart from IndexedDB", async () => {
    const clusterId = `pieces-${process.pid}-${realClock.now()}`;
    const start = async (): Promise<{ nodes: RaftNode<KvResult>[]; kvs: KvStateMachine[] }> => {
      const kvs = ids.map(() => new KvStateMachine());
      const nodes = await Promise.all(
        ids.map(async (id, i) => {
          const node = new RaftNode<KvResult>({
            id,
            members: ids,
            storage: await IndexedDbStorage.open({ clusterId, nodeId: id, env }),
            transport: new BroadcastChannelTransport({ clusterId, nodeId: id }),
            stateMachine: kvs[i],
          });
          await node.start();
          return node;
        }),
      );
      return { nodes, kvs };
    };
    const leaderOf = (nodes: RaftNode<KvResult>[]): RaftNode<KvResult> | undefined => nodes.find((n) => n.isLeader);

    const first = await start();
    try {
      await until("a leader", () => leaderOf(first.nodes) !== undefined);
      const leader = leaderOf(first.nodes)!;
      for (let i = 0; i < 30; i++) {
        await leader.propose(encodeKvCommand({ op: "put", key: `k${i}`, value: new TextEncoder().encode(`v${i}`) }));
      }
      await until("every member applied the writes", () => first.kvs.every((kv) => text(kv.get("k29")) === "v29"));
    } finally {
      await Promise.all(first.nodes.map((n) => n.stop()));
    }

    const second = await start();
    try {
      await until("a leader after the restart", () => leaderOf(second.nodes) !== undefined);
      await leaderOf(second.nodes)!.propose(encodeKvCommand({ op: "put", key: "after", value: new TextEncoder().encode("restart") }));
      await until("every member applied the log again", () => second.kvs.every((kv) => text(kv.get("after")) === "restart"));
      for (const kv of second.kvs) {
        expect(Array.from({ length: 30 }, (_, i) => text(kv.get(`k${i}`)))).toEqual(Array.from({ length: 30 }, (_, i) => `v${i}`));
      }
    } finally {
      await Promise.all(second.nodes.map((n) => n.stop()));
    }
  }, 60_000);
});
