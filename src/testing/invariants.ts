import type { Entry, Index, NodeId, Term } from "../core/types.ts";
import { sameBytes, type TestCluster } from "./cluster.ts";

/**
 * Raft's safety properties (Figure 3 of the paper), checked after every simulator step.
 * Incremental: each entry is examined once per node (again only after that node truncates).
 *
 * - Election safety: at most one leader per term, ever (across crashes).
 * - Log matching: two logs holding an entry with the same index and term hold the same entry
 *   and agree on the term of the entry before it (hence, inductively, on the whole prefix).
 * - Leader completeness: a leader of term T holds every entry committed in a term before T.
 * - State machine safety: no two nodes apply different entries at one index; applied entries
 *   are committed entries, applied in order without gaps.
 * - A node's commit index never decreases while it runs, and a restart never loses an entry it
 *   had applied (entries are applied only once durable).
 */
export class InvariantViolation extends Error {
  constructor(readonly invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.name = "InvariantViolation";
  }
}

interface NodeTrack {
  incarnation: number;
  commit: Index;
  /** Entries of this node's log examined for log matching, up to here... */
  checkedIndex: Index;
  /** ...where it had this term (if the term changed, the node truncated). */
  checkedTerm: Term;
  role: string;
  term: Term;
  lastApplied: Index;
  /** Highest index applied in earlier lives. */
  appliedBefore: Index;
}

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  /** Every committed entry seen anywhere, by index. */
  private readonly committed = new Map<Index, Entry>();
  /**
   * The term in which each entry was first seen committed (the committing leader's term, since
   * the leader is the first to know). Leader completeness is about entries committed in earlier
   * terms: a leader elected in term T need not hold what was committed in term T or later (a
   * candidate paused with its votes in flight can win an old term after a newer one committed).
   */
  private readonly committedInTerm = new Map<Index, Term>();
  private readonly appliedAt = new Map<Index, { entry: Entry; by: NodeId }>();
  /** For log matching: `${index}/${term}` -> the entry and the term before it. */
  private readonly seen = new Map<string, { data: Uint8Array; type: string; prevTerm: Term | undefined; by: NodeId }>();
  private readonly track = new Map<NodeId, NodeTrack>();
  checks = 0;
  /** A violation seen in an event handler (where throwing would be swallowed), raised by check(). */
  private violation: InvariantViolation | null = null;

  constructor(private readonly cluster: TestCluster) {
    cluster.on((e) => {
      if (this.violation) return;
      try {
        if (e.type === "applied") this.onApplied(e.id, e.entry);
        else if (e.type === "snapshot-restored") this.onSnapshotRestored(e.id, e.index);
      } catch (err) {
        if (err instanceof InvariantViolation) this.violation = err;
        else throw err;
      }
    });
  }

  /** Check every node's current state; throws InvariantViolation. */
  check(): void {
    this.checks++;
    if (this.violation) throw this.violation;
    for (const id of this.cluster.ids) {
      const m = this.cluster.members.get(id);
      if (!m || !m.up) continue;
      const core = m.node.core;
      if (!core) continue;
      const t = this.trackOf(id);

      // Election safety.
      if (core.role === "leader") {
        const other = this.leaderOfTerm.get(core.term);
        if (other !== undefined && other !== id) {
          throw new InvariantViolation("election safety", `${other} and ${id} were both leader in term ${core.term}`);
        }
        this.leaderOfTerm.set(core.term, id);
        if (t.role !== "leader" || t.term !== core.term) this.checkLeaderCompleteness(id);
      }
      t.role = core.role;
      t.term = core.term;

      // Commit index monotonic; record newly committed entries.
      const commit = core.log.committed;
      if (commit < t.commit) {
        throw new InvariantViolation("commit monotonic", `${id}'s commit index went from ${t.commit} down to ${commit}`);
      }
      for (let i = t.commit + 1; i <= commit; i++) {
        const e = core.log.entry(i);
        if (!e) continue;
        const known = this.committed.get(i);
        if (known) {
          if (known.term !== e.term || !sameBytes(known.data, e.data)) {
            throw new InvariantViolation(
              "state machine safety",
              `index ${i} committed as term ${known.term} elsewhere but as term ${e.term} on ${id}`,
            );
          }
        } else {
          this.committed.set(i, e);
          this.committedInTerm.set(i, core.term);
        }
      }
      const prevCommit = t.commit;
      t.commit = commit;

      // Log matching, over entries not examined yet.
      if (core.log.term(t.checkedIndex) !== t.checkedTerm) {
        // The node replaced a suffix; only entries above what was committed then can differ.
        t.checkedIndex = Math.max(core.log.offset, Math.min(prevCommit, t.checkedIndex));
      }
      const last = core.log.lastIndex();
      for (let i = t.checkedIndex + 1; i <= last; i++) {
        const e = core.log.entry(i)!;
        const key = `${i}/${e.term}`;
        const prevTerm = core.log.term(i - 1);
        const known = this.seen.get(key);
        if (known) {
          if (known.prevTerm !== undefined && prevTerm !== undefined && known.prevTerm !== prevTerm) {
            throw new InvariantViolation(
              "log matching",
              `entry ${i} of term ${e.term} follows an entry of term ${known.prevTerm} on ${known.by} but of term ${prevTerm} on ${id}`,
            );
          }
          if (known.type !== e.type || !sameBytes(known.data, e.data)) {
            throw new InvariantViolation("log matching", `${known.by} and ${id} hold different entries at index ${i}, term ${e.term}`);
          }
        } else {
          this.seen.set(key, { data: e.data, type: e.type, prevTerm, by: id });
        }
      }
      t.checkedIndex = last;
      t.checkedTerm = core.log.lastTerm();
    }
  }

  /** The record of `id`'s current life, started when first seen (by check() or an apply). */
  private trackOf(id: NodeId): NodeTrack {
    const m = this.cluster.member(id);
    const core = m.node.core!;
    let t = this.track.get(id);
    if (t && t.incarnation === m.incarnation) return t;
    const appliedBefore = t ? Math.max(t.appliedBefore, t.lastApplied) : 0;
    t = {
      incarnation: m.incarnation,
      commit: core.log.committed,
      checkedIndex: core.log.offset,
      checkedTerm: core.log.offsetTerm,
      role: core.role,
      term: core.term,
      lastApplied: core.log.offset,
      appliedBefore,
    };
    this.track.set(id, t);
    // Entries are applied only once durable, so a restart must find every one of them again.
    // (The commit index itself may restart lower: it is re-learned from the leader.)
    if (core.log.lastIndex() < appliedBefore) {
      throw new InvariantViolation(
        "durability",
        `${id} restarted with a log ending at ${core.log.lastIndex()}, below the ${appliedBefore} entries it had applied before crashing`,
      );
    }
    return t;
  }

  private checkLeaderCompleteness(id: NodeId): void {
    const core = this.cluster.node(id).core!;
    for (const [i, e] of this.committed) {
      if (i <= core.log.offset || this.committedInTerm.get(i)! >= core.term) continue;
      const mine = core.log.entry(i);
      if (!mine || mine.term !== e.term) {
        throw new InvariantViolation(
          "leader completeness",
          `${id} became leader of term ${core.term} without committed entry ${i} (term ${e.term}); it has ${mine ? `term ${mine.term}` : "nothing"} there`,
        );
      }
    }
  }

  /** The state machine jumped to a snapshot: it must be of committed state, and never go back. */
  private onSnapshotRestored(id: NodeId, index: Index): void {
    const m = this.cluster.members.get(id)!;
    const core = m.node.core;
    if (!core) return; // restored at start, before the core exists: trackOf starts from its offset
    const t = this.trackOf(id);
    if (index < t.lastApplied) {
      throw new InvariantViolation("applied in order", `${id} restored a snapshot at ${index} after applying up to ${t.lastApplied}`);
    }
    if (index > core.log.committed) {
      throw new InvariantViolation("applied only committed", `${id} restored a snapshot at ${index} beyond its commit index ${core.log.committed}`);
    }
    t.lastApplied = index;
  }

  private onApplied(id: NodeId, entry: Entry): void {
    const m = this.cluster.members.get(id)!;
    const core = m.node.core;
    if (core) {
      const t = this.trackOf(id);
      if (entry.index !== t.lastApplied + 1) {
        throw new InvariantViolation("applied in order", `${id} applied index ${entry.index} right after ${t.lastApplied}`);
      }
      t.lastApplied = entry.index;
    }
    if (core && entry.index > core.log.committed) {
      throw new InvariantViolation("applied only committed", `${id} applied index ${entry.index} beyond its commit index ${core.log.committed}`);
    }
    const prior = this.appliedAt.get(entry.index);
    if (prior) {
      if (prior.entry.term !== entry.term || !sameBytes(prior.entry.data, entry.data)) {
        throw new InvariantViolation(
          "state machine safety",
          `${prior.by} applied term ${prior.entry.term} at index ${entry.index} but ${id} applied term ${entry.term}`,
        );
      }
    } else {
      this.appliedAt.set(entry.index, { entry, by: id });
    }
    const c = this.committed.get(entry.index);
    if (c && (c.term !== entry.term || !sameBytes(c.data, entry.data))) {
      throw new InvariantViolation("state machine safety", `${id} applied at index ${entry.index} an entry that differs from the committed one`);
    }
  }
}
