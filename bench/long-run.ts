/**
 * Long-run benchmark: after N writes to a real 3-node cluster, are each member's data directory
 * and RSS still within a constant of the state's size, or do they grow with the writes?
 *
 *   npx tsx bench/long-run.ts [--writes 1000000] [--keys 10000] [--value-bytes 100] [--concurrency 64]
 *
 * The cluster is bench/cluster.ts's: three `meshraft start` processes (the compiled CLI by
 * default) with FileStorage in a fresh temp dir and every option at its default, so members
 * snapshot every 10,000 applied entries and keep 1,000 below it. A separate load process (this
 * file with --load-worker) writes `PUT /kv/key-<i mod keys>` for i = 0..N-1 with C in flight over
 * keep-alive HTTP to the leader, following 307s. Every --sample-every writes it pauses (all
 * writes so far answered) while this process samples each member: VmRSS, the data dir's files
 * and bytes, and /status. At the end: all members applied the same index, a few keys read back
 * their last written value on every member, a table on stdout and JSON in
 * bench/results/long-run-<timestamp>.json and long-run-latest.json. See bench/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createClient, findLeader, getReq, originOf, outcome, putReq, type HttpClient, type Req } from "./cluster-http.ts";
import { nowMs, summarize, type LatencySummary } from "./cluster-load.ts";
import { buildMeshraft, cpuSeconds, killEverything, MeshraftCluster, readRss, sleep, stopChild, track, type Member, type Rss, type Runner } from "./cluster-procs.ts";

const SELF = fileURLToPath(import.meta.url);
const HERE = dirname(SELF);
const ROOT = join(HERE, "..");
const RESULTS_DIR = join(HERE, "results");

/** A write that has failed (timeouts, no leader) for this long stops the run. */
const WRITE_BUDGET_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
const MB = 2 ** 20;
/** RaftNode's default snapshotEveryEntries, which `meshraft start` uses. */
const SNAPSHOT_EVERY_ENTRIES = 10_000;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

interface Options {
  writes: number;
  keys: number;
  valueBytes: number;
  concurrency: number;
  /** Writes between samples. */
  sampleEvery: number;
  runner: Runner;
}

const USAGE = `usage: npx tsx bench/long-run.ts [options]

  --writes N          total writes (default 1000000)
  --keys N            distinct keys; write i goes to key-<i mod N> (default 10000)
  --value-bytes N     bytes per value, at least 16 (default 100)
  --concurrency N     writes in flight (default 64)
  --sample-every N    writes between samples (default 50000, or writes/10 when smaller)
  --runner js|tsx     members run the compiled CLI with plain node (default) or cli.ts through tsx`;

function parseArgs(argv: string[]): Options {
  const o: Options = { writes: 1_000_000, keys: 10_000, valueBytes: 100, concurrency: 64, sampleEvery: 0, runner: "js" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const int = (min: number, max: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${a} takes a whole number from ${min} to ${max}\n\n${USAGE}`);
      return v;
    };
    switch (a) {
      case "--writes":
        o.writes = int(1, 1_000_000_000);
        break;
      case "--keys":
        o.keys = int(1, 10_000_000);
        break;
      case "--value-bytes":
        o.valueBytes = int(16, 1_000_000);
        break;
      case "--concurrency":
        o.concurrency = int(1, 4096);
        break;
      case "--sample-every":
        o.sampleEvery = int(1, 1_000_000_000);
        break;
      case "--runner": {
        const v = argv[++i];
        if (v !== "js" && v !== "tsx") throw new Error(`--runner is js or tsx, got ${v}`);
        o.runner = v;
        break;
      }
      case "--help":
      case "-h":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n\n${USAGE}`);
    }
  }
  if (o.sampleEvery === 0) o.sampleEvery = Math.min(50_000, Math.max(1, Math.ceil(o.writes / 10)));
  return o;
}

// ---------------------------------------------------------------------------------------------
// What is written
// ---------------------------------------------------------------------------------------------

const keyOf = (i: number, keys: number): string => `key-${i % keys}`;

/** Write i's value: "w<i>" then dots, `bytes` long, so a read shows which write it kept. */
function valueOf(i: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes, ".");
  b.write(`w${i}`, 0, "latin1");
  return b;
}

/** The last of the first `writes` writes that went to key index `k`, or -1. */
function lastWriteOf(k: number, writes: number, keys: number): number {
  return k < writes ? k + Math.floor((writes - 1 - k) / keys) * keys : -1;
}

/** Logical size of the state after `writes` writes: every key written so far, key + value bytes. */
function stateBytes(writes: number, keys: number, valueBytes: number): number {
  let sum = 0;
  for (let k = 0; k < Math.min(writes, keys); k++) sum += Buffer.byteLength(keyOf(k, keys)) + valueBytes;
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The load process (this file with --load-worker '<LoadJob>'), driven over IPC
// ---------------------------------------------------------------------------------------------

interface LoadJob {
  urls: string[];
  writes: number;
  keys: number;
  valueBytes: number;
  concurrency: number;
  sampleEvery: number;
}

/** Worker -> parent, after every write before `writes` was answered with a 200. */
interface Checkpoint {
  type: "checkpoint";
  writes: number;
  /** Since the previous checkpoint (the pause for sampling excluded). */
  seconds: number;
  latencyMs: LatencySummary;
  /** Failed attempts (each retried) by HTTP status or error code. */
  errors: Record<string, number>;
  redirects: number;
  /** CPU the load process used, in cores. */
  clientCores: number;
}

/** Parent -> worker: take the next `sampleEvery` writes. */
interface Continue {
  type: "continue";
}

async function loadWorker(job: LoadJob): Promise<void> {
  const client = await createClient("http", job.concurrency);
  let leader = await lookupLeader(client, job.urls);
  let looking: Promise<void> | null = null;
  const relocate = (): Promise<void> =>
    (looking ??= (async () => {
      await sleep(20);
      leader = await lookupLeader(client, job.urls);
      looking = null;
    })());

  /** The newest write per key in flight: a key's writes go out one after the other, in order. */
  const keyTail = new Map<number, Promise<void>>();
  let next = 0;
  for (let done = 0; done < job.writes; ) {
    const target = Math.min(job.writes, done + job.sampleEvery);
    const samples = new Float64Array(target - done);
    let n = 0;
    const errors: Record<string, number> = {};
    let redirects = 0;
    const cpu0 = process.cpuUsage();
    const t0 = nowMs();

    const put = async (i: number, req: Req): Promise<void> => {
      const sent = nowMs();
      for (;;) {
        let base = leader;
        let code: string;
        for (let hops = 0; ; hops++) {
          try {
            const a = await client.request(base, req, REQUEST_TIMEOUT_MS);
            if (a.status === 307 && a.location && hops < 3) {
              redirects++;
              base = leader = originOf(a.location);
              continue;
            }
            code = outcome("meshraft", "put", a);
          } catch (e) {
            code = (e as { code?: string }).code ?? "error";
          }
          break;
        }
        if (code === "ok") {
          samples[n++] = nowMs() - sent;
          return;
        }
        errors[code] = (errors[code] ?? 0) + 1;
        if (nowMs() - sent > WRITE_BUDGET_MS) throw new Error(`write ${i} (${keyOf(i, job.keys)}) kept failing for ${WRITE_BUDGET_MS / 1000} s; last answer: ${code}`);
        await relocate();
      }
    };
    const worker = async (): Promise<void> => {
      while (next < target) {
        const i = next++;
        const k = i % job.keys;
        const req = putReq("meshraft", keyOf(i, job.keys), valueOf(i, job.valueBytes));
        const p = (keyTail.get(k) ?? Promise.resolve()).then(() => put(i, req));
        const tail = p.catch(() => undefined);
        keyTail.set(k, tail);
        await p;
        if (keyTail.get(k) === tail) keyTail.delete(k);
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, () => worker()));

    const seconds = (nowMs() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    done = target;
    const checkpoint: Checkpoint = {
      type: "checkpoint",
      writes: done,
      seconds: Math.round(seconds * 1000) / 1000,
      latencyMs: summarize(samples.subarray(0, n)),
      errors,
      redirects,
      clientCores: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100) / 100,
    };
    const resume = done < job.writes ? new Promise<unknown>((r) => process.once("message", r)) : null;
    await new Promise<void>((sent) => process.send!(checkpoint, () => sent()));
    await resume;
  }
  client.close();
  process.disconnect(); // the last checkpoint is sent: nothing keeps this process alive
}

async function lookupLeader(client: HttpClient, urls: string[]): Promise<string> {
  const deadline = nowMs() + 15_000;
  for (;;) {
    const url = await findLeader(client, "meshraft", urls);
    if (url) return url;
    if (nowMs() > deadline) throw new Error(`no leader among ${urls.join(", ")} for 15 s`);
    await sleep(50);
  }
}

/** The next checkpoint from the load process; rejects if it exits or stays silent `timeoutMs`. */
function nextCheckpoint(child: ChildProcess, timeoutMs: number): Promise<Checkpoint> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    const onMessage = (m: Checkpoint): void => {
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`the load process exited (${signal ?? `code ${code}`}) before its next checkpoint`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`the load process sent no checkpoint within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

// ---------------------------------------------------------------------------------------------
// Sampling the members
// ---------------------------------------------------------------------------------------------

interface DirStats {
  /** Sum of the files' sizes. */
  bytes: number;
  /** Blocks allocated on disk (st_blocks x 512). */
  diskBytes: number;
  files: number;
  /** The newest snap-*.snap (the current snapshot). */
  snapshot: { name: string; bytes: number } | null;
  /** Every file, relative to the data dir. */
  list: { name: string; bytes: number }[];
}

function dirStats(dir: string): DirStats {
  const list: { name: string; bytes: number }[] = [];
  let diskBytes = 0;
  const walk = (d: string, prefix: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path, `${prefix}${e.name}/`);
      else {
        try {
          const s = statSync(path);
          list.push({ name: prefix + e.name, bytes: s.size });
          diskBytes += s.blocks * 512;
        } catch {
          // removed between readdir and stat (a compacted segment, a renamed temp file)
        }
      }
    }
  };
  walk(dir, "");
  list.sort((a, b) => (a.name < b.name ? -1 : 1));
  const snaps = list.filter((f) => /^snap-\d+\.snap$/.test(f.name));
  return { bytes: list.reduce((s, f) => s + f.bytes, 0), diskBytes, files: list.length, snapshot: snaps[snaps.length - 1] ?? null, list };
}

interface StatusView {
  role: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
}

async function statusOf(client: HttpClient, url: string): Promise<StatusView | null> {
  try {
    const a = await client.request(url, { method: "GET", path: "/status", body: null }, 2_000);
    if (a.status !== 200) return null;
    const s = JSON.parse(a.body.toString()) as StatusView;
    return { role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, lastIndex: s.lastIndex };
  } catch {
    return null;
  }
}

interface NodeSample {
  id: string;
  pid: number;
  rss: Rss | null;
  /** CPU the member used since the previous sample, in cores. */
  cores: number;
  dataDir: DirStats;
  status: StatusView | null;
}

interface Sample {
  writes: number;
  elapsedSeconds: number;
  /** Writes per second since the previous sample. */
  writesPerSec: number;
  latencyMs: LatencySummary;
  errors: Record<string, number>;
  redirects: number;
  clientCores: number;
  loadavg: number[];
  /** keys written so far x (key bytes + value bytes). */
  stateBytes: number;
  /** The largest current snapshot file among the members. */
  snapshotBytes: number;
  nodes: NodeSample[];
}

async function sampleMembers(cluster: MeshraftCluster, client: HttpClient, cpuBefore: Map<string, number>, seconds: number): Promise<NodeSample[]> {
  return Promise.all(
    cluster.members.map(async (m) => {
      const pid = livePid(cluster, m);
      const cpu = cpuSeconds(pid);
      const cores = Math.round(((cpu - (cpuBefore.get(m.id) ?? cpu)) / seconds) * 100) / 100;
      cpuBefore.set(m.id, cpu);
      return { id: m.id, pid, rss: readRss(pid), cores, dataDir: dirStats(m.dataDir), status: await statusOf(client, m.url) };
    }),
  );
}

function livePid(cluster: MeshraftCluster, m: Member): number {
  const pid = cluster.pid(m);
  if (pid === null) throw new Error(`member ${m.id} is not running (${m.proc?.signalCode ?? m.proc?.exitCode})\n${cluster.tail(m)}`);
  return pid;
}

// ---------------------------------------------------------------------------------------------
// The end: agreement and read-back
// ---------------------------------------------------------------------------------------------

/** Until every member has applied the same index and it equals every member's commit index. */
async function waitAgreed(cluster: MeshraftCluster, client: HttpClient, timeoutMs: number): Promise<StatusView[]> {
  const deadline = nowMs() + timeoutMs;
  let views: (StatusView | null)[] = [];
  while (nowMs() < deadline) {
    views = await Promise.all(cluster.members.map((m) => statusOf(client, m.url)));
    const ok = views.every((v) => v !== null && v.appliedIndex === views[0]!.appliedIndex && v.commitIndex === v.appliedIndex);
    if (ok) return views as StatusView[];
    await sleep(100);
  }
  throw new Error(`the members did not agree on an applied index within ${timeoutMs} ms: ${JSON.stringify(views)}`);
}

interface ReadCheck {
  key: string;
  expected: string;
  /** What the leader answered to a linearizable GET, then each member to `?stale` (prefix shown). */
  answers: Record<string, string>;
  ok: boolean;
}

/** A few keys (first, middle, last, the last few written) read on the leader and every member. */
async function readBack(cluster: MeshraftCluster, client: HttpClient, leaderUrl: string, o: Options): Promise<ReadCheck[]> {
  const written = Math.min(o.writes, o.keys);
  const picks = new Set<number>([0, Math.floor(written / 2), written - 1]);
  for (let i = Math.max(0, o.writes - 5); i < o.writes; i++) picks.add(i % o.keys);
  const checks: ReadCheck[] = [];
  for (const k of [...picks].sort((a, b) => a - b)) {
    const key = keyOf(k, o.keys);
    const expected = valueOf(lastWriteOf(k, o.writes, o.keys), o.valueBytes).toString("latin1");
    const answers: Record<string, string> = {};
    const read = async (name: string, url: string, req: Req): Promise<void> => {
      let a = await client.request(url, req, REQUEST_TIMEOUT_MS);
      if (a.status === 307 && a.location) a = await client.request(originOf(a.location), req, REQUEST_TIMEOUT_MS);
      answers[name] = a.status === 200 ? a.body.toString("latin1") : `HTTP ${a.status}`;
    };
    await read("leader", leaderUrl, getReq("meshraft", key));
    for (const m of cluster.members) await read(`${m.id} stale`, m.url, { method: "GET", path: `/kv/${key}?stale`, body: null });
    const ok = Object.values(answers).every((v) => v === expected);
    const short = (v: string): string => v.replace(/\.+$/, "…");
    checks.push({ key, expected: short(expected), answers: Object.fromEntries(Object.entries(answers).map(([n, v]) => [n, short(v)])), ok });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const mb = (bytes: number, digits = 1): string => (bytes / MB).toFixed(digits);
const int = (n: number): string => Math.round(n).toLocaleString("en-US");

function table(samples: Sample[], ids: string[]): string {
  const head = ["writes", "writes/s", ...ids.map((id) => `${id} RSS MB`), ...ids.map((id) => `${id} dir MB`), "files", "state MB", "snap MB"];
  const rows = samples.map((s) => [
    int(s.writes),
    int(s.writesPerSec),
    ...s.nodes.map((n) => (n.rss ? n.rss.rssMB.toFixed(0) : "?")),
    ...s.nodes.map((n) => mb(n.dataDir.bytes)),
    s.nodes.map((n) => n.dataDir.files).join("/"),
    mb(s.stateBytes, 2),
    mb(s.snapshotBytes, 2),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => `| ${cells.map((x, c) => x.padStart(widths[c])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 1) + ":").join("|")}|`, ...rows.map(line)].join("\n");
}

/**
 * Growth of one series per member: the peak over the first half of the steady samples against
 * the peak over the second half. A bounded series (sawtooth or flat) has both peaks alike; one
 * that grows with the writes has a second-half peak well above the first (about 2x when linear).
 * Null with fewer than 4 steady samples: too short a run to tell.
 */
function growth(samples: Sample[], value: (n: NodeSample) => number): Record<string, { firstHalfPeak: number; secondHalfPeak: number; last: number }> | null {
  if (samples.length < 4) return null;
  const half = Math.ceil(samples.length / 2);
  const ids = samples[0].nodes.map((n) => n.id);
  const peak = (part: Sample[], i: number): number => Math.max(...part.map((s) => value(s.nodes[i])));
  return Object.fromEntries(
    ids.map((id, i) => [id, { firstHalfPeak: peak(samples.slice(0, half), i), secondHalfPeak: peak(samples.slice(half), i), last: value(samples[samples.length - 1].nodes[i]) }]),
  );
}

/** The commit the members were built from, and uncommitted changes to what they run. */
function sourceState(): { commit: string; uncommitted: string[] } {
  const git = (...args: string[]): string => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout ?? "";
  // Porcelain lines are "XY path": the status's leading space is part of the format.
  const uncommitted = git("status", "--porcelain", "--", "src", "adapters")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(3));
  return { commit: git("rev-parse", "HEAD").trim() || "unknown", uncommitted };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--load-worker") return loadWorker(JSON.parse(argv[1]) as LoadJob);

  const o = parseArgs(argv);
  const cleanup = (signal: NodeJS.Signals): void => {
    console.error(`\n${signal}: stopping every process this benchmark started`);
    killEverything();
    process.exit(130);
  };
  process.on("SIGINT", cleanup);
  process.on("SIGTERM", cleanup);
  process.on("exit", killEverything);

  let cli: string | null = null;
  if (o.runner === "js") {
    console.log("compiling meshraft (tsconfig.build.json, into a temp dir) ...");
    cli = buildMeshraft();
  }
  const source = sourceState();
  if (source.uncommitted.length > 0) console.log(`note: the members run uncommitted changes to ${source.uncommitted.join(", ")}`);
  const cluster = await MeshraftCluster.create(cli);
  const client = await createClient("http", 8);
  console.log(
    `meshraft long run: ${int(o.writes)} writes of ${o.valueBytes}-byte values over ${int(o.keys)} keys, ${o.concurrency} in flight, ` +
      `a sample every ${int(o.sampleEvery)} writes\n3 members at ${cluster.urls().join(", ")}; data in ${cluster.root}; ` +
      `node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  );
  cluster.start();
  const leaderUrl0 = await cluster.waitWhole(client, 30_000);
  console.log(`leader ${cluster.byUrl(leaderUrl0).id}`);

  const job: LoadJob = { urls: cluster.urls(), writes: o.writes, keys: o.keys, valueBytes: o.valueBytes, concurrency: o.concurrency, sampleEvery: o.sampleEvery };
  const load = track(spawn(process.execPath, ["--import", "tsx", SELF, "--load-worker", JSON.stringify(job)], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] }));
  const t0 = nowMs();
  const cpu = new Map<string, number>();
  await sampleMembers(cluster, client, cpu, 1);
  const samples: Sample[] = [];
  let loadSeconds = 0;
  let last = t0;
  for (;;) {
    const c = await nextCheckpoint(load, Math.max(120_000, o.sampleEvery * 20));
    loadSeconds += c.seconds;
    const now = nowMs();
    const nodes = await sampleMembers(cluster, client, cpu, (now - last) / 1000);
    last = now;
    const sample: Sample = {
      writes: c.writes,
      elapsedSeconds: Math.round((now - t0) / 100) / 10,
      writesPerSec: Math.round((c.writes - (samples[samples.length - 1]?.writes ?? 0)) / c.seconds),
      latencyMs: c.latencyMs,
      errors: c.errors,
      redirects: c.redirects,
      clientCores: c.clientCores,
      loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
      stateBytes: stateBytes(c.writes, o.keys, o.valueBytes),
      snapshotBytes: Math.max(0, ...nodes.map((n) => n.dataDir.snapshot?.bytes ?? 0)),
      nodes,
    };
    samples.push(sample);
    const errs = Object.values(c.errors).reduce((a, b) => a + b, 0);
    console.log(
      `  ${int(c.writes).padStart(11)} writes, ${sample.elapsedSeconds} s: ${int(sample.writesPerSec)}/s, p50 ${c.latencyMs.p50} ms p99 ${c.latencyMs.p99} ms; ` +
        `RSS ${nodes.map((n) => n.rss?.rssMB ?? "?").join("/")} MB; dirs ${nodes.map((n) => mb(n.dataDir.bytes)).join("/")} MB, ` +
        `${nodes.map((n) => n.dataDir.files).join("/")} files; applied ${nodes.map((n) => n.status?.appliedIndex ?? "?").join("/")}; ` +
        `cpu ${nodes.map((n) => n.cores).join("+")} + client ${c.clientCores}${errs ? `; ${errs} failed attempts ${JSON.stringify(c.errors)}` : ""}`,
    );
    if (c.writes >= o.writes) break;
    load.send({ type: "continue" } satisfies Continue);
  }
  const durationSeconds = (nowMs() - t0) / 1000;
  await stopChild(load, 5_000);

  const agreed = await waitAgreed(cluster, client, 30_000);
  const leaderUrl = await cluster.waitWhole(client, 30_000);
  const reads = await readBack(cluster, client, leaderUrl, o);
  const final = await sampleMembers(cluster, client, cpu, 1);

  const ids = cluster.members.map((m) => m.id);
  // Steady: every key written and two snapshots taken, so the state no longer grows.
  const steady = samples.filter((s) => s.writes >= o.keys + 2 * SNAPSHOT_EVERY_ENTRIES);
  const rssGrowth = growth(steady, (n) => n.rss?.rssMB ?? 0);
  const dirGrowth = growth(steady, (n) => Math.round((n.dataDir.bytes / MB) * 100) / 100);
  const grows = (g: ReturnType<typeof growth>, slackMB: number): string[] | null =>
    g &&
    Object.entries(g)
      .filter(([, v]) => v.secondHalfPeak > v.firstHalfPeak * 1.25 + slackMB)
      .map(([id]) => id);
  const halves = (g: ReturnType<typeof growth>): string =>
    g ? ids.map((id) => `${id} ${g[id].firstHalfPeak} -> ${g[id].secondHalfPeak}`).join(", ") + " MB" : "too few steady samples to tell";
  const verdict = (list: string[] | null): string => (list === null ? "?" : list.join(", ") || "none");
  const state = samples[samples.length - 1].stateBytes;
  const peakRssMB = Math.max(...samples.flatMap((s) => s.nodes.map((n) => n.rss?.rssMB ?? 0)));
  const peakDirBytes = Math.max(...samples.flatMap((s) => s.nodes.map((n) => n.dataDir.bytes)));
  const summary = {
    writes: o.writes,
    durationSeconds: Math.round(durationSeconds * 10) / 10,
    /** Writes over the time the load ran (pauses for sampling excluded). */
    writesPerSec: Math.round(o.writes / loadSeconds),
    failedAttempts: samples.reduce((s, x) => s + Object.values(x.errors).reduce((a, b) => a + b, 0), 0),
    stateMB: Math.round((state / MB) * 100) / 100,
    snapshotMB: Math.round((samples[samples.length - 1].snapshotBytes / MB) * 100) / 100,
    peakRssMB,
    peakDataDirMB: Math.round((peakDirBytes / MB) * 100) / 100,
    /** The peaks over the state's logical size: the "constant" the state is within. */
    peakDataDirOverState: Math.round(peakDirBytes / state),
    peakRssOverState: Math.round((peakRssMB * MB) / state),
    rssGrowth,
    dataDirGrowth: dirGrowth,
    /** Samples from `writes >= keys + 20,000` on (every key written, two snapshots taken). */
    steadyFromWrites: steady[0]?.writes ?? null,
    /** Members whose steady second-half peak is above 1.25x their first-half peak (+ slack): not bounded. */
    growingRss: grows(rssGrowth, 10),
    growingDataDir: grows(dirGrowth, 1),
    appliedIndex: agreed[0].appliedIndex,
    sameAppliedIndex: true,
    readsOk: reads.every((r) => r.ok),
  };

  console.log(`\n${table(samples, ids)}\n`);
  console.log(
    `${int(o.writes)} writes in ${summary.durationSeconds} s (${int(summary.writesPerSec)} writes/s while loading); ${summary.failedAttempts} failed attempts (retried)\n` +
      `state ${summary.stateMB} MB (${int(Math.min(o.writes, o.keys))} keys x key + ${o.valueBytes} B), current snapshot ${summary.snapshotMB} MB; ` +
      `peak RSS ${summary.peakRssMB} MB (${summary.peakRssOverState}x the state), peak data dir ${summary.peakDataDirMB} MB (${summary.peakDataDirOverState}x)\n` +
      `steady samples (from ${steady[0] ? int(steady[0].writes) : "-"} writes), peak in the first half -> second half: data dir ${halves(dirGrowth)}; RSS ${halves(rssGrowth)}\n` +
      `grows with the writes: data dir ${verdict(summary.growingDataDir)}, RSS ${verdict(summary.growingRss)}\n` +
      `all members applied index ${summary.appliedIndex}; ${reads.length} keys read back on the leader and every member: ${summary.readsOk ? "all hold their last written value" : "MISMATCH"}`,
  );
  for (const r of reads.filter((x) => !x.ok)) console.log(`  ${r.key}: expected ${r.expected}, got ${JSON.stringify(r.answers)}`);
  console.log(`files at the end: ${final.map((n) => `${n.id} [${n.dataDir.list.map((f) => `${f.name} ${f.bytes}`).join(", ")}]`).join("; ")}`);

  const date = new Date();
  const stamp = date.toISOString().replace(/[:.]/g, "-");
  const report = {
    benchmark: "long-run",
    date: date.toISOString(),
    command: `tsx bench/long-run.ts ${argv.join(" ")}`.trim(),
    source,
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemMB: Math.round(os.totalmem() / MB) },
    setup: {
      writes: o.writes,
      keys: o.keys,
      valueBytes: o.valueBytes,
      concurrency: o.concurrency,
      sampleEvery: o.sampleEvery,
      members: `3 x ${cli ? "node <compiled>/adapters/node/cli.js" : "node --import tsx adapters/node/cli.ts"} start, every option at its default (snapshot every 10,000 applied entries, 1,000 kept below it; FileStorage segments of 64 MiB)`,
      client: "a separate process, node:http Agent keep-alive, writes to the leader (307 followed), key-<i mod keys> = w<i> padded with dots; paused at every sample",
    },
    summary,
    reads,
    finalFiles: Object.fromEntries(final.map((n) => [n.id, n.dataDir.list])),
    samples,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, `long-run-${stamp}.json`), json);
  writeFileSync(join(RESULTS_DIR, "long-run-latest.json"), json);
  console.log(`\nwrote bench/results/long-run-${stamp}.json and long-run-latest.json`);

  client.close();
  await cluster.stop();
  killEverything(); // the compiled build's temp dir
  if (!summary.readsOk) process.exitCode = 1;
}

// Run only as a program; the load process is this file with --load-worker.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`\nlong-run bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killEverything();
    process.exit(1);
  });
}
