/**
 * meshraft/browser: Raft in browser tabs. The pieces: Raft state in
 * IndexedDB (strict durability, one transaction per batch), a transport between tabs of one
 * origin over BroadcastChannel, and member ids held by Web Locks; and the tab cluster built of them
 * (TabCluster, run in a dedicated Worker with serveTabCluster, reached from the page with
 * connectTabCluster; tabsKvHandle for the built-in KV).
 */
export {
  databaseName,
  IndexedDbStorage,
  IndexedDbStorageError,
  requestPersistence,
  type IndexedDbEnvironment,
  type IndexedDbStorageOptions,
} from "./idb-storage.ts";
export {
  BroadcastChannelTransport,
  channelName,
  type BroadcastChannelTransportOptions,
  type BroadcastChannelTransportStats,
} from "./broadcast-transport.ts";
export { acquireTabId, tabLockName, type AcquireTabIdOptions, type HeldTabId, type LockManagerLike } from "./tab-ids.ts";
export {
  chooseHandOver,
  controlChannelName,
  leaderFrom,
  TabCluster,
  TabClusterError,
  type LockSnapshot,
  type TabClusterOptions,
  type TabClusterStatus,
  type TabLockManager,
  type TabMemberStatus,
  type TabProposeResult,
} from "./tab-cluster.ts";
export { connectTabCluster, serveTabCluster, TabRequestError, type MessageEndpoint, type TabClusterConnection } from "./tab-worker.ts";
export { kvQueries, tabsKvHandle, TabsKvError, type TabsKvHandle } from "./tab-kv.ts";
export { installTabsHandle, type TabsPageHandle } from "./tab-page.ts";
export { kvTabOptionsFromUrl, startKvTabWorker } from "./kv-tab-worker.ts";
