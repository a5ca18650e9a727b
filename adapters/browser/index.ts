/**
 * meshraft/browser: the parts of a browser member that need no runtime wiring yet: Raft state in
 * IndexedDB (strict durability, one transaction per batch), a transport between tabs of one
 * origin over BroadcastChannel, and member ids held by Web Locks.
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
