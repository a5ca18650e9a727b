/**
 * The HTTP protocol between meshraft nodes and their clients: header names, error codes and the
 * JSON bodies. Shared by the server (src/http/app.ts) and MeshraftClient (src/client/), so it
 * imports nothing: a browser bundle of the client does not pull in hono.
 */

/** Set on redirects (307) and on 503s whose leader is known but unreachable: the leader's id. */
export const LEADER_HEADER = "X-Meshraft-Leader";
/** Set on every answer: the id of the node that answered. */
export const NODE_HEADER = "X-Meshraft-Node";
/** Exactly-once session of a write: the client's id (printable ASCII, 1..256 chars)... */
export const CLIENT_HEADER = "X-Meshraft-Client";
/** ...and the write's sequence number (decimal, a non-negative safe integer). */
export const SEQ_HEADER = "X-Meshraft-Seq";

/**
 * Stable error codes, with the status each comes with:
 *
 * - 400 BAD_REQUEST: malformed key, headers, or CAS body; 400 KEY_TOO_LARGE.
 * - 401 UNAUTHORIZED: missing or wrong bearer token.
 * - 404 NOT_FOUND: the key is absent (GET); 404 ROUTE_NOT_FOUND: no such route;
 *   405 METHOD_NOT_ALLOWED: the route exists for other methods, listed in `Allow`;
 *   410 MEMBER_REMOVED: this node was removed from the cluster (every /kv route).
 * - 409 STALE_SEQUENCE: a write with a session seq older than the session's last; not applied.
 * - 409 SESSION_EXPIRED: a write with a seq above 1 for a session the cluster does not hold (it
 *   was forgotten to bound the session table); not applied. Start a new session (a new client id,
 *   seq 1); if the write was a resend, its original may or may not have been applied.
 * - Admin: 400 INVALID_CONF_CHANGE; 400 URL_TOO_LONG (a member URL beyond MAX_URL_BYTES, 2048
 *   bytes); 404 MEMBER_NOT_FOUND; 409 CONF_CHANGE_IN_PROGRESS (another change is in flight;
 *   `Retry-After`); 409 LEARNER_BEHIND (a learner asked to become a voter has not caught up; the
 *   message says how far behind it is; `Retry-After`); 503 TRANSFER_FAILED (leadership did not move).
 * - 413 VALUE_TOO_LARGE, BODY_TOO_LARGE.
 * - 429 RATE_LIMITED: this client address sent more than `limits.requestsPerSecondPerClient`;
 *   nothing happened, resend after `Retry-After`.
 * - 503 NO_LEADER, PROPOSAL_DROPPED, READ_TIMEOUT, NODE_STOPPED: nothing happened, resend freely
 *   (a `Retry-After` header comes with them).
 * - 504 OUTCOME_UNKNOWN: the write was proposed and may still commit; only a resend with the same
 *   client id and seq is safe.
 * - 500 INTERNAL.
 *
 * A 307 redirect carries `NOT_LEADER` in the same body shape.
 */
export type ErrorCode =
  | "NOT_LEADER"
  | "BAD_REQUEST"
  | "KEY_TOO_LARGE"
  | "UNAUTHORIZED"
  | "NOT_FOUND"
  | "ROUTE_NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "MEMBER_REMOVED"
  | "STALE_SEQUENCE"
  | "SESSION_EXPIRED"
  | "INVALID_CONF_CHANGE"
  | "URL_TOO_LONG"
  | "MEMBER_NOT_FOUND"
  | "CONF_CHANGE_IN_PROGRESS"
  | "LEARNER_BEHIND"
  | "TRANSFER_FAILED"
  | "VALUE_TOO_LARGE"
  | "BODY_TOO_LARGE"
  | "NO_LEADER"
  | "PROPOSAL_DROPPED"
  | "READ_TIMEOUT"
  | "OVERLOADED"
  | "RATE_LIMITED"
  | "NODE_STOPPED"
  | "OUTCOME_UNKNOWN"
  | "INTERNAL";

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** The answer to a successful PUT, DELETE or CAS (`ok: false` only for a CAS, with 409). */
export interface WriteBody {
  ok: boolean;
  /** Log index of the entry that carried the write. */
  index: number;
  /** The write was a resend of one already applied: this is the original write's result. */
  duplicate?: true;
  /** DELETE only: whether the key existed. */
  existed?: boolean;
  /**
   * A CAS that did not match (409), not a resend: the value the key held when it was compared,
   * so a client can retry without reading first. `current` is that value as UTF-8 text, or null
   * when the key was absent; a value that is not valid UTF-8 comes as `currentBase64` instead
   * (and `current` is left out). The comparison itself is of bytes.
   */
  current?: string | null;
  currentBase64?: string;
}

/**
 * The body of `POST /kv/:key/cas`: each of expect and value either as a UTF-8 string (`expect`)
 * or as bytes in base64 (`expectBase64`), never both; `null` expect = must be absent, `null`
 * value = delete. Base64 carries any bytes exactly, a leading BOM or invalid UTF-8 included.
 */
export interface CasRequestBody {
  expect?: string | null;
  value?: string | null;
  expectBase64?: string | null;
  valueBase64?: string | null;
}

/** Standard base64 with padding (RFC 4648 §4), as CasRequestBody carries bytes. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  // String.fromCharCode takes its arguments on the stack: go in slices.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(binary);
}

/** The bytes of canonical padded base64, or null for anything else (whitespace, missing padding). */
export function base64ToBytes(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  // Non-zero bits in the last character's padding would decode the same: not canonical.
  return bytesToBase64(out) === text ? out : null;
}

export interface StatusMember {
  id: string;
  url: string | null;
  voter: boolean;
}

/** `GET /status`. */
export interface StatusBody {
  id: string;
  url: string;
  /** "removed": the latest configuration in its log no longer lists this node (which was a member); it refuses client requests. */
  role: "follower" | "pre-candidate" | "candidate" | "leader" | "removed";
  term: number;
  leader: string | null;
  leaderUrl: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  voters: string[];
  learners: string[];
  members: StatusMember[];
  stopped: boolean;
  /** With TLS: when the served certificate expires; `expiresSoon` within 30 days (src/tls.ts). */
  tls?: { notAfter: string; daysLeft: number; expiresSoon: boolean };
}

/** Longest client id in X-Meshraft-Client (the KV state machine's limit). */
export const MAX_CLIENT_ID_LENGTH = 256;

/** Printable ASCII without spaces: survives every HTTP stack unchanged. */
const CLIENT_ID = /^[\x21-\x7e]+$/;

/** Whether `id` may be sent as X-Meshraft-Client. */
export function isValidClientId(id: string): boolean {
  return id.length >= 1 && id.length <= MAX_CLIENT_ID_LENGTH && CLIENT_ID.test(id);
}

/** Parses X-Meshraft-Seq; null when it is not a non-negative safe integer in plain decimal. */
export function parseSeq(text: string): number | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/** A member as `/admin/members` reports it. `leaving`: a voter of the old half of a joint configuration. */
export interface AdminMember {
  id: string;
  url: string | null;
  role: "voter" | "learner" | "leaving";
  /** A learner the leader promotes to voter once it has caught up. */
  promote?: true;
  /** The leader's replication progress: last index known to match the leader's log. */
  match?: number;
}

/** `GET /admin/members`, and the answer to a change. */
export interface AdminMembersBody {
  leader: string;
  /** Whether the cluster is in joint consensus (a voter change in progress). */
  joint: boolean;
  members: AdminMember[];
  /** Index of the entry that made the change (answers to POST and DELETE only). */
  index?: number;
}

/** `POST /admin/members`. `role` defaults to "voter": added as a learner, promoted once caught up. */
export interface AdminAddMemberBody {
  id: string;
  url: string;
  role?: "voter" | "learner";
}

/** `POST /admin/transfer-leader` takes `{to?}` and answers with the new leader. */
/** POST /admin/snapshot: the member that took it, and the index it covers. */
export interface AdminSnapshotBody {
  id: string;
  index: number;
}

export interface AdminTransferBody {
  leader: string;
  leaderUrl: string | null;
}
