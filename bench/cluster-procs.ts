/**
 * The processes of the cluster benchmark: 3 meshraft members started with the real CLI, or a
 * 3-member etcd, all on 127.0.0.1 with their data in one temp directory. Every process started
 * here is tracked by its own PID and only those are signalled; `killEverything()` runs on exit,
 * Ctrl-C and errors, and removes the temp directories too.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { freePorts } from "../test/integration/process-cluster.ts";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { memberView, type HttpClient, type MemberView, type System } from "./cluster-http.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "adapters/node/cli.ts");

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Cleanup: only what this process started
// ---------------------------------------------------------------------------------------------

const started = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** Synchronous, so it also works from an `exit` handler. */
export function killEverything(): void {
  for (const c of started) {
    if (c.pid && alive(c)) {
      try {
        process.kill(c.pid, "SIGCONT");
        process.kill(c.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  started.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** Ends a child: SIGTERM, then SIGKILL after `graceMs`. */
export function stopChild(c: ChildProcess, graceMs = 5_000): Promise<void> {
  if (!c.pid || !alive(c)) return Promise.resolve();
  return new Promise((done) => {
    const pid = c.pid!;
    const force = setTimeout(() => alive(c) && process.kill(pid, "SIGKILL"), graceMs);
    c.once("exit", () => {
      clearTimeout(force);
      done();
    });
    process.kill(pid, "SIGTERM");
  });
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

export interface Rss {
  /** Resident set now (VmRSS), MB. */
  rssMB: number;
  /** Peak resident set (VmHWM), MB. */
  peakMB: number;
  /** The private part of it (RssAnon: heap, stacks), MB. */
  anonMB: number;
  /** File-backed pages (RssFile: mostly the mapped executable, shared between members), MB. */
  fileMB: number;
  /** Proportional set size (shared pages divided among the processes sharing them), MB. */
  pssMB: number | null;
}

export function readRss(pid: number): Rss | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const mb = (text: string, name: string): number => Math.round(Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) / 102.4) / 10;
    let pssMB: number | null = null;
    try {
      pssMB = mb(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"), "Pss");
    } catch {
      // kernels before 4.14
    }
    return { rssMB: mb(s, "VmRSS"), peakMB: mb(s, "VmHWM"), anonMB: mb(s, "RssAnon"), fileMB: mb(s, "RssFile"), pssMB };
  } catch {
    return null;
  }
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU time (user + system) a process has used, in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

export interface Member {
  id: string;
  /** Where clients send requests. */
  url: string;
  dataDir: string;
  args: string[];
  proc: ChildProcess | null;
  /** The last lines it wrote, for error messages. */
  log: string[];
}

export abstract class BenchCluster {
  abstract readonly system: System;
  readonly members: Member[] = [];
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  protected abstract command(m: Member): { file: string; args: string[] };

  spawn(m: Member): void {
    const { file, args } = this.command(m);
    const child = track(spawn(file, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString().split("\n")) if (line) m.log.push(line);
      if (m.log.length > 400) m.log.splice(0, m.log.length - 200);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    child.on("error", (e) => m.log.push(`spawn failed: ${e.message}`));
    m.proc = child;
  }

  start(): void {
    for (const m of this.members) this.spawn(m);
  }

  urls(): string[] {
    return this.members.map((m) => m.url);
  }

  pid(m: Member): number | null {
    return m.proc && alive(m.proc) && m.proc.pid ? m.proc.pid : null;
  }

  byUrl(url: string): Member {
    const m = this.members.find((x) => x.url === url);
    if (!m) throw new Error(`no member at ${url}`);
    return m;
  }

  /** SIGKILL one member (its own PID only) and wait for it to be gone. */
  async kill(m: Member): Promise<void> {
    const p = m.proc;
    if (!p || !p.pid || !alive(p)) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(p.pid, "SIGKILL");
    await exited;
  }

  /**
   * Until every member answers, all agree on one leader, and each has applied what the leader
   * had committed: the cluster is whole again. Returns the leader's URL.
   */
  async waitWhole(client: HttpClient, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let views: (MemberView | null)[] = [];
    while (Date.now() < deadline) {
      for (const m of this.members) {
        if (m.proc && !alive(m.proc)) throw new Error(`${this.system} ${m.id} exited (${m.proc.signalCode ?? m.proc.exitCode})\n${this.tail(m)}`);
      }
      views = await Promise.all(this.members.map((m) => memberView(client, this.system, m.url)));
      const leader = views.find((v) => v?.leads);
      if (leader && views.every((v) => v !== null && v.leader === leader.leader && v.term === leader.term && v.applied >= leader.commit - 1)) {
        return leader.url;
      }
      await sleep(50);
    }
    throw new Error(
      `${this.system}: the cluster was not whole within ${timeoutMs} ms: ${JSON.stringify(views)}\n` + this.members.map((m) => this.tail(m)).join("\n"),
    );
  }

  tail(m: Member, lines = 12): string {
    return `--- ${m.id} (${m.url})\n${m.log.slice(-lines).join("\n")}`;
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => (m.proc ? stopChild(m.proc) : undefined)));
    removeTempDir(this.root);
  }
}

/**
 * How members run: `js` is what the npm package's `meshraft` bin is (the project compiled by its
 * own tsconfig.build.json, run by plain `node`); `tsx` is `node --import tsx adapters/node/cli.ts`
 * as the integration tests do, whose loader thread adds about 30 MB to every member's RSS.
 */
export type Runner = "js" | "tsx";

/**
 * Compiles src/ and adapters/ with the project's build config into a temp dir (not dist/) and
 * returns the path of the compiled cli.js. Type errors elsewhere in the tree do not stop the
 * emit; they are reported.
 */
export function buildMeshraft(): string {
  const dir = tempDir("meshraft-bench-build-");
  const out = join(dir, "build");
  const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.build.json"), "--outDir", out, "--sourceMap", "false"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 180_000,
  });
  const cli = join(out, "adapters/node/cli.js");
  if (!existsSync(cli)) throw new Error(`compiling meshraft failed (tsc exit ${r.status ?? r.signal}):\n${(r.stdout + r.stderr).slice(-3000)}`);
  const errors = (r.stdout.match(/error TS\d+/g) ?? []).length;
  if (errors > 0) console.log(`  note: tsc reported ${errors} type errors while compiling (emitted anyway): ${r.stdout.split("\n")[0]}`);
  // The compiled ESM finds its dependencies through this link, as it would inside the package.
  writeFileSync(join(out, "package.json"), '{"type":"module"}\n');
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return cli;
}

export class MeshraftCluster extends BenchCluster {
  readonly system = "meshraft" as const;
  /** Extra `node` flags for the members (for example --cpu-prof). */
  private readonly nodeFlags: string[];
  /** The compiled cli.js, or null to run the TypeScript through tsx. */
  private readonly compiledCli: string | null;

  private constructor(root: string, ports: number[], compiledCli: string | null, nodeFlags: string[], memberArgs: string[]) {
    super(root);
    this.nodeFlags = nodeFlags;
    this.compiledCli = compiledCli;
    const ids = ports.map((_, i) => `n${i + 1}`);
    const url = (i: number): string => `http://127.0.0.1:${ports[i]}`;
    ids.forEach((id, i) => {
      const dataDir = join(root, id);
      const args = ["start", "--id", id, "--listen", `127.0.0.1:${ports[i]}`, "--data-dir", dataDir];
      ids.forEach((peer, j) => j !== i && args.push("--peer", `${peer}=${url(j)}`));
      args.push(...memberArgs);
      this.members.push({ id, url: url(i), dataDir, args, proc: null, log: [] });
    });
  }

  /** `compiledCli` from buildMeshraft(), or null for tsx; `memberArgs` go to every `meshraft start`. */
  static async create(compiledCli: string | null, nodeFlags: string[] = [], memberArgs: string[] = []): Promise<MeshraftCluster> {
    return new MeshraftCluster(tempDir("meshraft-bench-"), await freePorts(3), compiledCli, nodeFlags, memberArgs);
  }

  /** One `node` process per member, so the PID is the member itself. */
  protected command(m: Member): { file: string; args: string[] } {
    const entry = this.compiledCli ? [this.compiledCli] : ["--import", "tsx", CLI];
    return { file: process.execPath, args: [...this.nodeFlags, ...entry, ...m.args] };
  }
}

/**
 * The floor: one plain `node` process with a trivial node:http server that reads each request's
 * body and answers 200 (a 100-byte value for a GET, "ok" otherwise), and claims to lead on
 * `GET /status`. The same client against it in the same run gives the most this machine and
 * client can serve, and the server CPU that bare HTTP costs per request.
 */
export class FloorServer extends BenchCluster {
  readonly system = "floor" as const;

  private constructor(root: string, port: number) {
    super(root);
    this.members.push({ id: "floor", url: `http://127.0.0.1:${port}`, dataDir: root, args: [String(port)], proc: null, log: [] });
  }

  static async create(): Promise<FloorServer> {
    return new FloorServer(tempDir("floor-bench-"), (await freePorts(1))[0]);
  }

  protected command(m: Member): { file: string; args: string[] } {
    return { file: process.execPath, args: ["-e", FLOOR_SERVER, m.args[0]] };
  }
}

const FLOOR_SERVER = `
const http = require("node:http");
const port = Number(process.argv[1]);
const status = JSON.stringify({ id: "floor", url: "http://127.0.0.1:" + port, role: "leader", term: 1, leader: "floor", leaderUrl: null, commitIndex: 0, appliedIndex: 0 });
const value = Buffer.alloc(100, 97);
http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    if (req.url === "/status") { res.writeHead(200, { "content-type": "application/json" }); res.end(status); }
    else if (req.method === "GET") { res.writeHead(200, { "content-type": "application/octet-stream" }); res.end(value); }
    else { res.writeHead(200, { "content-type": "text/plain" }); res.end("ok"); }
  });
}).listen(port, "127.0.0.1");
`;

/** etcd's defaults: 100 ms heartbeat, 1000 ms election timeout, fsync on. */
export class EtcdCluster extends BenchCluster {
  readonly system = "etcd" as const;
  private readonly binary: string;

  private constructor(root: string, binary: string, ports: number[]) {
    super(root);
    this.binary = binary;
    const names = [0, 1, 2].map((i) => `e${i + 1}`);
    const peer = (i: number): string => `http://127.0.0.1:${ports[3 + i]}`;
    const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(",");
    const token = `bench-${process.pid}-${Date.now()}`;
    names.forEach((name, i) => {
      const url = `http://127.0.0.1:${ports[i]}`;
      const dataDir = join(root, name);
      const args = [
        "--name", name,
        "--data-dir", dataDir,
        "--listen-client-urls", url,
        "--advertise-client-urls", url,
        "--listen-peer-urls", peer(i),
        "--initial-advertise-peer-urls", peer(i),
        "--initial-cluster", initialCluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", token,
        "--logger", "zap",
        "--log-outputs", "stderr",
        "--log-level", "warn",
      ];
      this.members.push({ id: name, url, dataDir, args, proc: null, log: [] });
    });
  }

  static async create(binary: string): Promise<EtcdCluster> {
    return new EtcdCluster(tempDir("etcd-bench-"), binary, await freePorts(6));
  }

  protected command(m: Member): { file: string; args: string[] } {
    return { file: this.binary, args: m.args };
  }

  version(): string {
    return spawnSync(this.binary, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0]?.trim() ?? "?";
  }
}

/** `etcd` on PATH (or Debian's /usr/bin/etcd), else null. */
function whichEtcd(): string | null {
  for (const dir of [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"]) {
    const f = join(dir, "etcd");
    if (dir && existsSync(f)) return f;
  }
  return null;
}

/**
 * The etcd binary, installing Debian's `etcd-server` on demand. Throws with what to do when it
 * is missing and cannot be installed.
 */
export function ensureEtcd(): string {
  const found = whichEtcd();
  if (found) return found;
  console.log("etcd is not on PATH: installing Debian's etcd-server (apt-get update && apt-get install -y etcd-server) ...");
  const opts = { stdio: "inherit" as const, timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } };
  const update = spawnSync("apt-get", ["update"], opts);
  const install = update.status === 0 ? spawnSync("apt-get", ["install", "-y", "etcd-server"], opts) : update;
  const after = whichEtcd();
  if (after) return after;
  const why = install.error ? install.error.message : `apt-get exited with ${install.status ?? install.signal}`;
  throw new Error(
    `--vs etcd needs the etcd server, and installing it failed (${why}). ` +
      `Install it yourself (Debian/Ubuntu: sudo apt-get install etcd-server; or put an etcd 3.4+ binary on PATH) and run again.`,
  );
}
