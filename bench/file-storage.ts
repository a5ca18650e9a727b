/**
 * FileStorage append cost, this tree against another (usually the commit before a format
 * change), in one run so both see the same disk and the same load:
 *
 *   git archive <commit> adapters src | tar -x -C /tmp/before    # the tree to compare with
 *   npx tsx bench/file-storage.ts --before /tmp/before [--saves 200] [--rounds 9] [--no-io]
 *
 * Per scenario it reports bytes on disk per record, saves per second through `FileStorage.save`
 * (one write and one fdatasync each, on a real directory under the OS temp dir; rounds alternate
 * between the trees; median, with min..max to show the noise) and, without IO, records per second
 * for encoding a batch and for scanning a segment (`scanRecords`, what opening a directory does
 * per record), per CPU second, after one unmeasured pass for the JIT.
 */
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Entry } from "../src/core/types.ts";

interface Tree {
  name: string;
  storage: typeof import("../adapters/node/file-storage.ts");
  format: typeof import("../src/storage/file/format.ts");
}

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

async function load(name: string, root: string): Promise<Tree> {
  const url = (p: string): string => pathToFileURL(join(root, p)).href;
  // The format module moved to src/storage/file/ (a --before tree may predate the move).
  const format = existsSync(join(root, "src/storage/file/format.ts")) ? "src/storage/file/format.ts" : "adapters/node/file-storage-format.ts";
  return { name, storage: await import(url("adapters/node/file-storage.ts")), format: await import(url(format)) };
}

const SCENARIOS = [
  { name: "1 entry x 64 B", count: 1, bytes: 64 },
  { name: "10 entries x 64 B", count: 10, bytes: 64 },
  { name: "100 entries x 1 KiB", count: 100, bytes: 1024 },
];

function batchOf(first: number, count: number, bytes: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ index: first + i, term: 1, type: "normal", data: new Uint8Array(bytes).fill((first + i) & 0xff) });
  return out;
}

/** Saves per second, and bytes of log per save. */
async function appendRun(tree: Tree, count: number, bytes: number, saves: number): Promise<{ perSec: number; bytesPerRecord: number }> {
  const dir = await mkdtemp(join(tmpdir(), "meshraft-bench-fs-"));
  try {
    const s = await tree.storage.FileStorage.open(dir, { log: () => undefined });
    await s.save({ entries: batchOf(1, count, bytes) }); // warm-up, and the first record
    const segment = join(dir, (await readdir(dir)).find((n) => n.endsWith(".seg"))!);
    const before = (await stat(segment)).size;
    const started = performance.now();
    for (let i = 1; i <= saves; i++) await s.save({ hardState: { term: 1, votedFor: "n1", commit: i * count }, entries: batchOf(1 + i * count, count, bytes) });
    const ms = performance.now() - started;
    await s.close();
    return { perSec: (saves / ms) * 1000, bytesPerRecord: ((await stat(segment)).size - before) / saves };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** CPU time in ms (user + system): less disturbed than wall time by other processes on a busy machine. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Records per CPU second for encoding + sealing, and for scanning the result. */
function cpuRun(tree: Tree, count: number, bytes: number, warm = true): { encodePerSec: number; scanPerSec: number } {
  if (warm) cpuRun(tree, count, bytes, false);
  const n = Math.max(500, Math.floor(50_000 / count));
  const batches = Array.from({ length: n }, (_, i) => batchOf(1 + i * count, count, bytes));
  let started = cpuMs();
  const records = batches.map((b) => tree.format.sealRecord(tree.format.encodeBatch({ term: 1, votedFor: "n1", commit: 0 }, undefined, b).record));
  const encodeMs = cpuMs() - started;
  const file = new Uint8Array(records.reduce((a, r) => a + r.length, 0));
  let at = 0;
  for (const r of records) (file.set(r, at), (at += r.length));
  started = cpuMs();
  let scanned = 0;
  for (let i = 0; i < 5; i++) scanned += tree.format.scanRecords(file).records.length;
  const scanMs = cpuMs() - started;
  if (scanned !== 5 * n) throw new Error(`${tree.name}: scanned ${scanned} records, wrote ${5 * n}`);
  return { encodePerSec: (n / encodeMs) * 1000, scanPerSec: (scanned / scanMs) * 1000 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const beforeRoot = arg("--before", "");
  if (!beforeRoot) throw new Error("--before <dir holding the tree to compare with> is required (see the comment at the top)");
  const saves = Number(arg("--saves", "200"));
  const rounds = Number(arg("--rounds", "9"));
  const io = !process.argv.includes("--no-io");
  const trees = [await load("before", resolve(beforeRoot)), await load("after", resolve("."))];
  for (const sc of SCENARIOS) {
    const results = new Map<string, { perSec: number[]; bytes: number; encode: number[]; scan: number[] }>();
    for (const t of trees) results.set(t.name, { perSec: [], bytes: 0, encode: [], scan: [] });
    for (let r = 0; r < rounds; r++) {
      for (const t of r % 2 === 0 ? trees : [...trees].reverse()) {
        const res = results.get(t.name)!;
        if (io) {
          const a = await appendRun(t, sc.count, sc.bytes, saves);
          res.perSec.push(a.perSec);
          res.bytes = a.bytesPerRecord;
        }
        const c = cpuRun(t, sc.count, sc.bytes);
        res.encode.push(c.encodePerSec);
        res.scan.push(c.scanPerSec);
      }
    }
    const b = results.get("before")!;
    const a = results.get("after")!;
    const fmt = (x: number): string => Math.round(x).toLocaleString("en-US");
    const row = (label: string, before: number[], after: number[]): string =>
      `  ${label.padEnd(22)}before ${fmt(median(before))} (${fmt(Math.min(...before))}..${fmt(Math.max(...before))})  ` +
      `after ${fmt(median(after))} (${fmt(Math.min(...after))}..${fmt(Math.max(...after))})  ratio ${(median(after) / median(before)).toFixed(2)}`;
    console.log(`${sc.name} per save:`);
    if (io) {
      console.log(`  bytes per record      before ${b.bytes}  after ${a.bytes}  (+${a.bytes - b.bytes})`);
      console.log(row("saves/s (fdatasync)", b.perSec, a.perSec));
    }
    console.log(row("encode records/cpu-s", b.encode, a.encode));
    console.log(row("scan records/cpu-s", b.scan, a.scan));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
