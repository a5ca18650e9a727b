/**
 * The cluster benchmark's client, run as its own process so that it never shares an event loop
 * with the nodes it measures (bench/cluster.ts starts it; see bench/README.md).
 *
 *   tsx bench/cluster-load.ts --job '<LoadJob as JSON>'   one point: prints one result line
 *   tsx bench/cluster-load.ts --failover                  failover client, driven over IPC
 *
 * A point keeps `concurrency` requests in flight against the leader for `warmup + seconds`:
 * each worker sends its next request when the previous one is answered (a closed loop), with a
 * key drawn from `keys` keys and a `valueBytes`-byte value. Operations that complete during the
 * measured `seconds` count; their latency is the time from send to the last byte of the answer,
 * including a followed 307. Every sample is kept, so percentiles are exact.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import {
  createClient,
  findLeader,
  getReq,
  originOf,
  outcome,
  putReq,
  type ClientKind,
  type HttpClient,
  type Req,
  type System,
} from "./cluster-http.ts";

export interface LoadJob {
  system: System;
  /** Client URLs of every member; the leader is found among them. */
  urls: string[];
  /** `prefill` writes every key once (no duration). */
  op: "put" | "get" | "prefill";
  concurrency: number;
  seconds: number;
  warmup: number;
  client: ClientKind;
  keys: number;
  valueBytes: number;
  seed: number;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  op: LoadJob["op"];
  concurrency: number;
  client: ClientKind;
  measuredSeconds: number;
  ops: number;
  opsPerSec: number;
  /** Completed operations in each second of the measurement. */
  perSecond: number[];
  latencyMs: LatencySummary;
  /** Failed attempts during the measurement, by HTTP status or error code. */
  errors: Record<string, number>;
  /** 307s followed (the leader moved). */
  redirects: number;
  /** Times the leader was looked up again after an error. */
  leaderLookups: number;
  /** CPU the load generator itself used during the measurement, in cores. */
  clientCores: number;
}

export const RESULT_MARKER = "@@cluster-load@@";
/** Printed when the measured window starts and ends, so the caller can sample server CPU. */
export const WINDOW_START = "@@window-start@@";
export const WINDOW_END = "@@window-end@@";

const REQUEST_TIMEOUT_MS = 10_000;
const LOOKUP_BUDGET_MS = 15_000;

/** Milliseconds on the system-wide monotonic clock (comparable between processes). */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function keyName(i: number): string {
  return `bench-${String(i).padStart(4, "0")}`;
}

/** xorshift32: the same keys and values for every system in a run. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function value(rng: Rng, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) b[i] = LETTERS.charCodeAt(rng.int(LETTERS.length));
  return b;
}

export function summarize(samples: Float64Array): LatencySummary {
  const s = samples.slice().sort();
  const q = (p: number): number => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]);
  let sum = 0;
  for (const x of s) sum += x;
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return { p50: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), p999: r(q(0.999)), max: r(s[s.length - 1] ?? NaN), mean: r(sum / Math.max(1, s.length)) };
}

// ---------------------------------------------------------------------------------------------
// One point
// ---------------------------------------------------------------------------------------------

async function runJob(job: LoadJob): Promise<LoadResult> {
  if (job.client === "autocannon" && job.op !== "prefill") return runAutocannon(job);
  const client = await createClient(job.client === "autocannon" ? "http" : job.client, job.concurrency);
  const rng = new Rng(job.seed);
  // Requests are built before the clock starts: the client spends its CPU on HTTP, not on
  // generating values or base64, and both systems get the same keys and values.
  const pool: Req[] = [];
  if (job.op === "get") for (let i = 0; i < job.keys; i++) pool.push(getReq(job.system, keyName(i)));
  else if (job.op === "prefill") for (let i = 0; i < job.keys; i++) pool.push(putReq(job.system, keyName(i), value(rng, job.valueBytes)));
  else for (let i = 0; i < 4096; i++) pool.push(putReq(job.system, keyName(rng.int(job.keys)), value(rng, job.valueBytes)));
  const kind = job.op === "get" ? "get" : "put";

  let leader = await lookup(client, job, 0);
  let lookups = 0;
  let looking: Promise<void> | null = null;
  const relocate = (): Promise<void> =>
    (looking ??= (async () => {
      lookups++;
      await sleep(5);
      leader = await lookup(client, job, 5);
      looking = null;
    })());

  let samples = new Float64Array(1 << 16);
  let n = 0;
  const errors: Record<string, number> = {};
  let redirects = 0;
  const t0 = nowMs();
  const prefill = job.op === "prefill";
  const start = prefill ? t0 : t0 + job.warmup * 1000;
  const end = prefill ? Infinity : start + job.seconds * 1000;
  const perSecond = new Array<number>(Math.ceil(prefill ? 0 : job.seconds)).fill(0);
  let nextKey = 0;
  /** Prefill writes that failed, to send again: every key must end up written. */
  const again: Req[] = [];

  let cpuAtStart = process.cpuUsage();
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    process.stdout.write(`${WINDOW_START}\n`);
  }, start - nowMs());

  const worker = async (): Promise<void> => {
    for (;;) {
      let req: Req;
      if (prefill) {
        const r = again.pop() ?? pool[nextKey++];
        if (r === undefined) return;
        req = r;
      } else {
        if (nowMs() >= end) return;
        req = pool[rng.int(pool.length)];
      }
      let base = leader;
      const sent = nowMs();
      let code: string;
      for (let hops = 0; ; hops++) {
        try {
          const a = await client.request(base, req, REQUEST_TIMEOUT_MS);
          if (a.status === 307 && a.location && hops < 3) {
            redirects++;
            base = leader = originOf(a.location);
            continue;
          }
          code = outcome(job.system, kind, a);
        } catch (e) {
          code = (e as { code?: string }).code ?? "error";
        }
        break;
      }
      const done = nowMs();
      const inWindow = done >= start && done <= end;
      if (code === "ok") {
        if (inWindow) {
          if (n === samples.length) {
            const bigger = new Float64Array(samples.length * 2);
            bigger.set(samples);
            samples = bigger;
          }
          samples[n++] = done - sent;
          if (!prefill) perSecond[Math.min(perSecond.length - 1, Math.floor((done - start) / 1000))]++;
        }
      } else {
        if (inWindow) errors[code] = (errors[code] ?? 0) + 1;
        if (prefill) again.push(req);
        await relocate();
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, () => worker()));
  clearTimeout(startTimer);
  const finished = nowMs();
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${WINDOW_END}\n`);
  client.close();
  const measuredSeconds = prefill ? (finished - t0) / 1000 : job.seconds;
  const ops = n;
  return {
    op: job.op,
    concurrency: job.concurrency,
    client: client.kind,
    measuredSeconds: Math.round(measuredSeconds * 1000) / 1000,
    ops,
    opsPerSec: Math.round(ops / measuredSeconds),
    perSecond,
    latencyMs: summarize(samples.subarray(0, n)),
    errors,
    redirects,
    leaderLookups: lookups,
    clientCores: Math.round(((cpu.user + cpu.system) / 1000 / (measuredSeconds * 1000)) * 100) / 100,
  };
}

// ---------------------------------------------------------------------------------------------
// One point with autocannon
// ---------------------------------------------------------------------------------------------

/** The slice of autocannon 8/9's API used here (the package ships no types). */
interface AutocannonInstance {
  on(event: "response", fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: "done", fn: (r: { errors: number; timeouts: number; non2xx: number }) => void): void;
  stop(): void;
}
type Autocannon = (
  opts: {
    url: string;
    connections: number;
    duration: number;
    timeout: number;
    requests: { method: string; path: string; body?: Buffer; headers?: Record<string, string> }[];
  },
  cb: (err: Error | null, r: { errors: number; timeouts: number; non2xx: number; "2xx": number }) => void,
) => AutocannonInstance;

/**
 * The efficient client (the floor-setting one): autocannon keeps `concurrency` keep-alive
 * connections busy with one request each, writing pre-built requests straight to the socket. It
 * does not follow a 307, so the leader is looked up once before the point and a move during the
 * point shows as errors. Latency per response is recorded here from autocannon's own float
 * `responseTime` (its histogram keeps whole milliseconds only); the warm-up is a separate
 * autocannon run whose connections are closed before the measured one starts.
 */
async function runAutocannon(job: LoadJob): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;
  const lookupClient = await createClient("http", 4);
  const leader = await lookup(lookupClient, job, 0);
  lookupClient.close();
  const rng = new Rng(job.seed);
  // A short pool: autocannon builds every request once per connection.
  const requests = Array.from({ length: 64 }, () => {
    const r = job.op === "get" ? getReq(job.system, keyName(rng.int(job.keys))) : putReq(job.system, keyName(rng.int(job.keys)), value(rng, job.valueBytes));
    return {
      method: r.method,
      path: r.path,
      ...(r.body ? { body: r.body, headers: { "content-type": r.contentType ?? "application/octet-stream" } } : {}),
    };
  });
  const run = (seconds: number, onResponse: ((status: number, ms: number) => void) | null) =>
    new Promise<{ errors: number; timeouts: number; non2xx: number }>((resolve, reject) => {
      const inst = autocannon(
        { url: leader, connections: job.concurrency, duration: seconds, timeout: REQUEST_TIMEOUT_MS / 1000, requests },
        (err, r) => (err ? reject(err) : resolve(r)),
      );
      if (onResponse) inst.on("response", (_c, status, _b, ms) => onResponse(status, ms));
    });
  if (job.warmup > 0) await run(job.warmup, null);

  let samples = new Float64Array(1 << 16);
  let n = 0;
  const perSecond = new Array<number>(Math.ceil(job.seconds)).fill(0);
  const errors: Record<string, number> = {};
  const cpuAtStart = process.cpuUsage();
  process.stdout.write(`${WINDOW_START}\n`);
  const start = nowMs();
  const r = await run(job.seconds, (status, ms) => {
    if (status !== 200) {
      errors[String(status)] = (errors[String(status)] ?? 0) + 1;
      return;
    }
    if (n === samples.length) {
      const bigger = new Float64Array(samples.length * 2);
      bigger.set(samples);
      samples = bigger;
    }
    samples[n++] = ms;
    perSecond[Math.min(perSecond.length - 1, Math.floor((nowMs() - start) / 1000))]++;
  });
  const measuredSeconds = (nowMs() - start) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${WINDOW_END}\n`);
  if (r.errors > 0) errors.error = r.errors - r.timeouts;
  if (r.timeouts > 0) errors.TIMEOUT = r.timeouts;
  return {
    op: job.op,
    concurrency: job.concurrency,
    client: "autocannon",
    measuredSeconds: Math.round(measuredSeconds * 1000) / 1000,
    ops: n,
    opsPerSec: Math.round(n / measuredSeconds),
    perSecond,
    latencyMs: summarize(samples.subarray(0, n)),
    errors,
    redirects: 0,
    leaderLookups: 0,
    clientCores: Math.round(((cpu.user + cpu.system) / 1e6 / measuredSeconds) * 100) / 100,
  };
}

async function lookup(client: HttpClient, job: LoadJob, pauseMs: number): Promise<string> {
  const deadline = nowMs() + LOOKUP_BUDGET_MS;
  for (;;) {
    const url = await findLeader(client, job.system, job.urls);
    if (url) return url;
    if (nowMs() > deadline) throw new Error(`${job.system}: no leader among ${job.urls.join(", ")} for ${LOOKUP_BUDGET_MS} ms`);
    await sleep(Math.max(pauseMs, 20));
  }
}

// ---------------------------------------------------------------------------------------------
// Failover client
// ---------------------------------------------------------------------------------------------

/** Parent -> child. */
export type FailoverCommand =
  | { type: "arm"; system: System; survivors: string[]; trial: number }
  | { type: "go"; t0: number; timeoutMs: number; intervalMs: number; attemptTimeoutMs: number };

/** Child -> parent. */
export type FailoverReply =
  | { type: "ready" }
  | { type: "armed" }
  | { type: "result"; ok: boolean; ms: number | null; attempts: number; answers: Record<string, number> };

/**
 * After `go`, every `intervalMs` one write goes to the next survivor in turn, each with its own
 * timeout, without waiting for the earlier ones: a write stuck on a member that forwarded it to the
 * dead leader does not hold the next one back. A 307 is followed only to a survivor. The first
 * 200 ends the trial: its time is measured from `t0`, the moment the parent sent SIGKILL.
 */
async function failoverClient(kind: ClientKind): Promise<void> {
  const client = await createClient(kind, 512);
  const rng = new Rng(7);
  let system: System = "meshraft";
  let survivors: string[] = [];
  let reqs: Req[] = [];
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: FailoverCommand) => {
    if (m.type === "arm") {
      system = m.system;
      survivors = m.survivors;
      reqs = Array.from({ length: 64 }, () => putReq(system, `failover-${m.trial}`, value(rng, 100)));
      // Open a connection to each survivor now, so no handshake lands inside the measurement.
      void Promise.all(survivors.map((u) => client.request(u, { method: "GET", path: "/", body: null }, 1000).catch(() => null))).then(() =>
        process.send!({ type: "armed" } satisfies FailoverReply),
      );
      return;
    }
    const { t0, timeoutMs, intervalMs, attemptTimeoutMs } = m;
    const answers: Record<string, number> = {};
    let attempts = 0;
    let next = 0;
    let inflight = 0;
    let done = false;
    const finish = (ok: boolean, ms: number | null): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      process.send!({ type: "result", ok, ms: ms === null ? null : Math.round(ms * 10) / 10, attempts, answers } satisfies FailoverReply);
    };
    const attempt = async (url: string, req: Req, budget: number): Promise<string> => {
      for (let hops = 0; ; hops++) {
        try {
          const a = await client.request(url, req, budget);
          if (a.status === 307 && a.location && hops < 2) {
            const to = originOf(a.location);
            if (!survivors.includes(to)) return "307-to-dead";
            url = to;
            continue;
          }
          return outcome(system, "put", a);
        } catch (e) {
          return (e as { code?: string }).code ?? "error";
        }
      }
    };
    const launch = (): void => {
      if (done) return;
      const t = nowMs();
      if (t >= t0 + timeoutMs) return finish(false, null);
      if (inflight >= 400) return;
      const url = survivors[next++ % survivors.length];
      attempts++;
      inflight++;
      void attempt(url, reqs[attempts % reqs.length], Math.min(attemptTimeoutMs, t0 + timeoutMs - t)).then((code) => {
        inflight--;
        answers[code] = (answers[code] ?? 0) + 1;
        if (code === "ok") finish(true, nowMs() - t0);
      });
    };
    const timer = setInterval(launch, intervalMs);
    launch();
  });
  process.send!({ type: "ready" } satisfies FailoverReply);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf("--job");
  if (argv.includes("--failover")) {
    const c = argv.indexOf("--client");
    return failoverClient(c >= 0 ? (argv[c + 1] as ClientKind) : "http");
  }
  if (i < 0) throw new Error("usage: cluster-load.ts --job '<json>' | --failover [--client http|fetch] (started by bench/cluster.ts)");
  const job = JSON.parse(argv[i + 1]) as LoadJob;
  const result = await runJob(job);
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`, () => process.exit(0));
}

// Run only as a program: bench/cluster.ts imports this file's types and helpers.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`cluster-load: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
