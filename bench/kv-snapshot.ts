/**
 * A large KV state (issue: 200,000 keys, ~21 MB): how long `snapshot()` and `restore()` hold the
 * event loop, and what the state costs in memory relative to its size.
 *
 *   npx tsx bench/kv-snapshot.ts [--keys 200000] [--value-bytes 100] [--rounds 3]
 *
 * Both calls are synchronous, so each one's duration is an event-loop stall of that length; the
 * bench also runs Node's monitorEventLoopDelay (10 ms resolution) across them and prints its
 * p99 and max, the figures /metrics reports as meshraft_event_loop_delay_seconds. Memory: heap +
 * array buffers after a full GC, before and after the state was built, against the snapshot's
 * size (the target: at most 4x).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { encodeKvCommand, KvStateMachine } from "../src/kv/kv.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
if (args.includes("--help") || args.includes("-h")) {
  console.log("usage: npx tsx bench/kv-snapshot.ts [--keys 200000] [--value-bytes 100] [--rounds 3]");
  process.exit(0);
}
const keys = opt("keys", 200_000);
const valueBytes = opt("value-bytes", 100);
const rounds = opt("rounds", 3);

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const MB = 2 ** 20;
const used = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function main(): Promise<void> {
  const before = used();
  const rss0 = process.memoryUsage().rss;
  const sm = new KvStateMachine();
  for (let i = 0; i < keys; i++) {
    const cmd = encodeKvCommand({ op: "put", key: `key-${String(i).padStart(7, "0")}`, value: new Uint8Array(valueBytes).fill(i & 255) });
    sm.apply({ index: i + 1, term: 1, type: "normal", data: cmd });
  }
  const state = used() - before;
  const rss1 = process.memoryUsage().rss;
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const take: number[] = [];
  const restore: number[] = [];
  let snapBytes = 0;
  for (let r = 0; r < rounds; r++) {
    await tick();
    let t = performance.now();
    const snap = sm.snapshot();
    take.push(performance.now() - t);
    snapBytes = snap.byteLength;
    await tick();
    const copy = new KvStateMachine();
    t = performance.now();
    copy.restore(snap);
    restore.push(performance.now() - t);
    await tick();
  }
  h.disable();
  const ms = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(", ");
  console.log(`KV state: ${keys.toLocaleString("en-US")} keys, ${valueBytes}-byte values; snapshot ${(snapBytes / MB).toFixed(1)} MB`);
  console.log(`  snapshot() took ${ms(take)} ms; restore() took ${ms(restore)} ms (each a stall of the event loop)`);
  console.log(`  event-loop delay across them: p99 ${(h.percentile(99) / 1e6).toFixed(0)} ms, max ${(h.max / 1e6).toFixed(0)} ms (target: p99 < 20 ms, max < 50 ms)`);
  console.log(`  memory of the state: heap + array buffers +${(state / MB).toFixed(1)} MB = ${(state / snapBytes).toFixed(2)}x the snapshot; RSS ${(rss0 / MB).toFixed(0)} -> ${(rss1 / MB).toFixed(0)} MB (+${((rss1 - rss0) / snapBytes).toFixed(2)}x; target: at most 4x)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
