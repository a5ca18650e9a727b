import type { Entry, HardState, Index, Snapshot } from "../core/types.ts";

/** Everything a node needs to start: what `Storage.load` returns. */
export interface StoredState {
  /** `{ term: 0, votedFor: null, commit: 0 }` for a node that never stored anything. */
  hardState: HardState;
  snapshot: Snapshot | null;
  /**
   * Stored entries, contiguous and in index order. When there is a snapshot they start at or
   * before `snapshot.meta.index + 1` (a trailing margin kept for slow followers may overlap it).
   */
  entries: Entry[];
}

/** One atomic, durable unit of change; any subset of the fields may be present. */
export interface SaveBatch {
  hardState?: HardState;
  /**
   * Applied after the snapshot. Replaces every stored entry at or after `entries[0].index`;
   * `entries[0].index` is at most one past the last stored entry (or the snapshot's index).
   */
  entries?: Entry[];
  /**
   * Replaces the stored snapshot. If the stored log holds an entry at `meta.index` with term
   * `meta.term`, stored entries are kept (compaction removes them later); otherwise every stored
   * entry is discarded (§7: the snapshot supersedes a log that disagrees with it).
   */
  snapshot?: Snapshot;
}

/**
 * Durable Raft state. Every adapter (memory, files, IndexedDB, Deno KV) passes the conformance
 * suite in ./conformance.ts.
 *
 * Contract:
 * - `save` is atomic: after a crash either the whole batch is visible to `load` or none of it.
 * - `save` is durable: once its promise resolves, the batch survives a crash of the process and,
 *   for persistent adapters, of the machine.
 * - Calls are not concurrent: the driver awaits each `save` before the next one.
 * - `compact(upTo)` drops entries with index <= upTo; `upTo` never exceeds the stored snapshot's
 *   index. It need not be atomic with anything, but must leave a loadable state at every moment.
 */
export interface Storage {
  load(): Promise<StoredState>;
  save(batch: SaveBatch): Promise<void>;
  compact(upTo: Index): Promise<void>;
  close(): Promise<void>;
  /** Bytes the stored log takes (on disk, for a persistent adapter), for the dashboard; optional. */
  sizeBytes?(): number;
}
