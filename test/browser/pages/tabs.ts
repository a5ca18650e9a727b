/**
 * The tab-cluster test page: starts tabs-worker.js (same query) in a dedicated Worker and exposes
 * the documented page handle, `globalThis.meshraftTabs` (adapters/browser/tab-kv.ts).
 */
import { tabsKvHandle } from "../../../adapters/browser/tab-kv.ts";
import { connectTabCluster } from "../../../adapters/browser/tab-worker.ts";
import type { KvResult } from "../../../src/kv/kv.ts";

const worker = new Worker(`/tabs-worker.js${location.search}`, { type: "module" });
(globalThis as unknown as { meshraftTabs: unknown }).meshraftTabs = tabsKvHandle(connectTabCluster<KvResult>(worker));
