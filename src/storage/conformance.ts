import type { ConfState, Entry, EntryType, HardState, Snapshot } from "../core/types.ts";
import type { Storage, StoredState } from "./storage.ts";

/**
 * The storage conformance suite: every adapter (memory, files, IndexedDB, Deno KV) runs it, so
 * the Raft driver can rely on one contract (see ./storage.ts). It imports no test framework; the
 * caller passes `describe` and `it` (vitest's work as they are; Deno's runner gets adapters), and
 * failures are plain Errors whose messages name the case, the path and both values.
 */

/** Just the slice of a test framework the suite uses. */
export interface ConformanceHarness {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
}

/** One storage instance for one case. */
export interface StorageUnderTest {
  storage: Storage;
  /**
   * Open the same durable location again, as a restarted process would. The suite closes the
   * previous handle (awaiting `close()`) before calling it, and calls it again on later reopens.
   */
  reopen: () => Promise<Storage>;
  /** Remove whatever the case left behind (files, databases). Called once, after closing. */
  cleanup?: () => Promise<void>;
}

export interface ConformanceOptions {
  /** Batches in the "many small batches" case. Default 1000. */
  manyBatches?: number;
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array || Object.prototype.toString.call(v) === "[object Uint8Array]";
}

function fmt(v: unknown): string {
  if (isBytes(v)) return `Uint8Array(${v.length})`;
  if (Array.isArray(v)) {
    const looksLikeEntries = v.every((x) => x !== null && typeof x === "object" && "index" in x && "term" in x);
    if (looksLikeEntries && v.length > 0) {
      const shown = v.slice(0, 12).map((e: Entry) => `${e.index}@t${e.term}`);
      return `[${shown.join(", ")}${v.length > 12 ? `, ... ${v.length} entries` : ""}]`;
    }
  }
  if (typeof v === "string") return JSON.stringify(v);
  if (v !== null && typeof v === "object") {
    try {
      const s = JSON.stringify(v);
      return s.length > 200 ? s.slice(0, 200) + "..." : s;
    } catch {
      return "[object]";
    }
  }
  return String(v);
}

/** The first difference between `actual` and `expected`, as "path: expected X, got Y". */
function diff(actual: unknown, expected: unknown, path: string): string | undefined {
  if (isBytes(expected)) {
    if (!isBytes(actual)) return `${path}: expected ${fmt(expected)}, got ${fmt(actual)}`;
    if (actual.length !== expected.length) {
      return `${path}: expected ${expected.length} bytes, got ${actual.length} bytes`;
    }
    for (let i = 0; i < expected.length; i++) {
      if (actual[i] !== expected[i]) return `${path}[${i}]: expected byte ${expected[i]}, got ${actual[i]}`;
    }
    return undefined;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected ${fmt(expected)}, got ${fmt(actual)}`;
    if (actual.length !== expected.length) {
      return `${path}: expected ${expected.length} items ${fmt(expected)}, got ${actual.length} items ${fmt(actual)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const d = diff(actual[i], expected[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object") return `${path}: expected ${fmt(expected)}, got ${fmt(actual)}`;
    const exp = expected as Record<string, unknown>;
    const act = actual as Record<string, unknown>;
    for (const key of Object.keys(exp)) {
      const d = diff(act[key], exp[key], `${path}.${key}`);
      if (d !== undefined) return d;
    }
    for (const key of Object.keys(act)) {
      if (!(key in exp) && act[key] !== undefined) return `${path}.${key}: unexpected field with value ${fmt(act[key])}`;
    }
    return undefined;
  }
  return Object.is(actual, expected) ? undefined : `${path}: expected ${fmt(expected)}, got ${fmt(actual)}`;
}

function assertEqual(actual: unknown, expected: unknown, what: string): void {
  const d = diff(actual, expected, "");
  if (d !== undefined) throw new Error(`${what}: ${d.replace(/^\./, "")}`);
}

/** Awaits `op()` and returns the rejection; fails if it resolves or rejects with a non-Error. */
async function assertRejects(op: () => Promise<unknown>, what: string): Promise<Error> {
  try {
    await op();
  } catch (e) {
    if (!(e instanceof Error)) {
      throw new Error(`${what}: rejected with ${fmt(e)}, not an Error; reject with an Error that says what was wrong`);
    }
    return e;
  }
  throw new Error(`${what}: expected a rejection, but the call succeeded`);
}

async function assertLoads(storage: Storage, expected: StoredState, what: string): Promise<void> {
  const state = await storage.load();
  assertEqual(state, expected, `${what}: load()`);
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const ZERO: HardState = { term: 0, votedFor: null, commit: 0 };
const EMPTY: StoredState = { hardState: ZERO, snapshot: null, entries: [] };

/** Deterministic pseudo-random bytes (xorshift32), so large cases catch misplaced chunks. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const ALL_BYTES: Uint8Array = Uint8Array.from({ length: 256 }, (_, i) => i);

function entry(index: number, term: number, type: EntryType = "normal", data?: Uint8Array): Entry {
  return { index, term, type, data: data ?? new TextEncoder().encode(`e${index}t${term}`) };
}

/** Entries `from..to` (inclusive), all in `term`, or with `termOf(index)`. */
function entries(from: number, to: number, term: number | ((index: number) => number)): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, typeof term === "number" ? term : term(i)));
  return out;
}

// Every field of a configuration, URLs and learners to promote included, must come back.
const CONF: ConfState = {
  voters: ["n1", "n2", "n3"],
  learners: ["n4", "n6"],
  votersOutgoing: ["n1", "n2", "n5"],
  urls: { n1: "http://127.0.0.1:7001", n4: "https://n4.example:8443/prefix", "ünïcode": "http://[::1]:7009" },
  promote: ["n6"],
};

function freshConf(): ConfState {
  return { ...CONF, voters: [...CONF.voters], learners: [...CONF.learners], votersOutgoing: [...CONF.votersOutgoing], urls: { ...CONF.urls }, promote: [...CONF.promote!] };
}

function snapshot(index: number, term: number, data: Uint8Array = bytes(300, index)): Snapshot {
  // A fresh conf each time: a buggy adapter that keeps references must not mutate the fixtures.
  return { meta: { index, term, conf: freshConf() }, data };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/** Current handle plus a reopen that closes it first; what each case body receives. */
interface Context {
  readonly storage: Storage;
  reopen(): Promise<Storage>;
}

export function runStorageConformance(
  name: string,
  makeStorage: () => Promise<StorageUnderTest>,
  t: ConformanceHarness,
  options: ConformanceOptions = {},
): void {
  const manyBatches = options.manyBatches ?? 1000;

  const test = (title: string, body: (ctx: Context) => Promise<void>): void => {
    t.it(title, async () => {
      const under = await makeStorage();
      let current = under.storage;
      const ctx: Context = {
        get storage() {
          return current;
        },
        async reopen() {
          await current.close();
          current = await under.reopen();
          return current;
        },
      };
      try {
        await body(ctx);
      } finally {
        try {
          await current.close();
        } finally {
          await under.cleanup?.();
        }
      }
    });
  };

  t.describe(`Storage conformance: ${name}`, () => {
    test("a fresh storage loads the zero hard state, no snapshot and no entries", async (ctx) => {
      await assertLoads(ctx.storage, EMPTY, "fresh storage");
      await assertLoads(await ctx.reopen(), EMPTY, "fresh storage after reopen");
    });

    test("an empty batch is accepted and changes nothing", async (ctx) => {
      await ctx.storage.save({});
      await ctx.storage.save({ entries: [] });
      await assertLoads(ctx.storage, EMPTY, "after empty batches");
      await ctx.storage.save({ hardState: { term: 1, votedFor: "n1", commit: 0 }, entries: entries(1, 2, 1) });
      await ctx.storage.save({ entries: [] });
      await assertLoads(
        await ctx.reopen(),
        { hardState: { term: 1, votedFor: "n1", commit: 0 }, snapshot: null, entries: entries(1, 2, 1) },
        "an empty entries list must not truncate the log",
      );
    });

    test("the hard state round-trips through reopen, the latest save winning", async (ctx) => {
      await ctx.storage.save({ hardState: { term: 3, votedFor: "n2", commit: 0 } });
      await assertLoads(await ctx.reopen(), { ...EMPTY, hardState: { term: 3, votedFor: "n2", commit: 0 } }, "term 3 vote n2");
      await ctx.storage.save({ hardState: { term: 4, votedFor: null, commit: 0 } });
      await assertLoads(await ctx.reopen(), { ...EMPTY, hardState: { term: 4, votedFor: null, commit: 0 } }, "votedFor null");
      await ctx.storage.save({ entries: entries(1, 3, 4) });
      await ctx.storage.save({ hardState: { term: 4, votedFor: "a-much-longer-node-id-ü", commit: 3 } });
      await assertLoads(
        await ctx.reopen(),
        { hardState: { term: 4, votedFor: "a-much-longer-node-id-ü", commit: 3 }, snapshot: null, entries: entries(1, 3, 4) },
        "hard state saved after entries",
      );
    });

    test("entries of all three types, with every byte value, round-trip through reopen", async (ctx) => {
      const stored: Entry[] = [
        entry(1, 1, "noop", new Uint8Array(0)),
        entry(2, 1, "normal", ALL_BYTES),
        entry(3, 2, "config", bytes(1000, 3)),
        entry(4, 2, "normal", new Uint8Array(0)),
        entry(5, 7, "normal", Uint8Array.from(ALL_BYTES).reverse()),
      ];
      await ctx.storage.save({ entries: stored });
      await assertLoads(ctx.storage, { ...EMPTY, entries: stored }, "before reopen");
      await assertLoads(await ctx.reopen(), { ...EMPTY, entries: stored }, "after reopen");
    });

    test("a snapshot round-trips through reopen with its joint membership and data", async (ctx) => {
      const snap = snapshot(10, 3, ALL_BYTES);
      await ctx.storage.save({ snapshot: snap });
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snap }, "snapshot only");
      const empty = { meta: { index: 12, term: 4, conf: { voters: ["n1"], learners: [], votersOutgoing: [] } }, data: new Uint8Array(0) };
      await ctx.storage.save({ snapshot: empty });
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: empty }, "a newer snapshot with empty data replaces it");
    });

    test("a configuration record (a snapshot at index 0 without data) saved with the first hard state and entries round-trips; a later snapshot replaces it", async (ctx) => {
      // RaftNode stores the configuration it was first started with this way, with its first save.
      const record: Snapshot = { meta: { index: 0, term: 0, conf: freshConf() }, data: new Uint8Array(0) };
      const hs: HardState = { term: 1, votedFor: "n1", commit: 0 };
      await ctx.storage.save({ hardState: hs, snapshot: record, entries: entries(1, 3, 1) });
      await assertLoads(await ctx.reopen(), { hardState: hs, snapshot: record, entries: entries(1, 3, 1) }, "record + hard state + entries");
      await ctx.storage.save({ entries: entries(4, 5, 1) });
      await assertLoads(await ctx.reopen(), { hardState: hs, snapshot: record, entries: entries(1, 5, 1) }, "entries appended after the record");
      const later = snapshot(3, 1);
      await ctx.storage.save({ snapshot: later });
      await assertLoads(await ctx.reopen(), { hardState: hs, snapshot: later, entries: entries(1, 5, 1) }, "a snapshot at 3 replaces the record, the log kept");
    });

    test("an empty configuration record (a member that joined) round-trips", async (ctx) => {
      const joined: Snapshot = { meta: { index: 0, term: 0, conf: { voters: [], learners: [], votersOutgoing: [] } }, data: new Uint8Array(0) };
      const hs: HardState = { term: 5, votedFor: null, commit: 0 };
      await ctx.storage.save({ hardState: hs, snapshot: joined });
      await assertLoads(await ctx.reopen(), { ...EMPTY, hardState: hs, snapshot: joined }, "empty record");
    });

    test("entries replace every stored entry from their first index (truncation by overwrite)", async (ctx) => {
      await ctx.storage.save({ entries: entries(1, 10, 1) });
      await ctx.storage.save({ entries: entries(6, 8, 2) });
      const expected = [...entries(1, 5, 1), ...entries(6, 8, 2)];
      await assertLoads(ctx.storage, { ...EMPTY, entries: expected }, "overwrite 6..8 over 1..10");
      await assertLoads(await ctx.reopen(), { ...EMPTY, entries: expected }, "overwrite 6..8 over 1..10, after reopen");

      await ctx.storage.save({ entries: [entry(9, 2)] });
      await ctx.storage.save({ entries: [entry(9, 3)] });
      await assertLoads(
        await ctx.reopen(),
        { ...EMPTY, entries: [...expected, entry(9, 3)] },
        "append at last+1, then overwrite the last entry alone",
      );

      await ctx.storage.save({ entries: [entry(1, 5)] });
      await assertLoads(await ctx.reopen(), { ...EMPTY, entries: [entry(1, 5)] }, "overwrite from the first index");
    });

    test("hard state, snapshot and entries of one batch become visible together", async (ctx) => {
      const hs: HardState = { term: 2, votedFor: "n3", commit: 4 };
      await ctx.storage.save({ hardState: hs, entries: entries(1, 4, 2) });
      await assertLoads(ctx.storage, { hardState: hs, snapshot: null, entries: entries(1, 4, 2) }, "hard state + entries");

      const hs2: HardState = { term: 5, votedFor: null, commit: 20 };
      const snap = snapshot(20, 5);
      await ctx.storage.save({ hardState: hs2, snapshot: snap, entries: entries(21, 23, 5) });
      const expected: StoredState = { hardState: hs2, snapshot: snap, entries: entries(21, 23, 5) };
      await assertLoads(ctx.storage, expected, "snapshot (discarding a disagreeing log) then entries after it");
      await assertLoads(await ctx.reopen(), expected, "after reopen");
    });

    test("a batch that would leave a gap rejects and changes nothing, not even its hard state", async (ctx) => {
      await assertRejects(() => ctx.storage.save({ entries: [entry(2, 1)] }), "first entry at 2 on an empty log");
      await assertLoads(ctx.storage, EMPTY, "after the rejected first batch");

      const hs: HardState = { term: 1, votedFor: "n1", commit: 1 };
      await ctx.storage.save({ hardState: hs, entries: entries(1, 3, 1) });
      const before: StoredState = { hardState: hs, snapshot: null, entries: entries(1, 3, 1) };
      await assertRejects(
        () => ctx.storage.save({ hardState: { term: 9, votedFor: "n9", commit: 3 }, entries: entries(5, 6, 9) }),
        "entries starting at 5 after a log ending at 3",
      );
      await assertLoads(ctx.storage, before, "after a rejected gap");
      await assertRejects(
        () => ctx.storage.save({ hardState: { term: 9, votedFor: "n9", commit: 3 }, entries: [entry(4, 1), entry(6, 1)] }),
        "non-contiguous entries within one batch",
      );
      await assertLoads(ctx.storage, before, "after rejected non-contiguous entries");
      await assertRejects(
        () => ctx.storage.save({ hardState: { term: 9, votedFor: "n9", commit: 3 }, snapshot: snapshot(10, 9), entries: [entry(12, 9)] }),
        "entries leaving a gap after a snapshot in the same batch",
      );
      await assertLoads(ctx.storage, before, "after a rejected snapshot batch (the snapshot must not be stored)");
      await assertLoads(await ctx.reopen(), before, "rejected batches after reopen");

      await ctx.storage.save({ snapshot: snapshot(10, 2) });
      await assertRejects(() => ctx.storage.save({ entries: [entry(12, 2)] }), "entries at 12 after a snapshot at 10 and no log");
      await ctx.storage.save({ entries: [entry(11, 2)] });
      await assertLoads(
        await ctx.reopen(),
        { hardState: hs, snapshot: snapshot(10, 2), entries: [entry(11, 2)] },
        "entries continue right after the snapshot",
      );
    });

    test(`${manyBatches} small batches are all durable, in order`, async (ctx) => {
      // Each batch appends one entry; every 7th also overwrites the previous entry, every 5th
      // carries a hard state, and every 50th is a hard state alone.
      const expected: Entry[] = [];
      let hs: HardState = ZERO;
      for (let i = 1; i <= manyBatches; i++) {
        if (i % 50 === 0) {
          hs = { term: hs.term, votedFor: `n${i % 3}`, commit: expected.length };
          await ctx.storage.save({ hardState: hs });
          continue;
        }
        const index = expected.length + 1;
        const batch: Entry[] = [];
        if (i % 7 === 0 && index > 1) {
          batch.push(entry(index - 1, i, "normal", bytes(10, i)));
          expected.pop();
        }
        batch.push(entry(index, i, i % 3 === 0 ? "noop" : "normal", bytes(i % 40, i)));
        expected.push(...batch);
        if (i % 5 === 0) {
          hs = { term: i, votedFor: null, commit: index - 1 };
          await ctx.storage.save({ hardState: hs, entries: batch });
        } else {
          await ctx.storage.save({ entries: batch });
        }
      }
      await assertLoads(ctx.storage, { hardState: hs, snapshot: null, entries: expected }, "before reopen");
      await assertLoads(await ctx.reopen(), { hardState: hs, snapshot: null, entries: expected }, "after reopen");
    });

    test("a snapshot that matches the stored log (index and term) keeps every entry", async (ctx) => {
      const termOf = (i: number): number => (i <= 3 ? 1 : i <= 6 ? 2 : 3);
      await ctx.storage.save({ entries: entries(1, 10, termOf) });
      await ctx.storage.save({ snapshot: snapshot(5, 2) });
      const expected: StoredState = { hardState: ZERO, snapshot: snapshot(5, 2), entries: entries(1, 10, termOf) };
      await assertLoads(ctx.storage, expected, "snapshot at 5@t2 over a log with 5@t2");
      await assertLoads(await ctx.reopen(), expected, "after reopen");
      await ctx.storage.save({ snapshot: snapshot(10, 3) });
      await assertLoads(
        await ctx.reopen(),
        { hardState: ZERO, snapshot: snapshot(10, 3), entries: entries(1, 10, termOf) },
        "snapshot at the last entry keeps the log",
      );
    });

    test("a snapshot that disagrees with the stored log discards every entry", async (ctx) => {
      await ctx.storage.save({ entries: entries(1, 10, 2) });
      await ctx.storage.save({ snapshot: snapshot(5, 3) });
      await assertLoads(ctx.storage, { ...EMPTY, snapshot: snapshot(5, 3) }, "snapshot 5@t3 over a log with 5@t2");
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snapshot(5, 3) }, "after reopen");

      await ctx.storage.save({ entries: entries(6, 8, 3) });
      await ctx.storage.save({ snapshot: snapshot(20, 4) });
      await assertLoads(ctx.storage, { ...EMPTY, snapshot: snapshot(20, 4) }, "snapshot beyond the end of the log");
      await ctx.storage.save({ entries: entries(21, 22, 4) });
      await assertLoads(
        await ctx.reopen(),
        { ...EMPTY, snapshot: snapshot(20, 4), entries: entries(21, 22, 4) },
        "entries after a snapshot that discarded the log",
      );
    });

    test("compact drops entries up to its index, keeps the rest and survives reopen", async (ctx) => {
      await ctx.storage.save({ entries: entries(1, 10, 1) });
      await ctx.storage.save({ snapshot: snapshot(7, 1) });
      await ctx.storage.compact(0);
      await ctx.storage.compact(4);
      await assertLoads(ctx.storage, { ...EMPTY, snapshot: snapshot(7, 1), entries: entries(5, 10, 1) }, "after compact(4)");
      await ctx.storage.compact(3);
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snapshot(7, 1), entries: entries(5, 10, 1) }, "compact below the first entry is a no-op");
      await ctx.storage.compact(7);
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snapshot(7, 1), entries: entries(8, 10, 1) }, "compact up to the snapshot index");
      await ctx.storage.save({ entries: entries(9, 11, 2) });
      await assertLoads(
        await ctx.reopen(),
        { ...EMPTY, snapshot: snapshot(7, 1), entries: [entry(8, 1), ...entries(9, 11, 2)] },
        "overwrite and append after compaction",
      );
      await ctx.storage.save({ snapshot: snapshot(11, 2) });
      await ctx.storage.compact(11);
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snapshot(11, 2) }, "compact everything");
      await ctx.storage.save({ entries: [entry(12, 2)] });
      await assertLoads(await ctx.reopen(), { ...EMPTY, snapshot: snapshot(11, 2), entries: [entry(12, 2)] }, "append after compacting everything");
    });

    test("compact beyond the snapshot's index rejects and changes nothing", async (ctx) => {
      await ctx.storage.save({ entries: entries(1, 10, 1) });
      await assertRejects(() => ctx.storage.compact(1), "compact(1) without a snapshot");
      await assertLoads(ctx.storage, { ...EMPTY, entries: entries(1, 10, 1) }, "after the rejected compact without a snapshot");
      await ctx.storage.save({ snapshot: snapshot(5, 1) });
      await assertRejects(() => ctx.storage.compact(6), "compact(6) with a snapshot at 5");
      const expected: StoredState = { ...EMPTY, snapshot: snapshot(5, 1), entries: entries(1, 10, 1) };
      await assertLoads(ctx.storage, expected, "after the rejected compact(6)");
      await assertLoads(await ctx.reopen(), expected, "after reopen");
    });

    test("load returns copies: mutating them changes nothing stored", async (ctx) => {
      // Fixtures are built afresh for saving and for comparing, so shared references cannot hide a bug.
      await ctx.storage.save({ hardState: { term: 2, votedFor: "n1", commit: 3 }, entries: entries(1, 5, 1) });
      await ctx.storage.save({ snapshot: snapshot(3, 1) });
      const expected: StoredState = { hardState: { term: 2, votedFor: "n1", commit: 3 }, snapshot: snapshot(3, 1), entries: entries(1, 5, 1) };

      const loaded = await ctx.storage.load();
      loaded.hardState.term = 99;
      loaded.hardState.votedFor = "mallory";
      loaded.entries[0].data[0] ^= 0xff;
      loaded.entries[1].term = 99;
      loaded.entries.pop();
      loaded.snapshot!.data[0] ^= 0xff;
      loaded.snapshot!.meta.conf.voters.push("mallory");
      loaded.snapshot!.meta.conf.urls!.n1 = "http://mallory";
      loaded.snapshot!.meta.index = 99;
      await assertLoads(ctx.storage, expected, "after mutating a loaded state");
    });

    test("save keeps its own copy: mutating a saved batch afterwards changes nothing stored", async (ctx) => {
      const hs: HardState = { term: 2, votedFor: "n1", commit: 0 };
      const batchEntries = entries(1, 3, 2);
      const snap = snapshot(1, 2, Uint8Array.from([1, 2, 3]));
      const batch = { hardState: { ...hs }, entries: batchEntries.map((e) => ({ ...e, data: Uint8Array.from(e.data) })) };
      await ctx.storage.save(batch);
      const snapBatch = { snapshot: { meta: { ...snap.meta, conf: freshConf() }, data: Uint8Array.from(snap.data) } };
      await ctx.storage.save(snapBatch);
      batch.hardState.term = 99;
      batch.entries[0].data[0] ^= 0xff;
      batch.entries[2].index = 99;
      snapBatch.snapshot.data[0] = 99;
      snapBatch.snapshot.meta.conf.voters.push("mallory");
      snapBatch.snapshot.meta.conf.promote!.push("mallory");
      await assertLoads(ctx.storage, { hardState: hs, snapshot: snap, entries: batchEntries }, "after mutating saved batches");
    });

    test("1 MiB entries and a 1 MiB snapshot round-trip byte for byte", async (ctx) => {
      const MiB = 1024 * 1024;
      const big = [entry(1, 1, "normal", bytes(MiB, 1)), entry(2, 1, "config", bytes(MiB + 7, 2)), entry(3, 1, "normal", bytes(MiB - 1, 3))];
      await ctx.storage.save({ entries: big });
      await ctx.storage.save({ entries: [entry(4, 1, "normal", bytes(10, 4))] });
      const snap = snapshot(2, 1, bytes(MiB, 5));
      await ctx.storage.save({ snapshot: snap });
      const expected: StoredState = { hardState: ZERO, snapshot: snap, entries: [...big, entry(4, 1, "normal", bytes(10, 4))] };
      await assertLoads(ctx.storage, expected, "before reopen");
      await assertLoads(await ctx.reopen(), expected, "after reopen");
      await ctx.storage.save({ entries: [entry(2, 2, "normal", bytes(MiB, 6))] });
      await ctx.storage.compact(1);
      await assertLoads(
        await ctx.reopen(),
        { hardState: ZERO, snapshot: snap, entries: [entry(2, 2, "normal", bytes(MiB, 6))] },
        "overwriting and compacting large entries",
      );
    });
  });
}
