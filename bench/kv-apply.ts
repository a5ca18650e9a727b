/**
 * The KV state machine's cost per entry, alone: decode + apply + sessions of pre-encoded 64-byte
 * puts (as bench/core.ts proposes them) over 10,000 keys, without Raft around it.
 *
 *   npx tsx bench/kv-apply.ts [--entries 200000] [--rounds 5] [--vs <other checkout>/src/kv/kv.ts]
 *
 * With `--vs`, the other KvStateMachine runs in the same process, alternating round by round
 * with this one on the same entries, and the table shows the ratio: on a shared machine the
 * absolute rate moves with the other load, the ratio of two alternating runs much less.
 */
import { pathToFileURL } from "node:url";
import type { Entry } from "../src/core/types.ts";
import { encodeKvCommand, KvStateMachine } from "../src/kv/kv.ts";

interface Machine {
  apply(e: Entry): unknown;
}
type MachineClass = new () => Machine;

function parse(argv: string[]): { entries: number; rounds: number; vs: string | null } {
  const o = { entries: 200_000, rounds: 5, vs: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === "--entries") o.entries = Number(v);
    else if (a === "--rounds") o.rounds = Number(v);
    else if (a === "--vs") o.vs = v;
    else {
      console.log("usage: npx tsx bench/kv-apply.ts [--entries N] [--rounds N] [--vs path/to/kv.ts]");
      process.exit(a === "--help" || a === "-h" ? 0 : 1);
    }
  }
  return o;
}

/** 64-byte puts over 10,000 keys, half with a session (client, seq), as a server would propose them. */
function entries(n: number, sessions: boolean): Entry[] {
  const out: Entry[] = [];
  const seqs = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const key = `key-${String(i % 10_000).padStart(5, "0")}`;
    const client = sessions ? `client-${i % 64}` : undefined;
    const seq = client ? (seqs.get(client) ?? 0) + 1 : undefined;
    if (client) seqs.set(client, seq!);
    const base = encodeKvCommand({ op: "put", key, value: new Uint8Array(8), ...(client ? { client, seq } : {}) });
    const value = new Uint8Array(Math.max(1, 64 - (base.length - 8))).fill(i & 0xff);
    out.push({ index: i + 1, term: 1, type: "normal", data: encodeKvCommand({ op: "put", key, value, ...(client ? { client, seq } : {}) }) });
  }
  return out;
}

function run(Sm: MachineClass, log: Entry[]): number {
  const sm = new Sm();
  const t0 = performance.now();
  for (const e of log) sm.apply(e);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const Other = o.vs ? ((await import(pathToFileURL(o.vs).href)) as { KvStateMachine: MachineClass }).KvStateMachine : null;
  const rows: string[] = [];
  for (const sessions of [false, true]) {
    const log = entries(o.entries, sessions);
    const ours: number[] = [];
    const theirs: number[] = [];
    run(KvStateMachine, log.slice(0, 20_000)); // warm-up
    if (Other) run(Other, log.slice(0, 20_000));
    for (let r = 0; r < o.rounds; r++) {
      ours.push(run(KvStateMachine, log));
      if (Other) theirs.push(run(Other, log));
    }
    const best = (xs: number[]): number => Math.min(...xs);
    const rate = (ms: number): string => Math.round((o.entries / ms) * 1000).toLocaleString("en-US");
    const us = (ms: number): string => ((ms * 1000) / o.entries).toFixed(3);
    let row = `${sessions ? "puts with sessions   " : "puts without sessions"}  this: ${rate(best(ours))}/s (${us(best(ours))} µs/entry)`;
    if (Other) {
      const ratios = ours.map((x, i) => theirs[i] / x);
      row += `  --vs: ${rate(best(theirs))}/s (${us(best(theirs))} µs/entry)  speed-up per round: ${ratios.map((x) => x.toFixed(2)).join(" ")}`;
    }
    rows.push(row);
  }
  console.log(`KvStateMachine.apply, ${o.entries.toLocaleString("en-US")} pre-encoded 64-byte puts, best of ${o.rounds} rounds${Other ? ` alternating with ${o.vs}` : ""}`);
  for (const r of rows) console.log(r);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
