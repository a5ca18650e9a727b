/**
 * A small in-memory Web Locks manager for Node tests of the tab cluster (Node 20 has no
 * navigator.locks): exclusive locks granted in request order, `ifAvailable`, withdrawal by
 * `signal`, and `query()` listing held and pending requests, as https://w3c.github.io/web-locks/
 * specifies them. The real one runs in the Chromium tests.
 */
import type { LockSnapshot, TabLockManager } from "../../adapters/browser/tab-cluster.ts";

interface Waiter {
  grant: () => void;
  signal?: AbortSignal;
}

export class InMemoryLocks implements TabLockManager {
  readonly held: Set<string> = new Set();
  readonly queues: Map<string, Waiter[]> = new Map();

  request<T>(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<T> | T): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const queue = this.queues.get(name) ?? [];
    this.queues.set(name, queue);
    if (options.ifAvailable && (this.held.has(name) || queue.length > 0)) return Promise.resolve().then(() => callback(null));
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        signal,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.held.add(name);
          Promise.resolve()
            .then(() => callback({ name, mode: "exclusive" }))
            .finally(() => {
              this.held.delete(name);
              this.#next(name);
            })
            .then(resolve, reject);
        },
      };
      const onAbort = (): void => {
        const i = queue.indexOf(waiter);
        if (i < 0) return;
        queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
      if (!this.held.has(name) && queue.length === 1) this.#next(name);
    });
  }

  query(): Promise<LockSnapshot> {
    const pending: { name: string }[] = [];
    for (const [name, queue] of this.queues) for (let i = 0; i < queue.length; i++) pending.push({ name });
    return Promise.resolve({ held: [...this.held].map((name) => ({ name })), pending });
  }

  /** Requests queued on `name` (not counting its holder). */
  waiting(name: string): number {
    return this.queues.get(name)?.length ?? 0;
  }

  #next(name: string): void {
    if (this.held.has(name)) return;
    this.queues.get(name)?.shift()?.grant();
  }
}
