import type { Random } from "../core/random.ts";

export interface BackoffOptions {
  /** Ceiling of the first delay, in ms. */
  initialMs: number;
  /** Largest ceiling, in ms. */
  maxMs: number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first after a loss): the ceiling
 * doubles from `initialMs` up to `maxMs`, and the delay is drawn uniformly from its upper half
 * ("equal jitter"), so peers that lost a link together do not redial in lockstep, yet no delay is
 * ever near zero.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: Random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return ceiling / 2 + (random.next() * ceiling) / 2;
}
