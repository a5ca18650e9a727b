import { cloneConf, decodeConfEntry } from "../core/membership.ts";
import type { Raft } from "../core/raft.ts";
import type { ConfState, Entry, Index, NodeId, Ready, Snapshot } from "../core/types.ts";
import type { NotLeaderError } from "../errors.ts";
import type { StateMachine } from "../statemachine.ts";
import type { Storage } from "../storage/storage.ts";
import type { Transport } from "../transport/transport.ts";
import type { AddressBook } from "./address-book.ts";
import type { Listeners } from "./events.ts";
import type { PendingRequests } from "./pending.ts";
import { isTransient, type SnapshotPolicy } from "./snapshot-policy.ts";

/** What the Ready loop works with; the RaftNode facade owns all of it. */
export interface ReadyLoopParts<Result> {
  id: NodeId;
  storage: Storage;
  transport: Transport;
  stateMachine: StateMachine<Result>;
  pending: PendingRequests<Result>;
  addresses: AddressBook;
  snapshots: SnapshotPolicy;
  events: Listeners<Result>;
  /** The core while the node runs; null before it started and once it stopped (or crashed). */
  core(): Raft | null;
  /** The clock's time at the last tick (or read). */
  now(): number;
  /** The node failed (storage error, broken invariant): stop it. */
  fail(error: unknown): void;
  notLeader(leaderId: NodeId | null, detail?: string): NotLeaderError;
}

/**
 * The Ready loop performs each Ready of the core in the order that keeps Raft safe:
 *
 *   persist (await storage) -> send messages -> apply committed entries -> advance
 *
 * Only one Ready is processed at a time. Proposals and messages arriving while a Ready is being
 * persisted accumulate in the core and go out together in the next one (group commit). Between
 * Readies it takes a snapshot when the snapshot policy says one is due.
 */
export class ReadyLoop<Result> {
  /** The index the state machine reflects (applied, or restored from a snapshot). */
  appliedIndex: Index = 0;
  /**
   * The configuration record (see RaftNodeOptions.members) of a node that found its storage empty.
   * It goes into the first batch the node saves, atomically with the first state that lets it act
   * on the configuration (a vote, a term, entries): a crash before that loses nothing it acted on.
   */
  pendingBootstrap: Snapshot | null = null;
  private processing = false;
  /** The loop in progress, so stop() can let its storage write finish before closing. */
  private loop: Promise<void> | null = null;

  constructor(private readonly parts: ReadyLoopParts<Result>) {}

  /** Run the loop soon (in a microtask) if there is work and it is not running already. */
  schedule(): void {
    const raft = this.parts.core();
    if (this.processing || !raft) return;
    if (!this.parts.pending.hasQueued && !raft.hasReady() && !this.snapshotDue()) return;
    this.processing = true;
    this.loop = Promise.resolve().then(() => this.processReadies());
  }

  /** Settles once the loop in progress (if any) has finished its current step. */
  async idle(): Promise<void> {
    await this.loop?.catch(() => {});
  }

  /** Hand every queued proposal to the core in one call: one log append, one AppendEntries. */
  flushProposals(raft: Raft): void {
    const { pending } = this.parts;
    if (!pending.hasQueued) return;
    const batch = pending.takeQueued();
    const res = raft.propose(batch.map((q) => ({ data: q.data })));
    switch (res.status) {
      case "appended":
        for (let i = 0; i < batch.length; i++) {
          batch[i].pending.term = res.term;
          pending.trackAt(res.index + i, batch[i].pending);
        }
        break;
      case "forwarded":
        pending.trackForwarded(
          res.requestId,
          batch.map((q) => q.pending),
        );
        break;
      case "rejected": {
        const detail = res.reason === "transferring" ? "leadership transfer in progress" : undefined;
        for (const q of batch) q.pending.reject(this.parts.notLeader(res.leaderId, detail));
        break;
      }
    }
  }

  /**
   * The state machine reflects every entry up to `index` (applied, or restored from a snapshot):
   * the one place `appliedIndex` moves, so that every read waiting for it is served whichever
   * way it got there.
   */
  appliedTo(index: Index): void {
    this.appliedIndex = index;
    this.parts.pending.appliedTo(index);
  }

  /** The core switched configuration: learn URLs, tell the transport whom to link to, tell listeners. */
  noticeConf(conf: ConfState): void {
    this.parts.addresses.setLatest(conf);
    this.parts.events.emit({ type: "membership", conf: cloneConf(conf) });
  }

  private snapshotDue(): boolean {
    return this.parts.snapshots.due(this.appliedIndex, this.parts.now());
  }

  private async processReadies(): Promise<void> {
    const { storage, transport } = this.parts;
    try {
      for (let raft = this.parts.core(); raft; raft = this.parts.core()) {
        this.flushProposals(raft);
        if (!raft.hasReady()) {
          // A snapshot put off by a transient failure is retried once due, Ready or not.
          if (this.snapshotDue()) await this.takeSnapshot(raft);
          break;
        }
        const rd = raft.ready();
        if (raft.conf !== this.parts.addresses.latest) this.noticeConf(raft.conf);
        for (const m of rd.earlyMessages) transport.send(m);
        if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
          // A snapshot from the leader supersedes the configuration record.
          const snapshot = rd.snapshot ?? this.pendingBootstrap ?? undefined;
          this.pendingBootstrap = null;
          await storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot });
          // Stopped (or crashed, in the simulator) while persisting: nothing of this Ready may
          // escape, since the batch may not be durable.
          if (!this.parts.core()) return;
        }
        for (const m of rd.messages) transport.send(m);
        this.settle(rd);
        raft.advance();
        if (this.snapshotDue()) {
          await this.takeSnapshot(raft);
          if (!this.parts.core()) return;
        }
      }
    } catch (err) {
      this.parts.fail(err);
    } finally {
      this.processing = false;
    }
    // Input that arrived while the loop was finishing.
    this.schedule();
  }

  /** Everything of a persisted Ready that is not a message: restore, role, apply, and the requests waiting on them. */
  private settle(rd: Ready): void {
    const { pending, events } = this.parts;
    if (rd.snapshot) this.restoreSnapshot(rd.snapshot);
    if (rd.softState) {
      const { role, term, leaderId } = rd.softState;
      events.emit({ type: "role", role, term, leaderId });
      if (leaderId !== null && leaderId !== this.parts.id) pending.leaderElected(leaderId);
    }
    pending.placed(rd.forwardedProposals, this.appliedIndex);
    this.apply(rd.committedEntries);
    pending.confirmed(rd.readStates, this.appliedIndex);
    pending.refused(rd.rejections, (leaderId, detail) => this.parts.notLeader(leaderId, detail));
  }

  /** A snapshot from the leader replaces the state machine (it is durable: persisted with this Ready). */
  private restoreSnapshot(snap: Snapshot): void {
    this.parts.stateMachine.restore(snap.data);
    const index = snap.meta.index;
    this.appliedTo(index);
    this.parts.snapshots.installed(index);
    this.parts.pending.snapshotRestored(index, snap.meta.conf);
    this.parts.addresses.setApplied(snap.meta.conf);
    this.parts.events.emit({ type: "snapshot-restored", index, term: snap.meta.term });
  }

  private apply(entries: Entry[]): void {
    if (entries.length === 0) return;
    const { stateMachine, snapshots, pending, events, addresses } = this.parts;
    const wantEvents = events.any;
    for (const entry of entries) {
      let result: Result | undefined;
      if (entry.type === "normal") result = stateMachine.apply(entry);
      this.appliedTo(entry.index);
      snapshots.applied(entry.data.byteLength);
      if (entry.type === "config") {
        const conf = decodeConfEntry(entry.data).conf;
        addresses.setApplied(conf);
        pending.confApplied(entry, conf);
      }
      pending.applied(entry, result);
      if (wantEvents) events.emit({ type: "applied", entry, result });
    }
  }

  /** Snapshot the state machine at the applied index, save it, then compact storage and memory. */
  private async takeSnapshot(raft: Raft): Promise<void> {
    const { storage, snapshots, events } = this.parts;
    const index = this.appliedIndex;
    const term = raft.log.term(index);
    if (term === undefined) return; // already compacted past it (cannot happen: applied >= offset)
    const snapshot: Snapshot = {
      meta: { index, term, conf: raft.confAt(index) },
      data: this.parts.stateMachine.snapshot(),
    };
    try {
      await storage.save({ snapshot });
    } catch (err) {
      // Safety never needs this snapshot (the log still holds everything), so running out of file
      // descriptors for a moment is no reason to stop: put it off, with a growing pause.
      if (!isTransient(err)) throw err;
      const retryInMs = snapshots.saveFailed(this.parts.now());
      events.emit({ type: "snapshot-deferred", index, error: err, retryInMs });
      return;
    }
    snapshots.saved();
    if (!this.parts.core()) return;
    const compactTo = snapshots.compactTo(index, raft.compactionFloor());
    if (compactTo > 0) await storage.compact(compactTo);
    if (!this.parts.core()) return;
    raft.snapshotTaken(snapshot, compactTo);
    snapshots.taken(index);
    events.emit({ type: "snapshot-taken", index, compactedTo: compactTo });
  }
}
