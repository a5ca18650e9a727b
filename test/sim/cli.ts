/**
 * npm run sim -- --seed 1234 [--nodes 5] [--faults drop,partition] [--duration 3000] [--read-mode lease]
 *     replay one seed and print its whole trace: messages, commits, role changes, faults (the
 *     same seed prints the same trace, always; --quiet leaves out messages and commits);
 *     --html run.html also writes a page that replays the run in the dashboard's view (no network)
 * npm run sim -- --seeds 10000 [--from 1] [--nodes 5] [--faults ...] [--keep-going]
 *     run many seeds with progress output; stops at the first failure unless --keep-going.
 */
import { writeFileSync } from "node:fs";
import { FAULTS, simulate, type Fault, type SimOptions } from "../../src/testing/sim.ts";
import { simReplayHtml } from "../../src/testing/sim-replay.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function numberArg(name: string, fallback: number): number {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} takes a whole number, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const faultsArg = arg("faults");
const faults = faultsArg ? (faultsArg.split(",") as Fault[]) : undefined;
for (const f of faults ?? []) {
  if (!FAULTS.includes(f)) {
    console.error(`unknown fault "${f}"; choose from ${FAULTS.join(", ")}`);
    process.exit(2);
  }
}
const readMode = arg("read-mode") ?? "read-index";
if (readMode !== "read-index" && readMode !== "lease") {
  console.error(`--read-mode takes read-index or lease, got "${readMode}"`);
  process.exit(2);
}
const base: Omit<SimOptions, "seed"> = {
  nodes: numberArg("nodes", 3),
  faults,
  durationMs: numberArg("duration", 3_000),
  readMode,
};
const describeRun = (seed: number): string =>
  `npm run sim -- --seed ${seed}${base.nodes !== 3 ? ` --nodes ${base.nodes}` : ""}${faultsArg ? ` --faults ${faultsArg}` : ""}${arg("duration") ? ` --duration ${base.durationMs}` : ""}${readMode !== "read-index" ? ` --read-mode ${readMode}` : ""}`;

if (arg("seed") !== undefined) {
  const seed = numberArg("seed", 1);
  const quiet = process.argv.includes("--quiet");
  const html = arg("html");
  // The replay page needs the verbose trace (messages, commits) whatever is printed.
  const lines: string[] = [];
  const r = await simulate({
    ...base,
    seed,
    verbose: !quiet || html !== undefined,
    onTrace: (line) => {
      if (html !== undefined) lines.push(line);
      if (!quiet || !/^\s*[\d.]+ ( {2}\S+->| ?\S+ commit \d+$| ?\S+ conf )/.test(line)) console.log(line);
    },
  });
  if (html !== undefined) {
    writeFileSync(html, simReplayHtml(lines, r, describeRun(seed)));
    console.log(`\nreplay page: ${html}`);
  }
  console.log(
    `\nseed ${seed}: ${r.ok ? "ok" : `FAILED: ${r.failure}`}\n` +
      `virtual ${r.virtualMs.toFixed(0)} ms, ${r.events} events, ${r.leaders} leaders elected, ${r.crashes} crashes, ` +
      `operations ok ${r.operations.ok} / unknown ${r.operations.unknown} / refused ${r.operations.failed}, trace hash ${r.traceHash}`,
  );
  process.exit(r.ok ? 0 : 1);
} else {
  const count = numberArg("seeds", 100);
  const from = numberArg("from", 1);
  const keepGoing = process.argv.includes("--keep-going");
  const started = performance.now();
  let failed = 0;
  let virtual = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = await simulate({ ...base, seed });
    virtual += r.virtualMs;
    if (!r.ok) {
      failed++;
      console.log(`seed ${seed} FAILED: ${r.failure}\n  last trace lines:\n${r.traceTail.slice(-25).map((l) => `    ${l}`).join("\n")}\n  replay: ${describeRun(seed)}`);
      if (!keepGoing) break;
    }
    const done = seed - from + 1;
    if (done % 50 === 0 || done === count) {
      const wall = (performance.now() - started) / 1000;
      console.log(`${done}/${count} seeds, ${failed} failed, ${wall.toFixed(1)} s wall, ${(wall / done * 1000).toFixed(0)} ms/seed, ${(virtual / done / 1000).toFixed(1)} s virtual/seed`);
    }
  }
  process.exit(failed > 0 ? 1 : 0);
}
