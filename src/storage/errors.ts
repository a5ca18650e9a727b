/** Errors every storage adapter raises for a batch or call the Storage contract forbids. */
export type StorageErrorCode =
  /** A batch's first entry starts more than one past the stored log (or snapshot). */
  | "LOG_GAP"
  /** A batch is malformed: non-contiguous entries, an index below 1. */
  | "INVALID_BATCH"
  /** `compact(upTo)` with `upTo` beyond the stored snapshot's index. */
  | "COMPACT_BEYOND_SNAPSHOT"
  /** The save was still in flight when the storage crashed; it never became durable. */
  | "CRASHED"
  /** The handle was closed (or replaced by `reopen()`). */
  | "CLOSED";

/** A storage operation the contract forbids, or one cut off by a (simulated) crash. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.name = "StorageError";
    this.code = code;
  }
}
