/**
 * A 3-node meshraft cluster in one process, on real time: elect a leader, write, kill the
 * leader, watch a new one take over, keep writing, read linearizably. Runs until Ctrl-C
 * (or exits after the tour with --once).
 *
 *   npx tsx examples/in-process-cluster.ts --once
 */
import {
  KvStateMachine,
  MemoryNetwork,
  MemoryStorage,
  NotLeaderError,
  RaftNode,
  SeededRandom,
  encodeKvCommand,
  realClock,
  type KvResult,
} from "../src/index.ts";

const once = process.argv.includes("--once");
const ids = ["n1", "n2", "n3"];
const network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(Date.now() >>> 0), faults: { minDelayMs: 1, maxDelayMs: 3 } });
const kvs = new Map<string, KvStateMachine>();
const nodes = new Map<string, RaftNode<KvResult>>();

function boot(id: string, storage: MemoryStorage): RaftNode<KvResult> {
  const kv = new KvStateMachine();
  const node = new RaftNode<KvResult>({ id, members: ids, storage, transport: network.connect(id), stateMachine: kv });
  node.on((e) => {
    if (e.type === "role") console.log(`  ${id}: ${e.role} in term ${e.term}${e.leaderId && e.role !== "leader" ? ` (leader ${e.leaderId})` : ""}`);
  });
  kvs.set(id, kv);
  nodes.set(id, node);
  return node;
}

const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function leader(): Promise<RaftNode<KvResult>> {
  for (let i = 0; i < 100; i++) {
    for (const n of nodes.values()) if (n.isLeader) return n;
    await sleep(20);
  }
  throw new Error("no leader after 2 s");
}

async function put(key: string, value: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const l = await leader();
    try {
      const out = await l.propose(encodeKvCommand({ op: "put", key, value: new TextEncoder().encode(value) }));
      console.log(`  put ${key}=${value} -> committed at index ${out.index} (term ${out.term}) via ${l.id}`);
      return;
    } catch (err) {
      if (!(err instanceof NotLeaderError)) throw err;
    }
  }
}

console.log("meshraft: a 3-node cluster in this process (MemoryNetwork, MemoryStorage)\n");
console.log("starting n1, n2, n3 ...");
for (const id of ids) await boot(id, storages.get(id)!).start();
let l = await leader();
console.log(`\nleader: ${l.id}\n\nwriting 3 keys:`);
for (let i = 1; i <= 3; i++) await put(`key${i}`, `value${i}`);

console.log(`\nkilling the leader ${l.id} ...`);
const dead = l.id;
nodes.get(dead)!.crash();
nodes.delete(dead);
l = await leader();
console.log(`new leader: ${l.id}\n\nwriting 2 more keys:`);
for (let i = 4; i <= 5; i++) await put(`key${i}`, `value${i}`);

console.log(`\nrestarting ${dead} from its storage; it catches up:`);
await boot(dead, storages.get(dead)!.reopen()).start();
await put("key6", "value6");
await sleep(300);
for (const id of ids) {
  const s = nodes.get(id)!.status();
  const kv = kvs.get(id)!;
  console.log(`  ${id}: ${s.role}, term ${s.term}, applied ${s.appliedIndex}, keys ${kv.keys().sort().join(",")}`);
}
const reader = nodes.get(ids.find((id) => id !== l.id)!)!;
try {
  await reader.read();
  const v = kvs.get(reader.id)!.get("key6");
  console.log(`\nlinearizable read of key6 on follower ${reader.id}: ${v ? new TextDecoder().decode(v) : "(absent)"}`);
} catch (err) {
  console.log(`\nread on ${reader.id} failed: ${(err as Error).message}`);
}

if (once) {
  for (const n of nodes.values()) await n.stop();
  console.log("\ndone.");
} else {
  console.log("\nthe cluster keeps running; status every 5 s. Ctrl-C to stop.");
  const timer = setInterval(() => {
    const line = [...nodes.values()].map((n) => { const s = n.status(); return `${s.id}:${s.role[0]} t${s.term} a${s.appliedIndex}`; }).join("  ");
    console.log(`  ${new Date().toISOString().slice(11, 19)}  ${line}`);
  }, 5_000);
  process.on("SIGINT", async () => {
    clearInterval(timer);
    for (const n of nodes.values()) await n.stop();
    console.log("\nstopped.");
    process.exit(0);
  });
}
