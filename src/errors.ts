import type { ConfState, NodeId } from "./core/types.ts";

/**
 * Every error meshraft raises on purpose carries a stable `code`, so callers (and the HTTP layer)
 * can branch on it without parsing messages.
 */
export class MeshraftError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * This node cannot take the request because it is not the leader. Nothing was proposed: the
 * caller may resend to `leaderId` (at `leaderUrl`) or, when both are null, retry later.
 */
export class NotLeaderError extends MeshraftError {
  readonly leaderId: NodeId | null;
  readonly leaderUrl: string | null;
  constructor(leaderId: NodeId | null, leaderUrl: string | null, detail?: string) {
    const where = leaderId === null ? "no leader is known yet" : `the leader is ${leaderId}${leaderUrl ? ` at ${leaderUrl}` : ""}`;
    super("NOT_LEADER", `this node is not the leader: ${where}${detail ? ` (${detail})` : ""}`);
    this.leaderId = leaderId;
    this.leaderUrl = leaderUrl;
  }
}

/**
 * The proposal was appended to a log but its fate is unknown (leadership was lost before it
 * committed, or it timed out): it may still commit. Only a retry that the state machine can
 * recognise as a duplicate (a client id and sequence number) is safe.
 */
export class OutcomeUnknownError extends MeshraftError {
  constructor(detail: string) {
    super("OUTCOME_UNKNOWN", `the write may or may not have been applied: ${detail}`);
  }
}

/** The proposal is known not to have been committed (another entry took its place): safe to retry. */
export class ProposalDroppedError extends MeshraftError {
  constructor(detail: string) {
    super("PROPOSAL_DROPPED", `the proposal was not committed: ${detail}`);
  }
}

/** A linearizable read could not be confirmed in time. Nothing happened; safe to retry. */
/**
 * This node already holds as many proposals (or reads) as it may: nothing was proposed (or
 * read). Retry later; a client that keeps sending faster than the cluster commits would
 * otherwise make the node hold unbounded work.
 */
export class OverloadedError extends MeshraftError {
  constructor(detail: string) {
    super("OVERLOADED", `this node is overloaded, nothing was done: ${detail}`);
  }
}

export class ReadTimeoutError extends MeshraftError {
  constructor(detail: string) {
    super("READ_TIMEOUT", `the read could not be confirmed: ${detail}`);
  }
}

/**
 * The node was stopped (or failed) before the request reached the Raft core: nothing was proposed,
 * so it may be resent (to this node once restarted, or to another). A request the core already
 * took is rejected with OutcomeUnknownError instead.
 */
export class NodeStoppedError extends MeshraftError {
  constructor(detail: string) {
    super("NODE_STOPPED", detail);
  }
}

/** Another membership change is still in flight (or joint consensus is being left). Retry later. */
export class ConfChangeInProgressError extends MeshraftError {
  constructor(detail: string) {
    super("CONF_CHANGE_IN_PROGRESS", `a membership change is already in progress: ${detail}`);
  }
}

/** The membership change makes no sense for the current configuration; nothing was proposed. */
export class InvalidConfChangeError extends MeshraftError {
  constructor(detail: string) {
    super("INVALID_CONF_CHANGE", `invalid membership change: ${detail}`);
  }
}

/**
 * A learner asked to become a voter has not caught up with the leader's log (the rule of automatic
 * promotion: replicated to in the steady state and within `maxLagEntries`). Nothing was proposed;
 * ask again once it has caught up.
 */
export class LearnerBehindError extends MeshraftError {
  readonly id: NodeId;
  /** The learner's last index known to match the leader's log. */
  readonly match: number;
  readonly lastIndex: number;
  readonly maxLagEntries: number;
  constructor(id: NodeId, match: number, lastIndex: number, maxLagEntries: number, state: string) {
    const how = state === "replicate" ? "" : `; the leader is ${state === "snapshot" ? "sending it a snapshot" : "still probing its log"}`;
    super(
      "LEARNER_BEHIND",
      `${id} is ${lastIndex - match} entries behind the leader (match ${match}, last index ${lastIndex}${how}); it becomes a voter once within ${maxLagEntries} entries`,
    );
    this.id = id;
    this.match = match;
    this.lastIndex = lastIndex;
    this.maxLagEntries = maxLagEntries;
  }
}

/**
 * A node's storage holds the configuration it was first started with, and the members it is
 * started with now say otherwise. Starting anyway would silently change its voter set (members
 * restarted with different flags could stop overlapping), so it does not start.
 */
export class BootstrapConflictError extends MeshraftError {
  readonly stored: ConfState;
  readonly given: ConfState;
  constructor(id: NodeId, stored: ConfState, given: ConfState) {
    const show = (c: ConfState): string =>
      c.voters.length === 0 ? "none (it joined an existing cluster)" : c.voters.map((v) => (c.urls?.[v] ? `${v}=${c.urls[v]}` : v)).join(", ");
    super(
      "BOOTSTRAP_CONFLICT",
      `node ${id}'s storage holds the configuration it was first started with, voters ${show(stored)}; ` +
        `the members given now, ${show(given)}, contradict it. Start it with the same members, or with none but itself ` +
        `(meshraft start without --peer) to use the stored configuration${stored.voters.length === 0 ? ", or with --join" : ""}; ` +
        `change membership through the cluster (POST/DELETE /admin/members)`,
    );
    this.stored = stored;
    this.given = given;
  }
}

/** Leadership did not move to another member in time. The old leader took proposals again. */
export class TransferFailedError extends MeshraftError {
  constructor(detail: string) {
    super("TRANSFER_FAILED", `leadership transfer failed: ${detail}`);
  }
}
