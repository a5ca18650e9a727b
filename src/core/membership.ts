import { nodeIdProblem } from "./node-id.ts";
import { memberUrlProblem } from "./member-url.ts";
import type { ConfState, NodeId } from "./types.ts";

/**
 * Membership changes (§6, thesis §4): what a change may ask for, how it turns one configuration
 * into the next, and how that travels in a `config` log entry.
 *
 * A change that alters the voter set always goes through joint consensus: the entry that starts
 * it holds C(old,new) (`voters` = new, `votersOutgoing` = old), and once that is applied the
 * leader appends the entry that leaves it (C(new)). Changes to learners alone take effect at once.
 * A config entry carries the whole resulting configuration, not a delta, so a member that starts
 * with an empty configuration (one that joins) knows the cluster after applying any one of them.
 */

/**
 * - `add-voter`: make `id` a voter (a new member, or a learner promoted).
 * - `add-learner`: add `id` as a learner; with `promote` the leader makes it a voter once it has
 *   caught up with the log.
 * - `remove`: take `id` out of the configuration, voter or learner.
 */
export type ConfChangeItem =
  | { op: "add-voter"; id: NodeId; url?: string }
  | { op: "add-learner"; id: NodeId; url?: string; promote?: boolean }
  | { op: "remove"; id: NodeId };

/** What a `config` entry holds: the configuration it installs, and the request that produced it. */
export interface ConfEntry {
  conf: ConfState;
  /** Empty for the entry that leaves joint consensus or promotes a learner automatically. */
  changes: ConfChangeItem[];
}

/** Why a change was refused. */
export class ConfChangeError extends Error {
  readonly kind: "invalid" | "in-progress";
  constructor(kind: "invalid" | "in-progress", message: string) {
    super(message);
    this.name = "ConfChangeError";
    this.kind = kind;
  }
}

export function cloneConf(c: ConfState): ConfState {
  const out: ConfState = { voters: c.voters.slice(), learners: c.learners.slice(), votersOutgoing: c.votersOutgoing.slice() };
  if (c.urls && Object.keys(c.urls).length > 0) out.urls = { ...c.urls };
  if (c.promote && c.promote.length > 0) out.promote = c.promote.slice();
  return out;
}

export function isJoint(c: ConfState): boolean {
  return c.votersOutgoing.length > 0;
}

/** Whether `id` appears anywhere in `c`. */
export function isMember(c: ConfState, id: NodeId): boolean {
  return c.voters.includes(id) || c.votersOutgoing.includes(id) || c.learners.includes(id);
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/**
 * The configuration that `changes` make of `conf` (which must not be joint). Throws
 * ConfChangeError("invalid") for a change that makes no sense: an unknown op, an id named twice,
 * adding a voter that is one, demoting a voter (remove it, then add it as a learner), removing a
 * non-member, or leaving no voter.
 */
export function applyChanges(conf: ConfState, changes: readonly ConfChangeItem[]): ConfState {
  if (isJoint(conf)) throw new ConfChangeError("in-progress", "the cluster is still leaving joint consensus");
  if (!Array.isArray(changes) || changes.length === 0) throw new ConfChangeError("invalid", "a membership change needs at least one change");
  const voters = conf.voters.slice();
  const learners = conf.learners.slice();
  const urls: Record<NodeId, string> = { ...conf.urls };
  const promote = new Set(conf.promote ?? []);
  const seen = new Set<NodeId>();
  const drop = (list: NodeId[], id: NodeId): void => {
    const i = list.indexOf(id);
    if (i >= 0) list.splice(i, 1);
  };
  for (const ch of changes) {
    const id = ch?.id;
    const idProblem = nodeIdProblem(id);
    if (idProblem !== null) throw new ConfChangeError("invalid", idProblem);
    if (seen.has(id)) throw new ConfChangeError("invalid", `member ${id} is named twice in one change`);
    seen.add(id);
    if ("url" in ch && ch.url !== undefined) {
      if (typeof ch.url !== "string" || !/^https?:\/\/[^\s/]+/.test(ch.url)) {
        throw new ConfChangeError("invalid", `member ${id}: url ${JSON.stringify(ch.url)} must be an http(s) base URL`);
      }
      const problem = memberUrlProblem(ch.url);
      if (problem) throw new ConfChangeError("invalid", `member ${id}: ${problem.message}`);
    }
    switch (ch.op) {
      case "add-voter":
        if (voters.includes(id)) throw new ConfChangeError("invalid", `${id} is already a voter`);
        drop(learners, id);
        promote.delete(id);
        voters.push(id);
        if (ch.url) urls[id] = ch.url;
        break;
      case "add-learner":
        if (voters.includes(id)) {
          throw new ConfChangeError("invalid", `${id} is a voter; demoting is not supported: remove it, then add it as a learner`);
        }
        if (learners.includes(id)) throw new ConfChangeError("invalid", `${id} is already a learner`);
        learners.push(id);
        if (ch.promote) promote.add(id);
        if (ch.url) urls[id] = ch.url;
        break;
      case "remove":
        if (!voters.includes(id) && !learners.includes(id)) throw new ConfChangeError("invalid", `${id} is not a member`);
        drop(voters, id);
        drop(learners, id);
        promote.delete(id);
        break;
      default:
        throw new ConfChangeError("invalid", `unknown membership change ${JSON.stringify((ch as { op?: unknown })?.op)}`);
    }
  }
  if (voters.length === 0) throw new ConfChangeError("invalid", "a configuration needs at least one voter");
  const next: ConfState = { voters, learners, votersOutgoing: [] };
  // Voters leaving keep their URL until the joint configuration is left: they still vote.
  if (!sameSet(voters, conf.voters)) next.votersOutgoing = conf.voters.slice();
  setExtras(next, urls, promote);
  return next;
}

/** C(new) from C(old,new): the outgoing voters stop voting; members gone lose their URL. */
export function leaveJoint(conf: ConfState): ConfState {
  const next: ConfState = { voters: conf.voters.slice(), learners: conf.learners.slice(), votersOutgoing: [] };
  setExtras(next, { ...conf.urls }, new Set(conf.promote ?? []));
  return next;
}

function setExtras(c: ConfState, urls: Record<NodeId, string>, promote: Set<NodeId>): void {
  const kept: Record<NodeId, string> = {};
  for (const id of Object.keys(urls).sort()) if (isMember(c, id)) kept[id] = urls[id];
  if (Object.keys(kept).length > 0) c.urls = kept;
  const p = [...promote].filter((id) => c.learners.includes(id));
  if (p.length > 0) c.promote = p;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeConfEntry(e: ConfEntry): Uint8Array {
  return utf8Encoder.encode(JSON.stringify({ v: 1, conf: e.conf, changes: e.changes }));
}

function ids(v: unknown): v is NodeId[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Throws if `data` is not a config entry this version wrote. */
export function decodeConfEntry(data: Uint8Array): ConfEntry {
  let raw: { v?: unknown; conf?: Partial<ConfState>; changes?: unknown };
  try {
    raw = JSON.parse(utf8Decoder.decode(data));
  } catch (err) {
    throw new Error(`config entry is not valid JSON: ${(err as Error).message}`);
  }
  const c = raw?.conf;
  if (raw?.v !== 1 || !c || !ids(c.voters) || !ids(c.learners) || !ids(c.votersOutgoing)) {
    throw new Error("config entry lacks version 1 or a configuration {voters, learners, votersOutgoing}");
  }
  if (c.promote !== undefined && !ids(c.promote)) throw new Error("config entry: promote must be a list of ids");
  if (c.urls !== undefined && (typeof c.urls !== "object" || c.urls === null || !Object.values(c.urls).every((u) => typeof u === "string"))) {
    throw new Error("config entry: urls must map ids to strings");
  }
  const conf = cloneConf(c as ConfState);
  return { conf, changes: Array.isArray(raw.changes) ? (raw.changes as ConfChangeItem[]) : [] };
}
