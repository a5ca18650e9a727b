/**
 * The mesh's control frames: the handshake that opens a link, and liveness pings.
 *
 * Every WebSocket message on a mesh link is one binary frame; its first byte says what it is:
 *
 *   0x01        a Raft message, exactly as src/transport/codec.ts encodes it (its WIRE_VERSION
 *               byte); 0x02..0x0f are reserved for later wire versions
 *   0x10 HELLO    dialer -> acceptor   UTF-8 JSON {protocol, cluster, from, to, nonce, auth, url?, peerUrl?}
 *   0x11 WELCOME  acceptor -> dialer   UTF-8 JSON {protocol, cluster, from, to, nonce, auth, url?, peerUrl?, proof}
 *   0x12 PROOF    dialer -> acceptor   UTF-8 JSON {proof}
 *   0x13 READY    acceptor -> dialer   no body: the acceptor has checked everything
 *   0x20 PING     either way           no body; answered by PONG
 *   0x21 PONG     either way           no body
 *
 * The handshake, in order (nothing else may be sent before it completes):
 *
 *   dialer:   HELLO   protocol version, cluster id, its own id (`from`), the id it meant to dial
 *                     (`to`), a fresh 32-byte nonce, and whether it holds a cluster secret
 *   acceptor: checks all of that, then WELCOME with the same fields about itself and, with a
 *             secret, proof = HMAC-SHA256(secret, transcript("acceptor"))
 *   dialer:   checks WELCOME (the acceptor must be the node it dialed) and the proof, then
 *             PROOF with HMAC-SHA256(secret, transcript("dialer"))
 *   acceptor: checks the proof, sends READY; both sides may now send Raft frames.
 *
 * `url` is the URL the sender announces for itself (its --url) and `peerUrl` the one it has for
 * the receiver (its --peer or the membership); both are optional and informational: once the link
 * is authenticated, each side reports a disagreement in its log and redirects clients to the URL a
 * member announces for itself, never to a mistyped one.
 *
 * The transcript binds the role, the cluster, both ids and both nonces (see `proofInput`), so a
 * proof is useless on another link, in the other direction or in another session. Without a
 * secret both proofs are "" and the handshake only checks configuration.
 *
 * What the secret does not do: the frames are not encrypted or signed after the handshake. It
 * keeps nodes that lack the secret out of the cluster; use wss:// (TLS) where someone could read or
 * rewrite traffic on the path.
 *
 * Compatibility: the HELLO tag and its `protocol` field never change meaning, so a node always
 * recognises a peer speaking another protocol version and refuses it by name.
 */
import { memberUrlProblem } from "../core/member-url.ts";
import { nodeIdProblem } from "../core/node-id.ts";
import type { NodeId } from "../core/types.ts";

/** Version of the mesh protocol: these control frames plus codec wire version 1. */
export const MESH_PROTOCOL_VERSION = 1;

export const FRAME_HELLO = 0x10;
export const FRAME_WELCOME = 0x11;
export const FRAME_PROOF = 0x12;
export const FRAME_READY = 0x13;
export const FRAME_PING = 0x20;
export const FRAME_PONG = 0x21;

/**
 * Largest control frame accepted, in bytes. A HELLO is about 200 plus its two URLs, each at most
 * MAX_URL_BYTES (2048).
 */
export const MAX_CONTROL_FRAME_BYTES = 8192;

/**
 * WebSocket close codes a mesh link ends with (4000-4999 are free for applications). Once the
 * handshake completed, the reason text says the specifics and both sides log it; before, the
 * reason is generic (HANDSHAKE_CLOSE_REASON in ./connection.ts), so an unauthenticated prober learns
 * no cluster id, node id or peer list from it, and only the closing side logs the specifics.
 */
export const CloseCode = {
  /** Normal closure: a node shutting down. */
  SHUTDOWN: 1000,
  PROTOCOL_VERSION: 4001,
  CLUSTER_MISMATCH: 4002,
  UNKNOWN_NODE: 4003,
  /** Wrong cluster secret, or a secret on one side only. */
  AUTH_FAILED: 4004,
  /** The node reached is not the node that was dialed. */
  WRONG_NODE: 4005,
  HANDSHAKE_TIMEOUT: 4006,
  MALFORMED_FRAME: 4007,
  FRAME_TOO_LARGE: 4008,
  /** By the dial rule this pair's link is dialed from the other side. */
  WRONG_DIALER: 4009,
  /** A newer link to the same peer took this one's place. */
  REPLACED: 4010,
  IDLE_TIMEOUT: 4011,
  /** The peer was removed from this node's members (`setPeers`); its dials are refused too. */
  REMOVED: 4012,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** "AUTH_FAILED" for 4004, or the number itself when it is not one of ours. */
export function closeCodeName(code: number): string {
  for (const [name, value] of Object.entries(CloseCode)) if (value === code) return name;
  return String(code);
}

/** A handshake or framing rule broken by the peer: the link closes with `closeCode`. */
export class HandshakeError extends Error {
  readonly closeCode: number;
  constructor(closeCode: number, message: string) {
    super(message);
    this.name = "HandshakeError";
    this.closeCode = closeCode;
  }
}

export interface Hello {
  protocol: number;
  cluster: string;
  /** The sender's id. */
  from: NodeId;
  /** The id the sender believes it is talking to. */
  to: NodeId;
  /** 32 random bytes, lowercase hex. */
  nonce: string;
  /** Whether the sender holds a cluster secret (and will prove it). */
  auth: boolean;
  /** The URL the sender announces for itself, if it has one. */
  url?: string;
  /** The URL the sender has for the receiver, if any. */
  peerUrl?: string;
}

export interface Welcome extends Hello {
  /** HMAC-SHA256 of transcript("acceptor"), lowercase hex; "" without a secret. */
  proof: string;
}

export interface Proof {
  /** HMAC-SHA256 of transcript("dialer"), lowercase hex; "" without a secret. */
  proof: string;
}

const FRAME_NAMES: Record<number, string> = {
  [FRAME_HELLO]: "HELLO",
  [FRAME_WELCOME]: "WELCOME",
  [FRAME_PROOF]: "PROOF",
  [FRAME_READY]: "READY",
  [FRAME_PING]: "PING",
  [FRAME_PONG]: "PONG",
};

/** "HELLO", "a Raft message", or "an unknown frame type 0x7f", for log lines. */
export function frameName(tag: number | undefined): string {
  if (tag === undefined) return "an empty frame";
  if (tag >= 0x01 && tag <= 0x0f) return "a Raft message";
  return FRAME_NAMES[tag] ?? `an unknown frame type 0x${tag.toString(16).padStart(2, "0")}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A control frame: the tag byte, then the body as UTF-8 JSON (no body for READY, PING, PONG). */
export function encodeControl(tag: number, body?: Hello | Welcome | Proof): Uint8Array<ArrayBuffer> {
  const json = body === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(body));
  const frame = new Uint8Array(1 + json.byteLength);
  frame[0] = tag;
  frame.set(json, 1);
  return frame;
}

const HEX_256 = /^[0-9a-f]{64}$/;
const MAX_NAME_LENGTH = 256;

function body(frame: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(frame.subarray(1)));
  } catch {
    throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what} is not UTF-8 JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function name(value: unknown, field: string, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_NAME_LENGTH) {
    throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.${field} must be a string of 1..${MAX_NAME_LENGTH} characters`);
  }
  return value;
}

function urlField(value: unknown, field: string, what: string): string | undefined {
  if (value === undefined) return undefined;
  const problem = typeof value === "string" ? memberUrlProblem(value) : { message: "not a string" };
  if (problem) throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.${field} is not a member URL: ${problem.message}`);
  return value as string;
}

function nodeId(value: unknown, field: string, what: string): NodeId {
  const problem = nodeIdProblem(value);
  if (problem !== null) throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.${field}: ${problem}`);
  return value as NodeId;
}

function proofField(value: unknown, what: string): string {
  if (value !== "" && !(typeof value === "string" && HEX_256.test(value))) {
    throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.proof must be 64 lowercase hex digits or ""`);
  }
  return value;
}

/**
 * Parses a HELLO (tag FRAME_HELLO) or WELCOME (tag FRAME_WELCOME) frame. The protocol version is
 * checked first, so a peer of another version is refused as such whatever else it sent.
 * @throws HandshakeError
 */
export function parseHello(frame: Uint8Array): Hello;
export function parseHello(frame: Uint8Array, welcome: true): Welcome;
export function parseHello(frame: Uint8Array, welcome = false): Hello | Welcome {
  const what = welcome ? "WELCOME" : "HELLO";
  const b = body(frame, what);
  if (b.protocol !== MESH_PROTOCOL_VERSION) {
    throw new HandshakeError(
      CloseCode.PROTOCOL_VERSION,
      `peer speaks mesh protocol ${JSON.stringify(b.protocol) ?? "(none)"}; this node speaks ${MESH_PROTOCOL_VERSION}`,
    );
  }
  if (typeof b.nonce !== "string" || !HEX_256.test(b.nonce)) {
    throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.nonce must be 64 lowercase hex digits`);
  }
  if (typeof b.auth !== "boolean") throw new HandshakeError(CloseCode.MALFORMED_FRAME, `${what}.auth must be a boolean`);
  const hello: Hello = {
    protocol: MESH_PROTOCOL_VERSION,
    cluster: name(b.cluster, "cluster", what),
    from: nodeId(b.from, "from", what),
    to: nodeId(b.to, "to", what),
    nonce: b.nonce,
    auth: b.auth,
    url: urlField(b.url, "url", what),
    peerUrl: urlField(b.peerUrl, "peerUrl", what),
  };
  return welcome ? { ...hello, proof: proofField(b.proof, what) } : hello;
}

/** @throws HandshakeError */
export function parseProof(frame: Uint8Array): Proof {
  return { proof: proofField(body(frame, "PROOF").proof, "PROOF") };
}

/** 32 bytes from crypto.getRandomValues, lowercase hex. */
export function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** The HMAC key for a cluster secret (its UTF-8 bytes). */
export function importSecret(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

/**
 * The bytes a proof signs. A JSON array leaves no ambiguity between fields; `role` is who proves
 * ("acceptor" in WELCOME, "dialer" in PROOF), so one side's proof never passes as the other's.
 */
export function proofInput(
  role: "dialer" | "acceptor",
  cluster: string,
  dialer: NodeId,
  acceptor: NodeId,
  dialerNonce: string,
  acceptorNonce: string,
): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(["meshraft", MESH_PROTOCOL_VERSION, role, cluster, dialer, acceptor, dialerNonce, acceptorNonce]));
}

export async function signProof(key: CryptoKey, input: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, input)));
}

/** Constant-time check (crypto.subtle.verify) of a hex proof. */
export async function verifyProof(key: CryptoKey, input: Uint8Array<ArrayBuffer>, proof: string): Promise<boolean> {
  if (!HEX_256.test(proof)) return false;
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(proof.slice(2 * i, 2 * i + 2), 16);
  return crypto.subtle.verify("HMAC", key, bytes, input);
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
