/**
 * Put throughput of an all-Deno cluster next to an all-Node one, in the same run on the same
 * machine: three `meshraft start` processes on 127.0.0.1 with file storage (Node:
 * `node --import tsx adapters/node/cli.ts`, Deno: `deno run adapters/deno/cli.ts` with the
 * member's narrow permissions), one runtime at a time, the same load generator for both.
 *
 *   npx tsx bench/deno-vs-node.ts [--seconds 10] [--inflight 1,64] [--rounds 2]
 *
 * Load: `PUT /kv/k<n>` with a 64-byte body to the leader over keep-alive node:http connections,
 * keys over 1,000, with N requests in flight (N = 1 is one sequential client). Each scenario
 * runs after a 2 s warm-up on a fresh cluster; rounds alternate the runtimes' order so neither
 * always runs on a warmer machine. Reports acknowledged puts/s and latency percentiles; JSON in
 * bench/results/deno-vs-node-latest.json. It measures, it asserts nothing.
 */
import http from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { ProcessCluster, type Runtime } from "../test/integration/process-cluster.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const seconds = Number(option("seconds", "10"));
const inflights = option("inflight", "1,64").split(",").map(Number);
const rounds = Number(option("rounds", "2"));

interface Result {
  runtime: Runtime;
  round: number;
  inflight: number;
  seconds: number;
  puts: number;
  putsPerSecond: number;
  errors: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

const body = Buffer.alloc(64, "x");

function put(agent: http.Agent, port: number, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "PUT", path: `/kv/${key}`, agent, headers: { "content-length": body.length } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

async function load(port: number, inflight: number, durationMs: number): Promise<{ puts: number; errors: number; latencies: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inflight });
  const latencies: number[] = [];
  let puts = 0;
  let errors = 0;
  let n = 0;
  const end = performance.now() + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        const status = await put(agent, port, `k${n++ % 1000}`);
        if (status === 200) {
          puts++;
          latencies.push(performance.now() - t);
        } else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  agent.destroy();
  return { puts, errors, latencies };
}

const pct = (sorted: number[], p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

async function scenario(runtime: Runtime, round: number, inflight: number): Promise<Result> {
  const cluster = await ProcessCluster.start({ members: { n1: { runtime }, n2: { runtime }, n3: { runtime } } });
  try {
    const leader = await cluster.waitForLeader(30_000);
    for (const id of cluster.ids) await cluster.waitForCatchUp(id, leader, 30_000);
    const port = cluster.ports.get(leader)!;
    await load(port, inflight, 2_000); // warm-up
    const r = await load(port, inflight, seconds * 1000);
    const sorted = r.latencies.sort((a, b) => a - b);
    const round2 = (x: number): number => Math.round(x * 100) / 100;
    return {
      runtime,
      round,
      inflight,
      seconds,
      puts: r.puts,
      putsPerSecond: Math.round(r.puts / seconds),
      errors: r.errors,
      latencyMs: { p50: round2(pct(sorted, 50)), p90: round2(pct(sorted, 90)), p99: round2(pct(sorted, 99)), max: round2(sorted[sorted.length - 1] ?? NaN) },
    };
  } finally {
    await cluster.stop();
  }
}

const results: Result[] = [];
console.log(`meshraft put throughput, all-Node vs all-Deno, 3 processes on 127.0.0.1 (${cpus().length} cores, load ${loadavg()[0].toFixed(2)})`);
console.log(`${seconds} s per scenario after a 2 s warm-up; ${rounds} round(s)\n`);
console.log("runtime  round  in flight   puts/s   p50 ms   p90 ms   p99 ms   errors");
for (let round = 0; round < rounds; round++) {
  const order: Runtime[] = round % 2 === 0 ? ["node", "deno"] : ["deno", "node"];
  for (const inflight of inflights) {
    for (const runtime of order) {
      const r = await scenario(runtime, round, inflight);
      results.push(r);
      console.log(
        `${runtime.padEnd(7)}  ${String(round).padStart(5)}  ${String(inflight).padStart(9)}  ${String(r.putsPerSecond).padStart(7)}  ` +
          `${r.latencyMs.p50.toFixed(2).padStart(7)}  ${r.latencyMs.p90.toFixed(2).padStart(7)}  ${r.latencyMs.p99.toFixed(2).padStart(7)}  ${String(r.errors).padStart(7)}`,
      );
    }
  }
}

console.log("\nmean puts/s over rounds:");
for (const inflight of inflights) {
  const mean = (rt: Runtime): number => {
    const rs = results.filter((r) => r.runtime === rt && r.inflight === inflight);
    return Math.round(rs.reduce((s, r) => s + r.putsPerSecond, 0) / rs.length);
  };
  console.log(`  ${String(inflight).padStart(3)} in flight: node ${mean("node")}/s, deno ${mean("deno")}/s (deno/node ${(mean("deno") / mean("node")).toFixed(2)})`);
}
const dir = join(import.meta.dirname, "results");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "deno-vs-node-latest.json"), JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, seconds, results }, null, 2) + "\n");
