/**
 * Core throughput benchmark (the project's benchmark issue): three real `RaftNode`s in one
 * process, on `MemoryNetwork` with `MemoryStorage`, the leader kept busy with W proposals of 64
 * bytes in flight. Measures committed-and-applied entries per second on the leader (propose
 * promises that resolved), proposal latency, and memory. Target: >= 200,000 entries/s.
 *
 *   npm run bench:core                        # every scenario, 10 s each
 *   npm run bench:core -- --seconds 5 --window 10000 --sm counter
 *   npm run bench:core -- --summarize bench/results/prof   # top functions of .cpuprofile files
 *
 * Each scenario runs in a fresh child process, so one scenario's heap and JIT state do not
 * colour the next. See bench/README.md for what the numbers mean and how to profile.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";

import type { Clock } from "../src/clock.ts";
import { SeededRandom } from "../src/core/random.ts";
import type { Entry } from "../src/core/types.ts";
import { DelayHistogram } from "../src/event-loop-delay.ts";
import { encodeKvCommand, KvStateMachine } from "../src/kv/kv.ts";
import { RaftNode } from "../src/node.ts";
import type { StateMachine } from "../src/statemachine.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { SaveBatch, Storage, StoredState } from "../src/storage/storage.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(HERE, "results");
const PAYLOAD_BYTES = 64;
const TARGET_PER_SEC = 200_000;
const IDS = ["n1", "n2", "n3"] as const;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

type SmKind = "counter" | "kv";

interface Scenario {
  sm: SmKind;
  /** Proposals kept in flight on the leader. */
  window: number;
  /** Measured duration, s (after warm-up). */
  seconds: number;
  /** Unmeasured load before the measurement, s (JIT warm-up, steady state). */
  warmup: number;
  /** "memory": MemoryStorage (the issue's setup). "null": a diagnostic store that keeps nothing. */
  storage: StorageKind;
}

type StorageKind = "memory" | "null";

interface Options {
  seconds: number;
  warmup: number;
  windows: number[];
  sms: SmKind[];
  storage: StorageKind;
  /** Run scenarios in this process instead of one child each (for profiling one scenario). */
  inline: boolean;
  summarize: string | null;
  top: number;
}

function parseArgs(argv: string[]): Options & { child: Scenario | null } {
  const o: Options & { child: Scenario | null } = {
    seconds: 10,
    warmup: 1,
    windows: [1_000, 10_000],
    sms: ["counter", "kv"],
    storage: "memory",
    inline: false,
    summarize: null,
    top: 25,
    child: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!(v >= 0 && Number.isFinite(v))) throw new Error(`${a} needs a non-negative number`);
      return v;
    };
    switch (a) {
      case "--seconds":
        o.seconds = num();
        break;
      case "--warmup":
        o.warmup = num();
        break;
      case "--window":
      case "--windows":
        o.windows = value().split(",").map((s) => {
          const w = Number(s);
          if (!Number.isInteger(w) || w < 1) throw new Error(`--window: bad value ${s}`);
          return w;
        });
        break;
      case "--sm":
        o.sms = value().split(",").map((s) => {
          if (s !== "counter" && s !== "kv") throw new Error(`--sm: expected counter or kv, got ${s}`);
          return s;
        });
        break;
      case "--storage": {
        const v = value();
        if (v !== "memory" && v !== "null") throw new Error(`--storage: expected memory or null, got ${v}`);
        o.storage = v;
        break;
      }
      case "--inline":
        o.inline = true;
        break;
      case "--summarize":
        o.summarize = value();
        break;
      case "--top":
        o.top = num();
        break;
      case "--child":
        o.child = JSON.parse(value()) as Scenario;
        break;
      case "--help":
      case "-h":
        console.log(
          "usage: tsx bench/core.ts [--seconds N] [--warmup N] [--window 1000,10000] [--sm counter,kv]\n" +
            "                         [--storage memory|null] [--inline]\n" +
            "       tsx bench/core.ts --summarize <file.cpuprofile | dir> [--top N]",
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// The in-process clock
// ---------------------------------------------------------------------------------------------

/**
 * Real time, but a zero-delay timer does not cost a 1 ms `setTimeout`. Zero-delay callbacks
 * (MemoryNetwork deliveries with 0 ms delay) are queued and run together, in FIFO order, in one
 * `setImmediate` per event-loop turn: still asynchronous (a send never re-enters a handler), and
 * timers, I/O and the tick still get their turn between batches. It models a socket read that
 * hands several frames over in one event, with zero wire latency. Positive delays (the 25 ms
 * tick) use `setTimeout`, so ticks, heartbeats and election timeouts keep real milliseconds.
 */
class InProcessClock implements Clock {
  private queue: { fn: () => void; cancelled: boolean }[] = [];
  private scheduled = false;
  /** setImmediate turns that ran a batch, and callbacks they ran. */
  batches = 0;
  callbacks = 0;

  now(): number {
    return performance.now();
  }

  setTimer(ms: number, fn: () => void): () => void {
    if (ms > 0) {
      const handle = setTimeout(fn, ms);
      return () => clearTimeout(handle);
    }
    const item = { fn, cancelled: false };
    this.queue.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return () => {
      item.cancelled = true;
    };
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    this.batches++;
    this.callbacks += batch.length;
    for (const item of batch) if (!item.cancelled) item.fn();
  };
}

/**
 * Diagnostic only (`--storage null`): accepts every batch and keeps none of it, like a file store
 * whose log lives on disk rather than in the heap. Not durable, so not Raft-safe; it exists to
 * show how much of the cost is MemoryStorage copying and retaining every entry.
 */
class NullStorage implements Storage {
  saves = 0;
  load(): Promise<StoredState> {
    return Promise.resolve({ hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [] });
  }
  save(_batch: SaveBatch): Promise<void> {
    this.saves++;
    return Promise.resolve();
  }
  compact(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------
// State machines and payloads
// ---------------------------------------------------------------------------------------------

/** The cheapest honest state machine: counts entries and bytes. */
class CounterStateMachine implements StateMachine<number> {
  applied = 0;
  bytes = 0;
  apply(entry: Entry): number {
    this.bytes += entry.data.byteLength;
    return ++this.applied;
  }
  snapshot(): Uint8Array {
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    view.setFloat64(0, this.applied);
    view.setFloat64(8, this.bytes);
    return out;
  }
  restore(data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.applied = view.getFloat64(0);
    this.bytes = view.getFloat64(8);
  }
}

/**
 * Payload factory: a fresh 64-byte buffer per proposal, as a server would get from each client
 * request (reusing one buffer would understate what the log retains).
 */
function payloadFactory(sm: SmKind): () => Uint8Array {
  if (sm === "counter") {
    let seq = 0;
    return () => {
      const data = new Uint8Array(PAYLOAD_BYTES);
      const s = seq++;
      data[0] = s & 0xff;
      data[1] = (s >>> 8) & 0xff;
      data[2] = (s >>> 16) & 0xff;
      data[3] = (s >>> 24) & 0xff;
      return data;
    };
  }
  // KV puts over 10,000 keys, each command encoded to exactly 64 bytes. Encoded once into a pool
  // (the client's work, not the cluster's) and copied per proposal.
  const KEYS = 10_000;
  const pool: Uint8Array[] = [];
  for (let k = 0; k < KEYS; k++) {
    const key = `key-${String(k).padStart(5, "0")}`;
    let valueLen = PAYLOAD_BYTES;
    let bytes = encodeKvCommand({ op: "put", key, value: new Uint8Array(valueLen) });
    valueLen -= bytes.byteLength - PAYLOAD_BYTES;
    bytes = encodeKvCommand({ op: "put", key, value: new Uint8Array(valueLen).fill(k & 0xff) });
    if (bytes.byteLength !== PAYLOAD_BYTES) throw new Error(`kv payload is ${bytes.byteLength} bytes, wanted ${PAYLOAD_BYTES}`);
    pool.push(bytes);
  }
  let i = 0;
  return () => {
    const src = pool[i];
    i = i + 1 === KEYS ? 0 : i + 1;
    return new Uint8Array(src);
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------------------

/** Latency histogram: src/event-loop-delay.ts's, log-bucketed (2% from 10 µs), no per-sample allocation. */
const Histogram = DelayHistogram;

interface MemorySample {
  heapUsedMB: number;
  heapTotalMB: number;
  rssMB: number;
  externalMB: number;
  arrayBuffersMB: number;
}

const MB = 1024 * 1024;
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

function memory(): MemorySample {
  const m = process.memoryUsage();
  return {
    heapUsedMB: round(m.heapUsed / MB),
    heapTotalMB: round(m.heapTotal / MB),
    rssMB: round(m.rss / MB),
    externalMB: round(m.external / MB),
    arrayBuffersMB: round(m.arrayBuffers / MB),
  };
}

/** `gc()` without needing --expose-gc on the command line (a full, synchronous collection). */
function fullGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  return () => {
    gc();
    gc();
  };
}

/** Busy and total CPU time of the whole machine so far, in ms (summed over cores). */
function machineCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// One scenario
// ---------------------------------------------------------------------------------------------

interface ScenarioResult {
  scenario: Scenario;
  /**
   * Cores kept busy during the measurement by this process and by everything else. `otherCores`
   * well above 0.1 means another program competed for the CPU: the run is not comparable.
   */
  cpu: { ownCores: number; otherCores: number };
  entriesPerSec: number;
  /**
   * CPU this process spent per committed entry, µs (all three nodes: they share the process). On
   * a machine shared with other programs entries/s falls with the CPU left over; this does much
   * less, and 1e6 / cpuUsPerEntry is the rate one free core would give (`entries/CPU-s`).
   */
  cpuUsPerEntry: number;
  /** Committed-and-applied proposals per second, over each 1 s interval of the measurement. */
  perSecond: number[];
  committed: number;
  errors: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Full-GC'd heap before the cluster started, after election, and after the run. */
  memory: {
    beforeStart: MemorySample;
    afterElection: MemorySample;
    endOfRunNoGc: MemorySample;
    afterRunGc: MemorySample;
    /** (heap + array buffers retained after GC, minus after election) / entries in the leader's log. */
    retainedBytesPerEntry: number;
  };
  gc: { pauses: number; totalMs: number; shareOfRun: number };
  cluster: {
    leader: string;
    electionMs: number;
    lastIndex: number;
    followers: { id: string; commitIndex: number; appliedIndex: number }[];
    messages: Record<string, number>;
    entriesPerAppend: number;
    deliveryBatches: number;
    messagesPerBatch: number;
    storageSaves: Record<string, number>;
  };
}

async function runScenario(sc: Scenario): Promise<ScenarioResult> {
  const gc = fullGc();
  const gcPauses: number[] = [];
  let gcCounting = false;
  const obs = new PerformanceObserver((list) => {
    if (!gcCounting) return;
    for (const e of list.getEntries()) gcPauses.push(e.duration);
  });
  obs.observe({ entryTypes: ["gc"] });

  gc();
  const beforeStart = memory();

  const clock = new InProcessClock();
  const net = new MemoryNetwork({
    clock,
    random: new SeededRandom(1),
    faults: { dropRate: 0, duplicateRate: 0, minDelayMs: 0, maxDelayMs: 0, longDelayRate: 0 },
  });
  const storages = new Map<string, MemoryStorage | NullStorage>();
  const nodes = IDS.map((id, i) => {
    const storage = sc.storage === "null" ? new NullStorage() : new MemoryStorage();
    storages.set(id, storage);
    return new RaftNode<unknown>({
      id,
      members: [...IDS],
      storage,
      transport: net.connect(id),
      stateMachine: sc.sm === "kv" ? new KvStateMachine() : new CounterStateMachine(),
      clock,
      random: new SeededRandom(100 + i),
      onError: (e) => {
        console.error(`node ${id} failed:`, e);
        process.exitCode = 1;
      },
    });
  });
  await Promise.all(nodes.map((n) => n.start()));

  // Elect n1 at once rather than waiting 300-600 ms for a timeout; the election itself is real.
  const electionStart = performance.now();
  nodes[0].campaign();
  let leader: RaftNode<unknown> | undefined;
  while (!(leader = nodes.find((n) => n.isLeader))) {
    if (performance.now() - electionStart > 10_000) throw new Error("no leader elected within 10 s");
    await sleep(1);
  }
  const electionMs = performance.now() - electionStart;
  // The leader's no-op must commit before a steady state exists.
  await leader.propose(new Uint8Array(PAYLOAD_BYTES));
  gc();
  const afterElection = memory();

  // --- load ------------------------------------------------------------------------------------
  const payload = payloadFactory(sc.sm);
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  let measuring = false;
  let issuing = true;
  let inFlight = 0;
  let committed = 0;
  let lastError: unknown = null;
  const L = leader;

  const launch = (): void => {
    const t0 = performance.now();
    inFlight++;
    L.propose(payload()).then(
      () => {
        inFlight--;
        if (measuring) {
          committed++;
          hist.record(performance.now() - t0);
        }
        if (issuing) launch();
      },
      (err: unknown) => {
        inFlight--;
        const code = (err as { code?: string })?.code ?? (err as Error)?.name ?? "unknown";
        errors[code] = (errors[code] ?? 0) + 1;
        lastError = err;
        // Keep the window full only while the leader still leads; otherwise let it drain.
        if (issuing && L.isLeader) launch();
      },
    );
  };
  for (let i = 0; i < sc.window; i++) launch();

  await sleep(sc.warmup * 1000);
  net.resetStats();
  const batchesAtStart = clock.batches;
  const callbacksAtStart = clock.callbacks;
  const savesAtStart = new Map([...storages].map(([id, s]) => [id, s.saves]));
  measuring = true;
  gcCounting = true;
  const perSecond: number[] = [];
  const cpu0 = machineCpu();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + sc.seconds * 1000;
  let lastCount = 0;
  let lastT = t0;
  for (let s = 1; s <= Math.ceil(sc.seconds); s++) {
    await sleep(Math.max(0, Math.min(t0 + s * 1000, end) - performance.now()));
    const now = performance.now();
    // Rate over the interval actually slept (timers fire late under load), not its nominal 1 s.
    if (now - lastT >= 100) perSecond.push(Math.round(((committed - lastCount) * 1000) / (now - lastT)));
    lastCount = committed;
    lastT = now;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = machineCpu();
  const own = process.cpuUsage(own0);
  // Cores busy during the measurement: this process, and everything else on the machine.
  const ownCores = (own.user + own.system) / 1000 / (elapsed * 1000);
  const machineCores = ((cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total)) * os.cpus().length;
  const cpu = { ownCores: round(ownCores, 2), otherCores: round(Math.max(0, machineCores - ownCores), 2) };
  measuring = false;
  gcCounting = false;
  const total = committed;
  issuing = false;
  const endOfRunNoGc = memory();
  const messages = { ...net.stats.sentByType } as Record<string, number>;
  const deliveryBatches = clock.batches - batchesAtStart;
  const deliveries = clock.callbacks - callbacksAtStart;
  const storageSaves = Object.fromEntries([...storages].map(([id, s]) => [id, s.saves - (savesAtStart.get(id) ?? 0)]));

  // Drain what is still in flight so the followers' state can be checked.
  const drainStart = performance.now();
  while (inFlight > 0 && performance.now() - drainStart < 15_000) await sleep(5);
  await sleep(100); // a heartbeat or two carries the final commit index to the followers
  if (inFlight > 0) errors.undrained = inFlight;
  if (lastError && process.env.BENCH_DEBUG) console.error(lastError);

  const st = L.status();
  const followers = nodes
    .filter((n) => n !== L)
    .map((n) => {
      const f = n.status();
      return { id: f.id, commitIndex: f.commitIndex, appliedIndex: f.appliedIndex };
    });

  gc();
  const afterRunGc = memory();
  obs.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));

  const gcTotal = gcPauses.reduce((a, b) => a + b, 0);
  const retained =
    (afterRunGc.heapUsedMB - afterElection.heapUsedMB + (afterRunGc.arrayBuffersMB - afterElection.arrayBuffersMB)) * MB;
  const appends = messages.AppendEntries ?? 0;
  return {
    scenario: sc,
    cpu,
    entriesPerSec: Math.round(total / elapsed),
    cpuUsPerEntry: round(((own.user + own.system) / Math.max(1, total)), 2),
    perSecond,
    committed: total,
    errors,
    latencyMs: {
      p50: round(hist.quantile(0.5), 2),
      p90: round(hist.quantile(0.9), 2),
      p99: round(hist.quantile(0.99), 2),
      p999: round(hist.quantile(0.999), 2),
      max: round(hist.max, 2),
      mean: round(hist.count > 0 ? hist.sum / hist.count : NaN, 2),
    },
    memory: {
      beforeStart,
      afterElection,
      endOfRunNoGc,
      afterRunGc,
      retainedBytesPerEntry: Math.round(retained / Math.max(1, st.lastIndex)),
    },
    gc: { pauses: gcPauses.length, totalMs: Math.round(gcTotal), shareOfRun: round(gcTotal / (elapsed * 1000), 3) },
    cluster: {
      leader: L.id,
      electionMs: Math.round(electionMs),
      lastIndex: st.lastIndex,
      followers,
      messages,
      // Entries a follower receives per AppendEntries: total entries * 2 followers / messages.
      entriesPerAppend: appends > 0 ? round((total * 2) / appends, 1) : 0,
      deliveryBatches,
      messagesPerBatch: deliveryBatches > 0 ? round(deliveries / deliveryBatches, 1) : 0,
      storageSaves,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Orchestration and reporting
// ---------------------------------------------------------------------------------------------

const RESULT_MARKER = "@@bench-result@@";

function runChild(sc: Scenario): Promise<ScenarioResult> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, script, "--child", JSON.stringify(sc)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT_MARKER));
      if (code !== 0 || !line) {
        reject(new Error(`scenario ${JSON.stringify(sc)} exited with ${code}\n${out}`));
        return;
      }
      resolvePromise(JSON.parse(line.slice(RESULT_MARKER.length)) as ScenarioResult);
    });
  });
}

function fmt(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString("en-US") : "-";
}

function printTable(results: ScenarioResult[]): void {
  const header = [
    "sm",
    "W",
    "entries/s",
    "CPU µs/entry",
    "entries/CPU-s",
    "min..max /s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "heap MB (elect->end->gc)",
    "rss MB",
    "B/entry",
    "gc %",
    "ent/AE",
    "other cores",
    "errors",
  ];
  const rows = results.map((r) => {
    const m = r.memory;
    const ps = r.perSecond.length > 0 ? r.perSecond : [0];
    return [
      r.scenario.sm,
      String(r.scenario.window),
      fmt(r.entriesPerSec),
      String(r.cpuUsPerEntry),
      fmt(Math.round(1e6 / r.cpuUsPerEntry)),
      `${fmt(Math.min(...ps))}..${fmt(Math.max(...ps))}`,
      String(r.latencyMs.p50),
      String(r.latencyMs.p99),
      String(r.latencyMs.max),
      `${m.afterElection.heapUsedMB}->${m.endOfRunNoGc.heapUsedMB}->${m.afterRunGc.heapUsedMB}`,
      `${m.afterElection.rssMB}->${m.endOfRunNoGc.rssMB}`,
      fmt(m.retainedBytesPerEntry),
      String(round(r.gc.shareOfRun * 100, 1)),
      String(r.cluster.entriesPerAppend),
      String(r.cpu.otherCores),
      Object.keys(r.errors).length === 0 ? "0" : Object.entries(r.errors).map(([k, v]) => `${k}:${v}`).join(" "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
  const best = Math.max(...results.map((r) => r.entriesPerSec));
  const verdict = results.some((r) => r.scenario.storage === "null")
    ? "diagnostic storage, not comparable with the target"
    : best >= TARGET_PER_SEC
      ? "MET"
      : "NOT met";
  console.log(
    `\ntarget ${fmt(TARGET_PER_SEC)} entries/s: best ${fmt(best)} (${verdict}).` +
      ` B/entry = heap + array buffers retained per log entry after GC.` +
      ` entries/CPU-s = 1e6 / CPU µs per entry: the rate with one core to itself (compare these on a busy machine).`,
  );
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) {
    const result = await runScenario(o.child);
    process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`);
    return;
  }
  if (o.summarize) {
    summarizeProfiles(o.summarize, o.top);
    return;
  }

  const scenarios: Scenario[] = [];
  for (const sm of o.sms) for (const window of o.windows) scenarios.push({ sm, window, seconds: o.seconds, warmup: o.warmup, storage: o.storage });
  const cpus = os.cpus();
  console.log(
    `meshraft core bench: 3 nodes, MemoryNetwork (0 ms, batched delivery), ${o.storage === "null" ? "NullStorage (diagnostic)" : "MemoryStorage"}, ${PAYLOAD_BYTES}-byte proposals\n` +
      `node ${process.version}, ${cpus.length} x ${cpus[0]?.model ?? "?"}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n` +
      `${o.warmup} s warm-up + ${o.seconds} s per scenario, each in ${o.inline ? "this process" : "a fresh process"}\n`,
  );
  const idle0 = machineCpu();
  await sleep(500);
  const idle1 = machineCpu();
  const busyBefore = ((idle1.busy - idle0.busy) / Math.max(1, idle1.total - idle0.total)) * cpus.length;
  if (busyBefore > 0.2) {
    console.log(`warning: ${busyBefore.toFixed(2)} cores busy before starting: something else is running; numbers will be low and noisy\n`);
  }
  const results: ScenarioResult[] = [];
  for (const sc of scenarios) {
    process.stdout.write(`running sm=${sc.sm} W=${sc.window} ... `);
    const r = o.inline ? await runScenario(sc) : await runChild(sc);
    console.log(`${fmt(r.entriesPerSec)} entries/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`);
    results.push(r);
  }
  console.log();
  printTable(results);

  if (process.execArgv.some((a) => a.startsWith("--cpu-prof") || a.startsWith("--heap-prof"))) {
    console.log("\nprofiled run: the profiler slows everything down, so results are not saved");
    return;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const report = {
    benchmark: "core",
    date: new Date().toISOString(),
    command: `tsx bench/core.ts ${process.argv.slice(2).join(" ")}`.trim(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: cpus.length, cpuModel: cpus[0]?.model, loadavg: os.loadavg(), totalMemMB: Math.round(os.totalmem() / MB) },
    setup: {
      nodes: IDS.length,
      payloadBytes: PAYLOAD_BYTES,
      network: "MemoryNetwork, 0 ms delay, no faults; zero-delay deliveries batched per setImmediate turn",
      storage: o.storage === "null" ? "NullStorage (diagnostic: keeps nothing, not durable)" : "MemoryStorage, no latency",
      node: "RaftNode defaults (tick 25 ms, election 300 ms, heartbeat 50 ms, preVote, checkQuorum)",
      measuredOn: "leader: propose() promises resolved (committed on a quorum and applied on the leader)",
    },
    targetEntriesPerSec: TARGET_PER_SEC,
    results,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, `core-${stamp}.json`), json);
  writeFileSync(join(RESULTS_DIR, "core-latest.json"), json);
  console.log(`\nwrote bench/results/core-${stamp}.json and bench/results/core-latest.json`);
}

// ---------------------------------------------------------------------------------------------
// --summarize: self time per function from V8 .cpuprofile files (node --cpu-prof)
// ---------------------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

function summarizeProfiles(path: string, top: number): void {
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(path, f))
    : [path];
  for (const file of files) {
    const prof = JSON.parse(readFileSync(file, "utf8")) as {
      nodes: ProfileNode[];
      startTime: number;
      endTime: number;
      samples: number[];
    };
    const totalHits = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
    const byFn = new Map<string, number>();
    const byFile = new Map<string, number>();
    const cwd = resolve(HERE, "..");
    for (const n of prof.nodes) {
      const hits = n.hitCount ?? 0;
      if (hits === 0) continue;
      const url = n.callFrame.url.replace(/^file:\/\//, "").replace(`${cwd}/`, "");
      const name = `${n.callFrame.functionName || "(anonymous)"}  ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ""}`;
      byFn.set(name, (byFn.get(name) ?? 0) + hits);
      const fileKey = url || n.callFrame.functionName;
      byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + hits);
    }
    const ms = (prof.endTime - prof.startTime) / 1000;
    console.log(`\n${file}: ${Math.round(ms)} ms, ${totalHits} samples`);
    const show = (title: string, m: Map<string, number>, n: number): void => {
      console.log(`  ${title}`);
      for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
        console.log(`  ${((100 * v) / totalHits).toFixed(1).padStart(5)}%  ${k}`);
      }
    };
    show("self time by function:", byFn, top);
    show("self time by file:", byFile, Math.min(top, 15));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
