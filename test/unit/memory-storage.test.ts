import { describe, expect, it } from "vitest";
import type { Entry } from "../../src/core/types.ts";
import type { SaveBatch, Storage, StoredState } from "../../src/storage/storage.ts";
import { runStorageConformance } from "../../src/storage/conformance.ts";
import { MemoryStorage, StorageError } from "../../src/storage/memory.ts";
import { VirtualClock } from "../../src/testing/clock.ts";

runStorageConformance(
  "MemoryStorage",
  async () => {
    let current = new MemoryStorage();
    return { storage: current, reopen: async () => (current = current.reopen()) };
  },
  { describe, it },
);

const entry = (index: number, term: number, bytes = 3): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(bytes).fill(index),
});

describe("MemoryStorage with save latency (crash model)", () => {
  it("a save resolves only after its latency, and is durable only from that moment", async () => {
    const clock = new VirtualClock();
    const storage = new MemoryStorage({ clock, saveLatencyMs: 5 });
    let resolved = false;
    const saving = storage.save({ hardState: { term: 1, votedFor: "n1", commit: 0 }, entries: [entry(1, 1)] });
    void saving.then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect(storage.pendingSaves).toBe(1);
    expect((await storage.load()).entries).toEqual([]);
    clock.advance(4);
    await Promise.resolve();
    expect(resolved).toBe(false);
    clock.advance(1);
    await saving;
    expect(resolved).toBe(true);
    expect(storage.pendingSaves).toBe(0);
    const state = await storage.load();
    expect(state.hardState).toEqual({ term: 1, votedFor: "n1", commit: 0 });
    expect(state.entries).toEqual([entry(1, 1)]);
  });

  it("crash() loses the save in flight: its promise rejects with code CRASHED and load shows the old state", async () => {
    const clock = new VirtualClock();
    const storage = new MemoryStorage({ clock, saveLatencyMs: 10 });
    const first = storage.save({ hardState: { term: 1, votedFor: "n1", commit: 0 }, entries: [entry(1, 1)] });
    clock.advance(10);
    await first;
    const lost = storage.save({ hardState: { term: 2, votedFor: "n2", commit: 1 }, entries: [entry(2, 2)] });
    clock.advance(9);
    storage.crash();
    await expect(lost).rejects.toMatchObject({ name: "StorageError", code: "CRASHED" });
    clock.advance(100); // the cancelled write must not land later either
    expect(clock.pending()).toBe(0);

    // A stale driver cannot write through the crashed handle...
    await expect(storage.save({ entries: [entry(2, 9)] })).rejects.toMatchObject({ code: "CRASHED" });
    // ...until a new node loads it.
    const state = await storage.load();
    expect(state.hardState).toEqual({ term: 1, votedFor: "n1", commit: 0 });
    expect(state.entries).toEqual([entry(1, 1)]);
    const again = storage.save({ entries: [entry(2, 3)] });
    clock.advance(10);
    await again;
    expect((await storage.load()).entries).toEqual([entry(1, 1), entry(2, 3)]);
  });

  it("reopen() crashes and closes the old handle, and the new handle sees only durable state", async () => {
    const clock = new VirtualClock();
    const storage = new MemoryStorage({ clock, saveLatencyMs: 10 });
    const durable = storage.save({ entries: [entry(1, 1)] });
    clock.advance(10);
    await durable;
    const lost = storage.save({ entries: [entry(2, 1)] });
    const fresh = storage.reopen();
    await expect(lost).rejects.toBeInstanceOf(StorageError);
    await expect(storage.load()).rejects.toMatchObject({ code: "CLOSED" });
    await expect(storage.save({})).rejects.toMatchObject({ code: "CLOSED" });
    expect((await fresh.load()).entries).toEqual([entry(1, 1)]);
    expect(fresh.saves).toBe(1);
  });

  it("an invalid batch rejects at once, before any latency", async () => {
    const clock = new VirtualClock();
    const storage = new MemoryStorage({ clock, saveLatencyMs: 10 });
    await expect(storage.save({ entries: [entry(3, 1)] })).rejects.toMatchObject({ code: "LOG_GAP" });
    expect(clock.pending()).toBe(0);
  });

  it("a batch mutated by the caller while in flight is stored as it was passed", async () => {
    const clock = new VirtualClock();
    const storage = new MemoryStorage({ clock, saveLatencyMs: 1 });
    const batch = { entries: [entry(1, 1)] };
    const saving = storage.save(batch);
    batch.entries[0].data[0] = 99;
    batch.entries.push(entry(2, 1));
    clock.advance(1);
    await saving;
    expect((await storage.load()).entries).toEqual([entry(1, 1)]);
  });
});

describe("MemoryStorage details", () => {
  it("errors are StorageErrors with a code and a message that says what was wrong", async () => {
    const storage = new MemoryStorage();
    await storage.save({ entries: [entry(1, 1), entry(2, 1)] });
    await expect(storage.save({ entries: [entry(5, 1)] })).rejects.toThrow(
      "batch starts at index 5 but the stored log ends at 2: entries would leave a gap",
    );
    await expect(storage.save({ entries: [entry(3, 1), entry(5, 1)] })).rejects.toMatchObject({ code: "INVALID_BATCH" });
    await expect(storage.save({ entries: [entry(0, 1)] })).rejects.toMatchObject({ code: "INVALID_BATCH" });
    await expect(storage.compact(1)).rejects.toThrow("compact(1) is beyond the stored snapshot's index 0");
  });

  it("counts durable saves, bytes written, stored entries and the snapshot index", async () => {
    const storage = new MemoryStorage();
    expect([storage.saves, storage.bytesWritten, storage.storedEntryCount, storage.snapshotIndex, storage.lastIndex]).toEqual([0, 0, 0, 0, 0]);
    await storage.save({ entries: [entry(1, 1, 10), entry(2, 1, 20)] });
    await storage.save({ hardState: { term: 1, votedFor: null, commit: 2 } });
    await storage.save({
      snapshot: { meta: { index: 2, term: 1, conf: { voters: ["a"], learners: [], votersOutgoing: [] } }, data: new Uint8Array(100) },
    });
    await expect(storage.save({ entries: [entry(9, 1, 1000)] })).rejects.toThrow();
    expect(storage.saves).toBe(3);
    expect(storage.bytesWritten).toBe(130);
    expect(storage.storedEntryCount).toBe(2);
    expect(storage.snapshotIndex).toBe(2);
    await storage.compact(1);
    expect(storage.storedEntryCount).toBe(1);
    expect(storage.lastIndex).toBe(2);
    await storage.compact(2);
    expect(storage.storedEntryCount).toBe(0);
    expect(storage.lastIndex).toBe(2);
  });

  it("copies data passed as a view on a larger buffer instead of keeping the view", async () => {
    const storage = new MemoryStorage();
    const backing = new Uint8Array([1, 2, 3, 4]);
    const view = backing.subarray(1, 3);
    await storage.save({ entries: [{ index: 1, term: 1, type: "normal", data: view }] });
    backing.fill(0);
    const [stored] = (await storage.load()).entries;
    expect(Array.from(stored.data)).toEqual([2, 3]);
    expect(stored.data.buffer.byteLength).toBe(2);
  });
});

/**
 * The suite must fail adapters that break the contract. Each case below wraps MemoryStorage with
 * one bug an adapter could plausibly have, runs every conformance case against it, and expects at
 * least one to fail.
 */
describe("the conformance suite catches broken adapters", () => {
  type Bug = (inner: MemoryStorage) => Storage;
  let lossyReopen = false;
  const wrap = (inner: MemoryStorage, overrides: Partial<Storage>): Storage => ({
    load: () => inner.load(),
    save: (b: SaveBatch) => inner.save(b),
    compact: (i: number) => inner.compact(i),
    close: () => inner.close(),
    ...overrides,
  });

  const bugs: Record<string, Bug> = {
    "load hands out shared objects": (inner) => {
      let cached: StoredState | null = null;
      return wrap(inner, {
        load: async () => (cached ??= await inner.load()),
        save: async (b) => {
          cached = null;
          await inner.save(b);
        },
      });
    },
    "save swallows errors": (inner) => wrap(inner, { save: (b) => inner.save(b).catch(() => undefined) }),
    "hard state is written before the entries are checked": (inner) =>
      wrap(inner, {
        save: async (b) => {
          if (b.hardState) await inner.save({ hardState: b.hardState });
          await inner.save({ ...b, hardState: undefined });
        },
      }),
    "overwrites are ignored (append only)": (inner) =>
      wrap(inner, {
        save: async (b) => {
          const state = await inner.load();
          const last = state.entries.at(-1)?.index ?? 0;
          await inner.save({ ...b, entries: b.entries?.filter((e) => e.index > last) });
        },
      }),
    "nothing survives reopen": (inner) => {
      lossyReopen = true;
      return inner;
    },
    "compact is a no-op": (inner) => wrap(inner, { compact: async () => {} }),
    "compact never rejects": (inner) => wrap(inner, { compact: (i) => inner.compact(Math.min(i, inner.snapshotIndex)) }),
    "entry types are lost": (inner) =>
      wrap(inner, {
        load: async () => {
          const s = await inner.load();
          return { ...s, entries: s.entries.map((e) => ({ ...e, type: "normal" as const })) };
        },
      }),
    "large values are cut at 64 KiB": (inner) =>
      wrap(inner, {
        load: async () => {
          const s = await inner.load();
          return { ...s, entries: s.entries.map((e) => ({ ...e, data: e.data.subarray(0, 65536) })) };
        },
      }),
    "the snapshot's membership is lost": (inner) =>
      wrap(inner, {
        load: async () => {
          const s = await inner.load();
          if (s.snapshot) s.snapshot.meta.conf.learners = [];
          return s;
        },
      }),
  };

  for (const [bug, make] of Object.entries(bugs)) {
    it(`fails an adapter where ${bug}`, async () => {
      lossyReopen = false;
      const cases: { name: string; fn: () => Promise<void> }[] = [];
      runStorageConformance(
        bug,
        async () => {
          let current = new MemoryStorage();
          return { storage: make(current), reopen: async () => make((current = lossyReopen ? new MemoryStorage() : current.reopen())) };
        },
        { describe: (_name, fn) => fn(), it: (name, fn) => void cases.push({ name, fn }) },
        { manyBatches: 100 },
      );
      const failures: string[] = [];
      for (const c of cases) {
        try {
          await c.fn();
        } catch (e) {
          failures.push(`${c.name}: ${(e as Error).message}`);
        }
      }
      expect(failures.length, `no conformance case failed for "${bug}"`).toBeGreaterThan(0);
    });
  }
});
