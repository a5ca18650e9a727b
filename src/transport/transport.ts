import type { Message, NodeId } from "../core/types.ts";

/**
 * Moves messages between members. Raft tolerates loss, duplication and reordering, so a transport
 * may drop a message it cannot send (a full buffer, a dead link) instead of queueing without
 * bound; it must never block the caller.
 */
export interface Transport {
  /** Start delivering inbound messages addressed to this node to `handler`. */
  start(handler: (message: Message) => void): void;
  /** Best-effort send to `message.to`. Never throws for network reasons; never blocks. */
  send(message: Message): void;
  /** Stop sending and receiving; release sockets. */
  close(): Promise<void>;
}

/** Where a member can be reached, for redirects and for the mesh. */
export interface PeerAddress {
  id: NodeId;
  url: string;
}
