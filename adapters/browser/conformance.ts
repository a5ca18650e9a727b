/**
 * The shared conformance suites run against this adapter's storage and transport, in whatever
 * environment the caller has: fake-indexeddb and Node's BroadcastChannel under vitest, a page's
 * own `indexedDB` and `BroadcastChannel` in Chromium. The caller passes `describe` and `it`.
 */
import { type ConformanceHarness, type ConformanceOptions, runStorageConformance } from "../../src/storage/conformance.ts";
import { runTransportConformance, type TransportConformanceOptions } from "../../src/transport/conformance.ts";
import { promisifyRequest } from "idb-keyval";
import { BroadcastChannelTransport } from "./broadcast-transport.ts";
import { databaseName, type IndexedDbEnvironment, IndexedDbStorage } from "./idb-storage.ts";

let cases = 0;
/** A cluster id no earlier case of this context used, so databases and channels never collide. */
const freshClusterId = (what: string): string => `conformance-${what}-${Date.now().toString(36)}-${++cases}`;

/** Every case gets a database of its own, deleted when the case ends. */
export function runIndexedDbStorageConformance(
  name: string,
  env: IndexedDbEnvironment,
  harness: ConformanceHarness,
  options: ConformanceOptions & { chunkBytes?: number } = {},
): void {
  runStorageConformance(
    name,
    async () => {
      const clusterId = freshClusterId("idb");
      const open = (): Promise<IndexedDbStorage> => IndexedDbStorage.open({ clusterId, nodeId: "n1", env, chunkBytes: options.chunkBytes });
      return {
        storage: await open(),
        reopen: open,
        cleanup: () => promisifyRequest(env.indexedDB.deleteDatabase(databaseName(clusterId, "n1"))).then(() => undefined),
      };
    },
    harness,
    options,
  );
}

/** Every case gets a channel of its own; `BroadcastChannel` defaults to the global one. */
export function runBroadcastChannelTransportConformance(
  name: string,
  harness: ConformanceHarness,
  options: TransportConformanceOptions & { BroadcastChannel?: typeof BroadcastChannel } = {},
): void {
  runTransportConformance(
    name,
    async (ids) => {
      const clusterId = freshClusterId("bc");
      const transports = new Map(ids.map((nodeId) => [nodeId, new BroadcastChannelTransport({ clusterId, nodeId, BroadcastChannel: options.BroadcastChannel })]));
      return { transports, cleanup: async () => {} };
    },
    harness,
    options,
  );
}
