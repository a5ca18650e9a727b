/**
 * Member identities held by Web Locks: a tab cluster has a fixed set of ids (say t1..t3), and a
 * tab runs the member of an id only while it holds that id's lock (`navigator.locks`, one name
 * per cluster and id). The browser grants each lock to one holder at a time, across every tab
 * and worker of the origin, even when tabs open at the same instant (messages cannot promise
 * that: broadcast-channel elected two leaders that way), so two tabs never run one id against the
 * same IndexedDB log. A closed or crashed tab's locks are released by the browser, and a tab
 * waiting on them takes the id over.
 *
 * A frozen or back/forward-cached tab keeps its locks (w3c/web-locks#4): it is a paused member,
 * which Raft tolerates. Nothing here steals a lock: the holder might still write to its log.
 */

/** The slice of the Web Locks API (`navigator.locks`) used here. */
export interface LockManagerLike {
  request<T>(name: string, options: { mode?: "exclusive"; ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
}

/** An id this tab holds until `release()`. */
export interface HeldTabId {
  readonly id: string;
  /** The lock's name (for devtools' "Web Locks" view). */
  readonly lockName: string;
  /** Lets go of the lock; resolves once the browser released it. Idempotent. */
  release(): Promise<void>;
}

export interface AcquireTabIdOptions {
  clusterId: string;
  /** The cluster's fixed ids, tried in this order. */
  ids: readonly string[];
  /** Wait for an id to be released when all are held (default), or resolve null at once. */
  wait?: boolean;
  /** Gives up waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Default `navigator.locks`. */
  locks?: LockManagerLike;
}

/** The Web Lock that guards a member id of a cluster. */
export function tabLockName(clusterId: string, id: string): string {
  return `meshraft:${clusterId}:member:${id}`;
}

/**
 * Takes the first free id (in `ids` order); when none is free, waits for whichever is released
 * first (or resolves null with `wait: false`).
 * @throws RangeError for an empty or duplicate id list; TypeError without Web Locks.
 */
export async function acquireTabId(options: AcquireTabIdOptions): Promise<HeldTabId | null> {
  const { clusterId, ids } = options;
  if (ids.length === 0 || new Set(ids).size !== ids.length || ids.some((id) => typeof id !== "string" || id === "")) {
    throw new RangeError(`acquireTabId: ids must be distinct non-empty strings, got ${JSON.stringify(ids)}`);
  }
  const locks = options.locks ?? (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (!locks) throw new TypeError("acquireTabId: this environment has no Web Locks (navigator.locks needs a secure context: https or http://127.0.0.1)");
  options.signal?.throwIfAborted();

  for (const id of ids) {
    const held = await hold(locks, clusterId, id, { ifAvailable: true });
    if (held) return held;
  }
  if (options.wait === false) return null;

  // Queue on every id at once; the first grant wins and the other requests are withdrawn. A
  // grant that races the withdrawal is let go at once, so this tab ends up holding one id.
  const withdraw = new AbortController();
  const abandon = (): void => withdraw.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", abandon, { once: true });
  try {
    return await new Promise<HeldTabId>((resolve, reject) => {
      let won = false;
      let pending = ids.length;
      for (const id of ids) {
        hold(locks, clusterId, id, { signal: withdraw.signal }).then(
          (held) => {
            if (!held) return;
            if (won) return void held.release();
            won = true;
            withdraw.abort();
            resolve(held);
          },
          (error: unknown) => {
            if (--pending === 0 && !won) reject(options.signal?.aborted ? options.signal.reason : error);
          },
        );
      }
    });
  } finally {
    options.signal?.removeEventListener("abort", abandon);
  }
}

/** Requests one id's lock; resolves with the held id, or null if `ifAvailable` found it taken. */
function hold(locks: LockManagerLike, clusterId: string, id: string, options: { ifAvailable?: boolean; signal?: AbortSignal }): Promise<HeldTabId | null> {
  const name = tabLockName(clusterId, id);
  return new Promise((resolve, reject) => {
    let letGo!: () => void;
    const kept = new Promise<void>((r) => (letGo = r));
    const released = locks.request(name, { mode: "exclusive", ...options }, (lock) => {
      if (lock === null) {
        resolve(null);
        return undefined;
      }
      resolve({
        id,
        lockName: name,
        release: () => {
          letGo();
          return released.then(() => undefined);
        },
      });
      return kept; // the lock is held until this settles
    });
    released.then(() => undefined, reject); // a withdrawn request rejects (AbortError) before any grant
  });
}
