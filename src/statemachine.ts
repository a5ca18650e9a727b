import type { Entry } from "./core/types.ts";

/**
 * The application's replicated state. `apply` is called with every committed `normal` entry, in
 * log order, exactly once per node lifetime (after a restart, from the latest snapshot on), and
 * must be deterministic: every node applies the same entries and must reach the same state.
 */
export interface StateMachine<Result = unknown> {
  apply(entry: Entry): Result;
  /** A serialisation of the whole state as of the last applied entry. */
  snapshot(): Uint8Array;
  /** Replace the whole state with a snapshot made by `snapshot()`. */
  restore(data: Uint8Array): void;
}
