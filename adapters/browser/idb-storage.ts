/**
 * IndexedDbStorage: durable Raft state in the browser's IndexedDB, on idb-keyval.
 *
 * One database per cluster and node id (`meshraft:<clusterId>:<nodeId>`), one object store
 * "raft" whose keys sort into three disjoint ranges (IndexedDB orders numbers < strings < arrays):
 *
 *   index (number)       one log entry: { term, type, data }
 *   "meta"               hard state and the snapshot's record (index, term, conf, id, chunks, bytes)
 *   ["snap", id, k]      chunk k of snapshot `id`'s data (CHUNK_BYTES each, the last one shorter)
 *
 * Entries keyed by bare numbers make truncation and compaction one range delete each:
 * `bound(from, Infinity)` and `upperBound(upTo)` cover numbers only, never "meta" or a chunk.
 *
 * Every save is ONE readwrite transaction opened with `{ durability: "strict" }`: its `complete`
 * event fires only once the data is flushed (Chrome's default since 121 is "relaxed", which fires
 * before the flush and would break persist-before-reply). A transaction commits all of its
 * requests or none, so a batch is all there or not at all after any crash.
 *
 * A save is idempotent given the state before it (puts, and range deletes relative to the batch's
 * own first index), so when the browser closes the connection under us (Safari does in background
 * tabs; Chrome when storage is cleared) the save is retried once on a fresh connection whatever
 * the first attempt did. A refused write (QuotaExceededError) aborts the transaction: nothing of
 * the batch is stored, and the save rejects with IndexedDbStorageError "STORAGE_QUOTA_EXCEEDED".
 *
 * The in-memory view (log bounds, terms, snapshot record) changes only after a commit, so a failed
 * save leaves it as it was, matching what is stored.
 */
import { get, promisifyRequest, type UseStore } from "idb-keyval";
import { cloneConf } from "../../src/core/membership.ts";
import type { ConfState, Entry, HardState, Index, Term } from "../../src/core/types.ts";
import { MeshraftError } from "../../src/errors.ts";
import { checkBatch, type ChunkedSnapshotRecord, ENTRY_TYPES } from "../../src/storage/batch.ts";
import { StorageError } from "../../src/storage/errors.ts";
import type { SaveBatch, Storage, StoredState } from "../../src/storage/storage.ts";

/** Where IndexedDB comes from: the page's globals by default, fake-indexeddb in Node tests. */
export interface IndexedDbEnvironment {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
}

export interface IndexedDbStorageOptions {
  /** The cluster's name: with `nodeId`, it names the database. */
  clusterId: string;
  nodeId: string;
  /** Default: `globalThis.indexedDB` and `globalThis.IDBKeyRange`. */
  env?: IndexedDbEnvironment;
  /** Snapshot data is stored in chunks of this many bytes. Default 1 MiB. */
  chunkBytes?: number;
}

/** The name of the database IndexedDbStorage uses for a node. */
export function databaseName(clusterId: string, nodeId: string): string {
  return `meshraft:${clusterId}:${nodeId}`;
}

const STORE = "raft";
const META_KEY = "meta";
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Transactions of this adapter flush before `complete` (see the file comment). */
const STRICT: IDBTransactionOptions = { durability: "strict" };

interface Meta {
  version: 1;
  hardState: HardState;
  snapshot: ChunkedSnapshotRecord | null;
  nextSnapshotId: number;
}

interface StoredEntry {
  term: Term;
  /** Position in ENTRY_TYPES. */
  type: number;
  data: Uint8Array;
}

/** Errors that mean the connection (not the batch) failed: worth one retry on a fresh connection. */
const RETRIED = new Set(["InvalidStateError", "UnknownError", "AbortError"]);

const EMPTY_META: Meta = { version: 1, hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, nextSnapshotId: 1 };

/**
 * IndexedDB failed in a way the Storage contract does not cover: the quota refused a write
 * ("STORAGE_QUOTA_EXCEEDED"), the database vanished (cleared by the user, evicted:
 * "STORAGE_LOST"), or anything else ("STORAGE_IO"). `reason` is the DOMException's name.
 */
export class IndexedDbStorageError extends MeshraftError {
  readonly reason: string;
  readonly database: string;
  constructor(code: "STORAGE_QUOTA_EXCEEDED" | "STORAGE_LOST" | "STORAGE_IO", database: string, reason: string, message: string, cause?: unknown) {
    super(code, `IndexedDB database ${database}: ${message}`);
    this.reason = reason;
    this.database = database;
    if (cause !== undefined) this.cause = cause;
  }
}

const errorName = (e: unknown): string => (e instanceof Error || (typeof e === "object" && e !== null && "name" in e) ? String((e as { name: unknown }).name) : "Error");
const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** Requests the browser keeps this origin's storage under pressure; the answer, or false where unsupported. */
export async function requestPersistence(storage: { persist?: () => Promise<boolean> } | undefined = globalThis.navigator?.storage): Promise<boolean> {
  if (typeof storage?.persist !== "function") return false;
  return storage.persist();
}

export class IndexedDbStorage implements Storage {
  readonly database: string;
  readonly #env: IndexedDbEnvironment;
  readonly #chunkBytes: number;
  #db: IDBDatabase | null = null;
  /** Set by the connection's `close` event: the browser closed it, a reopen is due. */
  #lost = false;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  /** As committed. Invariant: stored entries are `firstIndex .. firstIndex + terms.length - 1`. */
  #meta: Meta = EMPTY_META;
  #firstIndex: Index = 1;
  #terms: Term[] = [];
  /** Entries read while opening, handed to the first `load()`; any change discards them. */
  #recovered: Entry[] | null = null;
  /** idb-keyval's custom store: strict transactions, on a connection reopened once if lost. */
  readonly #useStore: UseStore = (mode, callback) => this.#run(mode, callback);
  /** Connections opened so far (the first plus reopens after a loss); for status and tests. */
  opens = 0;

  private constructor(options: IndexedDbStorageOptions) {
    const env = options.env ?? (globalThis as unknown as IndexedDbEnvironment);
    if (!env.indexedDB || !env.IDBKeyRange) throw new TypeError("IndexedDbStorage: this environment has no IndexedDB (pass options.env)");
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`IndexedDbStorage: chunkBytes must be a positive integer, got ${chunkBytes}`);
    this.database = databaseName(options.clusterId, options.nodeId);
    this.#env = env;
    this.#chunkBytes = chunkBytes;
  }

  /** Opens (creating if needed) the node's database and reads its state. */
  static async open(options: IndexedDbStorageOptions): Promise<IndexedDbStorage> {
    for (const key of ["clusterId", "nodeId"] as const) {
      if (typeof options[key] !== "string" || options[key] === "") throw new RangeError(`IndexedDbStorage: ${key} must be a non-empty string`);
    }
    const storage = new IndexedDbStorage(options);
    try {
      await storage.#readAll();
    } catch (e) {
      storage.#db?.close();
      throw e;
    }
    return storage;
  }

  load(): Promise<StoredState> {
    return this.#serialize("load", async () => {
      const entries = this.#recovered ?? (await this.#run("readonly", (store) => this.#readEntries(store)));
      this.#recovered = null;
      const meta = this.#meta;
      const snapshot = meta.snapshot && (await this.#run("readonly", (store) => this.#readSnapshot(store, meta.snapshot!)));
      const hs = meta.hardState;
      return { hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit }, snapshot, entries };
    });
  }

  save(batch: SaveBatch): Promise<void> {
    try {
      if (!checkBatch(batch)) return this.#serialize("save", () => undefined);
    } catch (e) {
      return Promise.reject(e);
    }
    // Copied now (the caller may reuse its buffers once save returns); written in order.
    // `new Uint8Array(x)` always copies, where a Node Buffer's `slice()` would share memory.
    const hs = batch.hardState && { term: batch.hardState.term, votedFor: batch.hardState.votedFor, commit: batch.hardState.commit };
    const entries = (batch.entries ?? []).map((e) => ({ index: e.index, value: { term: e.term, type: ENTRY_TYPES.indexOf(e.type), data: new Uint8Array(e.data) } }));
    const snap = batch.snapshot && {
      index: batch.snapshot.meta.index,
      term: batch.snapshot.meta.term,
      conf: cloneConf(batch.snapshot.meta.conf),
      chunks: this.#chunked(batch.snapshot.data),
      bytes: batch.snapshot.data.length,
    };
    return this.#serialize("save", () => this.#save(hs, entries, snap));
  }

  compact(upTo: Index): Promise<void> {
    return this.#serialize("compact", async () => {
      if (!Number.isSafeInteger(upTo)) throw new StorageError("INVALID_BATCH", `compact index must be an integer, got ${upTo}`);
      const snapshotIndex = this.#meta.snapshot?.index ?? 0;
      if (upTo > snapshotIndex) throw new StorageError("COMPACT_BEYOND_SNAPSHOT", `compact(${upTo}) is beyond the stored snapshot's index ${snapshotIndex}`);
      if (this.#terms.length === 0 || upTo < this.#firstIndex) return;
      const last = this.#firstIndex + this.#terms.length - 1;
      const firstIndex = Math.min(upTo, last) + 1;
      await this.#write((store) => {
        store.delete(this.#env.IDBKeyRange.upperBound(upTo));
      });
      this.#terms = this.#terms.slice(firstIndex - this.#firstIndex);
      this.#firstIndex = firstIndex;
      this.#recovered = null;
    });
  }

  /** Finishes the call in flight and closes the connection. */
  close(): Promise<void> {
    const run = (): void => {
      this.#closed = true;
      this.#recovered = null;
      this.#db?.close();
      this.#db = null;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  // --- connection --------------------------------------------------------------------------

  #serialize<T>(op: string, fn: () => Promise<T> | T): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new StorageError("CLOSED", `${op} on a closed IndexedDbStorage (${this.database}); open it again`);
      return fn();
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** The connection, opened (or reopened after the browser closed it) on demand. */
  async #connection(): Promise<IDBDatabase> {
    if (this.#db !== null && !this.#lost) return this.#db;
    this.#db?.close();
    this.#db = null;
    const reopening = this.opens > 0;
    const request = this.#env.indexedDB.open(this.database, 1);
    let vanished = false;
    request.onupgradeneeded = () => {
      if (reopening) {
        // The database we had open is gone: recreating it empty would forget acknowledged state.
        vanished = true;
        request.transaction!.abort();
        return;
      }
      request.result.createObjectStore(STORE);
    };
    let db: IDBDatabase;
    try {
      db = await promisifyRequest(request);
    } catch (e) {
      if (vanished) {
        throw new IndexedDbStorageError("STORAGE_LOST", this.database, "NotFoundError", "the database was deleted while the member ran (site data cleared or evicted); its log and vote are lost. Retire this member and add a fresh one in its place");
      }
      throw this.#ioError("open the database", e);
    }
    this.opens++;
    this.#lost = false;
    db.onclose = () => {
      if (this.#db === db) this.#lost = true;
    };
    // Another tab upgrading or deleting the database waits for us to let go; the next call reopens.
    db.onversionchange = () => {
      db.close();
      if (this.#db === db) this.#lost = true;
    };
    this.#db = db;
    return db;
  }

  /**
   * The custom idb-keyval store: every transaction is opened with strict durability, on the
   * current connection. `callback` issues its requests synchronously; the promise settles with
   * the transaction (its result once `complete` fired, or its abort's error).
   */
  #store(db: IDBDatabase): UseStore {
    return <T>(mode: IDBTransactionMode, callback: (store: IDBObjectStore) => T | PromiseLike<T>): Promise<T> => {
      const tx = db.transaction(STORE, mode, STRICT);
      const done = promisifyRequest(tx);
      let result: T | PromiseLike<T>;
      try {
        result = callback(tx.objectStore(STORE));
      } catch (e) {
        try {
          tx.abort();
        } catch {
          // already finished (the browser aborted it first: its error is in `done`)
        }
        return done.then(() => Promise.reject(e), (txError) => Promise.reject(txError ?? e));
      }
      return Promise.all([result, done]).then(([value]) => value);
    };
  }

  /**
   * Runs one transaction; if the browser closed the connection (InvalidStateError from
   * `transaction()`, the `close` event, Safari's UnknownError "connection lost") or aborted the
   * transaction without a cause (AbortError: a forced close aborts transactions before its
   * `close` event fires), reopens and runs it once more. Safe for writes too: a save or
   * compaction is idempotent (see the file comment). A refused write (QuotaExceededError) is
   * never retried.
   */
  async #run<T>(mode: IDBTransactionMode, callback: (store: IDBObjectStore) => T | PromiseLike<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const db = await this.#connection();
      try {
        return await this.#store(db)(mode, callback);
      } catch (e) {
        if (e instanceof StorageError || e instanceof IndexedDbStorageError) throw e;
        const connectionLost = this.#lost || RETRIED.has(errorName(e));
        if (connectionLost && attempt === 0) {
          this.#lost = true;
          continue;
        }
        throw this.#ioError(mode === "readonly" ? "read" : "write", e, connectionLost);
      }
    }
  }

  #write(callback: (store: IDBObjectStore) => void): Promise<void> {
    return this.#run("readwrite", callback);
  }

  #ioError(op: string, e: unknown, connectionLost = false): IndexedDbStorageError {
    const reason = errorName(e);
    if (reason === "QuotaExceededError") {
      return new IndexedDbStorageError(
        "STORAGE_QUOTA_EXCEEDED",
        this.database,
        reason,
        `the browser refused to ${op}: the storage quota (of the origin or of its storage bucket) is exhausted (${errorText(e)}). ` +
          `Nothing of the batch was stored; free space (other sites' data, this origin's or bucket's other databases), ` +
          `raise the bucket's quota or grant persistent storage, then restart the member`,
        e,
      );
    }
    const lost = connectionLost ? " after the connection was lost and reopened once" : "";
    return new IndexedDbStorageError("STORAGE_IO", this.database, reason, `could not ${op}${lost}: ${errorText(e)}`, e);
  }

  // --- writing ----------------------------------------------------------------------------

  /**
   * Copies of `data` in chunks of `chunkBytes`: one structured clone per chunk stays small, and
   * each chunk owns exactly its bytes (cloning a view would clone its whole buffer).
   */
  #chunked(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let off = 0; off < data.length; off += this.#chunkBytes) out.push(new Uint8Array(data.subarray(off, off + this.#chunkBytes)));
    return out;
  }

  async #save(
    hs: HardState | undefined,
    entries: { index: Index; value: StoredEntry }[],
    snap: { index: Index; term: Term; conf: ConfState; chunks: Uint8Array[]; bytes: number } | undefined,
  ): Promise<void> {
    const old = this.#meta;
    const meta: Meta = { ...old };
    let firstIndex = this.#firstIndex;
    let terms = this.#terms;
    let discardLog = false;
    // The snapshot first: it may discard the whole log (as in MemoryStorage).
    if (snap) {
      const termAt = snap.index >= firstIndex && snap.index < firstIndex + terms.length ? terms[snap.index - firstIndex] : undefined;
      meta.snapshot = { index: snap.index, term: snap.term, conf: snap.conf, id: old.nextSnapshotId, chunks: snap.chunks.length, bytes: snap.bytes };
      meta.nextSnapshotId = old.nextSnapshotId + 1;
      if (termAt !== snap.term) {
        discardLog = true;
        firstIndex = snap.index + 1;
        terms = [];
      }
    }
    if (entries.length > 0) {
      const first = entries[0].index;
      const last = terms.length === 0 ? (meta.snapshot?.index ?? 0) : firstIndex + terms.length - 1;
      if (first > last + 1) throw new StorageError("LOG_GAP", `batch starts at index ${first} but the stored log ends at ${last}: entries would leave a gap`);
      if (terms.length === 0 || first < firstIndex) {
        firstIndex = first;
        terms = [];
      } else {
        terms = terms.slice(0, first - firstIndex);
      }
      terms = [...terms, ...entries.map((e) => e.value.term)];
    }
    if (hs) meta.hardState = hs;
    const { IDBKeyRange: Range } = this.#env;
    await this.#write((store) => {
      if (snap) {
        snap.chunks.forEach((chunk, k) => store.put(chunk, ["snap", meta.snapshot!.id, k]));
        if (old.snapshot) store.delete(Range.bound(["snap", old.snapshot.id, 0], ["snap", old.snapshot.id, Infinity]));
        if (discardLog) store.delete(Range.bound(-Infinity, Infinity));
      }
      if (entries.length > 0) {
        // Entries from the batch's first index on are replaced; earlier ones stay.
        store.delete(Range.bound(entries[0].index, Infinity));
        for (const e of entries) store.put(e.value, e.index);
      }
      store.put(meta, META_KEY);
    });
    this.#meta = meta;
    this.#firstIndex = firstIndex;
    this.#terms = terms;
    this.#recovered = null;
  }

  // --- reading ----------------------------------------------------------------------------

  async #readAll(): Promise<void> {
    const meta = (await get<Meta>(META_KEY, this.#useStore)) ?? EMPTY_META;
    if (meta.version !== 1) throw new IndexedDbStorageError("STORAGE_IO", this.database, "DataError", `unknown format version ${meta.version}; written by a newer meshraft?`);
    this.#meta = meta;
    const entries = await this.#run("readonly", (store) => this.#readEntries(store));
    this.#firstIndex = entries.length > 0 ? entries[0].index : 1;
    this.#terms = entries.map((e) => e.term);
    this.#recovered = entries;
  }

  /** Every stored entry, checked to be contiguous (a transaction cannot leave a hole). */
  async #readEntries(store: IDBObjectStore): Promise<Entry[]> {
    const range = this.#env.IDBKeyRange.bound(-Infinity, Infinity);
    const [keys, values] = await Promise.all([
      promisifyRequest(store.getAllKeys(range)) as Promise<number[]>,
      promisifyRequest(store.getAll(range)) as Promise<StoredEntry[]>,
    ]);
    return keys.map((index, i) => {
      if (i > 0 && index !== keys[i - 1] + 1) {
        throw new IndexedDbStorageError("STORAGE_IO", this.database, "DataError", `entry ${keys[i - 1] + 1} is missing (found ${index} next); acknowledged data may be lost`);
      }
      const v = values[i];
      return { index, term: v.term, type: ENTRY_TYPES[v.type], data: v.data };
    });
  }

  async #readSnapshot(store: IDBObjectStore, rec: ChunkedSnapshotRecord): Promise<StoredState["snapshot"]> {
    const chunks = (await promisifyRequest(store.getAll(this.#env.IDBKeyRange.bound(["snap", rec.id, 0], ["snap", rec.id, Infinity])))) as Uint8Array[];
    const data = new Uint8Array(rec.bytes);
    let off = 0;
    for (const chunk of chunks) {
      if (off + chunk.length > rec.bytes) break;
      data.set(chunk, off);
      off += chunk.length;
    }
    if (chunks.length !== rec.chunks || off !== rec.bytes) {
      throw new IndexedDbStorageError("STORAGE_IO", this.database, "DataError", `snapshot ${rec.index} has ${chunks.length} chunks, its record says ${rec.chunks} (${rec.bytes} bytes)`);
    }
    return { meta: { index: rec.index, term: rec.term, conf: cloneConf(rec.conf) }, data };
  }
}
