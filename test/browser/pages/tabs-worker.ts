/**
 * Worker script of the tab-cluster test page: a TabCluster running the KV state machine, served to
 * its page. Its own URL's query says which cluster (`cluster`), and optionally `ids` (comma-separated).
 */
import { TabCluster } from "../../../adapters/browser/tab-cluster.ts";
import { kvQueries } from "../../../adapters/browser/tab-kv.ts";
import { serveTabCluster } from "../../../adapters/browser/tab-worker.ts";
import { type KvResult, KvStateMachine } from "../../../src/kv/kv.ts";
import type { StateMachine } from "../../../src/statemachine.ts";

const q = new URLSearchParams(self.location.search);
const ids = q.get("ids");

void serveTabCluster(
  new TabCluster<KvResult>({
    clusterId: q.get("cluster") ?? "tests",
    ids: ids === null ? undefined : ids.split(","),
    stateMachine: () => new KvStateMachine(),
    queries: kvQueries as Record<string, (sm: StateMachine<KvResult>, arg: unknown) => unknown>,
  }),
);
