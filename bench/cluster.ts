/**
 * Cluster benchmark (the Node runtime issue's "Benchmarks"): 3 meshraft processes started with
 * the real CLI on 127.0.0.1, file storage with fdatasync, a client in a separate process with
 * keep-alive HTTP sending 100-byte values over 1,000 keys straight to the leader.
 *
 *   npm run bench                                    # 10 s per point, 20 failover trials
 *   npm run bench -- --seconds 3 --failover-trials 5
 *   npm run bench -- --vs etcd                       # the same client against a 3-member etcd
 *
 * Points: put throughput and latency at concurrency 1, 16, 64, 256; linearizable get at 64;
 * failover (SIGKILL the leader, time until a write succeeds through a survivor); RSS per member.
 * Results: a table on stdout, bench/results/cluster-<timestamp>.json, cluster-latest.json and
 * cluster-latest.svg. See bench/README.md for what each number means.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, fdatasyncSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type ClientKind, type HttpClient, type System } from "./cluster-http.ts";
import {
  nowMs,
  RESULT_MARKER,
  summarize,
  WINDOW_END,
  WINDOW_START,
  type FailoverCommand,
  type FailoverReply,
  type LoadJob,
  type LoadResult,
} from "./cluster-load.ts";
import {
  BenchCluster,
  buildMeshraft,
  cpuSeconds,
  EtcdCluster,
  ensureEtcd,
  FloorServer,
  killEverything,
  MeshraftCluster,
  readRss,
  sleep,
  stopChild,
  tempDir,
  removeTempDir,
  track,
  type Rss,
  type Runner,
} from "./cluster-procs.ts";
import { cpuUsPerOp, ETCD_REFERENCE, floorTable, fmt, reportTable, TARGETS, type FailoverResult, type PointResult, type SystemResult, type Trial } from "./cluster-report.ts";
import { renderChart } from "./cluster-svg.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const LOAD = join(HERE, "cluster-load.ts");
const RESULTS_DIR = join(HERE, "results");
const KEYS = 1_000;
const VALUE_BYTES = 100;
const SEED = 20_261_122;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

interface Options {
  seconds: number;
  warmup: number;
  concurrency: number[];
  getConcurrency: number;
  failoverTrials: number;
  failoverTimeoutMs: number;
  client: ClientKind;
  /** Run the floor: the same points against a trivial node:http server, for the ratios. */
  floor: boolean;
  runner: Runner;
  vs: "etcd" | null;
  /** Run only etcd (with --vs etcd): to check the etcd side alone. */
  skipMeshraft: boolean;
  /** `--cpu-prof` on every meshraft member; results are not saved. */
  profile: boolean;
  /** Extra `node` flags for the meshraft members (V8 heap flags, for instance). */
  nodeFlags: string[];
  /** How the meshraft members confirm linearizable reads (`meshraft start --read-mode`). */
  readMode: "read-index" | "lease";
}

const USAGE = `usage: npm run bench -- [options]      (tsx bench/cluster.ts)

  --seconds N            measured seconds per point (default 10)
  --warmup N             unmeasured seconds before each point (default 1)
  --concurrency LIST     put concurrencies (default 1,16,64,256)
  --get-concurrency N    linearizable get concurrency (default 64; 0 skips)
  --failover-trials N    SIGKILL-the-leader trials (default 20; 0 skips)
  --failover-timeout N   ms without a successful write before a trial counts as failed (default 10000)
  --client KIND          autocannon (default: the measured points; lookups, prefill and failover
                         use node:http), http (node:http keep-alive Agent) or fetch (undici Agent)
  --no-floor             skip the floor (the same client against a trivial node:http server)
  --runner js|tsx        members run the compiled CLI with plain node (default: what the npm
                         bin runs), or adapters/node/cli.ts through tsx (about 30 MB more RSS)
  --vs etcd              also run a 3-member etcd (installs Debian's etcd-server if missing)
  --only-etcd            with --vs etcd: skip meshraft
  --read-mode MODE       meshraft members confirm gets by read-index (default) or lease
  --node-flags "FLAGS"   extra node flags for the meshraft members (e.g. "--max-semi-space-size=2")
  --profile              meshraft members run with --cpu-prof (bench/results/prof-cluster/);
                         implies --failover-trials 0; nothing is saved but the profiles`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seconds: 10,
    warmup: 1,
    concurrency: [1, 16, 64, 256],
    getConcurrency: 64,
    failoverTrials: 20,
    failoverTimeoutMs: 10_000,
    client: "autocannon",
    floor: true,
    runner: "js",
    vs: null,
    skipMeshraft: false,
    profile: false,
    nodeFlags: [],
    readMode: "read-index",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value (see --help)`);
      return v;
    };
    const int = (min: number, max: number): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${a} takes a whole number from ${min} to ${max}`);
      return v;
    };
    switch (a) {
      case "--seconds":
        o.seconds = int(1, 3600);
        break;
      case "--warmup":
        o.warmup = int(0, 60);
        break;
      case "--concurrency":
        o.concurrency = value().split(",").map((s) => {
          const c = Number(s);
          if (!Number.isInteger(c) || c < 1 || c > 4096) throw new Error(`--concurrency: ${s} is not a number from 1 to 4096`);
          return c;
        });
        break;
      case "--get-concurrency":
        o.getConcurrency = int(0, 4096);
        break;
      case "--failover-trials":
        o.failoverTrials = int(0, 1000);
        break;
      case "--failover-timeout":
        o.failoverTimeoutMs = int(100, 120_000);
        break;
      case "--client": {
        const v = value();
        if (v !== "http" && v !== "fetch" && v !== "autocannon") throw new Error(`--client is autocannon, http or fetch, got ${v}`);
        o.client = v;
        break;
      }
      case "--no-floor":
        o.floor = false;
        break;
      case "--runner": {
        const v = value();
        if (v !== "js" && v !== "tsx") throw new Error(`--runner is js or tsx, got ${v}`);
        o.runner = v;
        break;
      }
      case "--vs": {
        const v = value();
        if (v !== "etcd") throw new Error(`--vs: only etcd is supported, got ${v}`);
        o.vs = v;
        break;
      }
      case "--only-etcd":
        o.skipMeshraft = true;
        break;
      case "--read-mode": {
        const v = value();
        if (v !== "read-index" && v !== "lease") throw new Error(`--read-mode is read-index or lease, got ${v}`);
        o.readMode = v;
        break;
      }
      case "--node-flags":
        o.nodeFlags = value().split(/\s+/).filter(Boolean);
        break;
      case "--profile":
        o.profile = true;
        o.failoverTrials = 0;
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n\n${USAGE}`);
    }
  }
  if (o.skipMeshraft && o.vs !== "etcd") throw new Error("--only-etcd needs --vs etcd");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Running one system
// ---------------------------------------------------------------------------------------------

/** Busy and total CPU time of the whole machine so far, in ms. */
function machineCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** Cores busy on the whole machine during `ms` from now. */
async function busyCores(ms: number): Promise<number> {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  return ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * os.cpus().length;
}

interface LoadRun {
  result: LoadResult;
  memberCores: Record<string, number>;
  otherCores: number;
}

function runLoad(job: LoadJob, cluster: BenchCluster): Promise<LoadRun> {
  const child = track(spawn(process.execPath, ["--import", "tsx", LOAD, "--job", JSON.stringify(job)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  const limitMs = (job.op === "prefill" ? 60 : job.warmup + job.seconds + 60) * 1000;
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let cpu0: number[] = [];
    let t0 = 0;
    let machine0 = machineCpu();
    let self0 = process.cpuUsage();
    let machineCores = NaN;
    let selfCores = NaN;
    const memberCores: Record<string, number> = {};
    let result: LoadResult | null = null;
    const sample = (): number[] => cluster.members.map((m) => {
      const pid = cluster.pid(m);
      return pid === null ? NaN : cpuSeconds(pid);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the load generator did not finish within ${limitMs / 1000} s (${job.system} ${job.op} c=${job.concurrency})`));
    }, limitMs);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      out += d;
      let nl: number;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line === WINDOW_START) {
          cpu0 = sample();
          t0 = nowMs();
          machine0 = machineCpu();
          self0 = process.cpuUsage();
        } else if (line === WINDOW_END) {
          const cpu1 = sample();
          const seconds = (nowMs() - t0) / 1000;
          const machine1 = machineCpu();
          const self = process.cpuUsage(self0);
          machineCores = ((machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total)) * os.cpus().length;
          selfCores = (self.user + self.system) / 1e6 / seconds;
          cluster.members.forEach((m, i) => (memberCores[m.id] = Math.round(((cpu1[i] - cpu0[i]) / seconds) * 100) / 100));
        } else if (line.startsWith(RESULT_MARKER)) {
          result = JSON.parse(line.slice(RESULT_MARKER.length)) as LoadResult;
        }
      }
    });
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0 && result) {
        const ours = Object.values(memberCores).reduce((a, b) => a + b, 0) + result.clientCores + selfCores;
        resolve({ result, memberCores, otherCores: Math.round(Math.max(0, machineCores - ours) * 100) / 100 });
      }
      else reject(new Error(`the load generator failed (exit ${code}, ${job.system} ${job.op} c=${job.concurrency}):\n${err.slice(-2000)}`));
    });
  });
}

function rssOf(cluster: BenchCluster): Record<string, Rss | null> {
  return Object.fromEntries(cluster.members.map((m) => {
    const pid = cluster.pid(m);
    return [m.id, pid === null ? null : readRss(pid)];
  }));
}

/** A failover client process, driven over IPC (bench/cluster-load.ts --failover). */
class FailoverClient {
  private readonly child: ChildProcess;
  private waiting: { type: FailoverReply["type"]; resolve: (m: FailoverReply) => void; reject: (e: Error) => void } | null = null;
  readonly ready: Promise<FailoverReply>;

  constructor(client: ClientKind) {
    this.child = track(spawn(process.execPath, ["--import", "tsx", LOAD, "--failover", "--client", client === "autocannon" ? "http" : client], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] }));
    this.child.on("message", (m: FailoverReply) => {
      const w = this.waiting;
      this.waiting = null;
      if (!w) return;
      if (m.type === w.type) w.resolve(m);
      else w.reject(new Error(`the failover client sent "${m.type}", expected "${w.type}"`));
    });
    this.child.on("exit", (code, signal) => this.waiting?.reject(new Error(`the failover client exited (${signal ?? code})`)));
    this.ready = this.next("ready", 30_000);
  }

  /** The next reply, which must be of `type`. */
  next(type: FailoverReply["type"], timeoutMs: number): Promise<FailoverReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the failover client sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      const done = <T,>(f: (v: T) => void) => (v: T): void => {
        clearTimeout(timer);
        f(v);
      };
      this.waiting = { type, resolve: done(resolve), reject: done(reject) };
    });
  }

  send(m: FailoverCommand): void {
    this.child.send(m);
  }

  stop(): Promise<void> {
    return stopChild(this.child, 1_000);
  }
}

async function runFailover(cluster: BenchCluster, status: HttpClient, o: Options): Promise<FailoverResult> {
  const fc = new FailoverClient(o.client);
  await fc.ready;
  const trials: Trial[] = [];
  try {
    for (let t = 1; t <= o.failoverTrials; t++) {
      const leaderUrl = await cluster.waitWhole(status, 30_000);
      const leader = cluster.byUrl(leaderUrl);
      const survivors = cluster.members.filter((m) => m !== leader).map((m) => m.url);
      const armed = fc.next("armed", 10_000);
      fc.send({ type: "arm", system: cluster.system, survivors, trial: t });
      await armed;
      const reply = fc.next("result", o.failoverTimeoutMs + 15_000);
      const t0 = nowMs();
      await cluster.kill(leader); // SIGKILL sent at t0; the wait for its exit is not on the client's clock
      fc.send({ type: "go", t0, timeoutMs: o.failoverTimeoutMs, intervalMs: 5, attemptTimeoutMs: 1_000 });
      const r = (await reply) as Extract<FailoverReply, { type: "result" }>;
      const restartAt = nowMs();
      cluster.spawn(leader);
      await cluster.waitWhole(status, 30_000);
      const trial: Trial = { trial: t, killed: leader.id, ok: r.ok, ms: r.ms, attempts: r.attempts, answers: r.answers, restartMs: Math.round(nowMs() - restartAt) };
      trials.push(trial);
      console.log(`  trial ${String(t).padStart(2)}: killed ${leader.id}, ${r.ok ? `write ok after ${r.ms} ms` : `FAILED (no write within ${o.failoverTimeoutMs} ms)`} (${r.attempts} attempts), whole again ${trial.restartMs} ms after restart`);
      // Let heartbeats settle before the next kill: a member just restarted must not be the
      // only one that knows the newest log.
      await sleep(500);
    }
  } finally {
    await fc.stop();
  }
  const okMs = trials.filter((t) => t.ok && t.ms !== null).map((t) => t.ms!);
  return { trials, failed: trials.filter((t) => !t.ok).length, ms: okMs.length > 0 ? summarize(Float64Array.from(okMs)) : null };
}

/** The program a system runs: etcd's binary, or meshraft's compiled cli.js (null: tsx). */
interface Programs {
  etcd: string | null;
  meshraftCli: string | null;
}

async function runSystem(system: System, o: Options, programs: Programs): Promise<SystemResult> {
  const cluster: BenchCluster =
    system === "floor"
      ? await FloorServer.create()
      : system === "meshraft"
      ? await MeshraftCluster.create(programs.meshraftCli, [
          ...o.nodeFlags,
          ...(o.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(RESULTS_DIR, "prof-cluster")}`] : []),
        ], ["--read-mode", o.readMode])
      : await EtcdCluster.create(programs.etcd!);
  const status = await createClient("http", 8);
  try {
    const version =
      cluster instanceof EtcdCluster
        ? cluster.version()
        : system === "floor"
          ? `floor: a trivial node:http server (node ${process.version})`
          : `meshraft (node ${process.version}${o.nodeFlags.length ? ` ${o.nodeFlags.join(" ")}` : ""}, ${o.runner === "js" ? "compiled cli.js" : "tsx adapters/node/cli.ts"}, --read-mode ${o.readMode})`;
    console.log(`\n== ${system}: ${version}; 3 members at ${cluster.urls().join(", ")}; data in ${cluster.root}`);
    const t0 = nowMs();
    cluster.start();
    await cluster.waitWhole(status, 30_000);
    const startupMs = Math.round(nowMs() - t0);
    const base = { system, urls: cluster.urls(), client: o.client, keys: KEYS, valueBytes: VALUE_BYTES, seed: SEED };
    const pre = await runLoad({ ...base, op: "prefill", concurrency: 16, seconds: 0, warmup: 0 }, cluster);
    console.log(`  leader elected ${startupMs} ms after start; ${pre.result.ops} keys written in ${pre.result.measuredSeconds} s`);
    const idle = rssOf(cluster);

    const points: PointResult[] = [];
    const plan: { name: "put" | "get"; c: number }[] = [
      ...o.concurrency.map((c) => ({ name: "put" as const, c })),
      ...(o.getConcurrency > 0 ? [{ name: "get" as const, c: o.getConcurrency }] : []),
    ];
    for (const { name, c } of plan) {
      const leaderUrl = await cluster.waitWhole(status, 30_000);
      const leader = cluster.byUrl(leaderUrl).id;
      process.stdout.write(`  ${name} c=${c} ... `);
      const { result, memberCores, otherCores } = await runLoad({ ...base, op: name, concurrency: c, seconds: o.seconds, warmup: o.warmup }, cluster);
      const errs = Object.values(result.errors).reduce((a, b) => a + b, 0);
      const cores = Object.values(memberCores).reduce((a, b) => a + b, 0) + result.clientCores;
      console.log(
        `${fmt(result.opsPerSec)} ops/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms` +
          `${errs ? `, ${errs} errors ${JSON.stringify(result.errors)}` : ""} (cpu: members ${Object.values(memberCores).join("+")}, client ${result.clientCores}, total ${cores.toFixed(2)} of ${os.cpus().length}` +
          `${otherCores > 0.15 ? `; WARNING: other programs used ${otherCores} cores` : ""})`,
      );
      points.push({ ...result, name, leader, memberCores, otherCores, clusterCpuUsPerOp: cpuUsPerOp(memberCores, result.opsPerSec) });
    }
    const afterLoad = rssOf(cluster);

    let failover: FailoverResult | null = null;
    let afterFailover: Record<string, Rss | null> | null = null;
    if (o.failoverTrials > 0 && system !== "floor") {
      console.log(`  failover: ${o.failoverTrials} trials of SIGKILL to the leader`);
      failover = await runFailover(cluster, status, o);
      afterFailover = rssOf(cluster);
    }
    return { system, version, startupMs, points, failover, rss: { idle, afterLoad, afterFailover } };
  } finally {
    status.close();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------------------------

/** fdatasync of a 4 KiB append in the temp dir: the floor under any durable write's latency. */
function fsyncProbe(): { medianMs: number; p99Ms: number } {
  const dir = tempDir("cluster-bench-fsync-");
  const fd = openSync(join(dir, "probe"), "w");
  const block = Buffer.alloc(4096, 1);
  const times = new Float64Array(200);
  try {
    for (let i = 0; i < times.length; i++) {
      const t = nowMs();
      writeSync(fd, block);
      fdatasyncSync(fd);
      times[i] = nowMs() - t;
    }
  } finally {
    closeSync(fd);
    removeTempDir(dir);
  }
  const s = summarize(times);
  return { medianMs: s.p50, p99Ms: s.p99 };
}

function machineInfo(): Record<string, unknown> & { cpus: number; cpuModel?: string; loadavg: number[]; tmpdir: string; fdatasync4KiB: { medianMs: number; p99Ms: number } } {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    tmpdir: os.tmpdir(),
    fdatasync4KiB: fsyncProbe(),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const cleanup = (signal: NodeJS.Signals): void => {
    console.error(`\n${signal}: stopping every process this benchmark started`);
    killEverything();
    process.exit(130);
  };
  process.on("SIGINT", cleanup);
  process.on("SIGTERM", cleanup);
  process.on("exit", killEverything);

  const programs: Programs = { etcd: o.vs === "etcd" ? ensureEtcd() : null, meshraftCli: null };
  if (!o.skipMeshraft && o.runner === "js") {
    console.log("compiling meshraft (tsconfig.build.json, into a temp dir) ...");
    programs.meshraftCli = buildMeshraft();
  }
  const machine = machineInfo();
  const busy = await busyCores(1000);
  machine.busyCoresBeforeStart = Math.round(busy * 100) / 100;
  const fs = machine.fdatasync4KiB as { medianMs: number; p99Ms: number };
  console.log(
    `meshraft cluster bench: 3 members on 127.0.0.1, file storage with fdatasync, ${VALUE_BYTES}-byte values over ${fmt(KEYS)} keys\n` +
      `client: separate process, ${o.client === "autocannon" ? "autocannon" : o.client === "http" ? "node:http Agent keep-alive" : "fetch + undici Agent keep-alive"}, requests straight to the leader` +
      `${o.floor ? "; the floor: the same client against a trivial node:http server" : ""}\n` +
      `${o.warmup} s warm-up + ${o.seconds} s per point; ${o.failoverTrials} failover trials${o.vs ? "; vs etcd" : ""}\n` +
      `node ${process.version}, ${machine.cpus} x ${machine.cpuModel}, load ${(machine.loadavg as number[]).join(" ")}; ` +
      `fdatasync of a 4 KiB append in ${machine.tmpdir}: median ${fs.medianMs} ms, p99 ${fs.p99Ms} ms`,
  );
  if (busy > 0.2) console.log(`WARNING: ${busy.toFixed(2)} cores were busy before the start: other programs are running; numbers will be low and noisy`);

  const floor = o.floor ? await runSystem("floor", o, programs) : null;
  const mesh = o.skipMeshraft ? null : await runSystem("meshraft", o, programs);
  const etcd = o.vs === "etcd" ? await runSystem("etcd", o, programs) : null;

  console.log(`\n${reportTable(mesh, etcd)}`);
  if (floor) console.log(`\n${floorTable(floor, mesh, etcd)}`);
  const busiest = Math.max(0, ...[floor, mesh, etcd].flatMap((r) => r?.points.map((p) => p.otherCores) ?? []));
  if (busiest > 0.15) {
    console.log(`\nWARNING: other programs used up to ${busiest} cores during a point: this run competed for the CPU; compare only quiet runs.`);
  }
  console.log(
    `\nm/e = meshraft / ${etcd ? "etcd in this run" : "etcd 3.4 as quoted in the benchmark issue (run --vs etcd to measure it)"}; ` +
      "ops/s higher is better, p50 and failover lower is better.",
  );

  if (o.profile) {
    console.log(`\nprofiled run: results not saved; profiles in bench/results/prof-cluster/ (npm run bench:core -- --summarize bench/results/prof-cluster)`);
    return;
  }
  const date = new Date();
  const stamp = date.toISOString().replace(/[:.]/g, "-");
  const report = {
    benchmark: "cluster",
    date: date.toISOString(),
    command: `tsx bench/cluster.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine,
    setup: {
      members: 3,
      keys: KEYS,
      valueBytes: VALUE_BYTES,
      seconds: o.seconds,
      warmupSeconds: o.warmup,
      client:
        o.client === "autocannon"
          ? "autocannon (concurrency keep-alive connections, one request in flight each), separate process"
          : o.client === "http"
            ? "node:http Agent({ keepAlive: true, maxSockets: concurrency }), separate process"
            : "fetch with an undici Agent({ connections: concurrency }), separate process",
      meshraft: `${o.runner === "js" ? "node <compiled>/adapters/node/cli.js" : "node --import tsx adapters/node/cli.ts"} start (defaults: tick 25 ms, election 300 ms, heartbeat 50 ms), FileStorage (fdatasync per batch)`,
      etcd: etcd ? `${etcd.version}, defaults (heartbeat 100 ms, election 1000 ms), fsync on, v3 JSON gateway` : null,
      failover: `SIGKILL the leader; from then a write every 5 ms to the survivors in turn (1 s timeout each, 307 followed only to a survivor); time to the first 200; failed after ${o.failoverTimeoutMs} ms`,
    },
    targets: TARGETS,
    etcdReference: ETCD_REFERENCE,
    results: { floor, meshraft: mesh, etcd },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, `cluster-${stamp}.json`), json);
  writeFileSync(join(RESULTS_DIR, "cluster-latest.json"), json);
  writeFileSync(join(RESULTS_DIR, "cluster-latest.svg"), renderChart({ date: date.toISOString(), machine: `${machine.cpus} x ${machine.cpuModel}`, seconds: o.seconds, mesh, etcd, reference: ETCD_REFERENCE }));
  console.log(`\nwrote bench/results/cluster-${stamp}.json, cluster-latest.json and cluster-latest.svg`);
}

main().catch((err: unknown) => {
  console.error(`\ncluster bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  killEverything();
  process.exit(1);
});
