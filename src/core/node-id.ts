/**
 * The one rule for member ids, checked wherever an id enters: the CLI, the admin API (membership
 * changes), the peer handshake and the wire codec.
 *
 * An id is 1-64 characters of A-Z a-z 0-9 . _ -, not "." or "..", and not the name of a property
 * every JavaScript object has (`__proto__`, `constructor`, `toString`, ...): ids key plain objects
 * (configuration URLs, stats, JSON answers), where such a name would read or replace the prototype
 * instead of an entry. The character set keeps ids safe in URLs, file names and log lines.
 */
import type { NodeId } from "./types.ts";

export const NODE_ID_RULE = "1-64 characters of A-Z a-z 0-9 . _ - (not . or .., not a built-in object property name)";

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Why `value` is not a valid member id, or null when it is one. */
export function nodeIdProblem(value: unknown): string | null {
  if (typeof value !== "string") return `a member id must be a string, got ${typeof value}`;
  if (!NODE_ID.test(value) || value === "." || value === ".." || value in Object.prototype) {
    return `member id ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)} is not ${NODE_ID_RULE}`;
  }
  return null;
}

/** A member id that breaks the rule above. (src/core imports nothing outside it, so not a MeshraftError.) */
export class InvalidNodeIdError extends Error {
  readonly code = "INVALID_NODE_ID";
  constructor(detail: string) {
    super(detail);
    this.name = "InvalidNodeIdError";
  }
}

/** @throws InvalidNodeIdError */
export function validateNodeId(value: unknown): NodeId {
  const problem = nodeIdProblem(value);
  if (problem !== null) throw new InvalidNodeIdError(problem);
  return value as NodeId;
}
