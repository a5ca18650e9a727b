/**
 * A TabCluster served to its page from a dedicated Worker, and the page's end of it.
 *
 * Members run in the Worker: browsers throttle a hidden tab's main-thread timers (Chrome: once a
 * second, later once a minute), which would make a hidden leader miss its heartbeats; a dedicated
 * Worker's timers are not throttled that way, and a Worker has IndexedDB, BroadcastChannel and Web
 * Locks. The page talks to its Worker with postMessage:
 *
 *   page -> worker   { rid, op: "status" | "propose" | "read" | "stop" | "leaving" | "returned", ... }
 *   worker -> page   { rid, ok: true, value } | { rid, ok: false, code, message }
 *
 * On the page's `pagehide` (closed, reloaded, navigated away, or put in the back/forward cache)
 * the page sends "leaving": the Worker's TabCluster tells the other tabs at once (TabCluster.leaving),
 * so a failover does not wait for the departed leader's tab to time out; `pageshow` from the
 * back/forward cache sends "returned". (`beforeunload` is not used: a page may cancel it, and
 * mobile browsers do not fire it.)
 *
 * The Worker file is the application's (it picks the state machine and queries):
 *
 *   // worker.ts
 *   serveTabCluster(new TabCluster({ clusterId: "notes", stateMachine: () => new MyMachine(), queries }));
 *
 *   // page.ts
 *   const tabs = connectTabCluster(new Worker("./worker.js", { type: "module" }));
 *   await tabs.propose(bytes, { retrySafe: true });
 */
import { MeshraftError } from "../../src/errors.ts";
import type { TabCluster, TabClusterStatus, TabProposeResult } from "./tab-cluster.ts";

type PageRequest =
  | { rid: number; op: "status" }
  | { rid: number; op: "stop" }
  | { rid: number; op: "leaving" }
  | { rid: number; op: "returned" }
  | { rid: number; op: "propose"; data: Uint8Array; retrySafe: boolean }
  | { rid: number; op: "read"; name: string; arg: unknown };

type WorkerAnswer = { rid: number; ok: true; value: unknown } | { rid: number; ok: false; code: string; message: string };

/** The part of a Worker's global scope (or a MessagePort) used here. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
}

/**
 * Starts `cluster` and answers its page's requests. Resolves once the cluster started (it then
 * runs the free ids, or waits for one as a client).
 */
export async function serveTabCluster<Result>(cluster: TabCluster<Result>, scope: MessageEndpoint = globalThis as unknown as MessageEndpoint): Promise<void> {
  scope.addEventListener("message", (event: MessageEvent) => {
    const req = event.data as PageRequest;
    if (typeof req !== "object" || req === null || typeof req.rid !== "number") return;
    const work = perform(cluster, req);
    work.then(
      (value) => scope.postMessage({ rid: req.rid, ok: true, value } satisfies WorkerAnswer),
      (error: unknown) => {
        const code = error instanceof MeshraftError ? error.code : "INTERNAL";
        scope.postMessage({ rid: req.rid, ok: false, code, message: error instanceof Error ? error.message : String(error) } satisfies WorkerAnswer);
      },
    );
  });
  await cluster.start();
}

function perform<Result>(cluster: TabCluster<Result>, req: PageRequest): Promise<unknown> {
  switch (req.op) {
    case "status":
      return Promise.resolve(cluster.status());
    case "stop":
      return cluster.stop().then(() => undefined);
    case "leaving":
      return Promise.resolve(cluster.leaving());
    case "returned":
      return Promise.resolve(cluster.returned());
    case "propose":
      return cluster.propose(req.data, { retrySafe: req.retrySafe });
    case "read":
      return cluster.read(req.name, req.arg);
    default:
      return Promise.reject(new MeshraftError("BAD_REQUEST", `unknown operation ${JSON.stringify((req as { op: unknown }).op)}`));
  }
}

/** The page's handle on its Worker's TabCluster. */
export interface TabClusterConnection<Result = unknown> {
  status(): Promise<TabClusterStatus>;
  /** As TabCluster.propose. */
  propose(data: Uint8Array, options?: { retrySafe?: boolean }): Promise<TabProposeResult<Result>>;
  /** As TabCluster.read. */
  read(name: string, arg?: unknown): Promise<unknown>;
  /**
   * Stops the Worker's members, each after its save in flight, and releases their ids to other
   * tabs (TabCluster.stop); then `worker.terminate()` is safe. Closing the page does not need it.
   */
  stop(): Promise<void>;
}

/** A failure from the Worker: `code` is the HTTP API's code. */
export class TabRequestError extends MeshraftError {}

/** Where the page's `pagehide` / `pageshow` events come from (a Window). */
export interface PageEvents {
  addEventListener(type: "pagehide" | "pageshow", listener: (event: Event & { persisted?: boolean }) => void): void;
}

/**
 * Talks to a Worker that runs `serveTabCluster`. `page`: where to hear `pagehide` and `pageshow`
 * (default: the global scope when it is a page), to tell the other tabs at once that this one is
 * going away; `false` for none.
 */
export function connectTabCluster<Result = unknown>(worker: Pick<Worker, "postMessage" | "addEventListener">, page?: PageEvents | false): TabClusterConnection<Result> {
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  worker.addEventListener("message", (event: MessageEvent) => {
    const a = event.data as WorkerAnswer;
    const p = typeof a === "object" && a !== null ? pending.get(a.rid) : undefined;
    if (!p) return;
    pending.delete(a.rid);
    if (a.ok) p.resolve(a.value);
    else p.reject(new TabRequestError(a.code, a.message));
  });
  worker.addEventListener("error", (event: Event) => {
    const message = (event as ErrorEvent).message ?? "the worker failed";
    for (const p of pending.values()) p.reject(new TabRequestError("INTERNAL", message));
    pending.clear();
  });
  const ask = (req: Record<string, unknown>): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const rid = ++next;
      pending.set(rid, { resolve, reject });
      worker.postMessage({ rid, ...req });
    });
  const events = page ?? ((globalThis as { document?: unknown }).document !== undefined ? (globalThis as unknown as PageEvents) : false);
  if (events) {
    // Not awaited: the page may be gone before the answer comes.
    events.addEventListener("pagehide", () => void ask({ op: "leaving" }).catch(() => {}));
    events.addEventListener("pageshow", (event) => {
      if (event.persisted) void ask({ op: "returned" }).catch(() => {});
    });
  }
  return {
    status: () => ask({ op: "status" }) as Promise<TabClusterStatus>,
    propose: (data, options = {}) => ask({ op: "propose", data, retrySafe: options.retrySafe ?? false }) as Promise<TabProposeResult<Result>>,
    read: (name, arg) => ask({ op: "read", name, arg }),
    stop: () => ask({ op: "stop" }).then(() => undefined),
  };
}
