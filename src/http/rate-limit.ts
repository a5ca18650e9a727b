/**
 * Requests per second per client address (issue 15: a flood of cheap requests from one host cut
 * another client's writes to a third). A token bucket per address: `ratePerSecond` tokens a
 * second, at most `burst` saved up; a request without a token is answered 429 before any parsing
 * or Raft work. The table of addresses is bounded (`maxClients`, least recently seen dropped), so
 * many addresses cannot grow it without bound.
 */
import type { Clock } from "../clock.ts";

export interface RateLimitOptions {
  /** Sustained requests per second per client address. */
  ratePerSecond: number;
  /** Requests a client may send at once after being idle. Default 2 x ratePerSecond. */
  burst?: number;
  /** Addresses tracked at once. Default 10,000. */
  maxClients?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #maxClients: number;
  readonly #clock: Pick<Clock, "now">;
  /** In order of last use (a used bucket is moved to the end), so the first is the stalest. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions, clock: Pick<Clock, "now">) {
    const { ratePerSecond } = options;
    if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be a positive number, got ${ratePerSecond}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = options.burst ?? Math.max(1, Math.ceil(2 * ratePerSecond));
    if (!(this.burst >= 1)) throw new RangeError(`burst must be at least 1, got ${options.burst}`);
    this.#maxClients = options.maxClients ?? 10_000;
    this.#clock = clock;
  }

  /** Takes one token for `client`; false when it has none left (answer 429). */
  take(client: string): boolean {
    const now = this.#clock.now();
    const b = this.#buckets.get(client);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxClients) this.#buckets.delete(this.#buckets.keys().next().value!);
      this.#buckets.set(client, { tokens: this.burst - 1, at: now });
      return true;
    }
    this.#buckets.delete(client);
    this.#buckets.set(client, b);
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.ratePerSecond) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Clients tracked now. */
  get clients(): number {
    return this.#buckets.size;
  }
}
