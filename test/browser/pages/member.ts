/**
 * Page script: one Raft member on IndexedDbStorage and BroadcastChannelTransport, built from the
 * parts directly (no tab cluster, no Web Locks), for the tests that need a member whose storage
 * differs from the others'. The query says which:
 *
 *   ?cluster=<id>&id=<node id>&members=t1,t2,t3[&quota=<bytes>]
 *
 * With `quota`, the member's database lives in a Storage Bucket of that quota
 * (`navigator.storageBuckets.open(name, { quota })`): Chromium's own quota enforcement refuses
 * its writes once the bucket is full, while the other members, in the origin's default bucket,
 * have room. Exposes `globalThis.meshraftMember`.
 */
import { IndexedDbStorage } from "../../../adapters/browser/idb-storage.ts";
import { BroadcastChannelTransport } from "../../../adapters/browser/broadcast-transport.ts";
import { encodeKvCommand, type KvResult, KvStateMachine, RaftNode } from "../../../src/index.ts";

const q = new URLSearchParams(location.search);
const clusterId = q.get("cluster")!;
const id = q.get("id")!;
const members = q.get("members")!.split(",");
const quota = q.get("quota");

interface StorageBucketsLike {
  open(name: string, options: { quota: number }): Promise<{ indexedDB: IDBFactory; estimate(): Promise<{ quota?: number; usage?: number }> }>;
}

let failure: { code: string | undefined; name: string; message: string } | null = null;
const kv = new KvStateMachine();

async function start(): Promise<RaftNode<KvResult>> {
  let env = { indexedDB, IDBKeyRange };
  if (quota !== null) {
    const buckets = (navigator as unknown as { storageBuckets: StorageBucketsLike }).storageBuckets;
    const bucket = await buckets.open(`${clusterId}-${id}`, { quota: Number(quota) });
    env = { indexedDB: bucket.indexedDB, IDBKeyRange };
  }
  const node = new RaftNode<KvResult>({
    id,
    members,
    storage: await IndexedDbStorage.open({ clusterId, nodeId: id, env }),
    transport: new BroadcastChannelTransport({ clusterId, nodeId: id }),
    stateMachine: kv,
    onError: (e) => {
      failure = { code: (e as { code?: string }).code, name: (e as Error).name, message: (e as Error).message };
    },
  });
  await node.start();
  return node;
}

const started = start();
const enc = new TextEncoder();
const dec = new TextDecoder();

const handle = {
  ready: () => started.then(() => true),
  async status() {
    const node = await started;
    const s = node.status();
    return { id, role: s.role, term: s.term, leader: s.leaderId, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, stopped: node.stopped, failure };
  },
  /** Resolves with the entry's index once applied here; rejects with the node's error (its `code` in the message). */
  async put(key: string, value: string): Promise<number> {
    const node = await started;
    try {
      const out = await node.propose(encodeKvCommand({ op: "put", key, value: enc.encode(value) }));
      return out.index;
    } catch (e) {
      throw new Error(`${(e as { code?: string }).code ?? "ERROR"}: ${(e as Error).message}`);
    }
  },
  /** Linearizable read. */
  async get(key: string): Promise<string | null> {
    const node = await started;
    await node.read();
    const v = kv.get(key);
    return v === null ? null : dec.decode(v);
  },
  /** What this member applied, without asking the leader. */
  local(key: string): string | null {
    const v = kv.get(key);
    return v === null ? null : dec.decode(v);
  },
  async estimate() {
    return navigator.storage.estimate();
  },
};
(globalThis as unknown as { meshraftMember: typeof handle }).meshraftMember = handle;
