/**
 * FileStorage under SIGKILL: a writer process (test/fixtures/storage-writer.ts) saves batches,
 * overwrites, hard states, snapshots and compactions in a loop and prints each step before it
 * starts and again once it resolved. The test kills it at seeded random moments, reopens the
 * directory itself and checks that the stored state is exactly what the acknowledged steps
 * produce, or that plus the one step in flight: nothing acknowledged lost, no batch half there.
 *
 * A killed process cannot tear its own writes (the kernel finishes a write() it started), so the
 * first test exercises the orderings between writes, syncs, renames and unlinks. The second
 * tears (or damages) the newest record in what the writer left, page by page as a power loss
 * can: torn, it must recover as if never written or whole; damaged, it must refuse to start.
 * Single cases are in file-storage.test.ts. Replay a run with MESHRAFT_CRASH_SEED=<seed>.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { StoredState } from "../../src/storage/storage.ts";
import { FileStorage, StorageCorruptionError } from "../../adapters/node/file-storage.ts";
import { decodeBatch, REC_BATCH, scanRecords } from "../../src/storage/file/format.ts";
import type { Step } from "../fixtures/storage-writer.ts";
import { applyStep, modelOf, runWriter as spawnWriter, stepsOf, type WriterRun } from "../fixtures/storage-writer-runs.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { PAGE, pageCount, tornCopy } from "../fixtures/torn-write.ts";

/** Where page `p` of a write starting at `start` begins (page 0 is the one holding `start`). */
const pageStart = (start: number, p: number): number => (Math.floor(start / PAGE) + p) * PAGE;

const root = join(import.meta.dirname, "../..");
const writer = join(root, "test/fixtures/storage-writer.ts");

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});

/** The writer as `node --import tsx` (one process, so the pid killed is the writer's), optionally behind `prefix` (prlimit). */
function runWriter(args: string[], killAfterMs: number | null, prefix: string[] = [], killAfterAcks?: number): Promise<WriterRun> {
  return spawnWriter([...prefix, process.execPath, "--import", "tsx", writer, ...args], root, killAfterMs, children, killAfterAcks);
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
      for (let round = 0; round < 30 && Date.now() - started < 150_000; round++) {
        // Mostly while saving: killed once it has acknowledged a random number of steps (the next
        // saves are under way then), so the count of acknowledged steps does not depend on how fast
        // this machine starts the writer. Now and then during start-up and recovery, by time.
        const early = random.next() < 0.15;
        const killAfterMs = early ? 50 + Math.floor(random.next() * 500) : 60_000;
        const killAfterAcks = early ? Infinity : 5 + Math.floor(random.next() * 30);
        const run = await runWriter([dir, "--seed", String(seed + round), "--segment-bytes", String(16 * 1024)], killAfterMs, [], killAfterAcks);
        const where = `seed ${seed}, round ${round} (killed ${early ? `after ${killAfterMs} ms` : `after ${killAfterAcks} acknowledged steps`})`;
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
      // The 150 s bound only keeps a very slow machine from hanging here; 30 rounds take ~40 s.
      expect(stats.kills).toBeGreaterThanOrEqual(10);
      expect(stats.acked).toBeGreaterThan(100);
      console.log(`crash test (seed ${seed}): ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 200_000);

  it("the newest record torn as a crash tears it recovers whole or not at all; one changed payload byte in it refuses to start", async () => {
    const seed = Number(process.env.MESHRAFT_CRASH_SEED ?? 20240607) + 1;
    const random = new SeededRandom(seed);
    const dir = await mkdtemp(join(tmpdir(), "meshraft-torn-"));
    const scratch = join(tmpdir(), `${dir.split("/").pop()}-copy`);
    const stats = { rounds: 0, cut: 0, kept: 0, headerPageLostLaterKept: 0, refused: 0 };
    const started = Date.now();
    /** `dir` with its newest segment replaced by `bytes`, in `scratch`. */
    const copyWith = async (segment: string, bytes: Uint8Array): Promise<string> => {
      await rm(scratch, { recursive: true, force: true });
      await cp(dir, scratch, { recursive: true });
      await writeFile(join(scratch, segment), bytes);
      return scratch;
    };
    try {
      // Six directories with a record to tear; a round whose newest segment holds only its header
      // (created durably, never torn) is not counted.
      for (let round = 0; stats.rounds < 6 && round < 20; round++) {
        // Killed after some steps, however slowly a loaded machine starts the writer.
        const acks = 5 + Math.floor(random.next() * 40);
        const run = await runWriter([dir, "--seed", String(seed + round), "--segment-bytes", String(64 * 1024)], 30_000, [], acks);
        const where = `seed ${seed}, round ${round} (killed after ${acks} steps)`;
        if (run.signal !== "SIGKILL") throw new Error(`${where}: the writer exited by itself (code ${run.code}): ${run.stderr}`);
        await loadDir(dir, []); // repairs what the kill left (the test above checks that state)
        const newest = (await readdir(dir)).filter((n) => n.endsWith(".seg")).sort().at(-1)!;
        const full = await readFile(join(dir, newest));
        const records = scanRecords(full).records;
        if (records.length < 2) continue; // just the segment header, which is created durably
        const last = records[records.length - 1];
        stats.rounds++;
        // A synced snapshot record has had the previous snapshot file removed; a torn one has not.
        const tornable = last.type !== REC_BATCH || !decodeBatch(last.payload).snapshot;
        const whole = await loadDir(await copyWith(newest, full), []);
        if (tornable) {
          const without = await loadDir(await copyWith(newest, full.subarray(0, last.offset)), []);
          // Torn: each page of the record kept or lost, the file maybe cut short; at least the
          // header's or the trailer's page lost (both kept with a middle page lost is refused:
          // see file-storage-format.ts).
          // Half the time the case a header-only check gets wrong: the header's page lost, the last kept.
          const pages = pageCount(last.offset, last.end);
          const headerLost = pages > 1 && random.next() < 0.5;
          const size = !headerLost && random.next() < 0.3 ? last.offset + 1 + Math.floor(random.next() * (last.end - last.offset - 1)) : last.end;
          const lost = new Set<number>(headerLost ? [0] : []);
          for (let p = 1; p < pages - (headerLost ? 1 : 0); p++) if (random.next() < 0.4) lost.add(p);
          if (!headerLost && random.next() < 0.4) lost.add(0);
          if (size === last.end && !lost.has(0) && !lost.has(pages - 1)) lost.add(random.next() < 0.7 ? 0 : pages - 1);
          const tear = `${where}: record at ${last.offset}..${last.end} of ${newest}, file cut at ${size}, pages ${[...lost].join(",")} of ${pages} lost`;
          const actual = await loadDir(await copyWith(newest, tornCopy(full, last.offset, size, (p) => lost.has(p))), []).catch((e: unknown) => {
            throw new Error(`${tear}: ${e instanceof Error ? e.message : String(e)}`);
          });
          if (lost.has(0) && Array.from({ length: pages }, (_, p) => p).some((p) => p > 0 && !lost.has(p) && pageStart(last.offset, p) < size)) stats.headerPageLostLaterKept++;
          if (isDeepStrictEqual(actual, without)) stats.cut++;
          else if (isDeepStrictEqual(actual, whole)) stats.kept++;
          else throw new Error(`${tear}: recovered ${describeState(actual)}, neither ${describeState(without)} nor ${describeState(whole)}`);
        }

        // Damaged: one byte of the payload changed in the complete record.
        const damaged = new Uint8Array(full);
        const at = last.offset + 20 + Math.floor(random.next() * (last.end - last.offset - 40));
        damaged[at] ^= 1 << Math.floor(random.next() * 8);
        const copy = await copyWith(newest, damaged);
        const err = await FileStorage.open(copy, { log: () => undefined }).then(
          async (s) => {
            await s.close();
            return null;
          },
          (e: unknown) => e,
        );
        expect(err, `${where}: byte ${at} of the record at ${last.offset} changed`).toBeInstanceOf(StorageCorruptionError);
        expect([(err as StorageCorruptionError).file, (err as StorageCorruptionError).offset]).toEqual([join(copy, newest), last.offset]);
        stats.refused++;
      }
      expect(stats.rounds).toBe(6);
      console.log(`torn-record test (seed ${seed}): ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  }, 180_000);

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
