/**
 * meshraft/browser: the parts of a browser member that need no runtime wiring yet: Raft state in
 * IndexedDB (strict durability, one transaction per batch) and a transport between tabs of one
 * origin over BroadcastChannel.
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
