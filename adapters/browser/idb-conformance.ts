/**
 * The storage conformance suite against IndexedDbStorage in a given IndexedDB: fake-indexeddb
 * under vitest, the page's own `indexedDB` in Chromium. Every case gets a database of its own,
 * deleted when the case ends.
 */
import { type ConformanceHarness, type ConformanceOptions, runStorageConformance } from "../../src/storage/conformance.ts";
import { promisifyRequest } from "idb-keyval";
import { databaseName, type IndexedDbEnvironment, IndexedDbStorage } from "./idb-storage.ts";

let cases = 0;

export function runIndexedDbStorageConformance(
  name: string,
  env: IndexedDbEnvironment,
  harness: ConformanceHarness,
  options: ConformanceOptions & { chunkBytes?: number } = {},
): void {
  runStorageConformance(
    name,
    async () => {
      const clusterId = `conformance-${Date.now().toString(36)}-${++cases}`;
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
