/**
 * fast-check over FileStorage's recovery path (issue 15): a real data directory (several segments,
 * a checkpoint, a snapshot file, overwritten and compacted entries) gets random byte flips,
 * truncations, zeroed pages and appended garbage in one of its files, and is opened again.
 * Property: opening either succeeds with nothing but what was written (each entry, the snapshot
 * and the hard state are ones some save wrote, the log contiguous) and the storage keeps working
 * (a new save is there after another reopen), or it is refused with a StorageCorruptionError that
 * names a file of the directory and an offset inside it. Nothing else: no other error, no crash.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Entry, HardState } from "../../src/core/types.ts";
import type { StoredState } from "../../src/storage/storage.ts";
import { FileStorage, StorageCorruptionError } from "../../adapters/node/file-storage.ts";
import { entryAt, snapshotAt } from "../fixtures/storage-writer.ts";
import { fuzzParams, fuzzTimeout } from "./fuzz-settings.ts";

const quiet = { log: () => undefined, segmentBytes: 4096 };

/** Everything any save wrote: entry terms per index, snapshots, hard states. */
const written = { terms: new Map<number, Set<number>>(), snapshots: new Set<string>(), hardStates: [] as HardState[] };

let base: string;
let files: string[];

async function save(s: FileStorage, batch: { hardState?: HardState; first?: number; count?: number; term?: number; snapshot?: [number, number] }) {
  const entries: Entry[] = [];
  for (let i = 0; i < (batch.count ?? 0); i++) entries.push(entryAt(batch.first! + i, batch.term!));
  for (const e of entries) {
    if (!written.terms.has(e.index)) written.terms.set(e.index, new Set());
    written.terms.get(e.index)!.add(e.term);
  }
  if (batch.hardState) written.hardStates.push(batch.hardState);
  const snapshot = batch.snapshot ? snapshotAt(batch.snapshot[0], batch.snapshot[1]) : undefined;
  if (batch.snapshot) written.snapshots.add(`${batch.snapshot[0]}@${batch.snapshot[1]}`);
  await s.save({ hardState: batch.hardState, entries: entries.length > 0 ? entries : undefined, snapshot });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "meshraft-recovery-fuzz-"));
  written.hardStates.push({ term: 0, votedFor: null, commit: 0 });
  const s = await FileStorage.open(base, quiet);
  await save(s, { hardState: { term: 1, votedFor: "n1", commit: 0 }, first: 1, count: 20, term: 1 });
  await save(s, { hardState: { term: 1, votedFor: "n1", commit: 12 } });
  await save(s, { hardState: { term: 2, votedFor: "n2", commit: 12 }, first: 15, count: 11, term: 2 });
  await save(s, { snapshot: [10, 1] });
  await s.compact(10);
  await save(s, { first: 26, count: 15, term: 2, hardState: { term: 2, votedFor: "n2", commit: 30 } });
  await save(s, { snapshot: [22, 2] });
  await s.compact(18);
  await save(s, { first: 41, count: 12, term: 3, hardState: { term: 3, votedFor: null, commit: 45 } });
  await s.close();
  files = (await readdir(base)).filter((n) => !n.endsWith(".lock")).sort();
}, 60_000);

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

type Mutation =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "truncate"; at: number }
  | { kind: "zero"; at: number; length: number }
  | { kind: "append"; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("zero" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4096 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const out = new Uint8Array(bytes);
  if (bytes.length === 0) return m.kind === "append" ? m.bytes : out;
  const at = m.kind === "append" ? 0 : m.at % bytes.length;
  switch (m.kind) {
    case "flip":
      out[at] ^= m.mask;
      return out;
    case "truncate":
      return out.subarray(0, at);
    case "zero":
      out.fill(0, at, at + m.length);
      return out;
    case "append":
      return Uint8Array.from([...bytes, ...m.bytes]);
  }
}

/** Every value in `state` is one some save wrote, and the log is contiguous after the snapshot. */
function checkWritten(state: StoredState, where: string): void {
  expect(written.hardStates.some((h) => isDeepStrictEqual(h, state.hardState)), `${where}: hard state ${JSON.stringify(state.hardState)} never written`).toBe(true);
  const snap = state.snapshot;
  if (snap) {
    const { index, term } = snap.meta;
    expect(written.snapshots.has(`${index}@${term}`), `${where}: snapshot ${index}@${term} never written`).toBe(true);
    expect(isDeepStrictEqual(snap, snapshotAt(index, term)), `${where}: snapshot ${index}@${term} holds other bytes`).toBe(true);
  }
  const e = state.entries;
  if (e.length > 0) expect(e[0].index, `${where}: a gap between the snapshot and the log`).toBeLessThanOrEqual((snap?.meta.index ?? 0) + 1);
  e.forEach((entry, i) => {
    if (i > 0) expect(entry.index, `${where}: entries not contiguous`).toBe(e[i - 1].index + 1);
    expect(written.terms.get(entry.index)?.has(entry.term), `${where}: entry ${entry.index}@${entry.term} never written`).toBe(true);
    expect(isDeepStrictEqual(entry, entryAt(entry.index, entry.term)), `${where}: entry ${entry.index}@${entry.term} holds other bytes`).toBe(true);
    if (i > 0) expect(entry.term).toBeGreaterThanOrEqual(e[i - 1].term);
  });
}

describe("fuzz: storage recovery", () => {
  it(
    "a flipped, truncated, zeroed or extended file: recovery serves only what was written and keeps working, or refuses naming file and offset",
    async () => {
      const stats = { runs: 0, opened: 0, refused: 0 };
      const scratchRoot = await mkdtemp(join(tmpdir(), "meshraft-recovery-scratch-"));
      try {
        await fc.assert(
          fc.asyncProperty(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (pick, mutations) => {
            const name = files[pick % files.length];
            const dir = join(scratchRoot, String(stats.runs++));
            await cp(base, dir, { recursive: true });
            let bytes: Uint8Array = await readFile(join(dir, name));
            for (const m of mutations) bytes = mutate(bytes, m);
            await writeFile(join(dir, name), bytes);
            const where = `${name} after ${JSON.stringify(mutations, (_k, v) => (v instanceof Uint8Array ? `${v.length} bytes` : v))}`;
            try {
              let state: StoredState;
              try {
                const s = await FileStorage.open(dir, quiet);
                try {
                  state = await s.load();
                  checkWritten(state, where);
                  // It keeps working: one more entry is there after a reopen.
                  const last = state.entries.at(-1)?.index ?? state.snapshot?.meta.index ?? 0;
                  const term = Math.max(state.hardState.term, state.entries.at(-1)?.term ?? 0, 9);
                  await s.save({ hardState: { ...state.hardState, term }, entries: [entryAt(last + 1, term)] });
                } finally {
                  await s.close();
                }
              } catch (error) {
                if (!(error instanceof StorageCorruptionError)) throw new Error(`${where}: ${String(error)}`, { cause: error });
                expect(error.file.startsWith(dir), `${where}: names ${error.file}`).toBe(true);
                const size = await stat(error.file).then((s) => s.size, () => null);
                if (size !== null) expect(error.offset, `${where}: offset ${error.offset} of ${size}`).toBeLessThanOrEqual(size);
                expect(Number.isSafeInteger(error.offset) && error.offset >= 0).toBe(true);
                expect(error.message).toContain(`${error.file} at byte offset ${error.offset}`);
                stats.refused++;
                return;
              }
              const again = await FileStorage.open(dir, quiet);
              try {
                const after = await again.load();
                expect(after.entries.at(-1)?.index, `${where}: the save after recovery is lost`).toBe(
                  (state.entries.at(-1)?.index ?? state.snapshot?.meta.index ?? 0) + 1,
                );
              } finally {
                await again.close();
              }
              stats.opened++;
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          }),
          fuzzParams(150),
        );
      } finally {
        await rm(scratchRoot, { recursive: true, force: true });
      }
      console.log(`fuzz: storage recovery: ${JSON.stringify(stats)} over ${files.join(", ")}`);
      // Both outcomes occur, so neither half of the property is vacuous.
      expect(stats.opened).toBeGreaterThan(0);
      expect(stats.refused).toBeGreaterThan(0);
    },
    fuzzTimeout(150, 60),
  );
});
