/**
 * What watching costs a member: the CPU time of the leader's process (utime + stime from
 * /proc/<pid>/stat) over a window with 0, 1 and 5 subscribers of its `GET /dashboard/events`,
 * on an idle 3-process cluster (heartbeats only), so the difference is the stream's.
 *
 *   npx tsx bench/dashboard-cost.ts [--seconds 30] [--subscribers 0,1,5,0]
 *
 * A subscriber is an HTTP client reading the stream to its end, as a dashboard tab does (the
 * browser's own cost is not the member's). The list runs in order on one cluster; ending with 0
 * again shows the drift of the machine's load. It measures, it asserts nothing; JSON in
 * bench/results/dashboard-cost-latest.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { ProcessCluster, sleep } from "../test/integration/process-cluster.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const seconds = Number(option("seconds", "30"));
const counts = option("subscribers", "0,1,5,0").split(",").map(Number);

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses and may contain spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticksPerSecond = 100; // USER_HZ on Linux
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Reads the stream until aborted; counts the bytes it got. */
function subscribe(url: string, signal: AbortSignal): { bytes: () => number; done: Promise<void> } {
  let bytes = 0;
  const done = (async () => {
    try {
      const res = await fetch(`${url}/dashboard/events`, { signal });
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        bytes += value.byteLength;
      }
    } catch {
      // aborted
    }
  })();
  return { bytes: () => bytes, done };
}

const cluster = await ProcessCluster.start({ nodes: 3 });
const results: { subscribers: number; cpuMsPerSecond: number; streamBytesPerSecond: number }[] = [];
try {
  const leader = await cluster.waitForLeader();
  const pid = cluster.procs.get(leader)!.pid!;
  await sleep(3_000); // start-up work done
  console.log(`leader ${leader} (pid ${pid}); ${seconds} s per window; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (const n of counts) {
    const controller = new AbortController();
    const subs = Array.from({ length: n }, () => subscribe(cluster.url(leader), controller.signal));
    await sleep(1_000); // connected
    const cpu0 = cpuSeconds(pid);
    const bytes0 = subs.reduce((a, s) => a + s.bytes(), 0);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const cpuMsPerSecond = ((cpuSeconds(pid) - cpu0) * 1000) / elapsed;
    const streamBytesPerSecond = (subs.reduce((a, s) => a + s.bytes(), 0) - bytes0) / elapsed;
    controller.abort();
    await Promise.all(subs.map((s) => s.done));
    results.push({ subscribers: n, cpuMsPerSecond, streamBytesPerSecond });
    console.log(`${n} subscriber(s): ${cpuMsPerSecond.toFixed(1)} ms CPU per s (${(cpuMsPerSecond / 10).toFixed(2)} % of a core), stream ${Math.round(streamBytesPerSecond)} B/s in all; load ${loadavg()[0].toFixed(2)}`);
  }
} finally {
  await cluster.stop();
}
mkdirSync(join(import.meta.dirname, "results"), { recursive: true });
writeFileSync(join(import.meta.dirname, "results/dashboard-cost-latest.json"), JSON.stringify({ seconds, results, cores: cpus().length }, null, 2) + "\n");
