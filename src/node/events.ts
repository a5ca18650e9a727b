import type { ConfState, Entry, Index, NodeId, Role, Term } from "../core/types.ts";

export type RaftNodeEvent<Result> =
  | { type: "role"; role: Role; term: Term; leaderId: NodeId | null }
  | { type: "applied"; entry: Entry; result: Result | undefined }
  /** The state machine was replaced by a snapshot (from the leader, or at start). */
  | { type: "snapshot-restored"; index: Index; term: Term }
  /** This node took a snapshot of its state machine and compacted its log. */
  | { type: "snapshot-taken"; index: Index; compactedTo: Index }
  /** Saving a snapshot failed for a passing reason (out of file descriptors); it is retried in `retryInMs`. */
  | { type: "snapshot-deferred"; index: Index; error: unknown; retryInMs: number }
  /** The configuration this node works with changed (a change applied, or a snapshot's). */
  | { type: "membership"; conf: ConfState }
  | { type: "error"; error: unknown };

export type Listener<Result> = (event: RaftNodeEvent<Result>) => void;

/** A RaftNode's subscribers. */
export class Listeners<Result> {
  private readonly listeners = new Set<Listener<Result>>();

  /** Whether anyone listens (an `applied` event per entry is built only then). */
  get any(): boolean {
    return this.listeners.size > 0;
  }

  /** Subscribe; returns an unsubscribe function. */
  add(listener: Listener<Result>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: RaftNodeEvent<Result>): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is the listener's problem; it must not break replication.
      }
    }
  }
}
