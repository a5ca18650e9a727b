/**
 * The data the Raft core consumes and produces. Names follow the Raft paper (Ongaro & Ousterhout,
 * "In Search of an Understandable Consensus Algorithm") so a reader who knows Raft recognises them.
 *
 * Everything here is plain data: it crosses the wire (see src/transport/codec.ts) and storage
 * boundaries unchanged. Binary payloads are always `Uint8Array`.
 */

/** A member's identity: a short string chosen by the operator ("n1"). */
export type NodeId = string;
/** A Raft term. Starts at 0; the first election produces term 1. */
export type Term = number;
/** A log position. Index 0 is the empty prefix; the first real entry is at 1. */
export type Index = number;

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/**
 * - `normal`: a client command for the state machine.
 * - `noop`: appended by every new leader so that entries of earlier terms commit promptly (§5.4.2,
 *   §8); the state machine never sees it.
 * - `config`: a membership change (data is an encoded ConfChange; see the membership issue).
 */
export type EntryType = "normal" | "noop" | "config";

export interface Entry {
  index: Index;
  term: Term;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before a node answers anyone (Figure 2, "persistent state"). */
export interface HardState {
  term: Term;
  votedFor: NodeId | null;
  /** Persisted so a restarted node can re-apply up to it without waiting for a leader. */
  commit: Index;
}

/**
 * The membership configuration. While `votersOutgoing` is non-empty the cluster is in joint
 * consensus (§6): decisions need a majority of `voters` AND a majority of `votersOutgoing`.
 * Learners receive the log but never vote and never count towards a quorum.
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  /** Base URLs of members (for redirects and peer links), where known. */
  urls?: Record<NodeId, string>;
  /** Learners the leader makes voters once they have caught up with the log. */
  promote?: NodeId[];
}

export interface SnapshotMeta {
  index: Index;
  term: Term;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Messages. Every message carries the sender's term; `to`/`from` are member ids.
// ---------------------------------------------------------------------------------------------

interface MessageBase {
  from: NodeId;
  to: NodeId;
  term: Term;
}

/** RequestVote (§5.2). With `preVote` it asks "would you vote for me?" without raising terms. */
export interface RequestVote extends MessageBase {
  type: "RequestVote";
  lastLogIndex: Index;
  lastLogTerm: Term;
  preVote: boolean;
  /** Set when a leader handed over leadership (TimeoutNow): voters ignore their leader lease. */
  transfer: boolean;
}

export interface RequestVoteResponse extends MessageBase {
  type: "RequestVoteResponse";
  voteGranted: boolean;
  preVote: boolean;
}

/** AppendEntries (§5.3). An empty `entries` is a probe; heartbeats use `Heartbeat`. */
export interface AppendEntries extends MessageBase {
  type: "AppendEntries";
  prevLogIndex: Index;
  prevLogTerm: Term;
  entries: Entry[];
  leaderCommit: Index;
}

/**
 * On success `matchIndex` is the last index the follower now durably shares with the leader.
 * On rejection `matchIndex` echoes the rejected `prevLogIndex`, and the hint names the last index
 * whose term is <= the leader's `prevLogTerm` on the follower, so that the leader can skip whole
 * conflicting terms instead of one entry per round trip.
 */
export interface AppendEntriesResponse extends MessageBase {
  type: "AppendEntriesResponse";
  success: boolean;
  matchIndex: Index;
  hintIndex: Index;
  hintTerm: Term;
}

/**
 * Leader liveness and commit propagation. `leaderCommit` is capped at what the follower is known
 * to have, so a follower never commits an entry it does not hold. Each broadcast is a new round
 * `readRound` (increasing); the follower echoes it, confirming this leader for the reads that
 * came before the round (ReadIndex) and, in lease mode, granting the lease that round starts.
 */
export interface Heartbeat extends MessageBase {
  type: "Heartbeat";
  leaderCommit: Index;
  readRound: number;
}

export interface HeartbeatResponse extends MessageBase {
  type: "HeartbeatResponse";
  readRound: number;
}

/** InstallSnapshot (§7), sent in chunks. */
export interface InstallSnapshot extends MessageBase {
  type: "InstallSnapshot";
  meta: SnapshotMeta;
  offset: number;
  data: Uint8Array;
  done: boolean;
}

export interface InstallSnapshotResponse extends MessageBase {
  type: "InstallSnapshotResponse";
  /** Index of the snapshot this answers. */
  snapshotIndex: Index;
  /** Bytes received so far (the next offset the follower expects); -1 if it rejects the transfer. */
  nextOffset: number;
  /** The follower's last log index after installing, when `done`. */
  matchIndex: Index;
  done: boolean;
}

/** Leadership transfer (thesis §3.10): "start an election now, ignoring your timer". */
export interface TimeoutNow extends MessageBase {
  type: "TimeoutNow";
}

/** A follower forwards client proposals to the leader it knows. */
export interface ForwardProposal extends MessageBase {
  type: "ForwardProposal";
  requestId: number;
  entries: { type: EntryType; data: Uint8Array }[];
}

/** The leader's answer: where the forwarded entries landed, or a rejection with a leader hint. */
export interface ForwardProposalResponse extends MessageBase {
  type: "ForwardProposalResponse";
  requestId: number;
  /** Index of the first forwarded entry, 0 when rejected. */
  index: Index;
  /** Term the entries were appended in, 0 when rejected. */
  entryTerm: Term;
  rejected: boolean;
  leaderId: NodeId | null;
}

/** A follower asks the leader for a read index on behalf of its client. */
export interface ReadIndexRequest extends MessageBase {
  type: "ReadIndex";
  requestId: number;
}

export interface ReadIndexResponse extends MessageBase {
  type: "ReadIndexResponse";
  requestId: number;
  /** Commit index the read must wait for; 0 when rejected. */
  index: Index;
  rejected: boolean;
  leaderId: NodeId | null;
}

export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ForwardProposal
  | ForwardProposalResponse
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message["type"];

// ---------------------------------------------------------------------------------------------
// Ready: the batch of effects the driver performs, in order: persist, send, apply, advance.
// ---------------------------------------------------------------------------------------------

export interface SoftState {
  role: Role;
  leaderId: NodeId | null;
  term: Term;
}

/** A read the driver may serve once the state machine has applied `index`. */
export interface ReadState {
  requestId: number;
  index: Index;
}

/** The fate of a read or proposal that could not be (or no longer can be) completed here. */
export interface Rejection {
  requestId: number;
  leaderId: NodeId | null;
  reason: "not-leader" | "leadership-lost" | "transferring";
}

/** Where a forwarded proposal landed in the leader's log. */
export interface ForwardedProposal {
  requestId: number;
  index: Index;
  term: Term;
}

export interface Ready {
  /** Present when role, leader or term changed since the last Ready. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist before sending `messages`. */
  hardState?: HardState;
  /**
   * Entries to persist. They replace every stored entry at or after `entries[0].index`
   * (a follower truncating a conflicting suffix shows up as such an overwrite).
   */
  entries: Entry[];
  /** A snapshot to persist and restore into the state machine before applying anything. */
  snapshot?: Snapshot;
  /** Entries that are committed and durable locally: apply them in order. */
  committedEntries: Entry[];
  /** Send only after `hardState`, `entries` and `snapshot` are durable. */
  messages: Message[];
  /**
   * A leader's AppendEntries and heartbeats, which may be sent BEFORE this Ready's entries are
   * durable (thesis §10.2.1: the leader writes its disk in parallel with replicating). Safe
   * because the leader counts itself towards a quorum only for entries durable on its own disk,
   * and its term and vote were made durable before it could lead. Empty when the Ready changes
   * term or vote.
   */
  earlyMessages: Message[];
  readStates: ReadState[];
  forwardedProposals: ForwardedProposal[];
  /** Reads and forwarded proposals that failed; the driver rejects their promises. */
  rejections: Rejection[];
}
