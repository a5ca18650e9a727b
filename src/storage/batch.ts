import type { ConfState, EntryType, Index, Term } from "../core/types.ts";
import { StorageError } from "./errors.ts";
import type { SaveBatch } from "./storage.ts";

/**
 * How an adapter that stores snapshot data apart from its metadata (in `chunks` pieces under an
 * `id` of its own) records the snapshot: Deno KV and IndexedDB do.
 */
export interface ChunkedSnapshotRecord {
  index: Index;
  term: Term;
  conf: ConfState;
  id: number;
  chunks: number;
  bytes: number;
}

/** Entry types in their stored order (adapters encode an entry's type as its position here). */
export const ENTRY_TYPES: readonly EntryType[] = ["normal", "noop", "config"];

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The checks every storage adapter makes before writing a batch, needing no stored state: entry
 * indexes >= 1 and contiguous, terms, types and data well-formed, hard state and snapshot meta
 * well-formed. Throws StorageError "INVALID_BATCH"; returns whether the batch has anything in it.
 * (Where the entries must start relative to the stored log is each adapter's own check.)
 */
export function checkBatch(batch: SaveBatch): boolean {
  const entries = batch.entries ?? [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!Number.isSafeInteger(e.index) || e.index < 1) {
      throw new StorageError("INVALID_BATCH", `entry index must be an integer >= 1, got ${e.index} at batch position ${i}`);
    }
    if (i > 0 && e.index !== entries[i - 1].index + 1) {
      throw new StorageError("INVALID_BATCH", `batch entries are not contiguous: index ${entries[i - 1].index} is followed by ${e.index}`);
    }
    if (!isIndex(e.term)) throw new StorageError("INVALID_BATCH", `entry ${e.index} has term ${e.term}, not an integer >= 0`);
    if (!ENTRY_TYPES.includes(e.type) || !(e.data instanceof Uint8Array)) {
      throw new StorageError("INVALID_BATCH", `entry ${e.index} needs a type (${ENTRY_TYPES.join(", ")}) and Uint8Array data`);
    }
  }
  const hs = batch.hardState;
  if (hs && (!isIndex(hs.term) || !isIndex(hs.commit) || (hs.votedFor !== null && typeof hs.votedFor !== "string"))) {
    throw new StorageError("INVALID_BATCH", `malformed hard state ${JSON.stringify(hs)}`);
  }
  const snap = batch.snapshot;
  if (snap && (!isIndex(snap.meta.index) || !isIndex(snap.meta.term))) {
    throw new StorageError("INVALID_BATCH", `snapshot meta has index ${snap.meta.index} and term ${snap.meta.term}`);
  }
  return hs !== undefined || entries.length > 0 || snap !== undefined;
}
