/**
 * FileStorage under a real Deno, killed with SIGKILL at random moments: the writer of
 * test/fixtures/storage-writer.ts runs under `deno run` (its `node:fs` calls through Deno's Node
 * compatibility layer), and after each kill the directory is recovered by Deno
 * (test/deno/storage_check.ts, through adapters/deno FileStorage) and by Node (FileStorage), which must
 * both find exactly the acknowledged steps, or those plus the one in flight. Every few rounds a
 * torn write is added at the end of the newest segment, which Deno's recovery must cut off.
 *
 * Both Deno processes get --allow-run besides read and write on the directory: without it
 * FileStorage's own lock cannot tell whether the killed writer is alive (see
 * adapters/deno/file-storage.ts); the flock path that needs no --allow-run is covered by the
 * Deno suite and the Deno cluster test. Replay a run with MESHRAFT_CRASH_SEED=<seed>.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { appendFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStorage } from "../../adapters/node/file-storage.ts";
import type { Step } from "../fixtures/storage-writer.ts";
import { modelOf, runWriter as spawnWriter, stepsOf } from "../fixtures/storage-writer-runs.ts";
import { digestState, type StateDigest } from "../deno/storage_digest.ts";
import { denoBin } from "./process-cluster.ts";
import { SeededRandom } from "../../src/core/random.ts";

const root = join(import.meta.dirname, "../..");
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});

const denoArgs = (dir: string): string[] => ["run", "--cached-only", "--no-prompt", `--allow-read=${dir}`, `--allow-write=${dir}`, "--allow-sys=hostname", "--allow-run"];

/** Runs the writer under Deno, SIGKILLs it after `killAfterMs`; returns its acknowledged steps and the one in flight. */
async function runWriter(dir: string, seed: number, killAfterMs: number): Promise<{ acked: Step[]; pending: Step | null; signal: string | null; stderr: string }> {
  const argv = [denoBin, ...denoArgs(dir), "test/fixtures/storage-writer.ts", dir, "--seed", String(seed), "--segment-bytes", String(16 * 1024)];
  const run = await spawnWriter(argv, root, killAfterMs, children);
  return { ...stepsOf(run), signal: run.signal, stderr: run.stderr };
}

/** The reference: MemoryStorage fed the same steps. */
async function modelDigest(steps: Step[]): Promise<StateDigest> {
  return digestState(await (await modelOf(steps)).load());
}

/** Recovers the directory under Deno and returns the digest of what it loaded. */
function denoCheck(dir: string): StateDigest & { log: string[] } {
  const r = spawnSync(denoBin, [...denoArgs(dir), "test/deno/storage_check.ts", dir], { cwd: root, encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`storage_check under Deno failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

async function nodeCheck(dir: string): Promise<StateDigest> {
  const storage = await FileStorage.open(dir, { segmentBytes: 16 * 1024, log: () => {} });
  try {
    return await digestState(await storage.load());
  } finally {
    await storage.close();
  }
}

describe("FileStorage under Deno survives SIGKILL at random moments", () => {
  it("every acknowledged step is there after each kill, as Deno and Node both recover it; torn tails are cut off", async () => {
    const seed = Number(process.env.MESHRAFT_CRASH_SEED ?? 20261122);
    const random = new SeededRandom(seed);
    const dir = await mkdtemp(join(tmpdir(), "meshraft-deno-crash-"));
    const history: Step[] = [];
    const stats = { kills: 0, acked: 0, inFlightKept: 0, inFlightLost: 0, tornCut: 0 };
    const started = Date.now();
    try {
      for (let round = 0; round < 12 && Date.now() - started < 30_000; round++) {
        const killAfterMs = 500 + Math.floor(random.next() * 900);
        const run = await runWriter(dir, seed + round, killAfterMs);
        const where = `seed ${seed}, round ${round} (killed after ${killAfterMs} ms)`;
        if (run.signal !== "SIGKILL") throw new Error(`${where}: the writer exited by itself: ${run.stderr}`);
        stats.kills++;
        history.push(...run.acked);
        stats.acked += run.acked.length;
        const without = await modelDigest(history);
        const withPending = run.pending ? await modelDigest([...history, run.pending]) : null;

        // A torn write: a partial record header, or a page of zeros, after the last record.
        const torn = round % 3 === 2;
        if (torn) {
          const newest = readdirSync(dir).filter((f) => f.endsWith(".seg")).sort().pop()!;
          appendFileSync(join(dir, newest), round % 2 === 0 ? Uint8Array.from([0x4d, 0x52, 0x4c, 0x31, 7, 0, 0]) : new Uint8Array(4096));
        }
        const deno = denoCheck(dir);
        if (torn) {
          // Cut off; or, if the kill fell in a segment roll, removed with the unused new segment.
          expect(deno.log.join("\n"), where).toMatch(/truncating a write torn by a crash|an empty segment from a roll that a crash interrupted/);
          stats.tornCut++;
        }
        if (deno.sha256 === without.sha256) {
          if (run.pending) stats.inFlightLost++;
        } else if (withPending && deno.sha256 === withPending.sha256) {
          history.push(run.pending!);
          stats.inFlightKept++;
        } else {
          throw new Error(
            `${where}: Deno recovered ${deno.summary}; the acknowledged steps give ${without.summary}` +
              (withPending ? `, or with the step in flight ${withPending.summary}` : "") + `. In flight: ${JSON.stringify(run.pending)}`,
          );
        }
        const node = await nodeCheck(dir);
        expect(node.sha256, `${where}: Node reads ${node.summary} from the directory Deno recovered (${deno.summary})`).toBe(deno.sha256);
      }
      expect(stats.kills).toBeGreaterThanOrEqual(6);
      expect(stats.acked).toBeGreaterThan(100);
      expect(stats.tornCut).toBeGreaterThanOrEqual(2);
      console.log(`deno crash test (seed ${seed}): ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
