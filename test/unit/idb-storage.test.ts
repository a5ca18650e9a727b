import { IDBKeyRange, indexedDB } from "fake-indexeddb";
import { describe, it } from "vitest";
import { runIndexedDbStorageConformance } from "../../adapters/browser/idb-conformance.ts";

const env = { indexedDB, IDBKeyRange };

runIndexedDbStorageConformance("IndexedDbStorage on fake-indexeddb", env, { describe, it });
// Small chunks: a 1 MiB snapshot becomes 257 chunks, so chunk order and the last short chunk count.
runIndexedDbStorageConformance("IndexedDbStorage on fake-indexeddb, 4 KiB snapshot chunks", env, { describe, it }, { chunkBytes: 4096, manyBatches: 200 });
