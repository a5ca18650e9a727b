import type { ConfState, Index, NodeId } from "./types.ts";

/**
 * Majority arithmetic over one or two voter sets (joint consensus, §6). Pure functions: the
 * caller supplies what each voter has acknowledged.
 */

/**
 * The largest index that a majority of `voters` has acknowledged. An empty voter set places no
 * constraint (returns +Infinity), which is what the outgoing half of a non-joint config needs.
 */
export function majorityIndex(voters: readonly NodeId[], acked: (id: NodeId) => Index): Index {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  if (n === 1) return acked(voters[0]);
  const values = new Array<number>(n);
  for (let i = 0; i < n; i++) values[i] = acked(voters[i]);
  values.sort((a, b) => b - a);
  // With values sorted descending, values[q-1] is acknowledged by at least q = n/2+1 voters.
  return values[Math.floor(n / 2)];
}

/** The largest index acknowledged by a majority of every voter set of `conf`. */
export function committedIndex(conf: ConfState, acked: (id: NodeId) => Index): Index {
  const incoming = majorityIndex(conf.voters, acked);
  const outgoing = majorityIndex(conf.votersOutgoing, acked);
  return Math.min(incoming, outgoing);
}

export type VoteResult = "won" | "lost" | "pending";

function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const quorum = Math.floor(voters.length / 2) + 1;
  if (granted >= quorum) return "won";
  if (voters.length - rejected < quorum) return "lost";
  return "pending";
}

/** An election is won only when won in every voter set, and lost as soon as one set is lost. */
export function voteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(conf.voters, votes);
  const b = majorityVote(conf.votersOutgoing, votes);
  if (a === "lost" || b === "lost") return "lost";
  if (a === "won" && b === "won") return "won";
  return "pending";
}

/** Every member that votes in `conf`, each once. */
export function allVoters(conf: ConfState): NodeId[] {
  if (conf.votersOutgoing.length === 0) return conf.voters.slice();
  const set = new Set(conf.voters);
  for (const id of conf.votersOutgoing) set.add(id);
  return [...set];
}

/** Every member that receives the log: voters of both halves and learners. */
export function allMembers(conf: ConfState): NodeId[] {
  const set = new Set(conf.voters);
  for (const id of conf.votersOutgoing) set.add(id);
  for (const id of conf.learners) set.add(id);
  return [...set];
}

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.votersOutgoing.includes(id);
}
