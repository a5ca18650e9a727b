/**
 * One WebSocket of the mesh, from open to close: the handshake (./handshake.ts), then Raft frames
 * and liveness pings. It knows nothing about other links; the mesh (./mesh.ts) decides which
 * connections to dial, keep and replace.
 *
 * Invariants: a connection delivers Raft messages only in state "ready", which it reaches only
 * after the whole handshake passed; once "closed" it never sends, delivers or calls its host
 * again (exactly one `host.closed` per connection); no handler of it ever throws.
 */
import type { Clock } from "../clock.ts";
import type { Message, NodeId } from "../core/types.ts";
import { type Codec, CodecError, WIRE_VERSION } from "./codec.ts";
import {
  CloseCode,
  closeCodeName,
  encodeControl,
  FRAME_HELLO,
  FRAME_PING,
  FRAME_PONG,
  FRAME_PROOF,
  FRAME_READY,
  FRAME_WELCOME,
  frameName,
  HandshakeError,
  type Hello,
  MAX_CONTROL_FRAME_BYTES,
  MESH_PROTOCOL_VERSION,
  newNonce,
  parseHello,
  parseProof,
  proofInput,
  signProof,
  verifyProof,
  type Welcome,
} from "./handshake.ts";

/**
 * The slice of the WHATWG WebSocket the mesh uses. Deno's and browsers' global `WebSocket` and
 * Node's `ws` package all fit it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: (event: unknown) => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}

/** A WHATWG-compatible WebSocket constructor (the mesh only ever passes a URL). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/**
 * A server-side socket as hono's `upgradeWebSocket` hands it to event handlers (its `WSContext`,
 * on every runtime). `raw` is the runtime's socket; its `bufferedAmount` is read when present.
 */
export interface InboundSocket {
  readonly readyState: number;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  raw?: unknown;
}

export type MeshLogLevel = "debug" | "info" | "warn" | "error";
/** Receives every log line of the mesh; `fields` holds the facts (peer, code, reason, ...). */
export type MeshLogger = (level: MeshLogLevel, message: string, fields: Record<string, unknown>) => void;

/** Counters of one peer (or of not yet identified inbound sockets). */
export interface LinkCounters {
  /** Frames of every kind, handshake and pings included. */
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Raft messages delivered to / sent from this node. */
  messagesIn: number;
  messagesOut: number;
  /** Links closed for a malformed or oversized frame, whichever side sent it. */
  malformed: number;
  /** Handshakes that failed, refused by this node or by the peer. */
  refused: number;
  idleTimeouts: number;
}

export function emptyCounters(): LinkCounters {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    malformed: 0,
    refused: 0,
    idleTimeouts: 0,
  };
}

/** The two socket surfaces a connection runs on, reduced to what it needs. */
export interface Wire {
  /** The runtime's own socket object, for `SocketControl`. */
  readonly socket: unknown;
  /** May throw if the socket is closing; callers catch. */
  send(frame: Uint8Array<ArrayBuffer>): void;
  close(code: number, reason: string): void;
  bufferedAmount(): number;
  isOpen(): boolean;
}

const OPEN = 1;
/** WebSocket close code 1009: a message exceeded the socket's own size limit (ws's maxPayload). */
const MESSAGE_TOO_BIG = 1009;

export function wireOfSocket(socket: WebSocketLike): Wire {
  return {
    socket,
    send: (frame) => socket.send(frame),
    close: (code, reason) => socket.close(code, reason),
    bufferedAmount: () => socket.bufferedAmount,
    isOpen: () => socket.readyState === OPEN,
  };
}

export function wireOfInbound(socket: InboundSocket): Wire {
  const raw = socket.raw as { bufferedAmount?: unknown } | null | undefined;
  return {
    socket: socket.raw,
    send: (frame) => socket.send(frame),
    close: (code, reason) => socket.close(code, reason),
    // Without a readable bufferedAmount (a runtime that hides it), backpressure cannot be seen.
    bufferedAmount: () => (typeof raw?.bufferedAmount === "number" ? raw.bufferedAmount : 0),
    isOpen: () => socket.readyState === OPEN,
  };
}

/**
 * What only some runtimes' sockets can do, supplied by their adapter (adapters/node/mesh.ts for
 * `ws`). Without it a runtime keeps its own limits: Deno caps messages at 64 MiB and waits for
 * the peer's close frame on its own schedule.
 */
export interface SocketControl {
  /**
   * Until `liftHandshakeCap`, refuse (close with 1009) messages over `bytes` before buffering
   * them. Called again on the same socket it keeps the first call's idea of the socket's own limit.
   */
  capForHandshake(socket: unknown, bytes: number): void;
  /** Back to the socket's own message size limit. */
  liftHandshakeCap(socket: unknown): void;
  /** Drop the connection now, without waiting for the peer's close frame. */
  terminate(socket: unknown): void;
}

/**
 * After this node closed a link, the peer has this long to answer the close frame before the
 * socket is dropped: a peer that ignores it would otherwise hold the file descriptor for as long
 * as the runtime waits (30 s in `ws`).
 */
export const CLOSE_TIMEOUT_MS = 2_000;

/** What a connection needs from its mesh. */
export interface ConnectionHost {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly clock: Clock;
  readonly codec: Codec;
  /** The HMAC key of the cluster secret; null without a secret. */
  readonly key: Promise<CryptoKey> | null;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly log: MeshLogger;
  /** The URL this node announces for itself in its HELLO / WELCOME; null for none. */
  readonly url: string | null;
  /** The URL this node has for peer `id` (its list), sent so the peer can check it; null for none. */
  urlOf(id: NodeId): string | null;
  readonly socketControl: SocketControl | null;
  /** The counters of peer `id`, or the mesh's "unidentified" ones when `id` is not a peer. */
  countersOf(id: NodeId): LinkCounters;
  /**
   * Acceptor, on HELLO. An id that is not a peer yet may be admitted (a member that joined
   * before this node learned of it); it becomes a peer only once its handshake completes.
   * @throws HandshakeError when `from` may not dial this node.
   */
  admit(from: NodeId): void;
  /** The handshake completed; the connection is "ready". The host may swap `counters` here. */
  opened(conn: Connection): void;
  deliver(conn: Connection, message: Message): void;
  /** The connection closed, from either side; called exactly once. */
  closed(conn: Connection): void;
}

export type ConnectionState = "handshake" | "ready" | "closed";

/** Frames a peer may send while this node still works on its previous one (it should send none). */
const MAX_HELD_HANDSHAKE_FRAMES = 2;
/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
const MAX_CLOSE_REASON_BYTES = 123;
/**
 * The close reason sent for every link closed before its handshake completed. The peer has proven
 * nothing yet (it may be any host that reached /raft), so the reason on the wire names no cluster
 * id, node id or peer; the close code still says which check failed, and both sides log the details
 * locally.
 */
export const HANDSHAKE_CLOSE_REASON = "handshake refused; the node that closed the link logged why";

const PING = encodeControl(FRAME_PING);
const PONG = encodeControl(FRAME_PONG);
const READY = encodeControl(FRAME_READY);

export class Connection {
  readonly dialer: boolean;
  state: ConnectionState = "handshake";
  /** The peer: known from the start when dialing, from its HELLO when accepting. */
  peerId: NodeId | null;
  /**
   * Counters of the peer. An acceptor counts into the mesh's "unidentified" ones until a HELLO
   * names a peer, or, for an id that is not a peer yet, until its handshake completes.
   */
  counters: LinkCounters;
  /** From the peer's HELLO / WELCOME: the URL it announces for itself (null: none sent). */
  peerAnnouncedUrl: string | null = null;
  /** From the peer's HELLO / WELCOME: the URL it has for this node (null: none sent). */
  urlSeenByPeer: string | null = null;
  /** Round trip of the last answered ping, in ms. */
  rttMs: number | null = null;
  /** Why it closed (for stats), once closed. */
  closeReason: string | null = null;
  /** Settles when the socket itself reports closed (its closing handshake is over). */
  readonly socketDone: Promise<void>;

  readonly #host: ConnectionHost;
  readonly #wire: Wire;
  readonly #nonce: string = newNonce();
  #peerNonce = "";
  #expect: number;
  #socketOpen: boolean;
  /** A handshake step is in progress; frames wait in `#held`, in arrival order. */
  #busy = false;
  #held: Uint8Array[] = [];
  #lastReceived: number;
  #pingSentAt = 0;
  #cancelTimer: (() => void) | null;
  #resolveSocketDone: () => void = () => {};
  /** The socket reported its close event. */
  #socketEnded = false;

  constructor(host: ConnectionHost, wire: Wire, dialer: boolean, peerId: NodeId | null, counters: LinkCounters) {
    this.#host = host;
    this.#wire = wire;
    this.dialer = dialer;
    this.peerId = peerId;
    this.counters = counters;
    this.#expect = dialer ? FRAME_WELCOME : FRAME_HELLO;
    this.#socketOpen = !dialer;
    this.#lastReceived = host.clock.now();
    this.socketDone = new Promise((resolve) => (this.#resolveSocketDone = resolve));
    // Until the peer proved itself, a message larger than any handshake frame is refused by the
    // socket before it is buffered (an unauthenticated prober cannot make this node hold 64 MiB).
    host.socketControl?.capForHandshake(wire.socket, MAX_CONTROL_FRAME_BYTES);
    this.#cancelTimer = host.clock.setTimer(host.handshakeTimeoutMs, () => {
      this.#cancelTimer = null;
      const waiting = this.#socketOpen ? `waiting for ${frameName(this.#expect)}` : "the socket did not open";
      this.#refuse(CloseCode.HANDSHAKE_TIMEOUT, `handshake not completed within ${host.handshakeTimeoutMs} ms (${waiting})`);
    });
  }

  /** Dialer: the socket is open; say HELLO. */
  socketOpened(): void {
    if (this.state !== "handshake" || this.#socketOpen) return;
    this.#socketOpen = true;
    // A dialed socket has its reader only now (the constructor's cap found none to cap).
    this.#host.socketControl?.capForHandshake(this.#wire.socket, MAX_CONTROL_FRAME_BYTES);
    const hello: Hello = {
      protocol: MESH_PROTOCOL_VERSION,
      cluster: this.#host.clusterId,
      from: this.#host.id,
      to: this.peerId!,
      nonce: this.#nonce,
      auth: this.#host.key !== null,
      ...this.#urls(this.peerId!),
    };
    this.#sendControl(encodeControl(FRAME_HELLO, hello));
  }

  /** One inbound WebSocket message, whatever it holds. Never throws. */
  receive(data: unknown): void {
    if (this.state === "closed") return;
    const bytes = asBytes(data);
    if (bytes === null) {
      const what = typeof data === "string" ? "a text frame" : "a frame that is not binary data";
      this.#violation(CloseCode.MALFORMED_FRAME, `received ${what}; mesh frames are binary`);
      return;
    }
    this.counters.framesIn++;
    this.counters.bytesIn += bytes.byteLength;
    this.#lastReceived = this.#host.clock.now();
    this.#handle(bytes);
  }

  #handle(bytes: Uint8Array): void {
    const tag = bytes[0];
    if (this.state === "ready") {
      this.#receiveReady(tag, bytes);
      return;
    }
    if (this.state !== "handshake") return;
    if (bytes.byteLength > MAX_CONTROL_FRAME_BYTES) {
      this.#violation(
        CloseCode.FRAME_TOO_LARGE,
        `received ${bytes.byteLength} bytes (${frameName(tag)}) during the handshake; the limit is ${MAX_CONTROL_FRAME_BYTES}`,
      );
      return;
    }
    if (this.#busy) {
      // A step awaits Web Crypto. A well-behaved peer waits for our answer meanwhile.
      if (this.#held.length >= MAX_HELD_HANDSHAKE_FRAMES) {
        this.#violation(CloseCode.MALFORMED_FRAME, `received ${frameName(tag)} before this node answered the previous frame`);
      } else {
        this.#held.push(bytes);
      }
      return;
    }
    // The synchronous part of a step (parsing, checks, and all of READY) runs now, so frames that
    // arrive in the same read right behind READY already find the link ready.
    this.#busy = true;
    void this.#step(tag, bytes)
      .catch((error: unknown) => {
        if (error instanceof HandshakeError) this.#refuse(error.closeCode, error.message);
        else this.#refuse(CloseCode.MALFORMED_FRAME, `handshake failed: ${errorText(error)}`);
      })
      .finally(() => {
        this.#busy = false;
        for (const frame of this.#held.splice(0)) this.#handle(frame);
      });
  }

  /** The socket reported an error; the close event follows. Kept for the log line. */
  socketError(event: unknown): void {
    if (this.state === "closed") return;
    const e = event as { message?: unknown; error?: { message?: unknown } } | null;
    const text = e?.error?.message ?? e?.message;
    if (typeof text === "string" && text !== "") this.closeReason = text;
  }

  /** The socket closed (its close event). */
  socketClosed(code: number, reason: string): void {
    this.#socketEnded = true;
    this.#resolveSocketDone();
    if (this.state === "closed") return;
    const wasReady = this.state === "ready";
    this.#finish();
    const peer = this.peerId ?? "an unidentified peer";
    const fields = { peer, code, codeName: closeCodeName(code), reason, dialer: this.dialer };
    if (code >= 4000 && code < 5000) {
      // The peer refused or cut the link for a reason it named; log it here too.
      if (!wasReady) this.counters.refused++;
      if (code === CloseCode.MALFORMED_FRAME || code === CloseCode.FRAME_TOO_LARGE) this.counters.malformed++;
      this.closeReason = `${closeCodeName(code)}: ${reason}`;
      this.#host.log(code === CloseCode.REPLACED ? "info" : "warn", `${peer} closed the link: ${reason} (${closeCodeName(code)})`, fields);
    } else {
      // Without a reason from the peer, the socket's own error text (socketError) says the most.
      const detail = reason || this.closeReason;
      this.closeReason = detail ? `${code}: ${detail}` : String(code);
      if (wasReady) {
        if (code === MESSAGE_TOO_BIG) this.counters.malformed++; // refused by the socket layer (maxPayload)
        this.#host.log("info", `link with ${peer} closed (${this.closeReason})`, fields);
      } else {
        const what = this.dialer ? `dial to ${peer} failed` : `inbound socket from ${peer} closed during the handshake`;
        // A TLS refusal (a certificate that does not match, an untrusted CA; the socket's error
        // text, see adapters' tls.ts) is a configuration mistake, not an unreachable peer: warned
        // about (the mesh logs the same one again at debug until a link opens).
        const tls = this.dialer && /^TLS: /.test(detail ?? "");
        this.#host.log(tls ? "warn" : "debug", `${what} (${this.closeReason})`, tls ? { ...fields, tls: true } : fields);
      }
    }
    this.#host.closed(this);
  }

  /** Bytes queued in the socket, for backpressure. */
  bufferedAmount(): number {
    return this.#wire.bufferedAmount();
  }

  /** Sends one frame if the link is up. Never throws. */
  sendFrame(frame: Uint8Array<ArrayBuffer>): boolean {
    if (this.state === "closed" || !this.#wire.isOpen()) return false;
    try {
      this.#wire.send(frame);
    } catch {
      return false;
    }
    this.counters.framesOut++;
    this.counters.bytesOut += frame.byteLength;
    return true;
  }

  /** Closes from this side for a reason that is not the peer's fault (shutdown, replaced). */
  close(code: number, reason: string): void {
    this.#terminate(code, reason, "info", `closed the link with ${this.peerId ?? "an unidentified peer"}: ${reason}`);
  }

  // -------------------------------------------------------------------------------------------

  #receiveReady(tag: number | undefined, bytes: Uint8Array): void {
    const host = this.#host;
    if (tag === WIRE_VERSION) {
      let message: Message;
      try {
        message = host.codec.decode(bytes);
      } catch (error) {
        const code =
          error instanceof CodecError && error.code === "FRAME_TOO_LARGE" ? CloseCode.FRAME_TOO_LARGE : CloseCode.MALFORMED_FRAME;
        this.#violation(code, `bad Raft frame: ${errorText(error)}`);
        return;
      }
      if (message.from !== this.peerId || message.to !== host.id) {
        const claim = `from "${message.from}" to "${message.to}"`;
        this.#violation(CloseCode.MALFORMED_FRAME, `a ${message.type} ${claim} arrived on the link ${this.peerId} -> ${host.id}`);
        return;
      }
      this.counters.messagesIn++;
      host.deliver(this, message);
    } else if (tag === FRAME_PING && bytes.byteLength === 1) {
      this.sendFrame(PONG);
    } else if (tag === FRAME_PONG && bytes.byteLength === 1) {
      this.rttMs = host.clock.now() - this.#pingSentAt;
    } else {
      this.#violation(CloseCode.MALFORMED_FRAME, `received ${frameName(tag)} (${bytes.byteLength} bytes) on an open link`);
    }
  }

  async #step(tag: number | undefined, bytes: Uint8Array): Promise<void> {
    if (tag !== this.#expect) {
      throw new HandshakeError(
        CloseCode.MALFORMED_FRAME,
        `expected ${frameName(this.#expect)} during the handshake, received ${frameName(tag)}`,
      );
    }
    switch (tag) {
      case FRAME_HELLO:
        return this.#onHello(parseHello(bytes));
      case FRAME_WELCOME:
        return this.#onWelcome(parseHello(bytes, true));
      case FRAME_PROOF:
        return this.#onProof(parseProof(bytes).proof);
      case FRAME_READY:
        if (bytes.byteLength !== 1) throw new HandshakeError(CloseCode.MALFORMED_FRAME, "READY has a body");
        this.#becomeReady();
        return;
    }
  }

  /** Acceptor. */
  async #onHello(hello: Hello): Promise<void> {
    const host = this.#host;
    // Named by its claim from here on (logs, counters); nothing is delivered before it proved it.
    this.peerId = hello.from;
    this.counters = host.countersOf(hello.from);
    this.#checkCluster(hello.cluster, hello.from);
    if (hello.to !== host.id) {
      throw new HandshakeError(CloseCode.WRONG_NODE, `${hello.from} dialed node "${hello.to}" but reached "${host.id}"`);
    }
    if (hello.from === host.id) {
      // Its own id: a misconfigured peer list, or a replay of this node's own HELLO.
      throw new HandshakeError(CloseCode.WRONG_NODE, `a HELLO from "${hello.from}" to itself; a node never dials itself`);
    }
    host.admit(hello.from);
    this.#checkAuthMode(hello.auth);
    this.#peerNonce = hello.nonce;
    this.#noteUrls(hello);
    const key = await host.key;
    const proof = key ? await signProof(key, this.#input("acceptor")) : "";
    if (this.state !== "handshake") return;
    const welcome: Welcome = {
      protocol: MESH_PROTOCOL_VERSION,
      cluster: host.clusterId,
      from: host.id,
      to: hello.from,
      nonce: this.#nonce,
      auth: key !== null,
      ...this.#urls(hello.from),
      proof,
    };
    this.#expect = FRAME_PROOF;
    this.#sendControl(encodeControl(FRAME_WELCOME, welcome));
  }

  /** Dialer. */
  async #onWelcome(welcome: Welcome): Promise<void> {
    const host = this.#host;
    this.#checkCluster(welcome.cluster, welcome.from);
    if (welcome.from !== this.peerId) {
      throw new HandshakeError(CloseCode.WRONG_NODE, `dialed ${this.peerId} but the node that answered says it is "${welcome.from}"`);
    }
    if (welcome.to !== host.id) {
      throw new HandshakeError(CloseCode.WRONG_NODE, `${welcome.from} answered a node named "${welcome.to}", not "${host.id}"`);
    }
    this.#checkAuthMode(welcome.auth);
    this.#peerNonce = welcome.nonce;
    this.#noteUrls(welcome);
    const key = await host.key;
    let proof = "";
    if (key) {
      if (!(await verifyProof(key, this.#input("acceptor"), welcome.proof))) this.#wrongSecret();
      proof = await signProof(key, this.#input("dialer"));
    }
    if (this.state !== "handshake") return;
    this.#expect = FRAME_READY;
    this.#sendControl(encodeControl(FRAME_PROOF, { proof }));
  }

  /** Acceptor. */
  async #onProof(proof: string): Promise<void> {
    const key = await this.#host.key;
    if (key && !(await verifyProof(key, this.#input("dialer"), proof))) this.#wrongSecret();
    if (this.state !== "handshake") return;
    if (this.#sendControl(READY)) this.#becomeReady();
  }

  /** The `url` and `peerUrl` fields of this node's HELLO or WELCOME to `peer`. */
  #urls(peer: NodeId): Pick<Hello, "url" | "peerUrl"> {
    return { url: this.#host.url ?? undefined, peerUrl: this.#host.urlOf(peer) ?? undefined };
  }

  #noteUrls(frame: Hello): void {
    this.peerAnnouncedUrl = frame.url ?? null;
    this.urlSeenByPeer = frame.peerUrl ?? null;
  }

  #checkCluster(cluster: string, from: NodeId): void {
    if (cluster !== this.#host.clusterId) {
      throw new HandshakeError(
        CloseCode.CLUSTER_MISMATCH,
        `${from} is in cluster "${cluster}" but this node is in cluster "${this.#host.clusterId}"`,
      );
    }
  }

  #checkAuthMode(peerAuth: boolean): void {
    const mine = this.#host.key !== null;
    if (peerAuth === mine) return;
    throw new HandshakeError(
      CloseCode.AUTH_FAILED,
      mine
        ? `${this.peerId} has no cluster secret but this node requires one`
        : `${this.peerId} has a cluster secret but this node has none`,
    );
  }

  #wrongSecret(): never {
    throw new HandshakeError(
      CloseCode.AUTH_FAILED,
      `${this.peerId} failed to prove the cluster secret (the two nodes have different secrets)`,
    );
  }

  #input(role: "dialer" | "acceptor"): Uint8Array<ArrayBuffer> {
    const me = this.#host.id;
    const peer = this.peerId!;
    return this.dialer
      ? proofInput(role, this.#host.clusterId, me, peer, this.#nonce, this.#peerNonce)
      : proofInput(role, this.#host.clusterId, peer, me, this.#peerNonce, this.#nonce);
  }

  #becomeReady(): void {
    this.state = "ready";
    this.#host.socketControl?.liftHandshakeCap(this.#wire.socket);
    this.#cancelTimer?.();
    this.#armLiveness();
    this.#host.opened(this);
  }

  /** Every pingIntervalMs: close a link that has been silent for idleTimeoutMs, else ping. */
  #armLiveness(): void {
    const host = this.#host;
    this.#cancelTimer = host.clock.setTimer(host.pingIntervalMs, () => {
      this.#cancelTimer = null;
      if (this.state !== "ready") return;
      const now = host.clock.now();
      const silentMs = now - this.#lastReceived;
      if (silentMs >= host.idleTimeoutMs) {
        this.counters.idleTimeouts++;
        const reason = `no frame from ${this.peerId} for ${Math.round(silentMs)} ms (idleTimeoutMs is ${host.idleTimeoutMs})`;
        this.#terminate(CloseCode.IDLE_TIMEOUT, reason, "warn", `closed the link with ${this.peerId}: ${reason}`);
        return;
      }
      this.#pingSentAt = now;
      this.sendFrame(PING);
      this.#armLiveness();
    });
  }

  /** False when the socket is closing: its close event ends the connection. */
  #sendControl(frame: Uint8Array<ArrayBuffer>): boolean {
    return this.sendFrame(frame);
  }

  /** A handshake that cannot complete. */
  #refuse(code: number, reason: string): void {
    if (this.state !== "handshake") return;
    this.counters.refused++;
    if (code === CloseCode.MALFORMED_FRAME || code === CloseCode.FRAME_TOO_LARGE) this.counters.malformed++;
    const peer = this.peerId ?? "an unidentified peer";
    const what = this.dialer ? `refused the link to ${peer}` : `refused a link from ${peer}`;
    this.#terminate(code, reason, "warn", `${what}: ${reason} (${closeCodeName(code)})`);
  }

  /** The peer broke the framing rules. */
  #violation(code: number, reason: string): void {
    if (this.state === "handshake") {
      this.#refuse(code, reason);
      return;
    }
    this.counters.malformed++;
    const peer = this.peerId ?? "an unidentified peer";
    this.#terminate(code, reason, "warn", `closed the link with ${peer}: ${reason} (${closeCodeName(code)})`);
  }

  #terminate(code: number, reason: string, level: MeshLogLevel, logMessage: string): void {
    if (this.state === "closed") return;
    const wireReason = this.state === "handshake" ? HANDSHAKE_CLOSE_REASON : truncateUtf8(reason, MAX_CLOSE_REASON_BYTES);
    this.#finish();
    this.closeReason = `${closeCodeName(code)}: ${reason}`;
    this.#host.log(level, logMessage, {
      peer: this.peerId,
      code,
      codeName: closeCodeName(code),
      reason,
      dialer: this.dialer,
    });
    try {
      this.#wire.close(code, wireReason);
    } catch {
      // Already closing; nothing more to do.
    }
    const control = this.#host.socketControl;
    if (control !== null && !this.#socketEnded) {
      this.#host.clock.setTimer(CLOSE_TIMEOUT_MS, () => {
        if (!this.#socketEnded) control.terminate(this.#wire.socket);
      });
    }
    this.#host.closed(this);
  }

  #finish(): void {
    this.state = "closed";
    this.#cancelTimer?.();
    this.#cancelTimer = null;
  }
}

/** The bytes of a binary WebSocket message (ArrayBuffer, or a view such as Node's Buffer). */
function asBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).byteLength <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (encoder.encode(`${out}…`).byteLength > maxBytes) out = out.slice(0, -1);
  // A cut surrogate pair would not encode as it was; drop the lone half.
  if (/[\ud800-\udbff]$/.test(out)) out = out.slice(0, -1);
  return `${out}…`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
