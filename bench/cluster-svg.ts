/**
 * The cluster benchmark's chart, as hand-written SVG (no chart dependency): put throughput
 * against concurrency on the left, put latency p50 and p99 (log scale) on the right, and a
 * line of facts below (linearizable get, failover, RSS).
 */
import type { ETCD_REFERENCE, SystemResult } from "./cluster-report.ts";

interface ChartInput {
  date: string;
  machine: string;
  seconds: number;
  mesh: SystemResult | null;
  etcd: SystemResult | null;
  /** etcd as quoted in the issue, drawn when etcd was not run. */
  reference: typeof ETCD_REFERENCE;
}

const W = 1000;
const H = 520;
const PANEL = { top: 70, height: 300, left1: 80, left2: 600, width: 360 };
const COLORS = { meshraft: "#1f6feb", etcd: "#d9480f", ref: "#868e96" };
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} ${attrs}>${esc(s)}</text>`;
}

/** Round tick values for a linear axis from 0 to about `max`. */
function linearTicks(max: number): number[] {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max * 1.0001 + step; v += step) {
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min / 1.0001 && v <= max * 1.0001) ticks.push(v);
    }
  }
  return ticks;
}

const label = (v: number): string => (v >= 1000 ? `${v / 1000}k` : v >= 1 ? String(v) : String(Number(v.toPrecision(2))));

interface Series {
  name: string;
  color: string;
  dash?: string;
  points: [number, number][];
  marker: "circle" | "square" | "none";
}

function panel(opts: {
  left: number;
  title: string;
  yLabel: string;
  xs: number[];
  series: Series[];
  log: boolean;
}): string {
  const { left, xs, series, log } = opts;
  const { top, height, width } = PANEL;
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v));
  const yMax = values.length ? Math.max(...values) : 1;
  const yMin = values.length ? Math.min(...values) : 0.1;
  const ticks = log ? logTicks(10 ** Math.floor(Math.log10(yMin)), 10 ** Math.ceil(Math.log10(yMax))) : linearTicks(yMax * 1.08);
  const lo = log ? ticks[0] : 0;
  const hi = ticks[ticks.length - 1];
  const y = (v: number): number =>
    log ? top + height - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * height : top + height - (v / hi) * height;
  // Concurrency is spaced by its logarithm (1, 16, 64, 256 are 4, 2, 2 doublings apart).
  const lx = xs.map((c) => Math.log2(c));
  const xMin = Math.min(...lx);
  const xMax = Math.max(...lx);
  const x = (c: number): number => left + 20 + ((Math.log2(c) - xMin) / Math.max(1, xMax - xMin)) * (width - 40);
  const out: string[] = [];
  out.push(text(left, top - 16, opts.title, 'font-size="15" font-weight="bold" fill="#212529"'));
  out.push(`<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="#fff" stroke="#adb5bd"/>`);
  for (const t of ticks) {
    const ty = y(t);
    out.push(`<line x1="${left}" x2="${left + width}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e9ecef"/>`);
    out.push(text(left - 6, ty + 4, label(t), 'font-size="11" text-anchor="end" fill="#495057"'));
  }
  for (const c of xs) {
    out.push(`<line x1="${x(c).toFixed(1)}" x2="${x(c).toFixed(1)}" y1="${top + height}" y2="${top + height + 4}" stroke="#495057"/>`);
    out.push(text(x(c), top + height + 17, String(c), 'font-size="11" text-anchor="middle" fill="#495057"'));
  }
  out.push(text(left + width / 2, top + height + 34, "concurrent requests (log scale)", 'font-size="12" text-anchor="middle" fill="#343a40"'));
  out.push(
    text(left - 52, top + height / 2, opts.yLabel, `font-size="12" text-anchor="middle" fill="#343a40" transform="rotate(-90 ${left - 52} ${top + height / 2})"`),
  );
  for (const s of series) {
    const pts = s.points.filter((p) => p[1] > 0 && Number.isFinite(p[1]));
    if (pts.length === 0) continue;
    const d = pts.map((p, i) => `${i === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    for (const p of pts) {
      if (s.marker === "circle") out.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.8" fill="${s.color}"/>`);
      if (s.marker === "square") out.push(`<rect x="${(x(p[0]) - 3.5).toFixed(1)}" y="${(y(p[1]) - 3.5).toFixed(1)}" width="7" height="7" fill="#fff" stroke="${s.color}" stroke-width="1.8"/>`);
    }
  }
  // Legend, top-left inside the panel.
  series.forEach((s, i) => {
    const ly = top + 16 + i * 17;
    out.push(`<line x1="${left + 10}" x2="${left + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    out.push(text(left + 42, ly, s.name, 'font-size="11.5" fill="#212529"'));
  });
  return out.join("\n");
}

function puts(r: SystemResult | null): { c: number; ops: number; p50: number; p99: number }[] {
  return (r?.points ?? []).filter((p) => p.name === "put").map((p) => ({ c: p.concurrency, ops: p.opsPerSec, p50: p.latencyMs.p50, p99: p.latencyMs.p99 }));
}

const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US"));

function facts(r: SystemResult | null): string {
  if (!r) return "";
  const get = r.points.find((p) => p.name === "get");
  const f = r.failover;
  const rss = Object.values(r.rss.afterLoad).map((x) => (x ? x.rssMB.toFixed(0) : "-")).join(" / ");
  return [
    get ? `get c=${get.concurrency}: ${get.opsPerSec.toLocaleString("en-US")} ops/s, p50 ${ms(get.latencyMs.p50)} ms` : null,
    f?.ms ? `failover: median ${ms(f.ms.p50)} ms, p90 ${ms(f.ms.p90)}, max ${ms(f.ms.max)}, ${f.failed}/${f.trials.length} failed` : f ? `failover: ${f.failed}/${f.trials.length} failed` : null,
    `RSS after load: ${rss} MB`,
  ]
    .filter(Boolean)
    .join("  ·  ");
}

/** The most CPU other programs took during any point: a contended run says so on the chart. */
function contention(...rs: (SystemResult | null)[]): number {
  return Math.max(0, ...rs.flatMap((r) => r?.points.map((p) => p.otherCores) ?? []));
}

export function renderChart(input: ChartInput): string {
  const { mesh, etcd, reference } = input;
  const m = puts(mesh);
  const e = puts(etcd);
  const xs = [...new Set([...m, ...e].map((p) => p.c))].sort((a, b) => a - b);
  const throughput: Series[] = [];
  const latency: Series[] = [];
  if (m.length) {
    throughput.push({ name: "meshraft put", color: COLORS.meshraft, points: m.map((p) => [p.c, p.ops]), marker: "circle" });
    latency.push({ name: "meshraft p50", color: COLORS.meshraft, points: m.map((p) => [p.c, p.p50]), marker: "circle" });
    latency.push({ name: "meshraft p99", color: COLORS.meshraft, dash: "6 4", points: m.map((p) => [p.c, p.p99]), marker: "square" });
  }
  if (e.length) {
    throughput.push({ name: `etcd put (${etcd!.version.replace(/^etcd Version:\s*/, "")})`, color: COLORS.etcd, points: e.map((p) => [p.c, p.ops]), marker: "circle" });
    latency.push({ name: "etcd p50", color: COLORS.etcd, points: e.map((p) => [p.c, p.p50]), marker: "circle" });
    latency.push({ name: "etcd p99", color: COLORS.etcd, dash: "6 4", points: e.map((p) => [p.c, p.p99]), marker: "square" });
  } else {
    const ref = xs.filter((c) => reference.put[c] !== undefined).map((c): [number, number] => [c, reference.put[c]]);
    throughput.push({ name: "etcd 3.4 put (quoted in the issue)", color: COLORS.ref, dash: "4 3", points: ref, marker: "square" });
  }
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="#f8f9fa"/>`,
    text(24, 30, `3-member cluster on 127.0.0.1, fsync on, 100-byte values over 1,000 keys, ${input.seconds} s per point`, 'font-size="16" font-weight="bold" fill="#212529"'),
    panel({ left: PANEL.left1, title: "put throughput (ops/s, higher is better)", yLabel: "ops/s", xs, series: throughput, log: false }),
    panel({ left: PANEL.left2, title: "put latency (ms, log scale, lower is better)", yLabel: "ms", xs, series: latency, log: true }),
    text(24, PANEL.top + PANEL.height + 66, `meshraft  ·  ${facts(mesh) || "not run"}`, `font-size="12" fill="${COLORS.meshraft}"`),
    text(24, PANEL.top + PANEL.height + 86, etcd ? `etcd  ·  ${facts(etcd)}` : `etcd 3.4 (quoted in the issue)  ·  get c=64 ${reference.get64.toLocaleString("en-US")} ops/s · failover median ${reference.failoverMedianMs.map((v) => v.toLocaleString("en-US")).join("-")} ms · ~${reference.idleRssMB} MB RSS idle`, `font-size="12" fill="${etcd ? COLORS.etcd : COLORS.ref}"`),
    text(24, H - 14, `${input.date.slice(0, 19).replace("T", " ")} UTC · ${input.machine} · npm run bench${etcd ? " -- --vs etcd" : ""}`, 'font-size="11" fill="#868e96"'),
    contention(mesh, etcd) > 0.15
      ? text(W - 24, H - 14, `contended run: other programs used up to ${contention(mesh, etcd).toFixed(2)} cores during a point`, 'font-size="11" text-anchor="end" fill="#c92a2a"')
      : "",
    "</svg>",
  ];
  return `${parts.join("\n")}\n`;
}
