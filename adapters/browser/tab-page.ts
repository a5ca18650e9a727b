/**
 * The page side of a KV tab cluster: the Worker that runs this tab's members (./kv-tab-worker.ts
 * or the application's own), and the handle `globalThis.meshraftTabs` for scripts and devtools:
 *
 *   await meshraftTabs.status()            { ids, leader, members: [{ id, role, term, commitIndex, appliedIndex, ... }], persistent }
 *   await meshraftTabs.put("k", "v")       { index }
 *   await meshraftTabs.get("k")            "v" or null (linearizable)
 *   await meshraftTabs.cas("k", "v", "w")  { ok }
 *
 * A failure rejects with an Error whose `code` is the HTTP API's code (NO_LEADER, OUTCOME_UNKNOWN,
 * KEY_TOO_LARGE, ...). `persistent` is the answer of `navigator.storage.persist()` (asked once, from
 * the page: Workers cannot ask), false where the browser refused or cannot say: without it the
 * browser may evict the origin's IndexedDB under storage pressure.
 */
import { requestPersistence } from "./idb-storage.ts";
import type { TabClusterStatus } from "./tab-cluster.ts";
import { type TabsKvHandle, tabsKvHandle } from "./tab-kv.ts";
import { connectTabCluster } from "./tab-worker.ts";

export interface TabsPageHandle extends TabsKvHandle {
  status(): Promise<TabClusterStatus & { persistent: boolean }>;
}

// No `declare global` here: a published module may not augment the global scope (JSR refuses
// it). Code that reads the handle types it itself (test/browser/meshraft-tabs.d.ts does).
/**
 * Connects to `worker` (a module Worker running serveTabCluster with the KV state machine and
 * kvQueries), asks for persistent storage, and installs the handle as `globalThis.meshraftTabs`.
 */
export function installTabsHandle(worker: Worker): TabsPageHandle {
  const kv = tabsKvHandle(connectTabCluster(worker));
  const persistent = requestPersistence().catch(() => false);
  const handle: TabsPageHandle = {
    ...kv,
    status: async () => ({ ...(await kv.status()), persistent: await persistent }),
  };
  (globalThis as { meshraftTabs?: TabsPageHandle }).meshraftTabs = handle;
  return handle;
}
