export { RaftNode, type NodeStatus } from "./raft-node.ts";
export { validateRaftNodeOptions, type Member, type RaftNodeOptions, type RaftNodeSettings } from "./options.ts";
export type { RaftNodeEvent } from "./events.ts";
export type { MembershipChange, ProposeOutcome } from "./pending.ts";
