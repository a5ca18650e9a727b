/**
 * What the cluster benchmark found, and how it is shown: the result types written to
 * bench/results/cluster-*.json, the targets of the benchmark issue with etcd's figures quoted
 * there, and the table printed on stdout (bench/cluster-svg.ts draws the chart).
 */
import type { System } from "./cluster-http.ts";
import type { LatencySummary, LoadResult } from "./cluster-load.ts";
import type { Rss } from "./cluster-procs.ts";

/** etcd 3.4 on this machine, as quoted in the benchmark issue; used when etcd is not run. */
export const ETCD_REFERENCE: {
  put: Record<number, number>;
  putP50AtC1Ms: number;
  get64: number;
  failoverMedianMs: [number, number];
  idleRssMB: number;
} = {
  put: { 1: 714, 16: 2_800, 64: 4_300, 256: 5_350 },
  putP50AtC1Ms: 1.3,
  get64: 5_150,
  failoverMedianMs: [1_250, 1_450],
  idleRssMB: 27,
};

/** The benchmark issue's targets for meshraft (ratios against etcd at the same concurrency). */
export const TARGETS: { putRatioAt: number[]; putRatio: number; p50AtC1Ms: number; failoverMedianMs: number; rssMB: number } = {
  putRatioAt: [64, 256],
  putRatio: 2,
  p50AtC1Ms: 1,
  failoverMedianMs: 600,
  rssMB: 60,
};

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

export interface PointResult extends LoadResult {
  name: "put" | "get";
  /** Member that led when the point started. */
  leader: string;
  /** CPU used by each member during the measurement, in cores (of the machine's os.cpus()). */
  memberCores: Record<string, number>;
  /**
   * CPU used during the measurement by everything else on the machine, in cores. Well above
   * 0.1 means the point competed with other programs and is not comparable with a quiet run.
   */
  otherCores: number;
  /** Sum of memberCores over ops/s, in µs of CPU per operation (the whole cluster's cost of one). */
  clusterCpuUsPerOp: number | null;
}

export interface Trial {
  trial: number;
  killed: string;
  ok: boolean;
  /** Kill to the first successful write through a survivor, ms (null: failed). */
  ms: number | null;
  attempts: number;
  /** Answers to the attempts, by outcome. */
  answers: Record<string, number>;
  /** Restart of the killed member until the cluster was whole again, ms. */
  restartMs: number;
}

export interface FailoverResult {
  trials: Trial[];
  failed: number;
  /** Over the successful trials. */
  ms: LatencySummary | null;
}

export interface SystemResult {
  system: System;
  version: string;
  startupMs: number;
  points: PointResult[];
  failover: FailoverResult | null;
  rss: {
    /** After start and prefill. */
    idle: Record<string, Rss | null>;
    /** After every put and get point: the figure the target is about. */
    afterLoad: Record<string, Rss | null>;
    /** After the failover trials (restarted members are younger). */
    afterFailover: Record<string, Rss | null> | null;
  };
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

export const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a === null || a === undefined || b === null || b === undefined || !(b > 0) || !Number.isFinite(a) ? "-" : `${(a / b).toFixed(2)}x`;

function table(rows: string[][], header: string[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : (c ?? "").padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function maxRss(r: Record<string, Rss | null> | null | undefined): number | null {
  if (!r) return null;
  const v = Object.values(r).filter((x): x is Rss => x !== null).map((x) => x.rssMB);
  return v.length ? Math.max(...v) : null;
}

export function reportTable(mesh: SystemResult | null, etcd: SystemResult | null): string {
  const ref = etcd === null;
  const etcdLabel = ref ? "etcd (issue)" : "etcd";
  const header = ["point", "meshraft ops/s", "p50 ms", "p99 ms", `${etcdLabel} ops/s`, "p50 ms", "p99 ms", "ops/s m/e", "p50 m/e", "target", ""];
  const rows: string[][] = [];
  const names = [...new Set([...(mesh?.points ?? []), ...(etcd?.points ?? [])].map((p) => `${p.name} c=${p.concurrency}`))];
  for (const name of names) {
    const m = mesh?.points.find((p) => `${p.name} c=${p.concurrency}` === name);
    const e = etcd?.points.find((p) => `${p.name} c=${p.concurrency}` === name);
    const c = Number(name.split("=")[1]);
    const isPut = name.startsWith("put");
    const eOps = e?.opsPerSec ?? (ref ? (isPut ? ETCD_REFERENCE.put[c] : c === 64 ? ETCD_REFERENCE.get64 : undefined) : undefined);
    const eP50 = e?.latencyMs.p50 ?? (ref && isPut && c === 1 ? ETCD_REFERENCE.putP50AtC1Ms : undefined);
    let target = "";
    let verdict = "";
    if (isPut && TARGETS.putRatioAt.includes(c)) {
      target = `>= ${TARGETS.putRatio}x`;
      verdict = m && eOps ? (m.opsPerSec / eOps >= TARGETS.putRatio ? "met" : "MISSED") : "";
    } else if (isPut && c === 1) {
      target = `p50 < ${TARGETS.p50AtC1Ms} ms`;
      verdict = m ? (m.latencyMs.p50 < TARGETS.p50AtC1Ms ? "met" : "MISSED") : "";
    }
    rows.push([name, fmt(m?.opsPerSec), ms(m?.latencyMs.p50), ms(m?.latencyMs.p99), fmt(eOps), ms(eP50), ms(e?.latencyMs.p99), ratio(m?.opsPerSec, eOps), ratio(m?.latencyMs.p50, eP50), target, verdict]);
  }
  const mf = mesh?.failover;
  const ef = etcd?.failover;
  if (mf || ef) {
    const eMed = ef?.ms?.p50 ?? (ref ? (ETCD_REFERENCE.failoverMedianMs[0] + ETCD_REFERENCE.failoverMedianMs[1]) / 2 : undefined);
    const verdict = mf ? (mf.ms && mf.ms.p50 < TARGETS.failoverMedianMs && mf.failed === 0 ? "met" : "MISSED") : "";
    rows.push(["failover median ms", ms(mf?.ms?.p50), "", "", ms(eMed), "", "", ratio(mf?.ms?.p50, eMed), "", `< ${TARGETS.failoverMedianMs} ms, 0 failed`, verdict]);
    rows.push(["failover p90 / max ms", mf?.ms ? `${ms(mf.ms.p90)} / ${ms(mf.ms.max)}` : "", "", "", ef?.ms ? `${ms(ef.ms.p90)} / ${ms(ef.ms.max)}` : "", "", "", "", "", "", ""]);
    rows.push(["failover failed", mf ? `${mf.failed} of ${mf.trials.length}` : "", "", "", ef ? `${ef.failed} of ${ef.trials.length}` : "", "", "", "", "", "", ""]);
  }
  const mRss = maxRss(mesh?.rss.afterLoad);
  const eRss = etcd ? maxRss(etcd.rss.afterLoad) : null;
  const rssList = (r: Record<string, Rss | null> | undefined): string => (r ? Object.values(r).map((x) => (x ? x.rssMB.toFixed(0) : "-")).join("/") : "");
  rows.push([
    "RSS MB per member after load",
    rssList(mesh?.rss.afterLoad),
    "",
    "",
    etcd ? rssList(etcd.rss.afterLoad) : `~${ETCD_REFERENCE.idleRssMB} idle`,
    "",
    "",
    ratio(mRss, eRss ?? (ref ? ETCD_REFERENCE.idleRssMB : null)),
    "",
    `< ${TARGETS.rssMB} MB`,
    mRss === null ? "" : mRss < TARGETS.rssMB ? "met" : "MISSED",
  ]);
  const list = (r: Record<string, Rss | null> | undefined, f: (x: Rss) => number | null): string =>
    r ? Object.values(r).map((x) => (x && f(x) !== null ? f(x)!.toFixed(0) : "-")).join("/") : "";
  rows.push(["  private (RssAnon) MB", list(mesh?.rss.afterLoad, (x) => x.anonMB), "", "", list(etcd?.rss.afterLoad, (x) => x.anonMB), "", "", "", "", "", ""]);
  rows.push(["  PSS MB (shared pages split)", list(mesh?.rss.afterLoad, (x) => x.pssMB), "", "", list(etcd?.rss.afterLoad, (x) => x.pssMB), "", "", "", "", "", ""]);
  rows.push(["RSS MB per member idle", rssList(mesh?.rss.idle), "", "", etcd ? rssList(etcd.rss.idle) : "", "", "", ratio(maxRss(mesh?.rss.idle), etcd ? maxRss(etcd.rss.idle) : null), "", "", ""]);
  return table(rows, header);
}

/** µs of CPU the members spent per operation: the sum of their cores over the rate. */
export function cpuUsPerOp(memberCores: Record<string, number>, opsPerSec: number): number | null {
  const cores = Object.values(memberCores).reduce((a, b) => a + b, 0);
  return opsPerSec > 0 && Number.isFinite(cores) ? Math.round((cores * 1e6) / opsPerSec) : null;
}

/**
 * Every system against the floor of the same run: rate and cluster CPU per operation as ratios,
 * since on a shared machine the absolute numbers move from run to run and the ratios much less.
 */
export function floorTable(floor: SystemResult, mesh: SystemResult | null, etcd: SystemResult | null): string {
  const header = ["point", "floor ops/s", "µs/op"];
  const systems = [mesh, etcd].filter((s): s is SystemResult => s !== null);
  for (const s of systems) header.push(`${s.system} ops/s`, "µs/op", "rate/floor", "cpu/floor");
  if (mesh && etcd) header.push("cpu m/e");
  const rows: string[][] = [];
  for (const f of floor.points) {
    const key = `${f.name} c=${f.concurrency}`;
    const row = [key, fmt(f.opsPerSec), fmt(f.clusterCpuUsPerOp)];
    const found = systems.map((s) => s.points.find((p) => `${p.name} c=${p.concurrency}` === key));
    for (const p of found) row.push(fmt(p?.opsPerSec), fmt(p?.clusterCpuUsPerOp), ratio(p?.opsPerSec, f.opsPerSec), ratio(p?.clusterCpuUsPerOp, f.clusterCpuUsPerOp));
    if (mesh && etcd) row.push(ratio(found[0]?.clusterCpuUsPerOp, found[1]?.clusterCpuUsPerOp));
    rows.push(row);
  }
  return `Against the floor (same client, trivial node:http server, same run); µs/op = CPU of all members per operation:\n${table(rows, header)}`;
}
