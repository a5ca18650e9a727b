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
 * bench/results/long-run-<timestamp>.json and long-run-latest.json. With --join-at-end a 4th
 * member then joins through a follower (`meshraft start --join`) under a light write load, timed
 * until it restored the snapshot, caught up and became a voter. See bench/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createClient, findLeader, getReq, originOf, outcome, putReq, type HttpClient, type Req } from "./cluster-http.ts";
import { nowMs, summarize, type LatencySummary } from "./cluster-load.ts";
import { buildMeshraft, cpuSeconds, killEverything, MeshraftCluster, readRss, sleep, stopChild, track, type Member, type Rss, type Runner } from "./cluster-procs.ts";
import { freePorts } from "../test/integration/process-cluster.ts";

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
  /** After the writes, join a 4th member through a follower and time its catch-up. */
  joinAtEnd: boolean;
  /** Writes per second that go on while the 4th member joins (0: none). */
  joinLoadPerSec: number;
  /** The join fails if the member is not a caught-up voter after this long, ms. */
  joinTimeoutMs: number;
}

const USAGE = `usage: npx tsx bench/long-run.ts [options]

  --writes N          total writes (default 1000000)
  --keys N            distinct keys; write i goes to key-<i mod N> (default 10000)
  --value-bytes N     bytes per value, at least 16 (default 100)
  --concurrency N     writes in flight (default 64)
  --sample-every N    writes between samples (default 50000, or writes/10 when smaller)
  --runner js|tsx     members run the compiled CLI with plain node (default) or cli.ts through tsx
  --join-at-end       after the writes, start n4 with --join <a follower> and time: /status up,
                      snapshot restored, caught up (applied >= the leader's commit at the start),
                      voter (its /status lists itself among the voters)
  --join-load N       writes/s to the leader while n4 joins (default 200; 0 for none)
  --join-timeout S    seconds n4 has to become a caught-up voter (default 300)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    writes: 1_000_000,
    keys: 10_000,
    valueBytes: 100,
    concurrency: 64,
    sampleEvery: 0,
    runner: "js",
    joinAtEnd: false,
    joinLoadPerSec: 200,
    joinTimeoutMs: 300_000,
  };
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
      case "--join-at-end":
        o.joinAtEnd = true;
        break;
      case "--join-load":
        o.joinLoadPerSec = int(0, 100_000);
        break;
      case "--join-timeout":
        o.joinTimeoutMs = int(1, 86_400) * 1000;
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

/**
 * PUTs write i (`key-<i mod keys>` = `w<i>`) to the leader, following 307s; after a failed
 * attempt it finds the leader again and retries, for at most WRITE_BUDGET_MS. A key's writes go
 * out one after the other, in the order `write` was called, so each key ends with its last value.
 */
class Writer {
  /** Failed attempts (each retried) by HTTP status or error code; the caller may reset them. */
  errors: Record<string, number> = {};
  redirects = 0;
  private looking: Promise<void> | null = null;
  /** The newest write per key in flight. */
  private readonly keyTail = new Map<number, Promise<void>>();

  constructor(
    private readonly client: HttpClient,
    private readonly urls: string[],
    private leader: string,
    private readonly keys: number,
    private readonly valueBytes: number,
  ) {}

  /** Resolves with the write's latency in ms (from when its key's previous write was answered). */
  write(i: number): Promise<number> {
    const k = i % this.keys;
    const req = putReq("meshraft", keyOf(i, this.keys), valueOf(i, this.valueBytes));
    const p = (this.keyTail.get(k) ?? Promise.resolve()).then(() => this.put(i, req));
    const tail = p.then(
      () => undefined,
      () => undefined,
    );
    this.keyTail.set(k, tail);
    void tail.then(() => this.keyTail.get(k) === tail && this.keyTail.delete(k));
    return p;
  }

  private relocate(): Promise<void> {
    return (this.looking ??= (async () => {
      await sleep(20);
      this.leader = await lookupLeader(this.client, this.urls);
      this.looking = null;
    })());
  }

  private async put(i: number, req: Req): Promise<number> {
    const sent = nowMs();
    for (;;) {
      let base = this.leader;
      let code: string;
      for (let hops = 0; ; hops++) {
        try {
          const a = await this.client.request(base, req, REQUEST_TIMEOUT_MS);
          if (a.status === 307 && a.location && hops < 3) {
            this.redirects++;
            base = this.leader = originOf(a.location);
            continue;
          }
          code = outcome("meshraft", "put", a);
        } catch (e) {
          code = (e as { code?: string }).code ?? "error";
        }
        break;
      }
      if (code === "ok") return nowMs() - sent;
      this.errors[code] = (this.errors[code] ?? 0) + 1;
      if (nowMs() - sent > WRITE_BUDGET_MS) throw new Error(`write ${i} (${keyOf(i, this.keys)}) kept failing for ${WRITE_BUDGET_MS / 1000} s; last answer: ${code}`);
      await this.relocate();
    }
  }
}

async function loadWorker(job: LoadJob): Promise<void> {
  const client = await createClient("http", job.concurrency);
  const writer = new Writer(client, job.urls, await lookupLeader(client, job.urls), job.keys, job.valueBytes);
  let next = 0;
  for (let done = 0; done < job.writes; ) {
    const target = Math.min(job.writes, done + job.sampleEvery);
    const samples = new Float64Array(target - done);
    let n = 0;
    writer.errors = {};
    writer.redirects = 0;
    const cpu0 = process.cpuUsage();
    const t0 = nowMs();
    const worker = async (): Promise<void> => {
      while (next < target) {
        const ms = await writer.write(next++);
        samples[n++] = ms;
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
      errors: writer.errors,
      redirects: writer.redirects,
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
  voters: string[];
}

async function statusOf(client: HttpClient, url: string): Promise<StatusView | null> {
  try {
    const a = await client.request(url, { method: "GET", path: "/status", body: null }, 2_000);
    if (a.status !== 200) return null;
    const s = JSON.parse(a.body.toString()) as StatusView;
    return { role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, lastIndex: s.lastIndex, voters: s.voters };
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

async function sampleMembers(
  cluster: MeshraftCluster,
  client: HttpClient,
  cpuBefore: Map<string, number>,
  seconds: number,
  members: Member[] = cluster.members,
): Promise<NodeSample[]> {
  return Promise.all(
    members.map(async (m) => {
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
async function waitAgreed(client: HttpClient, members: Member[], timeoutMs: number): Promise<StatusView[]> {
  const deadline = nowMs() + timeoutMs;
  let views: (StatusView | null)[] = [];
  while (nowMs() < deadline) {
    views = await Promise.all(members.map((m) => statusOf(client, m.url)));
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

/**
 * After the first `writes` writes: a few keys (first, middle, last, the last few written) read on
 * the leader and every one of `members`.
 */
async function readBack(client: HttpClient, leaderUrl: string, members: Member[], writes: number, o: Options): Promise<ReadCheck[]> {
  const written = Math.min(writes, o.keys);
  const picks = new Set<number>([0, Math.floor(written / 2), written - 1]);
  for (let i = Math.max(0, writes - 5); i < writes; i++) picks.add(i % o.keys);
  const checks: ReadCheck[] = [];
  for (const k of [...picks].sort((a, b) => a - b)) {
    const key = keyOf(k, o.keys);
    const expected = valueOf(lastWriteOf(k, writes, o.keys), o.valueBytes).toString("latin1");
    const answers: Record<string, string> = {};
    const read = async (name: string, url: string, req: Req): Promise<void> => {
      let a = await client.request(url, req, REQUEST_TIMEOUT_MS);
      if (a.status === 307 && a.location) a = await client.request(originOf(a.location), req, REQUEST_TIMEOUT_MS);
      answers[name] = a.status === 200 ? a.body.toString("latin1") : `HTTP ${a.status}`;
    };
    await read("leader", leaderUrl, getReq("meshraft", key));
    for (const m of members) await read(`${m.id} stale`, m.url, { method: "GET", path: `/kv/${key}?stale`, body: null });
    const ok = Object.values(answers).every((v) => v === expected);
    const short = (v: string): string => v.replace(/\.+$/, "…");
    checks.push({ key, expected: short(expected), answers: Object.fromEntries(Object.entries(answers).map(([n, v]) => [n, short(v)])), ok });
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------
// --join-at-end: a 4th member joins the loaded cluster
// ---------------------------------------------------------------------------------------------

/** Milliseconds from spawning the new member; null if it did not happen. */
interface JoinTimes {
  /** Its /status answered at all: the baseline of process start and storage open. */
  statusUp: number | null;
  /** The leader committed its addition as a learner (its log: "joined the cluster as voter"). */
  added: number | null;
  /** Its log: "state restored from a snapshot" (the first one). */
  snapshotRestored: number | null;
  /** Its appliedIndex reached the leader's commitIndex at the spawn. */
  caughtUp: number | null;
  /** Its /status lists it among the voters. */
  voter: number | null;
}

interface JoinLoad {
  /** Asked for, writes per second. */
  targetPerSec: number;
  /** Answered writes over the time the load ran. */
  perSec: number;
  writes: number;
  seconds: number;
  latencyMs: LatencySummary;
  errors: Record<string, number>;
  redirects: number;
  /** By the half second the writes were issued in, from the spawn (negative: before it). */
  byHalfSecond: { fromS: number; writes: number; p50: number; max: number }[];
}

interface JoinReport {
  id: string;
  url: string;
  /** The follower whose URL went to --join. */
  through: string;
  leader: string;
  /** What "caught up" means: the leader's commitIndex when the member was spawned. */
  leaderCommitAtSpawn: number | null;
  /** The leader's current snapshot file when the member was spawned: what InstallSnapshot sends. */
  leaderSnapshotAtSpawn: { name: string; bytes: number } | null;
  ms: JoinTimes;
  /** Every "state restored from a snapshot" line: ms from spawn and the snapshot's index. */
  snapshotsRestored: { atMs: number; index: number }[];
  /** Every "membership" line of the new member; `outgoing` is set in a joint configuration. */
  membership: { atMs: number; voters: string; learners: string; outgoing?: string }[];
  /** Highest VmRSS of each member, sampled while the new member caught up. */
  peakRssMB: Record<string, number>;
  load: JoinLoad | null;
  /** All members, once they agreed on an applied index after the load stopped. */
  final: NodeSample[] | null;
  /** Keys read on the leader and `?stale` on every member, the new one included. */
  reads: ReadCheck[];
  error: string | null;
  /** The new member's log, each line prefixed with +ms from the spawn. */
  log: string[];
}

const PACED_MAX_IN_FLIGHT = 1_000;

/**
 * `perSec` writes per second to the leader, open loop (issued on 10 ms ticks whatever the
 * answers, at most PACED_MAX_IN_FLIGHT at once), numbered from `first`. `stop(origin)` waits for
 * every write issued; its latencies by half second count from `origin` (a nowMs()).
 */
function pacedLoad(writer: Writer, perSec: number, first: number): { stop(origin: number): Promise<JoinLoad> } {
  const latencies: number[] = [];
  const issuedAt: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let issued = 0;
  let failure: unknown = null;
  const t0 = nowMs();
  const tick = setInterval(() => {
    const due = Math.floor(((nowMs() - t0) / 1000) * perSec);
    while (issued < due && inFlight.size < PACED_MAX_IN_FLIGHT && failure === null) {
      const at = nowMs();
      const p: Promise<void> = writer.write(first + issued++).then(
        (ms) => void (latencies.push(ms), issuedAt.push(at)),
        (e: unknown) => void (failure ??= e),
      );
      inFlight.add(p);
      void p.then(() => inFlight.delete(p));
    }
  }, 10);
  return {
    async stop(origin) {
      clearInterval(tick);
      await Promise.all(inFlight);
      const seconds = (nowMs() - t0) / 1000;
      if (failure !== null) throw failure;
      const buckets = new Map<number, number[]>();
      issuedAt.forEach((at, i) => {
        const s = Math.floor((at - origin) / 500) / 2;
        const b = buckets.get(s) ?? [];
        b.push(latencies[i]);
        buckets.set(s, b);
      });
      const byHalfSecond = [...buckets.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([fromS, l]) => {
          const q = summarize(Float64Array.from(l));
          return { fromS, writes: l.length, p50: Math.round(q.p50), max: Math.round(q.max) };
        });
      return {
        targetPerSec: perSec,
        perSec: Math.round(latencies.length / seconds),
        writes: issued,
        seconds: Math.round(seconds * 10) / 10,
        latencyMs: summarize(Float64Array.from(latencies)),
        errors: writer.errors,
        redirects: writer.redirects,
        byHalfSecond,
      };
    },
  };
}

/** Calls `onLine(msSinceT0, line)` for each whole line the process writes to stdout or stderr. */
function watchLines(proc: ChildProcess, t0: number, onLine: (atMs: number, line: string) => void): void {
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let partial = "";
    stream.on("data", (chunk: Buffer) => {
      const at = Math.round(nowMs() - t0);
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line) onLine(at, line);
    });
  }
}

/**
 * Starts member n4 with `--join <a follower's URL>` (its data dir in the cluster's temp dir) while
 * `o.joinLoadPerSec` writes per second continue, and times it until it is a caught-up voter; then
 * stops the load, waits until all four agree, reads keys back on it, samples it and stops it.
 * Failures are reported in the result (with its log), not thrown.
 */
async function joinNewMember(cluster: MeshraftCluster, client: HttpClient, leaderUrl: string, writesSoFar: number, o: Options): Promise<JoinReport> {
  const [port] = await freePorts(1);
  const id = `n${cluster.members.length + 1}`;
  const url = `http://127.0.0.1:${port}`;
  const dataDir = join(cluster.root, id);
  const leader = cluster.byUrl(leaderUrl);
  const through = cluster.members.find((x) => x !== leader)!;
  const args = ["start", "--id", id, "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--join", through.url];
  const m: Member = { id, url, dataDir, args, proc: null, log: [] };
  const all = [...cluster.members, m];
  const ms: JoinTimes = { statusUp: null, added: null, snapshotRestored: null, caughtUp: null, voter: null };
  const r: JoinReport = {
    id,
    url,
    through: through.id,
    leader: leader.id,
    leaderCommitAtSpawn: null,
    leaderSnapshotAtSpawn: null,
    ms,
    snapshotsRestored: [],
    membership: [],
    peakRssMB: {},
    load: null,
    final: null,
    reads: [],
    error: null,
    log: [],
  };
  // Its own connections, as many as writes may be in flight: a small pool would queue writes in
  // the client whenever the leader slows down, and count that queueing as the cluster's latency.
  const loadClient = await createClient("http", PACED_MAX_IN_FLIGHT);
  const writer = new Writer(loadClient, cluster.urls(), leaderUrl, o.keys, o.valueBytes);
  let load = o.joinLoadPerSec > 0 ? pacedLoad(writer, o.joinLoadPerSec, writesSoFar) : null;
  let t0 = nowMs();
  try {
    if (load) await sleep(1_000); // join a cluster that is already taking writes
    const s = await statusOf(client, leaderUrl);
    if (!s || s.role !== "leader") throw new Error(`${leader.id} no longer leads (${JSON.stringify(s)}); not starting ${id}`);
    const target = (r.leaderCommitAtSpawn = s.commitIndex);
    r.leaderSnapshotAtSpawn = dirStats(leader.dataDir).snapshot;
    t0 = nowMs();
    cluster.spawn(m);
    watchLines(m.proc!, t0, (atMs, line) => {
      if (r.log.length < 500) r.log.push(`+${atMs} ms ${line}`);
      if (/joined the cluster as /.test(line)) ms.added ??= atMs;
      const snap = /state restored from a snapshot index=(\d+)/.exec(line);
      if (snap) {
        ms.snapshotRestored ??= atMs;
        r.snapshotsRestored.push({ atMs, index: Number(snap[1]) });
      }
      const conf = / membership voters=(\S+) learners=(\S+)(?: outgoing=(\S+))?/.exec(line);
      if (conf) r.membership.push({ atMs, voters: conf[1], learners: conf[2], ...(conf[3] ? { outgoing: conf[3] } : {}) });
    });
    const deadline = t0 + o.joinTimeoutMs;
    let last: StatusView | null = null;
    while (ms.caughtUp === null || ms.voter === null) {
      if (cluster.pid(m) === null) throw new Error(`${id} exited (${m.proc!.signalCode ?? `code ${m.proc!.exitCode}`})`);
      if (nowMs() > deadline) throw new Error(`${id} was not a caught-up voter within ${o.joinTimeoutMs / 1000} s; its last /status: ${JSON.stringify(last)}`);
      for (const x of all) {
        const pid = cluster.pid(x);
        const rss = pid === null ? null : readRss(pid);
        if (rss) r.peakRssMB[x.id] = Math.max(r.peakRssMB[x.id] ?? 0, rss.rssMB);
      }
      last = await statusOf(client, url);
      const at = Math.round(nowMs() - t0); // when the answer arrived: each time is late by at most one poll
      if (last) {
        ms.statusUp ??= at;
        if (last.appliedIndex >= target) ms.caughtUp ??= at;
        if (last.voters.includes(id)) ms.voter ??= at;
      }
      await sleep(20);
    }
    const stopping = load;
    load = null;
    if (stopping) r.load = await stopping.stop(t0);
    await waitAgreed(client, all, 60_000);
    const leaderNow = await cluster.waitWhole(client, 30_000);
    r.reads = await readBack(client, leaderNow, all, writesSoFar + (r.load?.writes ?? 0), o);
    r.final = await sampleMembers(cluster, client, new Map(), 1, all);
  } catch (e) {
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (load) await load.stop(t0).catch(() => undefined);
    loadClient.close();
    if (m.proc) await stopChild(m.proc);
  }
  return r;
}

/** `items` joined with " | ", `per` to a line, the first line after `head`, the others indented as far. */
function chunked(items: string[], per: number, head: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += per) lines.push((i === 0 ? head : " ".repeat(head.length)) + items.slice(i, i + per).join(" | "));
  return lines;
}

function joinLines(j: JoinReport): string {
  const at = (v: number | null): string => (v === null ? "never" : `${(v / 1000).toFixed(2)} s`.padStart(8));
  const load = j.load
    ? `${j.load.targetPerSec} writes/s asked, ${j.load.perSec} answered (${int(j.load.writes)} in ${j.load.seconds} s), p50 ${j.load.latencyMs.p50} ms p99 ${j.load.latencyMs.p99} ms max ${j.load.latencyMs.max} ms` +
      `${Object.keys(j.load.errors).length ? `, failed attempts ${JSON.stringify(j.load.errors)}` : ""}`
    : "no writes";
  const snap = j.leaderSnapshotAtSpawn ? `${j.leaderSnapshotAtSpawn.name}, ${int(j.leaderSnapshotAtSpawn.bytes)} B (${mb(j.leaderSnapshotAtSpawn.bytes, 2)} MB)` : "none";
  const me = j.final?.find((n) => n.id === j.id);
  const lines = [
    `join: ${j.id} started with --join ${j.through}'s URL; leader ${j.leader}, commit index ${j.leaderCommitAtSpawn === null ? "?" : int(j.leaderCommitAtSpawn)} at the spawn; leader's snapshot ${snap}`,
    `  meanwhile: ${load}`,
    ...(j.load ? chunked(j.load.byHalfSecond.map((b) => `${b.fromS >= 0 ? "+" : ""}${b.fromS.toFixed(1)} s ${b.writes} ${b.p50}/${b.max}`), 6, "    issued from the spawn at (writes p50/max ms): ") : []),
    `  /status answers (process start)    ${at(j.ms.statusUp)}`,
    `  added (joined the cluster as ...)  ${at(j.ms.added)}`,
    `  snapshot restored                  ${at(j.ms.snapshotRestored)}${j.snapshotsRestored.length ? `  index ${j.snapshotsRestored.map((x) => int(x.index)).join(", ")}` : ""}`,
    `  caught up (applied >= that commit) ${at(j.ms.caughtUp)}`,
    `  voter (in its /status voters)      ${at(j.ms.voter)}`,
    `  membership lines: ${j.membership.map((c) => `+${c.atMs} ms voters=${c.voters} learners=${c.learners}${c.outgoing ? ` outgoing=${c.outgoing} (joint)` : ""}`).join("; ") || "none"}`,
    `  peak RSS while it joined: ${Object.entries(j.peakRssMB).map(([id, v]) => `${id} ${v.toFixed(0)}`).join(", ")} MB`,
  ];
  if (me) lines.push(`  ${j.id} afterwards: RSS ${me.rss?.rssMB ?? "?"} MB, data dir ${mb(me.dataDir.bytes, 2)} MB [${me.dataDir.list.map((f) => `${f.name} ${f.bytes}`).join(", ")}]`);
  if (j.reads.length) {
    const ok = j.reads.every((x) => x.ok);
    lines.push(`  ${j.reads.length} keys read on the leader and ?stale on all ${j.final?.length ?? "?"} members: ${ok ? "all hold their last written value" : "MISMATCH"}`);
    for (const x of j.reads.filter((y) => !y.ok)) lines.push(`    ${x.key}: expected ${x.expected}, got ${JSON.stringify(x.answers)}`);
  }
  if (j.error) lines.push(`  JOIN FAILED: ${j.error}`, ...j.log.slice(-20).map((l) => `    ${l}`));
  return lines.join("\n");
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

  const agreed = await waitAgreed(client, cluster.members, 30_000);
  const leaderUrl = await cluster.waitWhole(client, 30_000);
  const reads = await readBack(client, leaderUrl, cluster.members, o.writes, o);
  const final = await sampleMembers(cluster, client, cpu, 1);
  const joined = o.joinAtEnd ? await joinNewMember(cluster, client, leaderUrl, o.writes, o) : null;

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
  if (joined) console.log(`\n${joinLines(joined)}`);

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
      members: `3 x ${cli ? "node <compiled>/adapters/node/cli.js" : "node --import tsx adapters/node/cli.ts"} start, every option at its default (snapshot every 10,000 applied entries, 1,000 kept below it; FileStorage segments of 64 MiB, closed at a compaction once they hold 1 MiB)`,
      client: "a separate process, node:http Agent keep-alive, writes to the leader (307 followed), key-<i mod keys> = w<i> padded with dots; paused at every sample",
    },
    summary,
    reads,
    /** --join-at-end: the 4th member's timings (ms from its spawn), the load meanwhile, its log. */
    join: joined,
    /** The last lines each member logged (roles, snapshots, warnings). */
    memberLogs: Object.fromEntries(cluster.members.map((m) => [m.id, m.log.slice(-60)])),
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
  if (!summary.readsOk || joined?.error || joined?.reads.some((r) => !r.ok)) process.exitCode = 1;
}

// Run only as a program; the load process is this file with --load-worker.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`\nlong-run bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killEverything();
    process.exit(1);
  });
}
