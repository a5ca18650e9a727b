// The Worker that runs this tab's members: the built-in KV state machine, the cluster and ids
// taken from the Worker's URL (`worker.js?cluster=demo&ids=t1,t2,t3`).
import { kvTabOptionsFromUrl, startKvTabWorker } from "../../adapters/browser/index.ts";

await startKvTabWorker(kvTabOptionsFromUrl(self.location.search));
