/**
 * A node identity lease in Deno KV, with fencing.
 *
 * Deno Deploy may run two instances of one app at once (a rollout, a second region, an instance
 * it believes dead), and both would open the same node's log. Two writers of one Raft log break
 * Raft (a vote cast twice, an acknowledged entry overwritten), so exactly one instance may hold a
 * node id at a time:
 *
 * - The lease is one key, `{ owner, expiresAt, ... }`. An instance takes it only when it is
 *   absent, released, or expired by the instance's clock, with an atomic check of the versionstamp
 *   it read, so of two instances racing for it one wins. Anyone else is refused with
 *   NodeIdentityLeasedError.
 * - Fencing: every write of the holder is an `atomic()` that also checks the lease's versionstamp
 *   (`guard`). Once another instance took the lease, each of the old holder's writes fails, so its
 *   durable state cannot change any more, whatever the clocks say. The holder notices (a failed
 *   check, a failed renewal) and stops with LeaseLostError.
 * - Renewal every `ttlMs / 3` pushes `expiresAt` forward. A holder whose lease ran out by its own
 *   clock (`valid()` is false: it was paused, or cut off from KV) must not act on its in-memory
 *   state until a renewal succeeds; the Deno member sends no Raft message meanwhile. A successor
 *   takes over only after `expiresAt` by its clock, so this holds as long as the two clocks differ
 *   by less than the time from the last renewal to expiry. That bound only matters for what the
 *   old holder says from memory; what it writes is fenced regardless of clocks.
 */
import { MeshraftError } from "../../src/errors.ts";

/** Another live instance holds this node id: starting a second one would corrupt its log. */
export class NodeIdentityLeasedError extends MeshraftError {
  readonly nodeId: string;
  /** The holder's instance id and where it said it runs. */
  readonly holder: string;
  /** When the holder's lease runs out unless renewed (ms since the epoch). */
  readonly expiresAt: number;
  constructor(nodeId: string, holder: LeaseValue, now: number) {
    super(
      "NODE_ID_LEASED",
      `node id ${nodeId} is held by another instance (${describeHolder(holder)}); its lease runs for another ` +
        `${Math.max(0, holder.expiresAt - now)} ms unless renewed. Two instances must never run one node id: ` +
        `stop the other one, or wait for its lease to expire if it is gone`,
    );
    this.nodeId = nodeId;
    this.holder = holder.owner;
    this.expiresAt = holder.expiresAt;
  }
}

/** This instance no longer holds its node id (taken over, released, or not renewable): it must stop. */
export class LeaseLostError extends MeshraftError {
  readonly nodeId: string;
  constructor(nodeId: string, why: string) {
    super("LEASE_LOST", `lost the lease on node id ${nodeId}: ${why}; this instance stops writing and must be restarted`);
    this.nodeId = nodeId;
  }
}

export interface LeaseValue {
  /** A random id per instance (per open). */
  owner: string;
  /** `host pid` or whatever the instance could tell about itself, for error messages. */
  where: string;
  acquiredAt: number;
  /** Wall-clock ms since the epoch. */
  expiresAt: number;
}

function describeHolder(v: LeaseValue): string {
  return `instance ${v.owner}${v.where ? ` on ${v.where}` : ""}, since ${new Date(v.acquiredAt).toISOString()}`;
}

export interface KvLeaseOptions {
  nodeId: string;
  key: Deno.KvKey;
  ttlMs: number;
  /** Wall clock, ms since the epoch. */
  now: () => number;
  where: string;
}

export class KvLease {
  readonly #kv: Deno.Kv;
  readonly #o: KvLeaseOptions;
  readonly owner: string = crypto.randomUUID();
  #versionstamp: string | null = null;
  #expiresAt = 0;
  #acquiredAt = 0;
  #lost: LeaseLostError | null = null;

  constructor(kv: Deno.Kv, options: KvLeaseOptions) {
    this.#kv = kv;
    this.#o = options;
  }

  /** Takes the lease, or rejects with NodeIdentityLeasedError if another instance holds it. */
  async acquire(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.#kv.get<LeaseValue>(this.#o.key);
      const now = this.#o.now();
      if (current.value !== null && current.value.owner !== this.owner && current.value.expiresAt > now) {
        throw new NodeIdentityLeasedError(this.#o.nodeId, current.value, now);
      }
      const value = this.#value(now, now);
      const res = await this.#kv.atomic().check(current).set(this.#o.key, value).commit();
      if (res.ok) {
        this.#versionstamp = res.versionstamp;
        this.#expiresAt = value.expiresAt;
        this.#acquiredAt = now;
        return;
      }
      // Someone wrote the lease between our read and our commit: look again.
    }
    throw new LeaseLostError(this.#o.nodeId, "the lease kept changing while taking it");
  }

  /** The check every write of the holder carries (fencing). */
  guard(op: Deno.AtomicOperation): Deno.AtomicOperation {
    return op.check({ key: this.#o.key, versionstamp: this.#versionstamp });
  }

  /** Whether the lease should be renewed now (a third of its time has passed since the last renewal). */
  due(): boolean {
    return this.#o.now() >= this.#expiresAt - (2 * this.#o.ttlMs) / 3;
  }

  /**
   * Whether this instance may act on its in-memory state: the lease is not known lost and has
   * not run out by this instance's clock. A lease that ran out without a successor is renewed by
   * the next `ensure()` (the versionstamp check proves nobody took it meanwhile).
   */
  valid(): boolean {
    return this.#lost === null && this.#o.now() < this.#expiresAt;
  }

  /** Renews the lease when due; rejects with LeaseLostError if it is not (or no longer) ours. */
  async ensure(): Promise<void> {
    if (this.#lost) throw this.#lost;
    if (this.due()) await this.renew();
    if (!this.valid()) throw this.lose(`it ran out at ${new Date(this.#expiresAt).toISOString()} and could not be renewed`);
  }

  /** Pushes the expiry forward; rejects with LeaseLostError if the lease is no longer ours. */
  async renew(): Promise<void> {
    if (this.#lost) throw this.#lost;
    const now = this.#o.now();
    const value = this.#value(now, this.#acquiredAt);
    let res: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      res = await this.guard(this.#kv.atomic()).set(this.#o.key, value).commit();
    } catch (e) {
      // KV unreachable: keep going while the lease lasts; `ensure` fails once it ran out.
      if (this.#o.now() >= this.#expiresAt) throw this.lose(`could not renew it before it ran out (${errorText(e)})`);
      return;
    }
    if (!res.ok) throw await this.explainLoss();
    this.#versionstamp = res.versionstamp;
    this.#expiresAt = value.expiresAt;
  }

  /** After a guarded commit failed its check: the lease changed hands. */
  async explainLoss(): Promise<LeaseLostError> {
    let holder = "";
    try {
      const current = await this.#kv.get<LeaseValue>(this.#o.key);
      holder = current.value === null ? "it was released or deleted" : `it is now held by ${describeHolder(current.value)}`;
    } catch {
      holder = "its versionstamp changed";
    }
    return this.lose(holder);
  }

  lose(why: string): LeaseLostError {
    this.#lost ??= new LeaseLostError(this.#o.nodeId, why);
    return this.#lost;
  }

  get lost(): LeaseLostError | null {
    return this.#lost;
  }

  /** Releases the lease so a successor need not wait for it to expire. Never throws. */
  async release(): Promise<void> {
    if (this.#lost || this.#versionstamp === null) return;
    this.#lost = new LeaseLostError(this.#o.nodeId, "it was released by close()");
    await this.guard(this.#kv.atomic()).delete(this.#o.key).commit().catch(() => undefined);
  }

  #value(now: number, acquiredAt: number): LeaseValue {
    return { owner: this.owner, where: this.#o.where, acquiredAt, expiresAt: now + this.#o.ttlMs };
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
