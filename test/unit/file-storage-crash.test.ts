/**
 * FileStorage under SIGKILL: a writer process (test/fixtures/storage-writer.ts) saves batches,
 * overwrites, hard states, snapshots and compactions in a loop and prints each step before it
 * starts and again once it resolved. The test kills it at seeded random moments, reopens the
 * directory itself and checks that the stored state is exactly what the acknowledged steps
 * produce, or that plus the one step in flight: nothing acknowledged lost, no batch half there.
 *
 * A killed process cannot tear its own writes (the kernel finishes a write() it started), so this
 * exercises the orderings between writes, syncs, renames and unlinks; torn records are covered
 * byte by byte in file-storage.test.ts. Replay a run with MESHRAFT_CRASH_SEED=<seed>.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { StoredState } from "../../src/storage/storage.ts";
import { FileStorage } from "../../adapters/node/file-storage.ts";
import type { Step } from "../fixtures/storage-writer.ts";
import { applyStep, modelOf, runWriter as spawnWriter, stepsOf, type WriterRun } from "../fixtures/storage-writer-runs.ts";
import { SeededRandom } from "../../src/core/random.ts";

const root = join(import.meta.dirname, "../..");
const writer = join(root, "test/fixtures/storage-writer.ts");

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});

/** The writer as `node --import tsx` (one process, so the pid killed is the writer's), optionally behind `prefix` (prlimit). */
function runWriter(args: string[], killAfterMs: number | null, prefix: string[] = []): Promise<WriterRun> {
  return spawnWriter([...prefix, process.execPath, "--import", "tsx", writer, ...args], root, killAfterMs, children);
}

function describeState(s: StoredState): string {
  const e = s.entries;
  const span = e.length > 0 ? `${e[0].index}..${e[e.length - 1].index}` : "none";
  const snap = s.snapshot ? `${s.snapshot.meta.index}@t${s.snapshot.meta.term}` : "none";
  return `hard state ${JSON.stringify(s.hardState)}, snapshot ${snap}, entries ${span}`;
}

async function loadDir(dir: string, log: string[]): Promise<StoredState> {
  const storage = await FileStorage.open(dir, { segmentBytes: 16 * 1024, log: (l) => log.push(l) });
  try {
    return await storage.load();
  } finally {
    await storage.close();
  }
}

describe("FileStorage survives SIGKILL at random moments", () => {
  it("every acknowledged step is there after each restart, and the step in flight is all there or not at all", async () => {
    const seed = Number(process.env.MESHRAFT_CRASH_SEED ?? 20240607);
    const random = new SeededRandom(seed);
    const dir = await mkdtemp(join(tmpdir(), "meshraft-crash-"));
    const history: Step[] = [];
    const stats = { kills: 0, acked: 0, inFlightKept: 0, inFlightLost: 0, staleLocks: 0, otherRepairs: 0 };
    const started = Date.now();
    try {
      for (let round = 0; round < 30 && Date.now() - started < 45_000; round++) {
        // Mostly while saving; now and then during start-up and recovery.
        const killAfterMs = random.next() < 0.15 ? 50 + Math.floor(random.next() * 500) : 600 + Math.floor(random.next() * 900);
        const run = await runWriter([dir, "--seed", String(seed + round), "--segment-bytes", String(16 * 1024)], killAfterMs);
        const where = `seed ${seed}, round ${round} (killed after ${killAfterMs} ms)`;
        if (run.signal !== "SIGKILL") throw new Error(`${where}: the writer exited by itself (code ${run.code}): ${run.stderr}`);
        stats.kills++;

        const { acked, pending } = stepsOf(run);
        history.push(...acked);
        stats.acked += acked.length;
        const model = await modelOf(history);
        const withoutPending = await model.load();
        let withPending: StoredState | null = null;
        if (pending) {
          await applyStep(model, pending);
          withPending = await model.load();
        }

        const log: string[] = [];
        const actual = await loadDir(dir, log);
        for (const line of log) {
          if (/stale lock/.test(line)) stats.staleLocks++;
          else stats.otherRepairs++;
        }
        if (isDeepStrictEqual(actual, withoutPending)) {
          if (pending) stats.inFlightLost++;
        } else if (withPending && isDeepStrictEqual(actual, withPending)) {
          history.push(pending!);
          stats.inFlightKept++;
        } else {
          throw new Error(
            `${where}: after reopening, the directory holds ${describeState(actual)}; ` +
              `the acknowledged steps give ${describeState(withoutPending)}` +
              (withPending ? `, or with the step in flight ${describeState(withPending)}` : "") +
              `. In flight: ${JSON.stringify(pending)}`,
          );
        }
      }
      // Loose floors: a loaded machine starts the writer slowly and fits fewer rounds in the time.
      expect(stats.kills).toBeGreaterThanOrEqual(10);
      expect(stats.acked).toBeGreaterThan(200);
      console.log(`crash test (seed ${seed}): ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);

  const prlimit = ["/usr/bin/prlimit", "/bin/prlimit"].find((p) => existsSync(p));
  const canLimit = process.platform === "linux" && prlimit !== undefined && spawnSync(prlimit, ["--fsize=1000000", "true"]).status === 0;

  it.skipIf(!canLimit)(
    "a write the file system refuses (EFBIG past a file size limit) rejects the save with the errno, and nothing of it is stored",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "meshraft-efbig-"));
      try {
        // No roll within the limit: the newest segment grows until a write is refused.
        const run = await runWriter([dir, "--seed", "7", "--segment-bytes", String(64 << 20), "--until-error"], 30_000, [prlimit!, "--fsize=200000", "--"]);
        const last = run.lines[run.lines.length - 1];
        expect(run.code, run.stderr).toBe(3);
        expect(last.op).toBe("error");
        expect(last.code).toBe("STORAGE_IO");
        expect(last.errno).toBe("EFBIG");
        expect(last.message).toMatch(/EFBIG/);

        const { acked, pending } = stepsOf(run);
        expect(pending).not.toBeNull();
        expect(acked.length).toBeGreaterThan(10);
        const expected = await (await modelOf(acked)).load();
        const actual = await loadDir(dir, []);
        expect(describeState(actual)).toBe(describeState(expected));
        expect(isDeepStrictEqual(actual, expected)).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
