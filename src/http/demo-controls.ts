/**
 * The local demo's controls (issue 14): what `meshraft demo` lets a newcomer do to its own
 * cluster from the dashboard, so an election, a partition and a recovery happen in the first
 * minute. The demo supervisor (src/runtime/cli.ts) serves these routes on a port of its own
 * through its runtime (adapters/node/demo-supervisor.ts) and drives its children through the
 * runtime's ChildMember (signals, and a message that makes a member's mesh refuse a peer,
 * adapters/node/demo-member.ts); the members tell the page where the controls are
 * (`DashboardStatus.demo`, from `setDemoControlUrl`).
 *
 *   GET  /demo                     DemoState
 *   POST /demo/kill     {id}       SIGKILL the member's process
 *   POST /demo/restart  {id}       start it again from its data directory
 *   POST /demo/pause    {id}       SIGSTOP (a frozen process: it holds its sockets, answers nothing)
 *   POST /demo/resume   {id}       SIGCONT
 *   POST /demo/cut      {a, b}     both members refuse each other in the mesh (a partition)
 *   POST /demo/heal     {a, b}     the link may open again
 *   POST /demo/load     {rate}     writes per second from the built-in load generator (0 stops)
 *
 * With an admin token every route wants `Authorization: Bearer <token>` (the page sends the
 * admin token it holds for the members' /admin routes); CORS admits the members' own origins only.
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import { MeshraftClient } from "../client/client.ts";
import { realClock, type Clock } from "../clock.ts";
import type { ChildMember } from "../runtime/cli.ts";
import { authorized } from "./app.ts";

export type DemoMemberState = "running" | "paused" | "killed";

/** What the supervisor does to member processes; the adapter implements it with its runtime. */
export interface DemoProcesses {
  readonly ids: readonly string[];
  urlOf(id: string): string;
  state(id: string): DemoMemberState;
  kill(id: string): void;
  restart(id: string): void;
  pause(id: string): void;
  resume(id: string): void;
  /** Tell member `id` to refuse (or admit again) `peer` in its mesh (a member started later reads its cuts from the environment). */
  refuse(id: string, peer: string, refused: boolean): void;
}

export interface DemoLoadState {
  /** Writes per second asked for; 0: stopped. */
  rate: number;
  ok: number;
  failed: number;
  /** Writes whose outcome the client could not learn (OUTCOME_UNKNOWN, a timeout). */
  unknown: number;
}

export interface DemoState {
  members: { id: string; url: string; state: DemoMemberState }[];
  /** Links cut, each pair once, ids in order. */
  cuts: [string, string][];
  load: DemoLoadState;
}

/** The demo's own bookkeeping over `DemoProcesses`: which links are cut, and the load generator. */
export class DemoControls {
  private readonly cutPairs = new Set<string>();
  readonly load: DemoLoad;

  constructor(
    readonly processes: DemoProcesses,
    options: { token?: string; clock?: Clock } = {},
  ) {
    this.load = new DemoLoad(processes.ids.map((id) => processes.urlOf(id)), options);
  }

  state(): DemoState {
    const p = this.processes;
    return {
      members: p.ids.map((id) => ({ id, url: p.urlOf(id), state: p.state(id) })),
      cuts: [...this.cutPairs].map((k) => k.split(" ") as [string, string]),
      load: this.load.state(),
    };
  }

  /** The peers member `id` must refuse: a restarted member learns them at start (MESHRAFT_DEMO_REFUSE). */
  cutPeersOf(id: string): string[] {
    return this.state().cuts.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
  }

  cut(a: string, b: string, cut: boolean): void {
    const key = a < b ? `${a} ${b}` : `${b} ${a}`;
    if (cut) this.cutPairs.add(key);
    else this.cutPairs.delete(key);
    this.processes.refuse(a, b, cut);
    this.processes.refuse(b, a, cut);
  }

  stop(): void {
    this.load.setRate(0);
  }
}

/** Most writes the built-in generator offers per second, and most it keeps in flight. */
const MAX_RATE = 500;
const MAX_IN_FLIGHT = 32;

/**
 * Writes at a steady rate through a MeshraftClient (which follows the leader), over a small key
 * space so the log grows but the state stays small. Ticks every 100 ms; writes the tick's share.
 */
export class DemoLoad {
  private rate = 0;
  private inFlight = 0;
  private seq = 0;
  private credit = 0;
  private cancel: (() => void) | null = null;
  private readonly counts = { ok: 0, failed: 0, unknown: 0 };
  private readonly client: MeshraftClient;
  private readonly clock: Clock;

  constructor(urls: string[], options: { token?: string; clock?: Clock } = {}) {
    this.client = new MeshraftClient({ urls, token: options.token, clientId: "demo-load", timeoutMs: 2_000, retryBudgetMs: 3_000 });
    this.clock = options.clock ?? realClock;
  }

  state(): DemoLoadState {
    return { rate: this.rate, ...this.counts };
  }

  setRate(rate: number): void {
    if (!(Number.isFinite(rate) && rate >= 0 && rate <= MAX_RATE)) throw new RangeError(`rate must be 0 to ${MAX_RATE} writes per second, got ${rate}`);
    this.rate = rate;
    this.credit = 0;
    if (rate === 0) {
      this.cancel?.();
      this.cancel = null;
    } else if (this.cancel === null) this.schedule();
  }

  private schedule(): void {
    this.cancel = this.clock.setTimer(100, () => {
      this.tick();
      if (this.rate > 0) this.schedule();
    });
  }

  private tick(): void {
    this.credit = Math.min(this.credit + this.rate / 10, MAX_IN_FLIGHT);
    while (this.credit >= 1 && this.inFlight < MAX_IN_FLIGHT) {
      this.credit--;
      this.inFlight++;
      const n = this.seq++;
      this.client.put(`demo-load/${n % 64}`, String(n)).then(
        () => this.counts.ok++,
        (err: { code?: string }) => (err?.code === "OUTCOME_UNKNOWN" ? this.counts.unknown++ : this.counts.failed++),
      ).finally(() => this.inFlight--);
    }
  }
}

interface ControlsAppOptions {
  controls: DemoControls;
  /** When set, every route wants it as a bearer token. */
  adminToken?: string;
  /** Origins whose pages may call (the members' dashboards). */
  origins: string[];
}

/** The controls' routes (see the header). Serve them with the runtime's server. */
export function createDemoControlApp(o: ControlsAppOptions): Hono {
  const app = new Hono();
  const { controls } = o;
  app.use("*", cors({ origin: (origin) => (o.origins.includes(origin) ? origin : null), allowHeaders: ["Authorization", "Content-Type"], allowMethods: ["GET", "POST"] }));
  app.use("*", async (c, next) => {
    if (o.adminToken !== undefined && !authorized(c.req.header("Authorization"), o.adminToken)) {
      return c.json({ error: { code: "UNAUTHORIZED", message: "the demo controls want the admin token (Authorization: Bearer <token>)" } }, 401);
    }
    await next();
  });
  app.get("/demo", (c) => c.json(controls.state()));
  const member = (c: Context, id: unknown): string => {
    if (typeof id !== "string" || !controls.processes.ids.includes(id)) throw new DemoRequestError(`no demo member ${JSON.stringify(id)}`);
    return id;
  };
  const body = async (c: Context): Promise<Record<string, unknown>> => {
    try {
      const b = await c.req.json();
      if (b && typeof b === "object") return b as Record<string, unknown>;
    } catch {
      // below
    }
    throw new DemoRequestError("the body must be a JSON object");
  };
  const action = (path: string, run: (b: Record<string, unknown>, c: Context) => void): void => {
    app.post(path, async (c) => {
      run(await body(c), c);
      return c.json(controls.state());
    });
  };
  action("/demo/kill", (b, c) => controls.processes.kill(member(c, b.id)));
  action("/demo/restart", (b, c) => controls.processes.restart(member(c, b.id)));
  action("/demo/pause", (b, c) => controls.processes.pause(member(c, b.id)));
  action("/demo/resume", (b, c) => controls.processes.resume(member(c, b.id)));
  const pair = (b: Record<string, unknown>, c: Context): [string, string] => {
    const a = member(c, b.a);
    const other = member(c, b.b);
    if (a === other) throw new DemoRequestError("a link joins two different members");
    return [a, other];
  };
  action("/demo/cut", (b, c) => controls.cut(...pair(b, c), true));
  action("/demo/heal", (b, c) => controls.cut(...pair(b, c), false));
  action("/demo/load", (b) => {
    try {
      controls.load.setRate(Number(b.rate));
    } catch (e) {
      throw new DemoRequestError((e as Error).message);
    }
  });
  app.onError((err, c) => {
    if (err instanceof DemoRequestError) return c.json({ error: { code: "BAD_REQUEST", message: err.message } }, 400);
    return c.json({ error: { code: "INTERNAL", message: err.message } }, 500);
  });
  return app;
}

class DemoRequestError extends Error {}

/** A demo's DemoProcesses over the runtime's child processes (ChildMember). */
export class ChildDemoProcesses implements DemoProcesses {
  private readonly paused = new Set<string>();
  /** Killed on request, or exited: drawn killed at once, before its process has gone. */
  private readonly gone = new Set<ChildMember>();

  constructor(
    readonly ids: readonly string[],
    private readonly o: {
      urlOf: (id: string) => string;
      /** The member's current process. */
      child: (id: string) => ChildMember | undefined;
      /** Starts the member again, on the same data directory. */
      respawn: (id: string) => void;
    },
  ) {}

  /** The supervisor started `child` for a member: watch for its exit. */
  started(child: ChildMember): void {
    void child.exited.then(() => this.gone.add(child));
  }

  urlOf(id: string): string {
    return this.o.urlOf(id);
  }

  private running(id: string): ChildMember | null {
    const c = this.o.child(id);
    return c && !this.gone.has(c) ? c : null;
  }

  state(id: string): DemoMemberState {
    if (!this.running(id)) return "killed";
    return this.paused.has(id) ? "paused" : "running";
  }

  kill(id: string): void {
    const c = this.running(id);
    if (!c) return;
    c.kill("SIGKILL");
    this.gone.add(c);
    this.paused.delete(id);
  }

  restart(id: string): void {
    const c = this.o.child(id);
    this.kill(id);
    // Once the old process has gone: its port and data directory are free again.
    if (c) void c.exited.then(() => this.o.child(id) === c && this.o.respawn(id));
    else this.o.respawn(id);
  }

  pause(id: string): void {
    const c = this.running(id);
    if (!c?.pause || this.paused.has(id)) return;
    c.pause();
    this.paused.add(id);
  }

  resume(id: string): void {
    const c = this.running(id);
    this.paused.delete(id);
    c?.resume?.();
  }

  refuse(id: string, peer: string, refused: boolean): void {
    // A paused member reads it when resumed; a killed one learns it again at restart (DemoControls).
    this.running(id)?.send?.({ type: "refuse", peer, refused });
  }

  /** Before the supervisor stops its children: a stopped process would not see SIGTERM. */
  resumeAll(): void {
    for (const id of [...this.paused]) this.resume(id);
  }
}

/** Serves a hono app on a free port of 127.0.0.1 (the runtime's server). */
export type ServeDemoControls = (app: Hono) => Promise<{ url: string; close(): Promise<void> }>;

export interface DemoSupervisor {
  /** Where the controls are served; the members announce it to the page. */
  url: string;
  processes: ChildDemoProcesses;
  /** The environment member `id` starts with: where the controls are, which peers it has cut. */
  envFor(id: string): Record<string, string>;
  /** Stops the load, resumes paused members (so they can stop), closes the server. */
  close(): Promise<void>;
}

/** The controls of the demo whose members are `ids`, served through `serve`. */
export async function startDemoSupervisor(o: {
  ids: string[];
  urlOf: (id: string) => string;
  child: (id: string) => ChildMember | undefined;
  respawn: (id: string) => void;
  /** The admin token the members take; the controls want it too. */
  adminToken?: string;
  serve: ServeDemoControls;
}): Promise<DemoSupervisor> {
  const processes = new ChildDemoProcesses(o.ids, o);
  const controls = new DemoControls(processes);
  const origins = o.ids.map((id) => new URL(o.urlOf(id)).origin);
  const server = await o.serve(createDemoControlApp({ controls, adminToken: o.adminToken, origins }));
  return {
    url: server.url,
    processes,
    envFor: (id) => ({ MESHRAFT_DEMO_CONTROL: server.url, MESHRAFT_DEMO_REFUSE: controls.cutPeersOf(id).join(",") }),
    close: async () => {
      controls.stop();
      processes.resumeAll();
      await server.close();
    },
  };
}
