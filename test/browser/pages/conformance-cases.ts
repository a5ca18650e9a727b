/**
 * The conformance cases run in Chromium, registered the same way in the page (where they run) and
 * in vitest (which only needs their names, to report each as a test case of its own).
 */
import { runBroadcastChannelTransportConformance, runIndexedDbStorageConformance } from "../../../adapters/browser/conformance.ts";
import type { IndexedDbEnvironment } from "../../../adapters/browser/idb-storage.ts";
import type { ConformanceHarness } from "../../../src/storage/conformance.ts";

export type CaseBody = () => Promise<void>;

/** Registers every case; `env` is only read when a case runs. Returns the cases by full name. */
export function registerCases(env: () => IndexedDbEnvironment): Map<string, CaseBody> {
  const cases = new Map<string, CaseBody>();
  const path: string[] = [];
  const harness: ConformanceHarness = {
    describe(name, fn) {
      path.push(name);
      try {
        fn();
      } finally {
        path.pop();
      }
    },
    it(name, fn) {
      const full = [...path, name].join(" > ");
      if (cases.has(full)) throw new Error(`two conformance cases are named ${full}`);
      cases.set(full, fn);
    },
  };
  // The environment is resolved when a case runs, so registering needs no IndexedDB.
  const lazyEnv: IndexedDbEnvironment = {
    get indexedDB() {
      return env().indexedDB;
    },
    get IDBKeyRange() {
      return env().IDBKeyRange;
    },
  };
  runIndexedDbStorageConformance("IndexedDbStorage in Chromium", lazyEnv, harness);
  runIndexedDbStorageConformance("IndexedDbStorage in Chromium, 4 KiB snapshot chunks", lazyEnv, harness, { chunkBytes: 4096, manyBatches: 200 });
  runBroadcastChannelTransportConformance("BroadcastChannelTransport in Chromium", harness);
  return cases;
}
