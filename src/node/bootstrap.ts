import type { ConfState, NodeId, Snapshot } from "../core/types.ts";
import { BootstrapConflictError } from "../errors.ts";
import type { StoredState } from "../storage/storage.ts";
import type { Member } from "./options.ts";

/**
 * How a node finds the configuration it starts from: the `members` it was given, checked against
 * what its storage recorded. See RaftNodeOptions.members for the rules.
 */

/** The voters `members` names, and the URLs it gives; throws RangeError when they cannot start this node. */
export function bootstrapMembers(id: NodeId, members: (Member | NodeId)[], join: boolean): { voters: NodeId[]; urls: Map<NodeId, string> } {
  const voters: NodeId[] = [];
  const urls = new Map<NodeId, string>();
  for (const m of members) {
    const member = typeof m === "string" ? { id: m } : m;
    voters.push(member.id);
    if (member.url) urls.set(member.id, member.url);
  }
  if (join) {
    if (voters.length > 0) throw new RangeError("a node that joins (join: true) takes no members: it learns them from the cluster");
  } else if (!voters.includes(id)) {
    throw new RangeError(`members (${voters.join(", ")}) must include this node's id "${id}"`);
  }
  return { voters, urls };
}

/**
 * The configuration to start from: a snapshot's, else the stored configuration record (checked
 * against `given`), else, for empty storage, `given`, with `record`: the configuration record to
 * store with the first save. Storage written before configuration records existed (entries, no
 * record) starts from `given`, as it always did: writing a record under its entries would
 * discard them.
 */
export function initialConf(id: NodeId, stored: StoredState, given: ConfState, join: boolean): { conf: ConfState; record: Snapshot | null } {
  const snap = stored.snapshot;
  if (snap !== null && snap.meta.index > 0) return { conf: snap.meta.conf, record: null };
  if (snap !== null) {
    const recorded = snap.meta.conf;
    const onlySelf = given.voters.length === 1 && given.voters[0] === id;
    if (!join && !onlySelf && !sameVoters(recorded, given)) throw new BootstrapConflictError(id, recorded, given);
    return { conf: recorded, record: null };
  }
  const fresh = stored.entries.length === 0 && stored.hardState.term === 0 && stored.hardState.votedFor === null;
  return { conf: given, record: fresh ? { meta: { index: 0, term: 0, conf: given }, data: new Uint8Array(0) } : null };
}

/** Same voters, learners and URLs (an id's URL counts only where both name one). */
function sameVoters(a: ConfState, b: ConfState): boolean {
  const same = (x: NodeId[], y: NodeId[]): boolean => x.length === y.length && x.every((id) => y.includes(id));
  if (!same(a.voters, b.voters) || !same(a.learners, b.learners) || !same(a.votersOutgoing, b.votersOutgoing)) return false;
  return Object.entries(b.urls ?? {}).every(([id, url]) => a.urls?.[id] === undefined || a.urls[id] === url);
}
