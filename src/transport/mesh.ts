/**
 * WebSocketMesh: the Transport between server peers, written once against the WHATWG WebSocket
 * surface. Node passes `ws`'s WebSocket (adapters/node/mesh.ts); Deno and browsers pass their
 * global `WebSocket`.
 *
 * One link per peer pair. The dial rule: of two peers, the one whose id sorts first (JavaScript
 * string `<`) dials, the other accepts, so two sockets per pair never both stay open. An acceptor
 * refuses a HELLO from a peer that should have been dialed instead (WRONG_DIALER); when a newer
 * link from the same peer completes its handshake (the peer restarted and the old socket has not
 * noticed yet), the newer one replaces the old (REPLACED). The dialer redials a lost link with
 * exponential backoff and jitter (./backoff.ts); the acceptor waits.
 *
 * Every link starts with the handshake of ./handshake.ts (protocol version, cluster id, node ids,
 * and with a `secret` mutual HMAC-SHA256 challenge-response); no Raft frame moves before it
 * completed. Then each side pings every `pingIntervalMs` and closes a link that was silent for
 * `idleTimeoutMs`, so a frozen peer is noticed and redialed.
 *
 * Membership changes at runtime: `setPeers` replaces the peer list (see there for what it closes).
 * With `acceptUnknownPeers`, a node whose id no list named may dial in (a member that joined before
 * this node learned of it); after the full handshake it is a peer without a URL, which this node
 * never dials, for as long as that link stays open.
 *
 * Nothing queues in the mesh: `send` encodes and hands the frame to the socket, or drops it (and
 * counts why) when the link is down or the socket already buffers more than the peer's high-water
 * mark. Raft retransmits; a queue would only deliver stale messages late.
 */
import { realClock, type Clock } from "../clock.ts";
import { memberUrlProblem } from "../core/member-url.ts";
import { nodeIdProblem } from "../core/node-id.ts";
import { logText } from "../log-text.ts";
import type { Random } from "../core/random.ts";
import type { Message, NodeId } from "../core/types.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import { Codec, type CodecLimits } from "./codec.ts";
import {
  CLOSE_TIMEOUT_MS,
  Connection,
  type ConnectionHost,
  emptyCounters,
  HANDSHAKE_CLOSE_REASON,
  type InboundSocket,
  type LinkCounters,
  type MeshLogger,
  type MeshLogLevel,
  type SocketControl,
  type WebSocketConstructor,
  type WebSocketLike,
  type Wire,
  wireOfInbound,
  wireOfSocket,
} from "./connection.ts";
import { CloseCode, closeCodeName, HandshakeError, importSecret } from "./handshake.ts";
import type { PeerAddress, Transport } from "./transport.ts";

export type { InboundSocket, LinkCounters, MeshLogger, MeshLogLevel, SocketControl, WebSocketConstructor, WebSocketLike };
export { CloseCode } from "./handshake.ts";

export interface WebSocketMeshOptions {
  /** This node's id. */
  id: NodeId;
  /** Every member must use the same one; a peer from another cluster is refused. */
  clusterId: string;
  /**
   * The other members and their base URLs (`http://host:port`); a peer's socket is `<url>/raft`
   * with http(s) turned into ws(s). An entry with this node's own id is ignored.
   */
  peers: PeerAddress[];
  /** A WHATWG-compatible WebSocket constructor: `ws`'s on Node, the global one elsewhere. */
  WebSocket: WebSocketConstructor;
  /**
   * The URL this node announces for itself in the handshake (its --url). Peers that list it at
   * another URL warn, and so does this node; `announcedUrl(id)` gives what each peer announced.
   */
  url?: string;
  /** The cluster secret; without one any host that reaches `/raft` may join (a warning is logged). */
  secret?: string;
  /**
   * Accept inbound links from ids not in the peer list: a member that joined and dialed this node
   * before this node learned of it. The handshake checks everything else as for a listed peer.
   * Default false: such a HELLO is refused with UNKNOWN_NODE.
   */
  acceptUnknownPeers?: boolean;
  clock?: Clock;
  /** Backoff jitter. Defaults to Math.random. */
  random?: Random;
  /** Per peer: above this many bytes buffered in its socket, messages to it are dropped. Default 8 MiB. */
  highWaterMarkBytes?: number;
  /** Ping an open link this often, in ms. Default 5000 (well inside Deno's 30 s idle limit). */
  pingIntervalMs?: number;
  /** Close (and redial) a link that received nothing for this long, in ms. Default 15000; at least 2 pings. */
  idleTimeoutMs?: number;
  /** A link must complete its handshake (socket open included) within this, in ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /**
   * Inbound sockets still in their handshake at once; one more is closed at once (1013, try
   * again later), so hosts that prove nothing cannot hold more. Default 64.
   */
  maxUnauthenticatedSockets?: number;
  /** Redial delays, in ms. Default {initialMs: 50, maxMs: 2000}. */
  backoff?: Partial<BackoffOptions>;
  /** Limits of the Raft frame codec; frames beyond them close the link. */
  codecLimits?: Partial<CodecLimits>;
  /** Default: warn and error lines to the console. */
  logger?: MeshLogger;
  /** What the runtime's sockets can do beyond the WHATWG surface (the Node adapter supplies it). */
  socketControl?: SocketControl;
}

export type LinkState = "open" | "connecting" | "down" | "closed";

/** One peer's link, as `stats()` reports it. Counters survive reconnects. */
export interface PeerLinkStats extends LinkCounters {
  /**
   * null for a peer no list named, accepted from an unknown id: this node cannot dial it, and
   * forgets it when its link closes.
   */
  url: string | null;
  /** "connecting" covers dialing and the handshake; an acceptor's link is "down" until the peer dials. */
  state: LinkState;
  /** Whether this node dials the link (by the dial rule, and only with a URL) or accepts it. */
  role: "dials" | "accepts";
  /** Times a link to this peer completed its handshake. */
  opened: number;
  /** Links opened after the first: `max(0, opened - 1)`. */
  reconnects: number;
  /** Sockets this node opened towards the peer, failed ones included. */
  dials: number;
  /** Dropped by `send` because no link was open. */
  droppedDisconnected: number;
  /** Dropped by `send` because the socket buffered more than the high-water mark. */
  droppedBackpressure: number;
  /** Dropped by `send` because the codec refused the message (a bug upstream; logged). */
  droppedUnencodable: number;
  /** Round trip of the last answered ping, in ms. */
  rttMs: number | null;
  /** Why the last link closed, for the status page. */
  lastCloseReason: string | null;
}

/**
 * Handlers for one inbound peer socket, in the shape of hono's `WSEvents` (so they plug into
 * `upgradeWebSocket` on every runtime); `ws` is hono's `WSContext`.
 */
export interface MeshInboundHandlers {
  onOpen: (event: unknown, ws: InboundSocket) => void;
  onMessage: (event: { data: unknown }, ws: InboundSocket) => void;
  onClose: (event: { code: number; reason: string }, ws: InboundSocket) => void;
  onError: (event: unknown, ws: InboundSocket) => void;
}

export interface MeshStats {
  id: NodeId;
  peers: Record<NodeId, PeerLinkStats>;
  /**
   * Inbound sockets not attributed to a peer: garbage, timeouts before HELLO, refused unknown ids,
   * and the handshake of an unknown id that was accepted (its counters start once it is a peer).
   */
  unidentified: LinkCounters;
  /** Ids that became peers after construction: listed by `setPeers`, or accepted from an unknown id. */
  peersAdded: number;
  /** Ids that stopped being peers: removed by `setPeers`, or unlisted peers whose link closed. */
  peersRemoved: number;
  /** Ids `setPeers` removed and no later list named again; their dials are refused (REMOVED). */
  removed: NodeId[];
  /** Messages addressed to an id that is not a peer. */
  droppedUnknownPeer: number;
  /** Inbound messages dropped because no handler was started (or it was stopped). */
  droppedNoHandler: number;
  /** Times the message handler threw (logged; delivery goes on). */
  handlerErrors: number;
}

interface Link {
  readonly id: NodeId;
  /**
   * null exactly for a peer no list (constructor or `setPeers`) named, accepted from an unknown id;
   * such an unlisted peer is forgotten when its link closes. Invariant: socketUrl is null iff url is.
   */
  url: string | null;
  socketUrl: string | null;
  /** This node dials: by the dial rule its id sorts before the peer's, and it has the peer's URL. */
  dialer: boolean;
  /** The open link, if any. */
  current: Connection | null;
  /** Dialer: the socket being dialed or handshaking. */
  dialing: Connection | null;
  /** Consecutive failed dials since the last open link. */
  attempt: number;
  cancelRedial: (() => void) | null;
  readonly counters: LinkCounters;
  opened: number;
  dials: number;
  droppedDisconnected: number;
  droppedBackpressure: number;
  droppedUnencodable: number;
  lastCloseReason: string | null;
  /** The URL the peer announced for itself on its last authenticated link; null before one. */
  announcedUrl: string | null;
  /** The last dial was refused with REMOVED: redial slowly (REMOVED_REDIAL_FACTOR), not by the backoff. */
  refusedAsRemoved: boolean;
}

const DEFAULTS = {
  highWaterMarkBytes: 8 * 1024 * 1024,
  pingIntervalMs: 5_000,
  idleTimeoutMs: 15_000,
  handshakeTimeoutMs: 5_000,
  maxUnauthenticatedSockets: 64,
  backoff: { initialMs: 50, maxMs: 2_000 },
};

/** How often a link is pinged and how long it may stay silent before it is closed, in ms. */
export interface MeshTimings {
  pingIntervalMs: number;
  idleTimeoutMs: number;
}

/**
 * The liveness timings a mesh built with `options` runs with: the defaults (a 5 s ping, an idle
 * timeout of 15 s or three pings, whichever is longer) filled in and checked. Runtimes size their
 * own socket timeouts from it (adapters/deno/mesh.ts).
 */
export function meshTimings(options: { pingIntervalMs?: number; idleTimeoutMs?: number }): MeshTimings {
  const pingIntervalMs = positive("pingIntervalMs", options.pingIntervalMs ?? DEFAULTS.pingIntervalMs);
  const idleTimeoutMs = positive("idleTimeoutMs", options.idleTimeoutMs ?? Math.max(DEFAULTS.idleTimeoutMs, 3 * pingIntervalMs));
  if (idleTimeoutMs < 2 * pingIntervalMs) {
    throw new RangeError(`WebSocketMesh: idleTimeoutMs (${idleTimeoutMs}) must be at least twice pingIntervalMs (${pingIntervalMs})`);
  }
  return { pingIntervalMs, idleTimeoutMs };
}

/**
 * A peer that refused this node as removed from its configuration is redialed after this many
 * times the longest backoff (20 s by default) instead of the backoff: it lists this node again
 * only if the cluster adds it back, which a slow retry still notices.
 */
const REMOVED_REDIAL_FACTOR = 10;

/** WebSocket close code 1013: the server is overloaded, the client may retry later. */
const TRY_AGAIN_LATER = 1013;

/** How long `close()` waits for sockets to finish their closing handshake, in ms. */
const CLOSE_WAIT_MS = 2_000;

const consoleLogger: MeshLogger = (level, message, fields) => {
  if (level === "error") console.error(`meshraft mesh: ${logText(message)}`, fields);
  else if (level === "warn") console.warn(`meshraft mesh: ${logText(message)}`, fields);
};

const mathRandom: Random = { next: () => Math.random() };

/** `http://h:1/x/` -> `ws://h:1/x/raft`; ws(s) URLs are taken as the base too. */
export function peerSocketUrl(url: string): string {
  const match = /^(https?|wss?):\/\/(.+?)\/*$/i.exec(url);
  if (match === null) throw new RangeError(`peer URL ${JSON.stringify(url)} must start with http://, https://, ws:// or wss://`);
  const scheme = match[1].toLowerCase();
  const secure = scheme === "https" || scheme === "wss";
  return `${secure ? "wss" : "ws"}://${match[2]}/raft`;
}

export class WebSocketMesh implements Transport {
  readonly id: NodeId;
  readonly clusterId: string;
  /** The ping interval and idle timeout this mesh runs with (see `meshTimings`). */
  readonly timings: MeshTimings;

  readonly #WebSocket: WebSocketConstructor;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #log: MeshLogger;
  readonly #highWaterMarkBytes: number;
  readonly #backoff: BackoffOptions;
  readonly #host: ConnectionHost;
  readonly #links = new Map<NodeId, Link>();
  /** Ids `setPeers` removed; their HELLOs are refused until a list names them again. */
  readonly #removed = new Set<NodeId>();
  /**
   * Peers a REMOVED refusal was logged about at warn, either way (this node refused them, or they
   * refused this node); the same refusal at every redial is logged at debug until a link opens.
   */
  readonly #removedLogged = new Set<NodeId>();
  /** The TLS refusal last logged at warn per peer; the same one again is logged at debug until a link opens. */
  readonly #tlsLogged = new Map<NodeId, string>();
  /** Peers cut off by `refusePeer` (the local demo's "cut link"): no link, no dial, HELLO refused. */
  readonly #refused = new Set<NodeId>();
  readonly #acceptUnknownPeers: boolean;
  readonly #maxUnauthenticatedSockets: number;
  /** Every connection not yet closed, identified or not. */
  readonly #connections = new Set<Connection>();
  readonly #inbound = new WeakMap<object, Connection>();
  readonly #unidentified: LinkCounters = emptyCounters();
  readonly #waiters = new Set<() => void>();
  #handler: ((message: Message) => void) | null = null;
  #started = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #droppedUnknownPeer = 0;
  #droppedNoHandler = 0;
  #handlerErrors = 0;
  #peersAdded = 0;
  #peersRemoved = 0;

  /** @throws RangeError for invalid options (a configuration error). */
  constructor(options: WebSocketMeshOptions) {
    const idProblem = nodeIdProblem(options.id);
    if (idProblem !== null) throw new RangeError(`WebSocketMesh: id: ${idProblem}`);
    if (typeof options.clusterId !== "string" || options.clusterId === "") {
      throw new RangeError("WebSocketMesh: clusterId must be a non-empty string");
    }
    if (typeof options.WebSocket !== "function") {
      throw new RangeError("WebSocketMesh: WebSocket must be a WebSocket constructor (ws's on Node, the global one elsewhere)");
    }
    if (options.secret !== undefined && options.secret === "") {
      throw new RangeError("WebSocketMesh: secret must not be empty (leave it out to run unauthenticated)");
    }
    this.id = options.id;
    this.clusterId = options.clusterId;
    this.#WebSocket = options.WebSocket;
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? mathRandom;
    this.#log = options.logger ?? consoleLogger;
    this.#highWaterMarkBytes = positive("highWaterMarkBytes", options.highWaterMarkBytes ?? DEFAULTS.highWaterMarkBytes);
    this.timings = meshTimings(options);
    const { pingIntervalMs, idleTimeoutMs } = this.timings;
    this.#backoff = {
      initialMs: positive("backoff.initialMs", options.backoff?.initialMs ?? DEFAULTS.backoff.initialMs),
      maxMs: positive("backoff.maxMs", options.backoff?.maxMs ?? DEFAULTS.backoff.maxMs),
    };

    this.#acceptUnknownPeers = options.acceptUnknownPeers ?? false;
    this.#maxUnauthenticatedSockets = positive(
      "maxUnauthenticatedSockets",
      options.maxUnauthenticatedSockets ?? DEFAULTS.maxUnauthenticatedSockets,
    );
    for (const [id, url] of this.#peerList(options.peers)) this.#links.set(id, this.#newLink(id, url));

    let key: Promise<CryptoKey> | null = null;
    if (options.secret !== undefined) {
      key = importSecret(options.secret);
      key.catch(() => {}); // a failure surfaces in each handshake that awaits it
    } else {
      this.#log(
        "warn",
        "no cluster secret configured: the mesh is unauthenticated, so any host that can reach /raft can join as a member; " +
          "set a secret (and use wss:// across untrusted networks)",
        { id: this.id },
      );
    }

    const mesh = this;
    this.#host = {
      id: this.id,
      clusterId: this.clusterId,
      clock: this.#clock,
      codec: new Codec(options.codecLimits),
      key,
      handshakeTimeoutMs: positive("handshakeTimeoutMs", options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs),
      pingIntervalMs,
      idleTimeoutMs,
      log: (level, message, fields) => mesh.#linkLog(level, message, fields),
      url: options.url ?? null,
      urlOf: (id) => mesh.#links.get(id)?.url ?? null,
      socketControl: options.socketControl ?? null,
      countersOf: (id) => mesh.#links.get(id)?.counters ?? mesh.#unidentified,
      admit: (from) => mesh.#admit(from),
      opened: (conn) => mesh.#opened(conn),
      deliver: (_conn, message) => mesh.#deliver(message),
      closed: (conn) => mesh.#connectionClosed(conn),
    };
  }

  // --- Transport ---------------------------------------------------------------------------

  /** Deliver inbound messages to `handler` and dial the peers this node dials. */
  start(handler: (message: Message) => void): void {
    if (this.#closed) return;
    this.#handler = handler;
    if (this.#started) return;
    this.#started = true;
    for (const link of this.#links.values()) if (link.dialer) this.#dial(link);
  }

  /** Encode and send now, or drop (and count why). Never throws, never waits, never queues. */
  send(message: Message): void {
    const link = this.#links.get(message.to);
    if (link === undefined) {
      this.#droppedUnknownPeer++;
      return;
    }
    const conn = link.current;
    if (conn === null || this.#closed) {
      link.droppedDisconnected++;
      return;
    }
    const buffered = conn.bufferedAmount();
    if (buffered >= this.#highWaterMarkBytes) {
      link.droppedBackpressure++; // without paying for the encoding
      return;
    }
    let frame: Uint8Array<ArrayBuffer>;
    try {
      frame = this.#host.codec.encode(message) as Uint8Array<ArrayBuffer>;
    } catch (error) {
      link.droppedUnencodable++;
      this.#log("error", `cannot send a ${message.type} to ${link.id}: ${errorText(error)}`, { peer: link.id, type: message.type });
      return;
    }
    // An empty buffer always takes one frame, so a message larger than the mark still goes out.
    if (buffered > 0 && buffered + frame.byteLength > this.#highWaterMarkBytes) {
      link.droppedBackpressure++;
      return;
    }
    if (conn.sendFrame(frame)) link.counters.messagesOut++;
    else link.droppedDisconnected++;
  }

  /** Close every link and stop redialing. Resolves once the sockets closed (or after 2 s). */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#handler = null;
    for (const link of this.#links.values()) {
      link.cancelRedial?.();
      link.cancelRedial = null;
    }
    const pending = [...this.#connections];
    for (const conn of pending) conn.close(CloseCode.SHUTDOWN, `node ${this.id} is shutting down`);
    this.#notify();
    this.#closing = new Promise((resolve) => {
      const cancel = this.#clock.setTimer(CLOSE_WAIT_MS, resolve);
      void Promise.all(pending.map((conn) => conn.socketDone)).then(() => {
        cancel();
        resolve();
      });
    });
    return this.#closing;
  }

  // --- Membership -------------------------------------------------------------------------------

  /**
   * Replaces the peer list. Links to peers that stay are kept; when a peer's URL changed and this
   * node dials it, the old socket closes and the new URL is dialed at once. New peers are dialed or
   * awaited by the dial rule.
   *
   * Removal is predictable rather than clever: only ids that an earlier list (constructor or
   * `setPeers`) named and this one omits are removed. Their sockets close with REMOVED and their
   * dials are refused with REMOVED until a list names them again. A peer accepted from an unknown
   * id (`acceptUnknownPeers`) that no list named keeps its link until that link closes, whatever
   * this list says: a joining member may dial before this node's list includes it.
   * @throws RangeError for an invalid list; nothing changes then.
   */
  setPeers(peers: PeerAddress[]): void {
    const next = this.#peerList(peers);
    if (this.#closed) return;
    let changed = false;
    for (const link of [...this.#links.values()]) {
      if (link.url !== null && !next.has(link.id)) {
        this.#remove(link);
        changed = true;
      }
    }
    for (const [id, url] of next) {
      this.#removed.delete(id);
      const link = this.#links.get(id);
      if (link === undefined) {
        const added = this.#newLink(id, url);
        this.#links.set(id, added);
        this.#peersAdded++;
        this.#log("info", `peer ${id} added (${url})`, { peer: id, url });
        if (this.#started && added.dialer) this.#dial(added);
        changed = true;
      } else if (link.url !== url) {
        this.#moveLink(link, url);
        changed = true;
      }
    }
    if (changed) this.#notify();
  }

  /**
   * Cuts (`refused` true) or heals the link with `peer`, as a network partition would: its
   * sockets close, this node stops dialing it and refuses its HELLO, so messages either way are
   * dropped (counted as `droppedDisconnected`). For the local demo's controls and for tests; a
   * healed link is dialed again at once. The peer's stats show the link "down" meanwhile.
   */
  refusePeer(peer: NodeId, refused: boolean): void {
    if (this.#closed) return;
    const link = this.#links.get(peer);
    if (!refused) {
      if (!this.#refused.delete(peer)) return;
      this.#log("info", `link with ${peer} healed`, { peer });
      if (link && link.dialer && this.#started) {
        link.cancelRedial?.();
        link.cancelRedial = null;
        link.attempt = 0;
        this.#dial(link);
      }
      return;
    }
    if (this.#refused.has(peer)) return;
    this.#refused.add(peer);
    this.#log("info", `link with ${peer} cut on request`, { peer });
    if (link) {
      link.cancelRedial?.();
      link.cancelRedial = null;
    }
    for (const conn of [...this.#connections]) if (conn.peerId === peer) conn.close(TRY_AGAIN_LATER, `${this.id} cut its link with ${peer}`);
  }

  // --- Inbound sockets ----------------------------------------------------------------------

  /**
   * Event handlers for hono's `upgradeWebSocket` on any runtime:
   * `app.get("/raft", upgradeWebSocket(() => mesh.inboundHandlers()))`.
   */
  inboundHandlers(): MeshInboundHandlers {
    const connectionOf = (ws: InboundSocket): Connection | undefined => this.#inbound.get(ws);
    return {
      onOpen: (_event, ws) => {
        // Messages arrive as ArrayBuffer, not Blob, where the runtime lets us choose.
        const raw = ws.raw as { binaryType?: unknown } | null | undefined;
        if (raw && typeof raw.binaryType === "string" && raw.binaryType === "blob") raw.binaryType = "arraybuffer";
        this.#accept(ws, wireOfInbound(ws));
      },
      onMessage: (event, ws) => connectionOf(ws)?.receive(event.data),
      onClose: (event, ws) => connectionOf(ws)?.socketClosed(event.code, event.reason),
      onError: (event, ws) => connectionOf(ws)?.socketError(event),
    };
  }

  /** Accept a raw WHATWG server-side socket (e.g. from Deno's `upgradeWebSocket`). */
  acceptSocket(socket: WebSocketLike): void {
    socket.binaryType = "arraybuffer";
    const conn = this.#accept(socket, wireOfSocket(socket));
    if (conn === null) return;
    socket.addEventListener("message", (event) => conn.receive(event.data));
    socket.addEventListener("close", (event) => conn.socketClosed(event.code, event.reason));
    socket.addEventListener("error", (event) => conn.socketError(event));
  }

  // --- Observation ----------------------------------------------------------------------------

  stats(): MeshStats {
    const peers: Record<NodeId, PeerLinkStats> = {};
    for (const link of this.#links.values()) {
      peers[link.id] = {
        ...link.counters,
        url: link.url,
        state: this.#stateOf(link),
        role: link.dialer ? "dials" : "accepts",
        opened: link.opened,
        reconnects: Math.max(0, link.opened - 1),
        dials: link.dials,
        droppedDisconnected: link.droppedDisconnected,
        droppedBackpressure: link.droppedBackpressure,
        droppedUnencodable: link.droppedUnencodable,
        rttMs: link.current?.rttMs ?? null,
        lastCloseReason: link.lastCloseReason,
      };
    }
    return {
      id: this.id,
      peers,
      unidentified: { ...this.#unidentified },
      peersAdded: this.#peersAdded,
      peersRemoved: this.#peersRemoved,
      removed: [...this.#removed].sort(),
      droppedUnknownPeer: this.#droppedUnknownPeer,
      droppedNoHandler: this.#droppedNoHandler,
      handlerErrors: this.#handlerErrors,
    };
  }

  linkStats(): Record<NodeId, PeerLinkStats> {
    return this.stats().peers;
  }

  /** Whether a link to `peer` is open right now. */
  isConnected(peer: NodeId): boolean {
    return this.#links.get(peer)?.current != null;
  }

  /**
   * Resolves once links to all `peers` (default: every peer) are open; rejects after `timeoutMs`
   * (default 10000) naming the peers still missing, or when the mesh closes.
   */
  waitUntilConnected(options: { peers?: NodeId[]; timeoutMs?: number } = {}): Promise<void> {
    const peers = options.peers ?? [...this.#links.keys()];
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const missing = (): NodeId[] => peers.filter((p) => !this.isConnected(p));
      let cancelTimer: () => void = () => {};
      const check = (): void => {
        if (this.#closed) done(new Error(`mesh ${this.id} closed while waiting for links to ${missing().join(", ")}`));
        else if (missing().length === 0) done(null);
      };
      const done = (error: Error | null): void => {
        this.#waiters.delete(check);
        cancelTimer();
        if (error) reject(error);
        else resolve();
      };
      this.#waiters.add(check);
      cancelTimer = this.#clock.setTimer(timeoutMs, () =>
        done(new Error(`mesh ${this.id}: no link to ${missing().join(", ")} after ${timeoutMs} ms`)),
      );
      check();
    });
  }

  // --- Internals ------------------------------------------------------------------------------

  #stateOf(link: Link): LinkState {
    if (link.current) return "open";
    if (this.#closed) return "closed";
    if (link.dialing) return "connecting";
    for (const conn of this.#connections) if (conn.peerId === link.id) return "connecting";
    return "down";
  }

  #dial(link: Link): void {
    link.cancelRedial = null;
    if (this.#closed || link.current || link.dialing || link.socketUrl === null || this.#refused.has(link.id)) return;
    link.dials++;
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(link.socketUrl);
      socket.binaryType = "arraybuffer";
    } catch (error) {
      link.lastCloseReason = `cannot open a socket to ${link.socketUrl}: ${errorText(error)}`;
      this.#log("error", link.lastCloseReason, { peer: link.id, url: link.socketUrl });
      this.#scheduleRedial(link);
      return;
    }
    const conn = new Connection(this.#host, wireOfSocket(socket), true, link.id, link.counters);
    link.dialing = conn;
    this.#connections.add(conn);
    socket.addEventListener("open", () => conn.socketOpened());
    socket.addEventListener("message", (event) => conn.receive(event.data));
    socket.addEventListener("close", (event) => conn.socketClosed(event.code, event.reason));
    socket.addEventListener("error", (event) => conn.socketError(event));
  }

  #scheduleRedial(link: Link): void {
    if (this.#closed || !link.dialer || link.current || link.dialing || link.cancelRedial) return;
    const delay = link.refusedAsRemoved ? REMOVED_REDIAL_FACTOR * this.#backoff.maxMs : backoffDelay(link.attempt++, this.#backoff, this.#random);
    link.cancelRedial = this.#clock.setTimer(delay, () => this.#dial(link));
  }

  #accept(socket: object, wire: Wire): Connection | null {
    let unauthenticated = 0;
    for (const conn of this.#connections) if (!conn.dialer && conn.state === "handshake") unauthenticated++;
    if (this.#closed || unauthenticated >= this.#maxUnauthenticatedSockets) {
      if (!this.#closed) {
        this.#unidentified.refused++;
        // debug: under a flood, one line per refused socket would be the next flood.
        this.#log("debug", `refused an inbound socket: ${unauthenticated} are still in their handshake (maxUnauthenticatedSockets)`, {});
      }
      try {
        // An unidentified socket learns nothing. 1013: try again later.
        wire.close(this.#closed ? CloseCode.SHUTDOWN : TRY_AGAIN_LATER, HANDSHAKE_CLOSE_REASON);
      } catch {
        // closing anyway
      }
      const control = this.#host.socketControl;
      if (control !== null) this.#clock.setTimer(CLOSE_TIMEOUT_MS, () => control.terminate(wire.socket));
      return null;
    }
    const conn = new Connection(this.#host, wire, false, null, this.#unidentified);
    this.#inbound.set(socket, conn);
    this.#connections.add(conn);
    return conn;
  }

  #admit(from: NodeId): void {
    if (this.#refused.has(from)) throw new HandshakeError(TRY_AGAIN_LATER, `${this.id} has cut its link with ${from}`);
    if (this.#removed.has(from)) {
      throw new HandshakeError(CloseCode.REMOVED, `${from} was removed from the peers of ${this.id}`);
    }
    const link = this.#links.get(from);
    if (link === undefined) {
      if (this.#acceptUnknownPeers) return; // becomes a peer in #opened, once it passed the handshake
      throw new HandshakeError(
        CloseCode.UNKNOWN_NODE,
        `unknown node id "${from}": not a peer of ${this.id} (peers: ${[...this.#links.keys()].join(", ") || "none"})`,
      );
    }
    if (link.dialer) {
      throw new HandshakeError(
        CloseCode.WRONG_DIALER,
        `${from} dialed ${this.id}, but the node whose id sorts first dials: ${this.id} dials ${from}`,
      );
    }
  }

  #opened(conn: Connection): void {
    if (this.#closed) {
      conn.close(CloseCode.SHUTDOWN, `node ${this.id} is shutting down`);
      return;
    }
    const id = conn.peerId!;
    let link = this.#links.get(id);
    if (link === undefined) {
      // Admitted as an unknown id that no list named since. (A removed id never gets here: #remove closed its sockets.)
      link = this.#newLink(id, null);
      this.#links.set(id, link);
      this.#peersAdded++;
      this.#log("info", `accepted ${id}, which is not in this node's peer list, as a peer without a URL`, { peer: id });
    }
    conn.counters = link.counters; // an unknown id's handshake counted as unidentified
    const old = link.current;
    link.current = conn;
    if (link.dialing === conn) link.dialing = null;
    link.attempt = 0;
    link.opened++;
    if (old !== null && old !== conn) old.close(CloseCode.REPLACED, `replaced by a newer link from ${link.id}`);
    this.#log("info", `link with ${link.id} open (${link.dialer ? "dialed" : "accepted"})`, { peer: link.id, opened: link.opened });
    this.#checkUrls(link, conn);
    this.#removedLogged.delete(id);
    this.#tlsLogged.delete(id);
    this.#notify();
  }

  /** A connection's log line; a REMOVED refusal repeated at every redial is logged at debug. */
  #linkLog(level: MeshLogLevel, message: string, fields: Record<string, unknown>): void {
    const peer = fields.peer;
    if (level === "warn" && fields.code === CloseCode.REMOVED && typeof peer === "string") {
      if (this.#removedLogged.has(peer)) level = "debug";
      else this.#removedLogged.add(peer);
    }
    if (level === "warn" && fields.tls === true && typeof peer === "string") {
      // The reason without the close code, which may differ between attempts.
      const reason = message.replace(/\(\d+: /, "(");
      if (this.#tlsLogged.get(peer) === reason) level = "debug";
      else this.#tlsLogged.set(peer, reason);
    }
    this.#log(level, message, fields);
  }

  /**
   * After a handshake: each side compares the URL the peer announces for itself with the one its
   * list has, and the URL the peer has for it with its own. Either mismatch is a configuration
   * mistake (a mistyped --peer) that would send clients to a wrong address; both sides warn, once
   * per link that opens with it, and `announcedUrl` lets redirects use the peer's own URL.
   */
  #checkUrls(link: Link, conn: Connection): void {
    const announced = conn.peerAnnouncedUrl;
    if (announced !== null && link.url !== null && announced !== link.url) {
      this.#log("warn", `peer ${link.id} announces its URL as ${announced} but this node has it at ${link.url} (--peer or membership); clients are sent to ${announced}. Fix the configuration`, {
        peer: link.id,
        announced,
        configured: link.url,
      });
    }
    const mine = this.#host.url;
    const seen = conn.urlSeenByPeer;
    if (mine !== null && seen !== null && seen !== mine) {
      this.#log("warn", `peer ${link.id} has this node at ${seen} but this node announces ${mine}; fix ${link.id}'s --peer ${this.id}=... (its clients are sent to ${mine})`, {
        peer: link.id,
        announced: mine,
        configured: seen,
      });
    }
    link.announcedUrl = announced;
  }

  /**
   * The URL peer `id` announced for itself on its last authenticated link (null: no link yet, or
   * it announced none). Prefer it to a listed URL for redirecting clients: a member knows its
   * own address better than a --peer typed on another machine.
   */
  announcedUrl(id: NodeId): string | null {
    return this.#links.get(id)?.announcedUrl ?? null;
  }

  /** Whether a link with `id` completed its handshake since this mesh started. */
  linked(id: NodeId): boolean {
    return (this.#links.get(id)?.opened ?? 0) > 0;
  }

  #connectionClosed(conn: Connection): void {
    this.#connections.delete(conn);
    const link = conn.peerId === null ? undefined : this.#links.get(conn.peerId);
    if (link === undefined) return;
    if (link.dialing === conn) link.dialing = null;
    if (link.current === conn || conn.dialer) link.lastCloseReason = conn.closeReason;
    // A dial the peer refused in its handshake because it removed this node (not an open link it closed).
    link.refusedAsRemoved = conn.dialer && link.current !== conn && (conn.closeReason?.startsWith(`${closeCodeName(CloseCode.REMOVED)}:`) ?? false);
    if (link.current === conn) {
      link.current = null;
      if (link.url === null) this.#forget(link);
      this.#notify();
    }
    if (conn.dialer) this.#scheduleRedial(link);
  }

  /** Validated `peers` without this node: id -> URL. @throws RangeError */
  #peerList(peers: PeerAddress[]): Map<NodeId, string> {
    const list = new Map<NodeId, string>();
    for (const peer of peers) {
      if (peer.id === this.id) continue;
      const idProblem = nodeIdProblem(peer.id);
      if (idProblem !== null) throw new RangeError(`WebSocketMesh: peer: ${idProblem}`);
      if (list.has(peer.id)) throw new RangeError(`WebSocketMesh: peer ${peer.id} is listed twice`);
      peerSocketUrl(peer.url); // throws for a URL the mesh cannot dial
      const problem = memberUrlProblem(peer.url);
      if (problem) throw new RangeError(`WebSocketMesh: peer ${peer.id}: ${problem.message}`);
      list.set(peer.id, peer.url);
    }
    return list;
  }

  #newLink(id: NodeId, url: string | null): Link {
    return {
      id,
      url,
      socketUrl: url === null ? null : peerSocketUrl(url),
      dialer: url !== null && this.id < id,
      current: null,
      dialing: null,
      attempt: 0,
      cancelRedial: null,
      counters: emptyCounters(),
      opened: 0,
      dials: 0,
      droppedDisconnected: 0,
      droppedBackpressure: 0,
      droppedUnencodable: 0,
      lastCloseReason: null,
      announcedUrl: null,
      refusedAsRemoved: false,
    };
  }

  /** A listed peer's URL changed (or an unlisted peer got one). */
  #moveLink(link: Link, url: string): void {
    link.url = url;
    link.socketUrl = peerSocketUrl(url);
    link.dialer = this.id < link.id;
    this.#log("info", `peer ${link.id} is now at ${url}`, { peer: link.id, url });
    if (!link.dialer) return; // the peer dials this node; the URL is only an address to report
    // Sockets to the old address (or an inbound one this node should have dialed) give way to a dial.
    const reason = `${link.id} moved to ${url}; ${this.id} dials it there`;
    for (const conn of [link.current, link.dialing]) conn?.close(CloseCode.REPLACED, reason);
    link.cancelRedial?.(); // the closes above scheduled one
    link.cancelRedial = null;
    link.attempt = 0;
    if (this.#started) this.#dial(link);
  }

  /** `setPeers` dropped a listed peer: close its sockets, refuse its dials. */
  #remove(link: Link): void {
    // Out of #links first, so the closes below schedule no redial.
    this.#forget(link);
    this.#removed.add(link.id);
    this.#log("info", `peer ${link.id} removed`, { peer: link.id });
    const reason = `${link.id} was removed from the peers of ${this.id}`;
    for (const conn of [...this.#connections]) if (conn.peerId === link.id) conn.close(CloseCode.REMOVED, reason);
  }

  #forget(link: Link): void {
    link.cancelRedial?.();
    link.cancelRedial = null;
    this.#links.delete(link.id);
    this.#peersRemoved++;
  }

  #deliver(message: Message): void {
    const handler = this.#handler;
    if (handler === null) {
      this.#droppedNoHandler++;
      return;
    }
    try {
      handler(message);
    } catch (error) {
      this.#handlerErrors++;
      this.#log("error", `the message handler threw on a ${message.type} from ${message.from}: ${errorText(error)}`, {
        peer: message.from,
        error,
      });
    }
  }

  #notify(): void {
    for (const check of [...this.#waiters]) check();
  }
}

function positive(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw new RangeError(`WebSocketMesh: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
