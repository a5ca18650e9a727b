import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, chmod, cp, mkdtemp, open, readdir, readFile, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { Entry, HardState, Snapshot } from "../../src/core/types.ts";
import { runStorageConformance } from "../../src/storage/conformance.ts";
import type { StoredState } from "../../src/storage/storage.ts";
import {
  FileStorage,
  type FileStorageOptions,
  StorageCorruptionError,
  StorageIoError,
  StorageLockedError,
} from "../../adapters/node/file-storage.ts";
import { encodeSegmentHeader, scanRecords, segmentName } from "../../src/storage/file/format.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import { PAGE, pageCount, pageEnd, tornCopy } from "../fixtures/torn-write.ts";

const quiet = (): void => undefined;

function fileStorageUnderTest(options: FileStorageOptions = {}) {
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), "meshraft-fs-"));
    const opts = { log: quiet, ...options };
    return {
      storage: await FileStorage.open(dir, opts),
      reopen: () => FileStorage.open(dir, opts),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  };
}

runStorageConformance("FileStorage", fileStorageUnderTest(), { describe, it });
runStorageConformance("FileStorage with 256-byte segments (a roll at nearly every save)", fileStorageUnderTest({ segmentBytes: 256 }), { describe, it }, { manyBatches: 300 });

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) {
    await chmod(dir, 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "meshraft-fs-"));
  dirs.push(dir);
  return dir;
}

function data(index: number, term: number, size = 20): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (index * 31 + term * 7 + i) & 0xff);
}

function entries(from: number, to: number, term: number, size = 20): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: "normal", data: data(i, term, size) });
  return out;
}

function snapshot(index: number, term: number, size = 1000): Snapshot {
  return { meta: { index, term, conf: { voters: ["n1", "n2", "n3"], learners: [], votersOutgoing: [] } }, data: data(index, term, size) };
}

const hs = (term: number, votedFor: string | null, commit: number): HardState => ({ term, votedFor, commit });

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".seg")).sort();
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Opens, loads and closes; the log lines written while opening are returned too. */
async function loadDir(dir: string, options: FileStorageOptions = {}): Promise<{ state: StoredState; log: string[] }> {
  const log: string[] = [];
  const storage = await FileStorage.open(dir, { ...options, log: (l) => log.push(l) });
  try {
    return { state: await storage.load(), log };
  } finally {
    await storage.close();
  }
}

/** Expects `open` to reject with a StorageCorruptionError and returns it. */
async function corruption(dir: string, options: FileStorageOptions = {}): Promise<StorageCorruptionError> {
  const err = await FileStorage.open(dir, { log: quiet, ...options }).then(
    async (s) => {
      await s.close();
      throw new Error("open succeeded on a corrupt directory");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageCorruptionError);
  const c = err as StorageCorruptionError;
  expect(c.code).toBe("STORAGE_CORRUPT");
  expect(c.message).toContain(c.file);
  expect(c.message).toContain(`offset ${c.offset}`);
  return c;
}

/** toEqual, but fast for megabytes of entry data (vitest compares typed arrays element by element). */
function same<T>(actual: T, expected: T): void {
  if (!isDeepStrictEqual(actual, expected)) expect(actual).toEqual(expected);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset] ^= 0x40;
  await writeFile(path, bytes);
}

// ---------------------------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------------------------

/** Two small batches, then one of about 13 KiB (entries 6..9 of term 2, over 6..7): the record to tear or damage. */
async function bigLastBatch(dir: string) {
  const s = await FileStorage.open(dir, { log: quiet });
  await s.save({ hardState: hs(1, "n1", 0), entries: entries(1, 5, 1) });
  await s.save({ hardState: hs(1, "n1", 4), entries: entries(6, 7, 1) });
  const before = await s.load();
  const path = join(dir, (await segments(dir))[0]);
  const start = await sizeOf(path);
  await s.save({ hardState: hs(2, "n2", 6), entries: entries(6, 9, 2, 3300) });
  const after = await s.load();
  await s.close();
  return { path, start, end: await sizeOf(path), before, after };
}

describe("FileStorage recovery: a torn write at the end is cut off", () => {
  /** Two batches, then a third whose record we tear; returns the states before and after it. */
  async function threeBatches(dir: string) {
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ hardState: hs(1, "n1", 0), entries: entries(1, 5, 1) });
    await s.save({ entries: entries(6, 7, 1) });
    const before = await s.load();
    const path = join(dir, (await segments(dir))[0]);
    const start = await sizeOf(path);
    // Overwrites 4..7 and moves the hard state: both must appear together or not at all.
    await s.save({ hardState: hs(2, "n2", 3), entries: entries(4, 9, 2) });
    const after = await s.load();
    await s.close();
    return { path, start, end: await sizeOf(path), before, after };
  }

  it("truncated at every byte offset inside the last record, the batch is either all there or absent", async () => {
    const dir = await tempDir();
    const { path, start, end, before, after } = await threeBatches(dir);
    const full = await readFile(path);
    expect(end - start).toBeGreaterThan(150);
    for (let cut = start; cut < end; cut++) {
      await writeFile(path, full.subarray(0, cut));
      const { state, log } = await loadDir(dir);
      if (!isDeepStrictEqual(state, before)) expect(state, `cut at ${cut}`).toEqual(before);
      expect(await sizeOf(path), `cut at ${cut}: the torn tail is truncated away`).toBe(start);
      if (cut > start) expect(log.join("\n")).toMatch(new RegExp(`torn by a crash at the end of .*offset ${start}`));
    }
    await writeFile(path, full);
    expect((await loadDir(dir)).state).toEqual(after);
  });

  it("after cutting a torn tail, new batches append where it was cut and survive reopen", async () => {
    const dir = await tempDir();
    const { path, end, before } = await threeBatches(dir);
    await writeFile(path, (await readFile(path)).subarray(0, end - 10));
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ hardState: hs(3, "n3", 8), entries: entries(8, 8, 3) });
    await s.close();
    expect((await loadDir(dir)).state).toEqual({ ...before, hardState: hs(3, "n3", 8), entries: [...before.entries, ...entries(8, 8, 3)] });
  });

  it("a crash that loses the page holding the last record's header but keeps later pages of it is a torn write", async () => {
    const dir = await tempDir();
    const { path, start, end, before } = await bigLastBatch(dir);
    const full = await readFile(path);
    const firstPageEnd = pageEnd(start);
    expect(end, "the batch spans at least three pages").toBeGreaterThan(firstPageEnd + 2 * PAGE);
    // Which pages of the batch reached the disk: the header's page is lost in all of them.
    const cases: { lost: (page: number) => boolean; size: number; what: string }[] = [
      { lost: (p) => p === 0, size: end, what: "only the header's page lost" },
      { lost: (p) => p === 0 || p === pageCount(start, end) - 1, size: end, what: "the header's and the trailer's pages lost" },
      { lost: (p) => p % 2 === 0, size: end, what: "every other page lost" },
      { lost: (p) => p === 0, size: firstPageEnd + PAGE + 100, what: "the header's page lost, the file cut inside a later page" },
    ];
    for (const c of cases) {
      await writeFile(path, tornCopy(full, start, c.size, c.lost));
      const { state, log } = await loadDir(dir);
      same(state, before);
      expect(await sizeOf(path), c.what).toBe(start);
      expect(log.join("\n"), c.what).toMatch(new RegExp(`torn by a crash at the end of .*offset ${start}`));
    }
  });

  it("a crash that keeps the header's page but loses the trailer's is a torn write", async () => {
    const dir = await tempDir();
    const { path, start, end, before } = await bigLastBatch(dir);
    const last = pageCount(start, end) - 1;
    await writeFile(path, tornCopy(await readFile(path), start, end, (p) => p === last));
    same((await loadDir(dir)).state, before);
    expect(await sizeOf(path)).toBe(start);
  });

  it("a flipped byte in the last record's trailer loses nothing: its header and payload check out, so it is kept", async () => {
    const dir = await tempDir();
    const { path, end, after } = await threeBatches(dir);
    await flipByte(path, end - 1);
    expect((await loadDir(dir)).state).toEqual(after);
    expect(await sizeOf(path)).toBe(end);
  });

  it("zeros after the last record (space the crash allocated but never wrote) are cut off", async () => {
    const dir = await tempDir();
    const { path, end, after } = await threeBatches(dir);
    await appendFile(path, new Uint8Array(4096));
    const { state, log } = await loadDir(dir);
    expect(state).toEqual(after);
    expect(await sizeOf(path)).toBe(end);
    expect(log.join("\n")).toMatch(/zeros/);
  });
});

describe("FileStorage recovery: damage anywhere else stops with StorageCorruptionError naming file and offset", () => {
  async function threeRecords(dir: string, options: FileStorageOptions = {}) {
    const s = await FileStorage.open(dir, { log: quiet, ...options });
    const offsets: number[] = [];
    const path = (): Promise<string> => segments(dir).then((names) => join(dir, names[names.length - 1]));
    for (let i = 0; i < 3; i++) {
      offsets.push(await sizeOf(await path()));
      await s.save({ hardState: hs(1, null, i), entries: entries(i * 4 + 1, i * 4 + 4, 1) });
    }
    await s.close();
    return { path: await path(), offsets };
  }

  it("a flipped payload byte in a middle record", async () => {
    const dir = await tempDir();
    const { path, offsets } = await threeRecords(dir);
    const size = await sizeOf(path);
    await flipByte(path, offsets[1] + 30);
    const err = await corruption(dir);
    expect(err.file).toBe(path);
    expect(err.offset).toBe(offsets[1]);
    expect(err.message).toMatch(/checksum mismatch/);
    expect(await sizeOf(path), "nothing is truncated").toBe(size);
  });

  it("a flipped byte in a record header when another record follows (its length can no longer be trusted)", async () => {
    const dir = await tempDir();
    const { path, offsets } = await threeRecords(dir);
    await flipByte(path, offsets[1] + 9); // the length field
    const err = await corruption(dir);
    expect([err.file, err.offset]).toEqual([path, offsets[1]]);
    expect(err.message).toMatch(new RegExp(`a record follows at byte ${offsets[2]}`));
  });

  it("one flipped byte in the payload of a complete last record is refused, not cut as a torn write", async () => {
    const dir = await tempDir();
    const { path, start, end } = await bigLastBatch(dir);
    const size = await sizeOf(path);
    for (const at of [start + 20, start + 30, start + 5000, pageEnd(start) + PAGE + 7, end - 21]) {
      await flipByte(path, at);
      const err = await corruption(dir);
      expect([err.file, err.offset], `flipped byte ${at}`).toEqual([path, start]);
      expect(err.message).toMatch(/header and trailer agree.*may have been acknowledged/);
      expect(await sizeOf(path), "nothing is truncated").toBe(size);
      await flipByte(path, at);
    }
  });

  it("a last record whose header is damaged or lost but whose payload checks out against its trailer is kept, its header written back", async () => {
    const dir = await tempDir();
    const { path, start, after } = await bigLastBatch(dir);
    const full = await readFile(path);
    for (const at of [start, start + 4, start + 9, start + 12, start + 19]) {
      await flipByte(path, at);
      const { state, log } = await loadDir(dir);
      same(state, after);
      expect(log.join("\n")).toMatch(new RegExp(`rewriting the header of the last record .*offset ${start}`));
      expect(Buffer.compare(await readFile(path), full), `flipped byte ${at}: the file is as written`).toBe(0);
    }
  });

  it("a damaged header of the roll record that ends an older segment is written back from its trailer", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet, segmentBytes: 300 });
    for (let i = 1; i <= 6; i++) await s.save({ entries: entries(i, i, 1, 100) });
    const expected = await s.load();
    await s.close();
    const first = join(dir, (await segments(dir))[0]);
    const full = await readFile(first);
    const roll = scanRecords(full).records.at(-1)!;
    await flipByte(first, roll.offset + 9);
    const { state, log } = await loadDir(dir, { segmentBytes: 300 });
    same(state, expected);
    expect(log.join("\n")).toMatch(new RegExp(`rewriting the header of the last record of ${first} .*offset ${roll.offset}`));
    expect(Buffer.compare(await readFile(first), full)).toBe(0);
  });

  it("a crash that lost only the page holding the last record's header (the header ends that page) keeps the record", async () => {
    const dir = await tempDir();
    const { path, end } = await bigLastBatch(dir);
    const s = await FileStorage.open(dir, { log: quiet });
    // A record of 66 bytes plus one entry's data, so that the next header is a page's last 20 bytes.
    const target = pageEnd(end + 86) - 20;
    await s.save({ entries: entries(10, 10, 2, target - end - 66) });
    await s.save({ hardState: hs(2, "n2", 9), entries: entries(11, 12, 2, 3000) });
    const after = await s.load();
    await s.close();
    const full = await readFile(path);
    expect(scanRecords(full).records.at(-1)!.offset).toBe(target);
    await writeFile(path, tornCopy(full, target, full.length, (p) => p === 0));
    const { state, log } = await loadDir(dir);
    same(state, after);
    expect(log.join("\n")).toMatch(new RegExp(`rewriting the header of the last record .*offset ${target}`));
    expect(Buffer.compare(await readFile(path), full)).toBe(0);
  });

  it("a damaged last record followed by a torn write is refused: a later write began, so the damaged one was synced", async () => {
    const dir = await tempDir();
    const { path, start, end } = await bigLastBatch(dir);
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ entries: entries(10, 10, 2) });
    await s.close();
    const full = await readFile(path);
    await writeFile(path, full.subarray(0, full.length - 10)); // the newest record torn
    await flipByte(path, start + 9); // and the header of the one before damaged
    const err = await corruption(dir);
    expect([err.file, err.offset]).toEqual([path, start]);
    expect(err.message).toMatch(new RegExp(`a record follows at byte ${end}`));
  });

  it("non-zero bytes after the last record that hold no record are a write that never completed; one that holds a record is not", async () => {
    const dir = await tempDir();
    const { path } = await threeRecords(dir);
    const end = await sizeOf(path);
    const full = await readFile(path);
    await appendFile(path, new Uint8Array(64).fill(0xab));
    expect((await loadDir(dir)).log.join("\n")).toMatch(new RegExp(`torn by a crash .*offset ${end}`));
    expect(await sizeOf(path)).toBe(end);
    // Garbage, then a record: something was written after the garbage, so it is damage.
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ entries: entries(13, 13, 1) });
    await s.close();
    const withRecord = await readFile(path);
    await writeFile(path, new Uint8Array([...full, ...new Uint8Array(64).fill(0xab), ...withRecord.subarray(end)]));
    expect((await corruption(dir)).offset).toBe(end);
  });

  it("damage at the end of a segment that is not the newest", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet, segmentBytes: 300 });
    for (let i = 1; i <= 12; i++) await s.save({ entries: entries(i, i, 1, 100) });
    await s.close();
    const names = await segments(dir);
    expect(names.length).toBeGreaterThan(3);
    const second = join(dir, names[1]);
    const size = await sizeOf(second);
    await writeFile(second, (await readFile(second)).subarray(0, size - 3));
    const err = await corruption(dir);
    expect(err.file).toBe(second);
    expect(err.offset).toBeLessThan(size);
  });

  it("a missing segment: in the middle, the newest, or the first", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet, segmentBytes: 300 });
    for (let i = 1; i <= 12; i++) await s.save({ entries: entries(i, i, 1, 100) });
    await s.close();
    const names = await segments(dir);
    const saved = new Map<string, Uint8Array>();
    for (const n of names) saved.set(n, await readFile(join(dir, n)));
    const restore = async (n: string): Promise<void> => writeFile(join(dir, n), saved.get(n)!);

    await unlink(join(dir, names[2]));
    let err = await corruption(dir);
    expect(err.file).toBe(join(dir, names[3]));
    expect(err.message).toMatch(/seq 3 is missing/);
    await restore(names[2]);

    await unlink(join(dir, names[names.length - 1]));
    err = await corruption(dir);
    expect(err.file).toBe(join(dir, names[names.length - 2]));
    expect(err.message).toMatch(/next segment .* is missing/);
    await restore(names[names.length - 1]);

    await unlink(join(dir, names[0]));
    err = await corruption(dir);
    expect(err.message).toMatch(/must start at segment seq 1/);
    await restore(names[0]);

    expect((await loadDir(dir)).state.entries).toEqual(entries(1, 12, 1, 100));
  });

  it("a missing or damaged snapshot file", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ entries: entries(1, 10, 1) });
    await s.save({ snapshot: snapshot(8, 1, 5000) });
    await s.close();
    const snap = join(dir, (await readdir(dir)).find((n) => n.endsWith(".snap"))!);

    await flipByte(snap, 3000);
    const opened = await FileStorage.open(dir, { log: quiet });
    const err = await opened.load().catch((e: unknown) => e);
    await opened.close();
    expect(err).toBeInstanceOf(StorageCorruptionError);
    expect((err as StorageCorruptionError).file).toBe(snap);
    expect((err as StorageCorruptionError).message).toMatch(/snapshot checksum mismatch/);
    await flipByte(snap, 3000);

    const bytes = await readFile(snap);
    await unlink(snap);
    expect((await corruption(dir)).file).toBe(snap);
    await writeFile(snap, bytes);
    expect((await loadDir(dir)).state.snapshot).toEqual(snapshot(8, 1, 5000));
  });
});

describe("FileStorage recovery: what an interrupted roll, compaction or snapshot leaves behind", () => {
  it("an empty newest segment without a roll record before it (a roll cut short) is removed", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet, segmentBytes: 400 });
    for (let i = 1; i <= 6; i++) await s.save({ hardState: hs(1, "n1", i - 1), entries: entries(i, i, 1, 100) });
    const expected = await s.load();
    await s.close();
    const names = await segments(dir);
    const seq = names.length + 1;

    // A header written and synced, but the crash came before the roll record.
    const next = join(dir, segmentName(seq, 7));
    await writeFile(next, encodeSegmentHeader({ seq, firstLive: 1, lastIndex: 6, hardState: hs(1, "n1", 5), snapshot: null }));
    let { state, log } = await loadDir(dir, { segmentBytes: 400 });
    expect(state).toEqual(expected);
    expect(log.join("\n")).toMatch(/roll that a crash interrupted/);
    expect(existsSync(next)).toBe(false);

    // Or torn inside the header.
    await writeFile(next, encodeSegmentHeader({ seq, firstLive: 1, lastIndex: 6, hardState: hs(1, "n1", 5), snapshot: null }).subarray(0, 11));
    ({ state } = await loadDir(dir, { segmentBytes: 400 }));
    expect(state).toEqual(expected);

    // Rolling again afterwards works.
    const again = await FileStorage.open(dir, { log: quiet, segmentBytes: 400 });
    for (let i = 7; i <= 12; i++) await again.save({ entries: entries(i, i, 1, 100) });
    await again.close();
    expect((await loadDir(dir)).state.entries).toEqual(entries(1, 12, 1, 100));
  });

  it("compaction drops whole segments at or below its index, across segment boundaries, and survives reopen", async () => {
    const dir = await tempDir();
    const opts = { log: quiet, segmentBytes: 512 };
    let s = await FileStorage.open(dir, opts);
    for (let i = 1; i <= 60; i++) await s.save({ hardState: hs(1, "n1", i - 1), entries: entries(i, i, 1, 100) });
    const before = await segments(dir);
    expect(before.length).toBeGreaterThan(12);

    await s.save({ snapshot: snapshot(40, 1) });
    await s.compact(40);
    const after = await segments(dir);
    expect(after.length).toBeLessThan(before.length - 8);
    // The first segment left still holds entry 41 (or starts just before it).
    expect(after[0] >= before[0]).toBe(true);
    expect((await s.load()).entries).toEqual(entries(41, 60, 1, 100));
    s = await (async () => (await s.close(), FileStorage.open(dir, opts)))();
    expect(await s.load()).toEqual({ hardState: hs(1, "n1", 59), snapshot: snapshot(40, 1), entries: entries(41, 60, 1, 100) });

    // Overwrite across segments after compaction, then compact everything.
    await s.save({ hardState: hs(2, "n2", 45), entries: entries(50, 70, 2, 100) });
    await s.save({ snapshot: snapshot(70, 2) });
    await s.compact(70);
    expect((await segments(dir)).length).toBeLessThanOrEqual(2);
    await s.save({ entries: entries(71, 72, 2) });
    await s.close();
    expect((await loadDir(dir, opts)).state).toEqual({ hardState: hs(2, "n2", 45), snapshot: snapshot(70, 2), entries: entries(71, 72, 2) });
  });

  it("a compaction closes a big segment being written, so the next compaction deletes it: disk use stays near the live log", async () => {
    const dir = await tempDir();
    const opts = { log: quiet }; // the default 64 MiB segments: none fills up in this test
    const s = await FileStorage.open(dir, opts);
    const logBytes = async (): Promise<number> => {
      let total = 0;
      for (const name of await segments(dir)) total += await sizeOf(join(dir, name));
      return total;
    };
    // Three snapshot intervals of 600 entries of 4 KiB (2.4 MiB each), a margin of 100 entries.
    for (let round = 1; round <= 3; round++) {
      const first = (round - 1) * 600 + 1;
      for (let i = first; i < first + 600; i += 50) await s.save({ entries: entries(i, i + 49, 1, 4096) });
      const last = first + 599;
      await s.save({ snapshot: snapshot(last, 1) });
      await s.compact(last - 100);
    }
    // Without the roll at compaction one segment would hold all 1,800 entries (7.4 MiB).
    expect(await logBytes()).toBeLessThan(2 * 600 * 4200);
    expect((await s.load()).entries).toEqual(entries(1701, 1800, 1, 4096));
    await s.close();
    expect((await loadDir(dir, opts)).state.entries).toEqual(entries(1701, 1800, 1, 4096));
  });

  it("segments a crash kept a compaction from removing are removed on open", async () => {
    const dir = await tempDir();
    const opts = { log: quiet, segmentBytes: 512 };
    const s = await FileStorage.open(dir, opts);
    for (let i = 1; i <= 30; i++) await s.save({ entries: entries(i, i, 1, 100) });
    const names = await segments(dir);
    const first = await readFile(join(dir, names[0]));
    await s.save({ snapshot: snapshot(20, 1) });
    await s.compact(20);
    const expected = await s.load();
    await s.close();
    expect(existsSync(join(dir, names[0]))).toBe(false);

    await writeFile(join(dir, names[0]), first);
    const { state, log } = await loadDir(dir, opts);
    expect(state).toEqual(expected);
    expect(log.join("\n")).toMatch(/left over from a compaction/);
    expect(existsSync(join(dir, names[0]))).toBe(false);
  });

  it("snapshot and temp files no log record refers to are removed on open", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ entries: entries(1, 3, 1) });
    await s.close();
    await writeFile(join(dir, "snap-0000000099.snap"), new Uint8Array(100));
    await writeFile(join(dir, "snap-0000000100.snap.tmp"), new Uint8Array(100));
    const again = await FileStorage.open(dir, { log: quiet });
    expect((await readdir(dir)).filter((n) => n.startsWith("snap-"))).toEqual([]);
    await again.save({ snapshot: snapshot(2, 1) });
    await again.close();
    expect((await readdir(dir)).filter((n) => n.startsWith("snap-"))).toEqual(["snap-0000000100.snap"]);
    expect((await loadDir(dir)).state.snapshot).toEqual(snapshot(2, 1));
  });
});

describe("FileStorage reads data directories of format 1 (records without a trailer)", () => {
  /**
   * test/fixtures/file-storage-format1/ was written by FileStorage at commit a0a1eb0, the last
   * one with format 1, by exactly these steps (segmentBytes 400): six segments, a checkpoint, a
   * snapshot. The directory is copied, never opened in place.
   */
  async function formatOneSteps(s: { save: MemoryStorage["save"]; compact: MemoryStorage["compact"] }): Promise<void> {
    await s.save({ hardState: hs(1, "n1", 0), entries: entries(1, 5, 1, 60) });
    for (let i = 6; i <= 12; i++) await s.save({ entries: entries(i, i, 1, 60) });
    await s.save({ hardState: hs(2, "n2", 8), entries: entries(10, 14, 2, 60) });
    await s.save({ snapshot: snapshot(8, 1) });
    await s.compact(6);
    await s.save({ hardState: hs(2, "n2", 12), entries: entries(15, 16, 2, 60) });
  }
  const fixture = join(import.meta.dirname, "../fixtures/file-storage-format1");

  it("opens with everything it held, starts a format 2 segment for new writes, and survives reopen", async () => {
    const dir = await tempDir();
    await cp(fixture, dir, { recursive: true });
    const old = await segments(dir);
    for (const name of old) expect(scanRecords(await readFile(join(dir, name))).format).toBe(1);
    const model = new MemoryStorage();
    await formatOneSteps(model);

    const opts = { log: quiet, segmentBytes: 400 };
    const s = await FileStorage.open(dir, opts);
    same(await s.load(), await model.load());
    const now = await segments(dir);
    expect(now.slice(0, old.length)).toEqual(old);
    expect(now.length).toBe(old.length + 1);
    const newest = await readFile(join(dir, now[now.length - 1]));
    expect(scanRecords(newest).format).toBe(2);
    expect(scanRecords(newest).records.length).toBe(1);

    for (const [step, batch] of [
      ["save", { hardState: hs(3, "n3", 14), entries: entries(15, 20, 3, 60) }],
      ["save", { snapshot: snapshot(14, 2) }],
      ["compact", 12],
    ] as const) {
      if (step === "save") {
        await s.save(batch);
        await model.save(batch);
      } else {
        await s.compact(batch);
        await model.compact(batch);
      }
    }
    await s.close();
    same((await loadDir(dir, opts)).state, await model.load());
    for (const name of (await segments(dir)).slice(old.length)) expect(scanRecords(await readFile(join(dir, name))).format).toBe(2);
  });

  it("a crash after the new segment was created but before the old one was closed leaves a directory that still opens", async () => {
    const dir = await tempDir();
    await cp(fixture, dir, { recursive: true });
    const model = new MemoryStorage();
    await formatOneSteps(model);
    const old = await segments(dir);
    const last = join(dir, old[old.length - 1]);
    const lastBytes = await readFile(last);
    await (await FileStorage.open(dir, { log: quiet })).close();
    // Undo the roll record, as if the crash came between creating the new segment and closing the old.
    await writeFile(last, lastBytes);
    const { state, log } = await loadDir(dir);
    same(state, await model.load());
    expect(log.join("\n")).toMatch(/roll that a crash interrupted/);
  });

  it("a format 1 segment whose first header is damaged is refused, not read as a torn write of its whole content", async () => {
    // Written at a0a1eb0: one segment holding a hard state and entries 1..5 (two saves).
    const fixture = join(import.meta.dirname, "../fixtures/file-storage-format1-one-segment");
    for (const at of [0, 3, 9]) {
      const dir = await tempDir();
      await cp(fixture, dir, { recursive: true });
      const path = join(dir, (await segments(dir))[0]);
      await flipByte(path, at);
      const err = await corruption(dir);
      expect([err.file, err.offset], `flipped byte ${at}`).toEqual([path, 0]);
      await flipByte(path, at);
      expect((await loadDir(dir)).state.entries).toEqual(entries(1, 5, 1));
    }
  });

  it("a format 1 segment keeps its own rule for a torn tail: zeros to the end are cut off", async () => {
    const dir = await tempDir();
    await cp(fixture, dir, { recursive: true });
    const old = await segments(dir);
    await appendFile(join(dir, old[old.length - 1]), new Uint8Array(300));
    const model = new MemoryStorage();
    await formatOneSteps(model);
    const { state, log } = await loadDir(dir);
    same(state, await model.load());
    expect(log.join("\n")).toMatch(/zeros from here to the end/);
  });
});

describe("FileStorage segments", () => {
  it("entries larger than a segment get segments of their own, and everything survives reopen", async () => {
    const dir = await tempDir();
    const opts = { log: quiet, segmentBytes: 64 * 1024 };
    const s = await FileStorage.open(dir, opts);
    const expected: Entry[] = [];
    for (let i = 1; i <= 12; i++) {
      const size = i % 3 === 0 ? 200 * 1024 : i % 3 === 1 ? 10 * 1024 : 40 * 1024;
      const batch = entries(i, i, 1, size);
      expected.push(...batch);
      await s.save({ entries: batch });
    }
    await s.save({ entries: [...entries(13, 14, 1, 150 * 1024)] });
    expected.push(...entries(13, 14, 1, 150 * 1024));
    await s.close();
    expect((await segments(dir)).length).toBeGreaterThanOrEqual(8);
    same((await loadDir(dir, opts)).state.entries, expected);
  });

  it("a batch of 100 entries is one append and one fdatasync, however many entries", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ entries: entries(1, 1, 1) });
    const probe = await open(join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; sync: () => Promise<void>; write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const original = { datasync: proto.datasync, sync: proto.sync, write: proto.write };
    const calls = { datasync: 0, sync: 0, write: 0 };
    proto.datasync = function (this: unknown) {
      calls.datasync++;
      return original.datasync.call(this);
    };
    proto.sync = function (this: unknown) {
      calls.sync++;
      return original.sync.call(this);
    };
    proto.write = function (this: unknown, ...args: unknown[]) {
      calls.write++;
      return original.write.apply(this, args);
    };
    try {
      await s.save({ hardState: hs(1, "n1", 1), entries: entries(2, 101, 1, 100) });
    } finally {
      Object.assign(proto, original);
    }
    await s.close();
    expect(calls).toEqual({ datasync: 1, sync: 0, write: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Locking and file system errors
// ---------------------------------------------------------------------------------------------

describe("FileStorage lock: one process per directory", () => {
  it("a second open of the same directory is refused until the first closes", async () => {
    const dir = await tempDir();
    const first = await FileStorage.open(dir, { log: quiet });
    const err = await FileStorage.open(dir, { log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageLockedError);
    expect((err as StorageLockedError).code).toBe("STORAGE_LOCKED");
    expect((err as StorageLockedError).pid).toBe(process.pid);
    await first.save({ entries: entries(1, 1, 1) });
    await first.close();
    expect((await loadDir(dir)).state.entries).toEqual(entries(1, 1, 1));
  });

  it("a lock held by another live process is refused; one whose process is gone is taken over with a log line", async () => {
    const dir = await tempDir();
    const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      await writeFile(join(dir, "LOCK"), JSON.stringify({ pid: sleeper.pid, host: hostname() }));
      const err = await FileStorage.open(dir, { log: quiet }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageLockedError);
      expect((err as Error).message).toMatch(new RegExp(`process ${sleeper.pid} .*it is running`));
    } finally {
      sleeper.kill("SIGKILL");
    }
    await new Promise((resolve) => sleeper.once("exit", resolve));

    const { state, log } = await loadDir(dir);
    expect(state.entries).toEqual([]);
    expect(log).toEqual([expect.stringMatching(new RegExp(`taking over the stale lock of process ${sleeper.pid}, which is not running`))]);
  });

  it("a lock from another host is never taken over", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "LOCK"), JSON.stringify({ pid: 12345, host: "some-other-host" }));
    const err = await FileStorage.open(dir, { log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageLockedError);
    expect((err as Error).message).toMatch(/some-other-host/);
  });
});

describe("FileStorage: file system errors reject with the errno and change nothing", () => {
  it.skipIf(!existsSync("/dev/full"))("a full disk while writing a snapshot (ENOSPC)", async () => {
    const dir = await tempDir();
    const s = await FileStorage.open(dir, { log: quiet });
    await s.save({ hardState: hs(1, "n1", 3), entries: entries(1, 5, 1) });
    const before = await s.load();
    // The next snapshot is written to snap-0000000001.snap.tmp first: make that the full device.
    await symlink("/dev/full", join(dir, "snap-0000000001.snap.tmp"));
    const err = await s.save({ hardState: hs(2, "n1", 3), snapshot: snapshot(3, 1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageIoError);
    expect((err as StorageIoError).errno).toBe("ENOSPC");
    expect((err as Error).message).toMatch(/ENOSPC \(the disk is full\)/);
    expect(await s.load()).toEqual(before);
    // Space again: the storage carries on.
    await s.save({ snapshot: snapshot(3, 1) });
    await s.close();
    expect((await loadDir(dir)).state).toEqual({ ...before, snapshot: snapshot(3, 1) });
  });

  const root = process.getuid?.() === 0;
  it.skipIf(root || process.platform === "win32")("a directory without write permission (EACCES)", async () => {
    const dir = await tempDir();
    await chmod(dir, 0o500);
    const err = await FileStorage.open(dir, { log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageIoError);
    expect((err as StorageIoError).errno).toBe("EACCES");
    expect((err as Error).message).toMatch(/EACCES \(permission denied\)/);
  });
});

describe("FileStorage.sizeBytes", () => {
  it("is the bytes of its segment files: it grows with a save, shrinks when compaction deletes a segment, and survives reopen", async () => {
    const dir = await tempDir();
    const onDisk = async (): Promise<number> => (await Promise.all((await segments(dir)).map((f) => sizeOf(join(dir, f))))).reduce((a, b) => a + b, 0);
    const s = await FileStorage.open(dir, { log: quiet, segmentBytes: 2048 });
    await s.load();
    const empty = s.sizeBytes();
    for (let i = 0; i < 10; i++) await s.save({ entries: entries(i * 10 + 1, i * 10 + 10, 1, 100) }); // several segments
    expect(s.sizeBytes()).toBeGreaterThan(empty + 100 * 100);
    expect(s.sizeBytes()).toBe(await onDisk());
    const full = s.sizeBytes();
    await s.save({ snapshot: snapshot(90, 1) });
    await s.compact(90);
    expect(s.sizeBytes()).toBeLessThan(full);
    expect(s.sizeBytes()).toBe(await onDisk());
    const compacted = s.sizeBytes();
    await s.close();
    const again = await FileStorage.open(dir, { log: quiet, segmentBytes: 2048 });
    await again.load();
    expect(again.sizeBytes()).toBe(compacted);
    await again.close();
  });
});

describe("MemoryStorage.sizeBytes", () => {
  it("is the data bytes of the stored entries", async () => {
    const s = new MemoryStorage();
    await s.save({ entries: entries(1, 10, 1, 50) });
    expect(s.sizeBytes()).toBe(500);
    await s.save({ snapshot: snapshot(4, 1) });
    await s.compact(4);
    expect(s.sizeBytes()).toBe(300);
  });
});
