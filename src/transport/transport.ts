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
  /**
   * Replace the set of members this transport links to: links to ids no longer listed are closed,
   * new ids are linked (dialed or awaited, as the transport's dial rule says). An entry with this
   * node's own id is ignored; calling it again with the same set is cheap and changes nothing.
   * Optional: a transport that routes by id alone (MemoryNetwork) has nothing to change.
   * @throws RangeError for an invalid list (a duplicate id, a bad URL); nothing changes then.
   */
  setPeers?(peers: PeerAddress[]): void;
  /**
   * The URL member `id` announced for itself when its link opened (null: not known). Optional:
   * a transport without addresses (MemoryNetwork) has none. Redirects prefer it to a listed URL.
   */
  announcedUrl?(id: NodeId): string | null;
  /**
   * Whether a link with member `id` completed its handshake (authenticated, with a secret) since
   * this transport started. Optional: a transport without handshakes has nothing to say.
   */
  linked?(id: NodeId): boolean;
  /**
   * Each peer's link: its state and counters since start, for `/metrics` and the dashboard.
   * Optional: a transport without per-peer links has none to report.
   */
  linkStats?(): Record<NodeId, PeerLinkCounters>;
}

/** What `Transport.linkStats` reports of one peer (the mesh's PeerLinkStats has more). */
export interface PeerLinkCounters {
  state: "open" | "connecting" | "down" | "closed";
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  droppedDisconnected: number;
  droppedBackpressure: number;
  droppedUnencodable: number;
}

/** Where a member can be reached, for redirects and for the mesh. */
export interface PeerAddress {
  id: NodeId;
  url: string;
}
