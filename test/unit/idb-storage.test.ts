import { forceCloseDatabase as forceCloseFake, IDBDatabase, IDBKeyRange, IDBObjectStore, indexedDB } from "fake-indexeddb";
import { afterEach, describe, expect, it } from "vitest";
import { runIndexedDbStorageConformance } from "../../adapters/browser/conformance.ts";
import { databaseName, IndexedDbStorage, IndexedDbStorageError, requestPersistence } from "../../adapters/browser/idb-storage.ts";
import type { Entry } from "../../src/core/types.ts";

const env = { indexedDB, IDBKeyRange };
/** Closes a connection the way a browser does under pressure (fake-indexeddb types it as taking the class). */
const forceCloseDatabase = forceCloseFake as unknown as (db: IDBDatabase) => void;

runIndexedDbStorageConformance("IndexedDbStorage on fake-indexeddb", env, { describe, it });
// Small chunks: a 1 MiB snapshot becomes 257 chunks, so chunk order and the last short chunk count.
runIndexedDbStorageConformance("IndexedDbStorage on fake-indexeddb, 4 KiB snapshot chunks", env, { describe, it }, { chunkBytes: 4096, manyBatches: 200 });

describe("IndexedDbStorage's own behaviour", () => {
  // fake-indexeddb's classes are the ones `indexedDB` hands out; the tests below wrap their
  // methods for one test each, always calling the real implementation.
  const Database = IDBDatabase.prototype as unknown as { transaction: (this: IDBDatabase, ...args: unknown[]) => IDBTransaction };
  const Store = IDBObjectStore.prototype as unknown as { put: (this: IDBObjectStore, ...args: unknown[]) => IDBRequest };
  const realTransaction = Database.transaction;
  const realPut = Store.put;
  let opened: { clusterId: string; storage: IndexedDbStorage }[] = [];
  let n = 0;

  async function open(clusterId = `own-${++n}`): Promise<IndexedDbStorage> {
    const storage = await IndexedDbStorage.open({ clusterId, nodeId: "n1", env });
    opened.push({ clusterId, storage });
    return storage;
  }

  /** Records each transaction this adapter opens, with the connection it was opened on. */
  function watchTransactions(onOpen?: (tx: IDBTransaction, db: IDBDatabase) => void): { mode: string; durability: string; db: IDBDatabase }[] {
    const seen: { mode: string; durability: string; db: IDBDatabase }[] = [];
    Database.transaction = function (this: IDBDatabase, ...args: unknown[]) {
      const tx = realTransaction.apply(this, args);
      seen.push({ mode: tx.mode, durability: (tx as IDBTransaction & { durability: string }).durability, db: this });
      onOpen?.(tx, this);
      return tx;
    };
    return seen;
  }

  afterEach(async () => {
    Database.transaction = realTransaction;
    Store.put = realPut;
    for (const { clusterId, storage } of opened) {
      await storage.close();
      await new Promise((resolve) => {
        const req = indexedDB.deleteDatabase(databaseName(clusterId, "n1"));
        req.onsuccess = req.onerror = resolve;
      });
    }
    opened = [];
  });

  const hs = { term: 2, votedFor: "n1", commit: 1 };
  const entry = (index: number, term = 2): Entry => ({ index, term, type: "normal", data: Uint8Array.of(index, term) });

  it('opens every transaction with durability "strict"', async () => {
    const seen = watchTransactions();
    const storage = await open();
    await storage.save({ hardState: hs, entries: [entry(1), entry(2)] });
    await storage.save({ snapshot: { meta: { index: 2, term: 2, conf: { voters: ["n1"], learners: [], votersOutgoing: [] } }, data: Uint8Array.of(9) } });
    await storage.compact(1);
    await storage.load();
    expect(seen.filter((t) => t.mode === "readwrite")).toHaveLength(3); // one transaction per batch
    // (Creating the database's store runs in the upgrade transaction, which takes no options.)
    const ours = seen.filter((t) => t.mode !== "versionchange");
    expect(ours.map((t) => t.durability)).toEqual(ours.map(() => "strict"));
  });

  it("reopens a connection the browser closed between saves, and keeps saving", async () => {
    const seen = watchTransactions();
    const storage = await open();
    await storage.save({ hardState: hs, entries: [entry(1)] });
    forceCloseDatabase(seen[seen.length - 1].db);
    await storage.save({ entries: [entry(2)] });
    expect(storage.opens).toBe(2);
    const reopened = await open(opened[0].clusterId);
    expect((await reopened.load()).entries).toEqual([entry(1), entry(2)]);
  });

  it("retries a save once when the browser closes the connection while its transaction runs", async () => {
    let closes = 0;
    const storage = await open();
    await storage.save({ hardState: hs, entries: [entry(1)] });
    watchTransactions((tx, db) => {
      // The first write after this point loses its connection before it can commit. A forced
      // close aborts the connection's transactions with AbortError, then fires `close`
      // (IndexedDB 3.0, "close a database connection"); fake-indexeddb's forceCloseDatabase does
      // only the second part, so the abort is done here through its internal _abort.
      if (tx.mode === "readwrite" && closes++ === 0) {
        queueMicrotask(() => {
          (tx as IDBTransaction & { _abort(name: string): void })._abort("AbortError");
          forceCloseDatabase(db);
        });
      }
    });
    await storage.save({ hardState: { ...hs, commit: 2 }, entries: [entry(2), entry(3)] });
    expect(closes).toBe(2); // the aborted attempt and its retry
    expect(storage.opens).toBe(2);
    const reopened = await open(opened[0].clusterId);
    expect(await reopened.load()).toEqual({ hardState: { ...hs, commit: 2 }, snapshot: null, entries: [entry(1), entry(2), entry(3)] });
  });

  it("rejects a refused write (QuotaExceededError) with a typed error, stores nothing of the batch and does not retry it", async () => {
    const storage = await open();
    await storage.save({ hardState: hs, entries: [entry(1), entry(2)] });
    let puts = 0;
    const seen = watchTransactions();
    // What a full origin does: the transaction aborts with QuotaExceededError (IndexedDB 3.0,
    // "store a record"), after some of the batch's requests already ran.
    Store.put = function (this: IDBObjectStore, ...args: unknown[]) {
      const request = realPut.apply(this, args);
      if (puts++ === 0) {
        const tx = this.transaction as IDBTransaction & { _abort(name: string): void };
        request.addEventListener("success", () => tx._abort("QuotaExceededError"));
      }
      return request;
    };
    const error = await storage.save({ hardState: { term: 3, votedFor: null, commit: 2 }, entries: [entry(2, 3), entry(3, 3), entry(4, 3)] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(IndexedDbStorageError);
    expect(error).toMatchObject({ code: "STORAGE_QUOTA_EXCEEDED", reason: "QuotaExceededError" });
    expect((error as Error).message).toMatch(/quota/);
    expect(puts).toBeGreaterThan(1); // some requests ran before the abort
    expect(seen.filter((t) => t.mode === "readwrite")).toHaveLength(1); // and no retry wrote the batch after all
    Store.put = realPut;
    const before = { hardState: hs, snapshot: null, entries: [entry(1), entry(2)] };
    expect(await storage.load()).toEqual(before);
    const reopened = await open(opened[0].clusterId);
    expect(await reopened.load()).toEqual(before);
  });

  it("refuses to recreate a database deleted while the member ran (STORAGE_LOST), rather than forget its log", async () => {
    const seen = watchTransactions();
    const storage = await open();
    await storage.save({ hardState: hs, entries: [entry(1)] });
    const db = seen[seen.length - 1].db;
    forceCloseDatabase(db);
    await new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(db.name);
      req.onsuccess = resolve;
      req.onerror = reject;
    });
    await expect(storage.save({ entries: [entry(2)] })).rejects.toMatchObject({ code: "STORAGE_LOST" });
  });

  it("stores a snapshot's data in 1 MiB chunks, and replacing it deletes the old chunks", async () => {
    const storage = await open();
    const conf = { voters: ["n1"], learners: [], votersOutgoing: [] };
    const data = Uint8Array.from({ length: 2.5 * 1024 * 1024 }, (_, i) => (i * 13) & 0xff);
    await storage.save({ snapshot: { meta: { index: 5, term: 1, conf }, data } });
    const chunkSizes = async (): Promise<number[]> => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open(databaseName(opened[0].clusterId, "n1"));
        req.onsuccess = () => resolve(req.result);
        req.onerror = reject;
      });
      const values = await new Promise<Uint8Array[]>((resolve, reject) => {
        const req = db.transaction("raft").objectStore("raft").getAll(IDBKeyRange.bound([], [[]]));
        req.onsuccess = () => resolve(req.result as Uint8Array[]);
        req.onerror = reject;
      });
      db.close();
      return values.map((v) => v.byteLength);
    };
    expect(await chunkSizes()).toEqual([1024 * 1024, 1024 * 1024, 512 * 1024]);
    await storage.save({ snapshot: { meta: { index: 6, term: 1, conf }, data: Uint8Array.of(1, 2, 3) } });
    expect(await chunkSizes()).toEqual([3]);
    expect((await storage.load()).snapshot!.data).toEqual(Uint8Array.of(1, 2, 3));
  });

  it("requestPersistence returns navigator.storage.persist()'s answer, false where it does not exist", async () => {
    expect(await requestPersistence({ persist: async () => true })).toBe(true);
    expect(await requestPersistence({ persist: async () => false })).toBe(false);
    expect(await requestPersistence({})).toBe(false);
    expect(await requestPersistence(undefined)).toBe(false);
  });
});
