/**
 * The tab-cluster test page: starts tabs-worker.js (same query) in a dedicated Worker and exposes
 * the documented page handle, `globalThis.meshraftTabs`, with the library's installTabsHandle
 * (adapters/browser/tab-page.ts).
 *
 * With `?gate=<name>` the Worker starts only once a message arrives on the BroadcastChannel
 * `<name>`: pages opened beforehand then start at the same instant. `globalThis.meshraftTest.held()`
 * answers the Worker's record of the ids it ran (see tabs-worker.ts).
 */
import { installTabsHandle } from "../../../adapters/browser/tab-page.ts";
import type { HeldInterval } from "./tabs-worker.ts";

const q = new URLSearchParams(location.search);
const gate = q.get("gate");

async function start(): Promise<void> {
  if (gate !== null) {
    const channel = new BroadcastChannel(gate);
    await new Promise<void>((resolve) => (channel.onmessage = () => resolve()));
    channel.close();
  }
  const worker = new Worker(`/tabs-worker.js${location.search}`, { type: "module" });
  let tids = 0;
  const waiting = new Map<number, (intervals: HeldInterval[]) => void>();
  worker.addEventListener("message", (event: MessageEvent) => {
    const m = event.data as { test?: string; tid?: number; intervals?: HeldInterval[] };
    if (m?.test === "held") waiting.get(m.tid!)?.(m.intervals!);
  });
  (globalThis as unknown as { meshraftTest: unknown }).meshraftTest = {
    held: (): Promise<HeldInterval[]> =>
      new Promise((resolve) => {
        const tid = ++tids;
        waiting.set(tid, resolve);
        worker.postMessage({ test: "held", tid });
      }),
  };
  installTabsHandle(worker);
}

(globalThis as unknown as { meshraftGate: unknown }).meshraftGate = gate;
void start();
