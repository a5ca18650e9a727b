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
 * - A commit whose answer is lost (a network error after KV applied it) looks like KV being
 *   unreachable, but a renewal that applied moved the versionstamp, and this instance's next
 *   guarded commit fails its check. The `owner` token tells the two cases apart: each instance
 *   has its own, and the only writes to the lease that can follow one of this instance's are its
 *   own guarded ones (another instance writes its own token), so a stored lease that names this
 *   instance is its own: its versionstamp is adopted (`recheck`) and the commit is tried again.
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
    // A second try only after `recheck` adopted a renewal of ours whose answer was lost.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.#lost) throw this.#lost;
      const now = this.#o.now();
      const value = this.#value(now, this.#acquiredAt);
      let res: Deno.KvCommitResult | Deno.KvCommitError;
      try {
        res = await this.guard(this.#kv.atomic()).set(this.#o.key, value).commit();
      } catch (e) {
        // KV unreachable, or it applied the renewal and the answer was lost (the next guarded
        // commit's `recheck` finds out): keep going while the lease lasts; `ensure` fails once it ran out.
        if (this.#o.now() >= this.#expiresAt) throw this.lose(`could not renew it before it ran out (${errorText(e)})`);
        return;
      }
      if (res.ok) {
        this.#versionstamp = res.versionstamp;
        this.#expiresAt = value.expiresAt;
        return;
      }
      const lost = await this.recheck();
      if (lost) throw lost;
    }
  }

  /**
   * After a guarded commit failed its check: the lease is not at the versionstamp this instance
   * knows. If the stored lease still names this instance (a commit of ours applied but its answer
   * was lost), its versionstamp and expiry are adopted and this resolves null: the caller may try
   * its commit again. Otherwise the lease changed hands: it is marked lost, and the error says to whom.
   */
  async recheck(): Promise<LeaseLostError | null> {
    let holder: string;
    try {
      const current = await this.#kv.get<LeaseValue>(this.#o.key);
      if (current.value !== null && current.value.owner === this.owner && this.#lost === null) {
        this.#versionstamp = current.versionstamp;
        this.#expiresAt = current.value.expiresAt;
        return null;
      }
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

  /**
   * Releases the lease so a successor need not wait for it to expire: deletes it if the stored
   * lease still names this instance (checked on the versionstamp just read, so a successor's is
   * never deleted), also when it was marked lost (run out by this clock, or a lost answer) or this
   * instance's last versionstamp is stale. Never throws.
   */
  async release(): Promise<void> {
    if (this.#versionstamp === null) return; // never acquired
    this.#lost ??= new LeaseLostError(this.#o.nodeId, "it was released by close()");
    try {
      const current = await this.#kv.get<LeaseValue>(this.#o.key);
      if (current.value?.owner !== this.owner) return;
      await this.#kv.atomic().check(current).delete(this.#o.key).commit();
    } catch {
      // KV unreachable: the lease runs out by itself.
    }
  }

  #value(now: number, acquiredAt: number): LeaseValue {
    return { owner: this.owner, where: this.#o.where, acquiredAt, expiresAt: now + this.#o.ttlMs };
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
