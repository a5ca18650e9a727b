/**
 * A client workload against a real cluster that records what it saw: concurrent workers put and
 * read a few keys through MeshraftClient (redirects, retries and exactly-once numbering
 * included). A put that returned is acknowledged; one that failed has an unknown outcome (it
 * may still commit). At the end, `verify` checks that no member lost an acknowledged write and
 * that the whole history is linearizable.
 */
import { MeshraftClient } from "../../src/client/client.ts";
import { checkLinearizable, type KvOperation } from "../../src/testing/linearizability.ts";

export interface Workload {
  history: KvOperation[];
  /** Acknowledged values per key, in the order their puts returned. */
  acked: Map<string, string[]>;
  /** The history's clock, in ms. */
  now(): number;
  /** Stop the workers and wait for their calls in flight. */
  stop(): Promise<void>;
}

export function startWorkload(urls: () => string[], workers = 4, keys = 4): Workload {
  const history: KvOperation[] = [];
  const acked = new Map<string, string[]>();
  let running = true;
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const worker = async (w: number): Promise<void> => {
    let seq = 0;
    while (running) {
      const client = new MeshraftClient({ urls: urls(), timeoutMs: 2_000, retryBudgetMs: 8_000 });
      for (let i = 0; i < 20 && running; i++) {
        const key = `k${(w + seq) % keys}`;
        const value = `w${w}-${seq++}`;
        const call = now();
        if (seq % 3 === 0) {
          try {
            const v = await client.getText(key);
            history.push({ client: w, input: { op: "get", key }, call, return: now(), output: { value: v } });
          } catch {
            // a failed read has no effect: leave it out
          }
          continue;
        }
        try {
          await client.put(key, value);
          history.push({ client: w, input: { op: "put", key, value }, call, return: now(), output: {} });
          acked.set(key, [...(acked.get(key) ?? []), value]);
        } catch {
          history.push({ client: w, input: { op: "put", key, value }, call, return: Number.POSITIVE_INFINITY, unknown: true });
        }
      }
    }
  };
  const all = Array.from({ length: workers }, (_, w) => worker(w));
  return {
    history,
    acked,
    now,
    stop: async () => {
      running = false;
      await Promise.all(all);
    },
  };
}

/**
 * Once the workload stopped and every member caught up with the leader's commit index: a local
 * (stale) read of every key on every member joins the history as a read that began after every
 * acknowledged put returned, and the whole history must be linearizable. So no member may lack
 * an acknowledged write (or hold one that a later acknowledged write replaced), and every read the
 * workers saw fits one order. Returns a description of the problem, or null.
 */
export async function verify(w: Workload, memberUrls: string[]): Promise<string | null> {
  const keys = new Set(w.history.map((h) => h.input.key));
  const history = [...w.history];
  for (const url of memberUrls) {
    const reader = new MeshraftClient({ urls: [url] });
    for (const key of keys) {
      const call = w.now();
      const value = await reader.getText(key, { stale: true });
      history.push({ client: `final read on ${url}`, input: { op: "get", key }, call, return: w.now(), output: { value } });
    }
  }
  const lin = checkLinearizable(history, { timeoutMs: 30_000 });
  return lin.ok ? null : `the history is not linearizable: ${JSON.stringify(lin).slice(0, 2000)}`;
}
