/**
 * Real meshraft processes on 127.0.0.1, started with the CLI exactly as a user would
 * (`meshraft start --id ... --listen ... --data-dir ... --peer ...`), each with its own data
 * directory. A member runs either `node --import tsx adapters/node/cli.ts start ...` or
 * `deno run <narrow permissions> adapters/deno/cli.ts start ...` (the deno of node_modules) with
 * the same flags; Deno members get only what a member needs: the network on 127.0.0.1, read and
 * write on this cluster's data directory, the host name. Tests kill (SIGKILL), pause
 * (SIGSTOP/SIGCONT) and restart them, by their own PIDs only. Every wait is bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "../..");
export const denoBin: string = join(root, "node_modules/.bin/deno");
const nodeCli = join(root, "adapters/node/cli.ts");
const denoCli = join(root, "adapters/deno/cli.ts");

export type Runtime = "node" | "deno";

/** `deno run` with what a member needs and nothing more (`readPaths`: more it may read, such as TLS files). */
export function denoRunArgs(dataRoot: string, readPaths: string[] = []): string[] {
  const read = [dataRoot, ...readPaths].join(",");
  return ["run", "--cached-only", "--no-prompt", "--allow-net=127.0.0.1", `--allow-read=${read}`, `--allow-write=${dataRoot}`, "--allow-sys=hostname"];
}

/** Ports the OS says are free right now (bind to 0, read, release). */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  for (const s of servers) {
    ports.push((s.address() as { port: number }).port);
    await new Promise<void>((r) => s.close(() => r()));
  }
  return ports;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A port p such that p, p+1, ..., p+n-1 are all free right now. */
export async function consecutiveFreePorts(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [p] = await freePorts(1);
    if (p + n - 1 > 65535) continue;
    let ok = true;
    for (let i = 1; i < n && ok; i++) ok = await canBind(p + i);
    if (ok) return p;
  }
  throw new Error(`found no ${n} consecutive free ports on 127.0.0.1`);
}

export interface StatusBody {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
}

export interface MemberSpec {
  /** Default "node". */
  runtime?: Runtime;
  /** Deno members only: keep the state in Deno KV (a file in the data root) with this lease. */
  kvLeaseMs?: number;
  /** Extra `start` flags of this member. */
  extraArgs?: string[];
}

export interface ProcessClusterOptions {
  /** How many Node members n1..nN (default 3); ignored when `members` is given. */
  nodes?: number;
  /** The members by id, e.g. `{ n1: { runtime: "node" }, n2: { runtime: "deno" } }`. */
  members?: Record<string, MemberSpec>;
  secret?: string;
  /** Extra CLI flags per node. */
  extraArgs?: (id: string) => string[];
  electionTimeoutMs?: number;
  /**
   * How many of the nodes form the initial cluster (default all); `start` spawns only those,
   * and the others start later with `spawn(id)`, joining through `--join` the initial ones.
   */
  initial?: number;
  /** Members of the initial cluster that `start` does not spawn (start them with `spawn(id)`). */
  later?: string[];
  /** "https" for members serving TLS (their `--tls-*` flags in `extraArgs`). Default "http". */
  scheme?: "http" | "https";
  /** What `status` calls members with (for https: one trusting their CA). Default the global fetch. */
  fetch?: typeof fetch;
  /** Files Deno members may read besides their data (TLS certificates and keys). */
  readPaths?: string[];
}

export class ProcessCluster {
  readonly ids: string[];
  readonly dataRoot: string;
  readonly ports: Map<string, number> = new Map();
  readonly procs: Map<string, ChildProcess> = new Map();
  readonly logs: Map<string, string[]> = new Map();
  readonly specs: Map<string, MemberSpec>;
  private readonly opts: ProcessClusterOptions;

  private constructor(specs: Record<string, MemberSpec>, ports: number[], opts: ProcessClusterOptions) {
    this.ids = Object.keys(specs);
    this.specs = new Map(Object.entries(specs));
    this.opts = opts;
    this.dataRoot = mkdtempSync(join(tmpdir(), "meshraft-it-"));
    this.ids.forEach((id, i) => {
      this.ports.set(id, ports[i]);
      this.logs.set(id, []);
    });
  }

  static async start(opts: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const specs = opts.members ?? Object.fromEntries(Array.from({ length: opts.nodes ?? 3 }, (_, i) => [`n${i + 1}`, {}]));
    const c = new ProcessCluster(specs, await freePorts(Object.keys(specs).length), opts);
    for (const id of c.initialIds()) if (!opts.later?.includes(id)) c.spawn(id);
    return c;
  }

  private initialIds(): string[] {
    return this.ids.slice(0, this.opts.initial ?? this.ids.length);
  }

  url(id: string): string {
    return `${this.opts.scheme ?? "http"}://127.0.0.1:${this.ports.get(id)}`;
  }

  urls(): string[] {
    return this.ids.map((id) => this.url(id));
  }

  dataDir(id: string): string {
    return join(this.dataRoot, id);
  }

  kvPath(id: string): string {
    return join(this.dataRoot, `${id}.kv.sqlite`);
  }

  runtime(id: string): Runtime {
    return this.specs.get(id)!.runtime ?? "node";
  }

  /** The `start` arguments of a member, as a user would type them. */
  startArgs(id: string, listenPort: number = this.ports.get(id)!): string[] {
    const spec = this.specs.get(id)!;
    const args = ["start", "--id", id, "--listen", `127.0.0.1:${listenPort}`];
    if (spec.kvLeaseMs !== undefined) args.push("--kv", this.kvPath(id), "--kv-lease-ms", String(spec.kvLeaseMs));
    else args.push("--data-dir", this.dataDir(id));
    const initial = this.initialIds();
    if (initial.includes(id)) {
      for (const p of initial) if (p !== id) args.push("--peer", `${p}=${this.url(p)}`);
    } else {
      for (const p of initial) args.push("--join", this.url(p));
    }
    if (this.opts.secret) args.push("--secret", this.opts.secret);
    if (this.opts.electionTimeoutMs) args.push("--election-timeout-ms", String(this.opts.electionTimeoutMs));
    args.push(...(this.opts.extraArgs?.(id) ?? []), ...(spec.extraArgs ?? []));
    return args;
  }

  /** The command line of a member process (one process per member, so its PID is the member's). */
  command(id: string, args: string[] = this.startArgs(id)): [string, string[]] {
    return this.runtime(id) === "deno"
      ? [denoBin, [...denoRunArgs(this.dataRoot, this.opts.readPaths), denoCli, ...args]]
      : [process.execPath, ["--import", "tsx", nodeCli, ...args]];
  }

  spawn(id: string, args?: string[]): ChildProcess {
    const [cmd, argv] = this.command(id, args);
    const child = spawn(cmd, argv, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const log = this.logs.get(id)!;
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString().split("\n")) if (line) log.push(line);
      if (log.length > 5000) log.splice(0, log.length - 5000);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    this.procs.set(id, child);
    return child;
  }

  alive(id: string): boolean {
    const p = this.procs.get(id);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Send `signal` to the node's own process (and only it). */
  signal(id: string, signal: NodeJS.Signals): void {
    const p = this.procs.get(id);
    if (p?.pid && this.alive(id)) process.kill(p.pid, signal);
  }

  async kill(id: string): Promise<void> {
    const p = this.procs.get(id);
    if (!p || !this.alive(id)) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(p.pid!, "SIGKILL");
    await exited;
  }

  /**
   * SIGKILL and start again on the same data. A Deno KV member's lease outlives a SIGKILL, so its
   * restart waits until the lease has run out (a supervisor would retry until it may start).
   */
  async restart(id: string): Promise<void> {
    await this.kill(id);
    const lease = this.specs.get(id)!.kvLeaseMs;
    if (lease !== undefined) await sleep(lease + 250);
    this.logs.set(id, []);
    this.spawn(id);
  }

  async status(id: string): Promise<StatusBody | null> {
    try {
      const res = await (this.opts.fetch ?? fetch)(`${this.url(id)}/status`, { signal: AbortSignal.timeout(1000) });
      return (await res.json()) as StatusBody;
    } catch {
      return null;
    }
  }

  /** Wait until some live node is leader and a majority of members agree on it. */
  async waitForLeader(timeoutMs = 40_000, among: string[] = this.ids): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(among.map((id) => this.status(id)));
      const leaders = statuses.filter((s): s is StatusBody => s !== null && s.role === "leader");
      if (leaders.length > 0) {
        const top = leaders.sort((a, b) => b.term - a.term)[0];
        const agree = statuses.filter((s) => s && s.leader === top.id && s.term === top.term).length;
        if (agree > this.ids.length / 2) return top.id;
      }
      await sleep(100);
    }
    throw new Error(`no leader within ${timeoutMs} ms among ${among.join(",")}\n${this.tail()}`);
  }

  /** A member other than `leader` whose /status names `leader` as the leader. */
  async followerOf(leader: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const others = this.ids.filter((id) => id !== leader);
    while (Date.now() < deadline) {
      const statuses = await Promise.all(others.map((id) => this.status(id)));
      const i = statuses.findIndex((s) => s?.leader === leader);
      if (i >= 0) return others[i];
      await sleep(100);
    }
    throw new Error(`no follower of ${leader} within ${timeoutMs} ms\n${this.tail()}`);
  }

  /** Wait until `id` has applied everything `leader` has committed. */
  async waitForCatchUp(id: string, leader: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [l, f] = await Promise.all([this.status(leader), this.status(id)]);
      if (l && f && l.commitIndex > 0 && f.appliedIndex >= l.commitIndex) return;
      await sleep(100);
    }
    throw new Error(`${id} did not catch up with ${leader} within ${timeoutMs} ms\n${this.tail()}`);
  }

  /** The last log lines of every node, for failure messages. */
  tail(lines = 15): string {
    return this.ids.map((id) => `--- ${id} (${this.runtime(id)})\n${this.logs.get(id)!.slice(-lines).join("\n")}`).join("\n");
  }

  async stop(): Promise<void> {
    for (const id of this.ids) {
      this.signal(id, "SIGCONT");
      await this.kill(id);
    }
    rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
