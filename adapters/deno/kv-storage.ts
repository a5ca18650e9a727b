/**
 * DenoKvStorage: durable Raft state in Deno KV, for Deno Deploy (whose local disk is ephemeral)
 * or anywhere `Deno.openKv` works (a local SQLite file, `:memory:`).
 *
 * Layout, under `[...prefix, nodeId]`:
 *
 *   ["lease"]                 the node identity lease (./kv-lease.ts)
 *   ["meta"]                  hard state, log bounds, snapshot record, redo marker (the root)
 *   ["log", index]            one entry: header + data, or header alone when the data is chunked
 *   ["log", index, k]         chunk k of a large entry's data (KV values are at most 64 KiB)
 *   ["snap", id, k]           chunk k of snapshot `id`'s data
 *   ["wal", id, k]            part k of a large batch's redo record
 *
 * A batch is ONE `atomic()`: every key it changes plus the new meta, guarded by the lease's
 * versionstamp. KV caps a commit at 1000 mutations, 800 KiB, and 80 KiB of keys; a batch beyond
 * that (a follower catching up, a 1 MiB entry, a snapshot) becomes a redo record instead: the
 * whole list of mutations is written as parts under a fresh id (invisible to `load`), then one
 * atomic commit points the meta at it (the commit point), then the mutations are applied in as
 * many commits as they need and the meta is cleared. Opening finishes a redo record the meta
 * points at; replaying set/delete mutations twice is harmless. Either way `load` sees all of a
 * batch or none of it.
 *
 * Only the holder of the node's lease writes: each commit checks the lease's versionstamp, so a
 * second instance that claims the same node id is refused at open (NodeIdentityLeasedError), and
 * an instance whose lease was taken over cannot change anything (LeaseLostError).
 */
import { decode, encode } from "@msgpack/msgpack";
import type { Entry, EntryType, Index, Term } from "../../src/core/types.ts";
import { cloneConf } from "../../src/core/membership.ts";
import { MeshraftError } from "../../src/errors.ts";
import { StorageError } from "../../src/storage/errors.ts";
import type { SaveBatch, Storage, StoredState } from "../../src/storage/storage.ts";
import {
  chunked,
  CHUNKED,
  concat,
  EMPTY_META,
  ENTRY_TYPES,
  groups,
  HEAD_BYTES,
  INLINE,
  lastWins,
  type Meta,
  type Mutation,
  prepare,
  type SnapshotRecord,
} from "./kv-format.ts";
import { KvLease, LeaseLostError, NodeIdentityLeasedError } from "./kv-lease.ts";

export { LeaseLostError, NodeIdentityLeasedError };

export interface DenoKvStorageOptions {
  /** This node's id: the lease is taken for it and its keys live under `[...prefix, nodeId]`. */
  nodeId: string;
  /** Key prefix, so one database can hold several nodes or other data. Default `["meshraft"]`. */
  prefix?: string[];
  /**
   * How long the lease lasts without renewal, in ms (renewed every third of it). A replacement
   * for an instance that vanished without closing waits up to this long. Default 10000.
   */
  leaseTtlMs?: number;
  /** Called once when the lease is lost; every later call rejects with the same error. */
  onLeaseLost?: (error: LeaseLostError) => void;
  /** Wall clock in ms since the epoch, for lease expiry. Default `Date.now`. */
  now?: () => number;
  /** How this instance describes itself in the lease, for the refusal a second one gets. */
  where?: string;
}

/** Deno KV holds something DenoKvStorage did not write, or lost something it did. */
export class KvStorageCorruptionError extends MeshraftError {
  readonly key: Deno.KvKey;
  constructor(key: Deno.KvKey, reason: string) {
    super(
      "STORAGE_CORRUPT",
      `corrupt storage in Deno KV at ${JSON.stringify(key)}: ${reason}. Refusing to continue, since acknowledged data ` +
        `may be lost: restore the database, or retire this node and add a fresh member in its place`,
    );
    this.key = key;
  }
}

/** Whether this process may read something without a permission prompt. */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

function describeInstance(): string {
  const parts: string[] = [];
  if (granted({ name: "sys", kind: "hostname" })) parts.push(Deno.hostname());
  if (granted({ name: "env", variable: "DENO_REGION" }) && Deno.env.get("DENO_REGION")) parts.push(`region ${Deno.env.get("DENO_REGION")}`);
  parts.push(`pid ${Deno.pid}`);
  return parts.join(" ");
}

export class DenoKvStorage implements Storage {
  readonly nodeId: string;
  readonly #kv: Deno.Kv;
  readonly #ownsKv: boolean;
  readonly #prefix: Deno.KvKey;
  readonly #lease: KvLease;
  readonly #leaseTtlMs: number;
  readonly #onLeaseLost: ((error: LeaseLostError) => void) | undefined;

  /** The durable state's root, as last committed. */
  #meta: Meta = EMPTY_META;
  /** Per stored entry from `firstIndex`: its term and its number of data chunks (0 = inline). */
  #terms: Term[] = [];
  #chunks: number[] = [];
  /** Entries read while opening, handed to the first `load()`; any change discards them. */
  #recovered: Entry[] | null = null;

  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Set when the lease was lost or a commit's outcome is unknown: nothing more is written. */
  #failure: Error | null = null;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(kv: Deno.Kv, ownsKv: boolean, options: DenoKvStorageOptions) {
    this.nodeId = options.nodeId;
    this.#kv = kv;
    this.#ownsKv = ownsKv;
    this.#prefix = [...(options.prefix ?? ["meshraft"]), options.nodeId];
    this.#leaseTtlMs = options.leaseTtlMs ?? 10_000;
    this.#onLeaseLost = options.onLeaseLost;
    this.#lease = new KvLease(kv, {
      nodeId: options.nodeId,
      key: this.#key("lease"),
      ttlMs: this.#leaseTtlMs,
      now: options.now ?? Date.now,
      where: options.where ?? describeInstance(),
    });
  }

  /**
   * Opens node `nodeId`'s state in `kv` (a `Deno.Kv`, or a path / `":memory:"` for `Deno.openKv`,
   * which `close()` then closes): takes the node's lease, finishes a batch a crash interrupted and
   * reads the log. Rejects with NodeIdentityLeasedError if another instance holds the node id,
   * KvStorageCorruptionError if the stored state does not check out.
   */
  static async open(kv: Deno.Kv | string, options: DenoKvStorageOptions): Promise<DenoKvStorage> {
    if (typeof options.nodeId !== "string" || options.nodeId === "") throw new RangeError("DenoKvStorage: nodeId must be a non-empty string");
    const ttl = options.leaseTtlMs ?? 10_000;
    if (!Number.isFinite(ttl) || ttl < 100) throw new RangeError(`DenoKvStorage: leaseTtlMs must be at least 100 ms, got ${ttl}`);
    const owns = typeof kv === "string";
    const db = typeof kv === "string" ? await Deno.openKv(kv) : kv;
    const storage = new DenoKvStorage(db, owns, options);
    try {
      await storage.#lease.acquire();
      await storage.#recover();
    } catch (e) {
      await storage.#lease.release();
      if (owns) db.close();
      throw e;
    }
    storage.#scheduleRenewal();
    return storage;
  }

  load(): Promise<StoredState> {
    return this.#serialize("load", async () => {
      const entries = this.#recovered ?? (await this.#readEntries(this.#meta)).entries;
      this.#recovered = null;
      const hs = this.#meta.hardState;
      return {
        hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit },
        snapshot: await this.#readSnapshot(this.#meta.snapshot),
        entries,
      };
    });
  }

  /** The batch is checked and copied now and written after earlier calls finish. */
  save(batch: SaveBatch): Promise<void> {
    let prepared: ReturnType<typeof prepare>;
    try {
      prepared = prepare(batch);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#serialize("save", () => (prepared ? this.#commitBatch(prepared) : undefined));
  }

  compact(upTo: Index): Promise<void> {
    return this.#serialize("compact", () => this.#compact(upTo));
  }

  /** Finishes the call in flight, releases the lease and closes the database if it opened it. */
  close(): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      this.#closed = true;
      this.#recovered = null;
      clearTimeout(this.#renewTimer);
      await this.#lease.release();
      if (this.#ownsKv) this.#kv.close();
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** The lease's instance id (what a refused second instance is told). */
  get instanceId(): string {
    return this.#lease.owner;
  }

  /**
   * Whether this instance may act on what it holds in memory: its lease is not lost and has not
   * run out by its own clock (see ./kv-lease.ts). A member sends nothing while this is false.
   */
  leaseValid(): boolean {
    return this.#failure === null && !this.#closed && this.#lease.valid();
  }

  // -------------------------------------------------------------------------------------------

  #key(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#prefix, ...parts];
  }

  #serialize<T>(op: string, fn: () => Promise<T> | T): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new StorageError("CLOSED", `${op} on a closed DenoKvStorage (node ${this.nodeId}); open it again`);
      if (this.#failure) throw this.#failure;
      try {
        return await fn();
      } catch (e) {
        if (e instanceof LeaseLostError) this.#fail(e);
        throw e;
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    clearTimeout(this.#renewTimer);
    if (error instanceof LeaseLostError) this.#onLeaseLost?.(error);
  }

  #scheduleRenewal(): void {
    if (this.#closed || this.#failure) return;
    const timer = setTimeout(() => {
      this.#serialize("renew the lease", async () => {
        await this.#lease.ensure();
      }).then(
        () => this.#scheduleRenewal(),
        () => undefined, // #serialize recorded a lost lease; a closed storage stops here
      );
    }, Math.max(10, Math.floor(this.#leaseTtlMs / 3)));
    Deno.unrefTimer(timer); // the lease alone must not keep a process alive
    this.#renewTimer = timer;
  }

  // --- commits ---------------------------------------------------------------------------------

  /**
   * One guarded atomic commit; the lease is lost if its check fails, unless the stored lease is
   * still this instance's (a renewal whose answer was lost): then once more with its versionstamp.
   */
  async #commitGroup(mutations: Mutation[]): Promise<void> {
    await this.#lease.ensure();
    for (let attempt = 0; attempt < 2; attempt++) {
      const op = this.#lease.guard(this.#kv.atomic());
      for (const m of mutations) {
        if (m.value === undefined) op.delete(m.key);
        else op.set(m.key, m.value);
      }
      let res: Deno.KvCommitResult | Deno.KvCommitError;
      try {
        res = await op.commit();
      } catch (e) {
        // The commit may or may not have happened: stop here; reopening reads what is there.
        const error = new StorageError("CRASHED", `Deno KV commit failed for node ${this.nodeId}; its outcome is unknown: ${e instanceof Error ? e.message : String(e)}`);
        this.#fail(error);
        throw error;
      }
      if (res.ok) return;
      // A failed check applied nothing, so trying again is safe.
      const lost = await this.#lease.recheck();
      if (lost) throw lost;
    }
    throw this.#lease.lose("its versionstamp kept changing although it names this instance");
  }

  /** Makes `mutations` and then `meta` durable as one unit (see the file comment). */
  async #commit(mutations: Mutation[], meta: Meta): Promise<void> {
    const all = lastWins([...mutations, { key: this.#key("meta"), value: meta }]);
    const parts = groups(all);
    if (parts.length === 1) {
      await this.#commitGroup(all);
      this.#meta = meta;
      return;
    }
    const id = crypto.randomUUID();
    const record = chunked(encode(all.map((m) => [m.key, m.value ?? null])));
    for (const group of groups(record.map((value, k) => ({ key: this.#key("wal", id, k), value })))) await this.#commitGroup(group);
    const marked: Meta = { ...this.#meta, redo: { id, parts: record.length } };
    await this.#commitGroup([{ key: this.#key("meta"), value: marked }]); // the commit point
    this.#meta = marked;
    await this.#replay(all, id, record.length);
  }

  /** Applies a committed redo record; the last mutation is the new meta (redo cleared). */
  async #replay(all: Mutation[], id: string, parts: number): Promise<void> {
    for (const group of groups(all.slice(0, -1))) await this.#commitGroup(group);
    const meta = all[all.length - 1].value as Meta;
    const cleanup = Array.from({ length: parts }, (_, k): Mutation => ({ key: this.#key("wal", id, k) }));
    for (const group of groups([all[all.length - 1], ...cleanup])) await this.#commitGroup(group);
    this.#meta = meta;
  }

  async #commitBatch(p: NonNullable<ReturnType<typeof prepare>>): Promise<void> {
    const old = this.#meta;
    const meta: Meta = { ...old, redo: null };
    const mutations: Mutation[] = [];
    let terms = this.#terms;
    let chunks = this.#chunks;
    const removeEntries = (from: Index, to: Index): void => {
      for (let i = from; i <= to; i++) {
        mutations.push({ key: this.#key("log", i) });
        for (let k = 0; k < chunks[i - meta.firstIndex]; k++) mutations.push({ key: this.#key("log", i, k) });
      }
    };

    // The snapshot first: it may discard the whole log (as in MemoryStorage).
    if (p.snapshot) {
      const snap = p.snapshot;
      const termAt = snap.index >= old.firstIndex && snap.index <= old.lastIndex ? terms[snap.index - old.firstIndex] : undefined;
      const id = meta.nextSnapshotId++;
      snap.data.forEach((value, k) => mutations.push({ key: this.#key("snap", id, k), value }));
      if (old.snapshot) for (let k = 0; k < old.snapshot.chunks; k++) mutations.push({ key: this.#key("snap", old.snapshot.id, k) });
      meta.snapshot = { index: snap.index, term: snap.term, conf: snap.conf, id, chunks: snap.data.length, bytes: snap.bytes };
      if (termAt !== snap.term) {
        removeEntries(old.firstIndex, old.lastIndex);
        meta.firstIndex = snap.index + 1;
        meta.lastIndex = snap.index;
        terms = [];
        chunks = [];
      }
    }

    if (p.entries.length > 0) {
      const first = p.entries[0].index;
      if (first > meta.lastIndex + 1) {
        throw new StorageError("LOG_GAP", `batch starts at index ${first} but the stored log ends at ${meta.lastIndex}: entries would leave a gap`);
      }
      const last = first + p.entries.length - 1;
      if (first < meta.firstIndex || meta.lastIndex < meta.firstIndex) {
        // Before the start of the log (or an empty log): the batch replaces all of it.
        removeEntries(meta.firstIndex, meta.lastIndex);
        meta.firstIndex = first;
        terms = [];
        chunks = [];
      } else {
        // Overwritten entries keep their keys (a set replaces them); surplus keys go.
        for (let i = first; i <= meta.lastIndex; i++) {
          const had = chunks[i - meta.firstIndex];
          const has = i <= last ? p.entries[i - first].chunks.length : -1;
          if (has < 0) mutations.push({ key: this.#key("log", i) });
          for (let k = Math.max(0, has); k < had; k++) mutations.push({ key: this.#key("log", i, k) });
        }
        terms = terms.slice(0, first - meta.firstIndex);
        chunks = chunks.slice(0, first - meta.firstIndex);
      }
      for (const e of p.entries) {
        mutations.push({ key: this.#key("log", e.index), value: e.head });
        e.chunks.forEach((value, k) => mutations.push({ key: this.#key("log", e.index, k), value }));
        terms.push(e.term);
        chunks.push(e.chunks.length);
      }
      meta.lastIndex = last;
    }

    if (p.hardState) meta.hardState = p.hardState;
    const hs = old.hardState;
    if (mutations.length === 0 && !p.snapshot && p.hardState && p.hardState.term === hs.term && p.hardState.votedFor === hs.votedFor && p.hardState.commit === hs.commit) {
      return; // nothing changes
    }
    await this.#commit(mutations, meta);
    this.#terms = terms;
    this.#chunks = chunks;
    this.#recovered = null;
  }

  async #compact(upTo: Index): Promise<void> {
    if (!Number.isSafeInteger(upTo)) throw new StorageError("INVALID_BATCH", `compact index must be an integer, got ${upTo}`);
    const old = this.#meta;
    const snapshotIndex = old.snapshot?.index ?? 0;
    if (upTo > snapshotIndex) {
      throw new StorageError("COMPACT_BEYOND_SNAPSHOT", `compact(${upTo}) is beyond the stored snapshot's index ${snapshotIndex}`);
    }
    if (old.lastIndex < old.firstIndex || upTo < old.firstIndex) return;
    const firstIndex = Math.min(upTo, old.lastIndex) + 1;
    // The meta moves first; keys below the new first index are garbage from then on, removed
    // next (or, after a crash, when the storage is opened again).
    await this.#commit([], { ...old, firstIndex });
    const drop = firstIndex - old.firstIndex;
    const garbage: Mutation[] = [];
    for (let i = old.firstIndex; i < firstIndex; i++) {
      garbage.push({ key: this.#key("log", i) });
      for (let k = 0; k < this.#chunks[i - old.firstIndex]; k++) garbage.push({ key: this.#key("log", i, k) });
    }
    this.#terms = this.#terms.slice(drop);
    this.#chunks = this.#chunks.slice(drop);
    this.#recovered = null;
    for (const group of groups(garbage)) await this.#commitGroup(group);
  }

  // --- reading ---------------------------------------------------------------------------------

  /** At open: finish an interrupted batch, drop garbage, read the log. */
  async #recover(): Promise<void> {
    const stored = await this.#kv.get<Meta>(this.#key("meta"));
    let meta = stored.value ?? EMPTY_META;
    if (meta.version !== 1) throw new KvStorageCorruptionError(this.#key("meta"), `unknown format version ${meta.version}`);
    this.#meta = meta;
    if (meta.redo) {
      const parts: Uint8Array[] = [];
      for (let k = 0; k < meta.redo.parts; k++) {
        const part = await this.#kv.get<Uint8Array>(this.#key("wal", meta.redo.id, k));
        if (!(part.value instanceof Uint8Array)) throw new KvStorageCorruptionError(part.key, "a part of a committed batch's redo record is missing");
        parts.push(part.value);
      }
      const all = (decode(concat(parts)) as [Deno.KvKey, Uint8Array | Meta | null][]).map(
        ([key, value]): Mutation => ({ key, value: value instanceof Uint8Array ? value.slice() : (value ?? undefined) }),
      );
      await this.#replay(all, meta.redo.id, meta.redo.parts);
      meta = this.#meta;
    }
    // Garbage: redo parts of batches that never reached their commit point, and entries below
    // the first index left by an interrupted compaction.
    const garbage: Mutation[] = [];
    for await (const { key } of this.#kv.list({ prefix: this.#key("wal") })) garbage.push({ key });
    for await (const { key } of this.#kv.list({ start: this.#key("log"), end: this.#key("log", meta.firstIndex) })) garbage.push({ key });
    for (const group of groups(garbage)) await this.#commitGroup(group);

    const { entries, chunks } = await this.#readEntries(meta);
    this.#terms = entries.map((e) => e.term);
    this.#chunks = chunks;
    this.#recovered = entries;
  }

  /** The stored entries, and how many data chunks each has (0 = inline). */
  async #readEntries(meta: Meta): Promise<{ entries: Entry[]; chunks: number[] }> {
    const entries: Entry[] = [];
    const counts: number[] = [];
    if (meta.lastIndex < meta.firstIndex) return { entries, chunks: counts };
    let pending: { index: Index; term: Term; type: EntryType; chunks: Uint8Array[]; want: number } | null = null;
    const finish = (): void => {
      if (!pending) return;
      if (pending.chunks.length !== pending.want) {
        throw new KvStorageCorruptionError(this.#key("log", pending.index), `the entry has ${pending.chunks.length} of its ${pending.want} data chunks`);
      }
      entries.push({ index: pending.index, term: pending.term, type: pending.type, data: concat(pending.chunks) });
      counts.push(pending.want);
      pending = null;
    };
    const iter = this.#kv.list<Uint8Array>({ start: this.#key("log", meta.firstIndex), end: this.#key("log", meta.lastIndex + 1) }, { batchSize: 500 });
    for await (const { key, value } of iter) {
      const index = key[this.#prefix.length + 1] as number;
      if (key.length === this.#prefix.length + 3) {
        if (!pending || pending.index !== index || key[key.length - 1] !== pending.chunks.length) {
          throw new KvStorageCorruptionError(key, "a data chunk without its entry, or out of order");
        }
        pending.chunks.push(value);
        continue;
      }
      finish();
      const expected = meta.firstIndex + entries.length;
      if (index !== expected) throw new KvStorageCorruptionError(this.#key("log", expected), `entry ${expected} is missing (found ${index} next)`);
      if (!(value instanceof Uint8Array) || value.length < HEAD_BYTES || ENTRY_TYPES[value[1]] === undefined) {
        throw new KvStorageCorruptionError(key, "the entry's header does not parse");
      }
      const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
      const term = view.getFloat64(2, true);
      const type = ENTRY_TYPES[value[1]];
      if (value[0] === INLINE) {
        entries.push({ index, term, type, data: value.slice(HEAD_BYTES) });
        counts.push(0);
      } else if (value[0] === CHUNKED && value.length === HEAD_BYTES + 4) {
        pending = { index, term, type, chunks: [], want: view.getUint32(HEAD_BYTES, true) };
      } else throw new KvStorageCorruptionError(key, `unknown entry format ${value[0]}`);
    }
    finish();
    if (entries.length !== meta.lastIndex - meta.firstIndex + 1) {
      const missing = meta.firstIndex + entries.length;
      throw new KvStorageCorruptionError(this.#key("log", missing), `entry ${missing} is missing; the log should end at ${meta.lastIndex}`);
    }
    return { entries, chunks: counts };
  }

  async #readSnapshot(rec: SnapshotRecord | null): Promise<StoredState["snapshot"]> {
    if (!rec) return null;
    const chunks: Uint8Array[] = [];
    for await (const { key, value } of this.#kv.list<Uint8Array>({ prefix: this.#key("snap", rec.id) }, { batchSize: 100 })) {
      if (key[key.length - 1] !== chunks.length) throw new KvStorageCorruptionError(key, `snapshot chunk ${chunks.length} is missing`);
      chunks.push(value);
    }
    const data = concat(chunks);
    if (chunks.length !== rec.chunks || data.length !== rec.bytes) {
      throw new KvStorageCorruptionError(this.#key("snap", rec.id), `the snapshot has ${chunks.length} chunks (${data.length} bytes), its record says ${rec.chunks} (${rec.bytes} bytes)`);
    }
    const conf = rec.conf;
    return { meta: { index: rec.index, term: rec.term, conf: cloneConf(conf) }, data };
  }
}
