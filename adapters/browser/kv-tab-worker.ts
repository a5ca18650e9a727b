/**
 * The Worker of a KV tab cluster: a TabCluster of KvStateMachine members with the KV queries,
 * served to its page. An application with its own state machine writes its own (a few lines, see
 * ./tab-worker.ts); this one is what examples/browser-tabs and the Chromium tests run.
 */
import { KvStateMachine, type KvResult } from "../../src/kv/kv.ts";
import type { StateMachine } from "../../src/statemachine.ts";
import { TabCluster, type TabClusterOptions } from "./tab-cluster.ts";
import { kvQueries } from "./tab-kv.ts";
import { serveTabCluster } from "./tab-worker.ts";

/** Settings a page passes in its Worker's URL: `worker.js?cluster=demo&ids=t1,t2,t3`. */
export function kvTabOptionsFromUrl(search: string): Pick<TabClusterOptions<KvResult>, "clusterId" | "ids"> {
  const params = new URLSearchParams(search);
  const ids = params.get("ids");
  return { clusterId: params.get("cluster") || "demo", ids: ids ? ids.split(",").filter((id) => id !== "") : undefined };
}

/** Starts the KV TabCluster in this Worker and answers the page. Returns the cluster (for devtools). */
export async function startKvTabWorker(options: Omit<TabClusterOptions<KvResult>, "stateMachine" | "queries">): Promise<TabCluster<KvResult>> {
  const cluster = new TabCluster<KvResult>({
    ...options,
    stateMachine: () => new KvStateMachine(),
    queries: kvQueries as Record<string, (sm: StateMachine<KvResult>, arg: unknown) => unknown>,
  });
  await serveTabCluster(cluster);
  return cluster;
}
