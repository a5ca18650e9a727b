/**
 * Worker script of the tab-cluster test page: a TabCluster running the KV state machine, served to
 * its page. Its own URL's query says which cluster (`cluster`), and optionally `ids` (comma-separated).
 *
 * For the tests it also records when it ran which id: every 5 ms it looks at `heldIds()` and
 * keeps, per id, intervals [first seen, last seen] in Date.now() time. A member is in heldIds()
 * only while its Web Lock is held (added after the grant, removed before the release), so the
 * recorded intervals lie inside the lock's: two pages' intervals of one id that overlap mean two
 * tabs ran that id at once. The page asks for them with `{ test: "held", tid }`.
 */
import { TabCluster } from "../../../adapters/browser/tab-cluster.ts";
import { kvQueries } from "../../../adapters/browser/tab-kv.ts";
import { serveTabCluster } from "../../../adapters/browser/tab-worker.ts";
import { type KvResult, KvStateMachine } from "../../../src/kv/kv.ts";
import type { StateMachine } from "../../../src/statemachine.ts";

const q = new URLSearchParams(self.location.search);
const ids = q.get("ids");

const cluster = new TabCluster<KvResult>({
  clusterId: q.get("cluster") ?? "tests",
  ids: ids === null ? undefined : ids.split(","),
  stateMachine: () => new KvStateMachine(),
  queries: kvQueries as Record<string, (sm: StateMachine<KvResult>, arg: unknown) => unknown>,
});

export interface HeldInterval {
  id: string;
  from: number;
  to: number;
}
const intervals: HeldInterval[] = [];
const open = new Map<string, HeldInterval>();
setInterval(() => {
  const t = Date.now();
  const held = new Set(cluster.heldIds());
  for (const id of held) {
    const current = open.get(id);
    if (current) current.to = t;
    else {
      const iv = { id, from: t, to: t };
      open.set(id, iv);
      intervals.push(iv);
    }
  }
  for (const id of [...open.keys()]) if (!held.has(id)) open.delete(id);
}, 5);

self.addEventListener("message", (event: MessageEvent) => {
  const m = event.data as { test?: string; tid?: number };
  if (m?.test === "held") self.postMessage({ test: "held", tid: m.tid, intervals });
});

void serveTabCluster(cluster);
