import { KvCommandError } from "../kv/kv.ts";
import {
  NodeStoppedError,
  OutcomeUnknownError,
  OverloadedError,
  ProposalDroppedError,
  ReadTimeoutError,
} from "../errors.ts";
import { LEADER_HEADER, type ErrorBody, type ErrorCode } from "./protocol.ts";

/** An answer other than success, as thrown inside the app and rendered by its error handler. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;
  constructor(status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/** `Retry-After` is in whole seconds; 1 is the smallest hint, and MeshraftClient retries sooner. */
const RETRY: Record<string, string> = { "Retry-After": "1" };

/**
 * Translates a RaftNode or KV failure other than NotLeaderError (which the app turns into a
 * redirect). RaftNode rejects with NodeStoppedError only what it never handed to the core (a
 * proposal still queued, or a call on a stopped node), and with OutcomeUnknownError whatever it
 * did: so NODE_STOPPED is a 503 (nothing was proposed, resend freely), whenever it comes.
 */
export function apiErrorFrom(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof OutcomeUnknownError) return new ApiError(504, "OUTCOME_UNKNOWN", error.message);
  if (error instanceof NodeStoppedError) return new ApiError(503, "NODE_STOPPED", error.message, RETRY);
  if (error instanceof ProposalDroppedError) return new ApiError(503, "PROPOSAL_DROPPED", error.message, RETRY);
  if (error instanceof ReadTimeoutError) return new ApiError(503, "READ_TIMEOUT", error.message, RETRY);
  if (error instanceof OverloadedError) return new ApiError(503, "OVERLOADED", error.message, RETRY);
  if (error instanceof KvCommandError) return new ApiError(400, "BAD_REQUEST", error.message);
  const detail = error instanceof Error ? error.message : String(error);
  return new ApiError(500, "INTERNAL", `internal error: ${detail}`);
}

export function noLeader(message: string, leaderId: string | null): ApiError {
  const headers: Record<string, string> = { ...RETRY };
  if (leaderId !== null) headers[LEADER_HEADER] = leaderId;
  return new ApiError(503, "NO_LEADER", message, headers);
}

export function nodeStopped(id: string): ApiError {
  return new ApiError(503, "NODE_STOPPED", `node ${id} is stopped`, RETRY);
}
