/**
 * Worker script of the tab-cluster test page: the library's KV tab worker (startKvTabWorker, as
 * examples/browser-tabs runs it); its own URL's query says which cluster (`cluster`), and
 * optionally `ids` (comma-separated).
 *
 * For the tests it also records when it ran which id: every 5 ms it looks at `heldIds()` and
 * keeps, per id, intervals [first seen, last seen] in Date.now() time. A member is in heldIds()
 * only while its Web Lock is held (added after the grant, removed before the release), and the
 * polling starts once the cluster's start resolved (an id taken earlier is seen later), so the
 * recorded intervals lie inside the lock's: two pages' intervals of one id that overlap mean two
 * tabs ran that id at once. The page asks for them with `{ test: "held", tid }`.
 */
import { kvTabOptionsFromUrl, startKvTabWorker } from "../../../adapters/browser/kv-tab-worker.ts";
import type { TabCluster } from "../../../adapters/browser/tab-cluster.ts";
import type { KvResult } from "../../../src/kv/kv.ts";

let cluster: TabCluster<KvResult> | null = null;
void startKvTabWorker(kvTabOptionsFromUrl(self.location.search)).then((c) => (cluster = c));

export interface HeldInterval {
  id: string;
  from: number;
  to: number;
}
const intervals: HeldInterval[] = [];
const open = new Map<string, HeldInterval>();
setInterval(() => {
  const t = Date.now();
  const held = new Set(cluster?.heldIds() ?? []);
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
