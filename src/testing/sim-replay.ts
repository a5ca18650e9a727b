/**
 * A simulator run as a dashboard recording (src/http/dashboard-replay.ts): `npm run sim -- --seed
 * N --html run.html` writes the page that replays it. Built from the run's verbose trace (role
 * changes, commits, configurations, every message, the nemesis) and its client history, so the
 * simulator itself needs no hook beyond handing the history out.
 *
 * Each member gets a status frame whenever its role changes and every FRAME_MS of virtual time
 * (the live streams send one every 400 ms); a link's `bytesOut` counts messages here (linkUnit).
 */
import { replayHtml, type DashboardRecording, type RecordedFault, type RecordedFrame, type RecordedOperation } from "../http/dashboard-replay.ts";
import type { DashboardStatus } from "../http/dashboard.ts";
import type { KvOperation } from "./linearizability.ts";
import type { SimResult } from "./sim.ts";

/** Virtual ms between the periodic status frames of each member. */
const FRAME_MS = 50;

interface MemberState {
  role: DashboardStatus["role"];
  term: number;
  leader: string | null;
  commit: number;
  snapshot: number;
  voters: string[];
  outgoing: string[];
  learners: string[];
  crashed: boolean;
  paused: boolean;
  /** Messages sent to each peer. */
  sent: Map<string, number>;
}

const LINE = /^\s*(\d+(?:\.\d+)?) (.*)$/;
const ROLE = /^(\S+) (follower|pre-candidate|candidate|leader) term (\d+)(?: leader (\S+))?$/;
const COMMIT = /^(\S+) commit (\d+)$/;
const CONF = /^(\S+) conf voters ([^;]*)(?:; outgoing ([^;]*))?(?:; learners ([^;(]*))?/;
const RESTORED = /^(\S+) restored snapshot at (\d+)$/;
const MESSAGE = /^ {2}(\S+)->(\S+) (\S+)/;
const NEMESIS = /^nemesis (\S+)(?: (.*))?$/;

/** The run `result` whose full verbose trace is `lines`, as a recording. */
export function simRecording(lines: string[], result: SimResult, title: string): DashboardRecording {
  const members = new Map<string, MemberState>();
  const frames: RecordedFrame[] = [];
  const faults: RecordedFault[] = [];
  const cut = new Set<string>(); // "a b" pairs a partition separates
  const open = new Map<string, RecordedFault>(); // faults waiting for their end
  let violation: DashboardRecording["violation"] = null;
  let t = 0;
  let nextFrame = 0;

  const member = (id: string): MemberState => {
    let m = members.get(id);
    if (!m) {
      m = { role: "follower", term: 0, leader: null, commit: 0, snapshot: 0, voters: [], outgoing: [], learners: [], crashed: false, paused: false, sent: new Map() };
      members.set(id, m);
    }
    return m;
  };
  const pair = (a: string, b: string): string => (a < b ? `${a} ${b}` : `${b} ${a}`);
  const status = (id: string, m: MemberState): DashboardStatus => {
    const list: DashboardStatus["members"] = [];
    for (const v of m.voters) list.push({ id: v, url: null, role: "voter" });
    for (const v of m.outgoing) if (!m.voters.includes(v)) list.push({ id: v, url: null, role: "leaving" });
    for (const v of m.learners) list.push({ id: v, url: null, role: "learner" });
    return {
      id,
      url: "",
      runtime: "simulator",
      role: m.role,
      term: m.term,
      leader: m.leader,
      commitIndex: m.commit,
      appliedIndex: m.commit,
      lastIndex: m.commit,
      snapshotIndex: m.snapshot,
      members: list,
      joint: m.outgoing.length > 0,
      progress: [],
      stopped: m.crashed || m.paused,
      time: t,
      links: [...members.keys()]
        .filter((p) => p !== id)
        .map((p) => ({ peer: p, state: m.crashed || m.paused || members.get(p)!.crashed || cut.has(pair(id, p)) ? "down" : "open", bytesOut: m.sent.get(p) ?? 0, messagesOut: m.sent.get(p) ?? 0, dropped: 0 })),
    };
  };
  const frame = (id: string): void => {
    frames.push({ t, member: id, kind: "status", data: status(id, members.get(id)!) });
  };
  const event = (id: string, data: RecordedFrame["data"]): void => {
    frames.push({ t, member: id, kind: "event", data });
  };
  const startFault = (key: string, what: string): void => {
    if (open.has(key)) return;
    const f: RecordedFault = { start: t, end: null, what };
    open.set(key, f);
    faults.push(f);
  };
  const endFault = (key: string): void => {
    const f = open.get(key);
    if (f) f.end = t;
    open.delete(key);
  };

  for (const raw of lines) {
    const m = LINE.exec(raw);
    if (!m) continue;
    t = Number(m[1]);
    const text = m[2];
    while (nextFrame <= t) {
      const at = t;
      t = nextFrame;
      for (const id of members.keys()) frame(id);
      t = at;
      nextFrame += FRAME_MS;
    }
    let x: RegExpExecArray | null;
    if ((x = MESSAGE.exec(text))) {
      const s = member(x[1]);
      s.sent.set(x[2], (s.sent.get(x[2]) ?? 0) + 1);
    } else if ((x = ROLE.exec(text))) {
      const s = member(x[1]);
      s.role = x[2] as MemberState["role"];
      s.term = Number(x[3]);
      s.leader = s.role === "leader" ? x[1] : (x[4] ?? null);
      event(x[1], { type: "role", time: t, role: s.role, term: s.term, leader: s.leader });
      frame(x[1]);
    } else if ((x = COMMIT.exec(text))) {
      member(x[1]).commit = Number(x[2]);
    } else if ((x = CONF.exec(text))) {
      const s = member(x[1]);
      const ids = (v: string | undefined): string[] => (v ?? "").split(",").map((i) => i.trim()).filter((i) => i !== "");
      s.voters = ids(x[2]);
      s.outgoing = ids(x[3]);
      s.learners = ids(x[4]);
      if (t > 0) event(x[1], { type: "membership", time: t, voters: s.voters, learners: s.learners, leaving: s.outgoing });
      frame(x[1]);
    } else if ((x = RESTORED.exec(text))) {
      member(x[1]).snapshot = Number(x[2]);
      event(x[1], { type: "snapshot-restored", time: t, index: Number(x[2]), term: member(x[1]).term });
    } else if ((x = NEMESIS.exec(text))) {
      const [, kind, rest = ""] = x;
      const id = rest.split(" ")[0];
      if (kind === "crash") {
        member(id).crashed = true;
        startFault(`crash ${id}`, `crash ${id}`);
      } else if (kind === "restart") {
        Object.assign(member(id), { crashed: false, role: "follower", leader: null });
        endFault(`crash ${id}`);
      } else if (kind === "pause") {
        member(id).paused = true;
        startFault(`pause ${id}`, `pause ${id}`);
      } else if (kind === "resume") {
        member(id).paused = false;
        endFault(`pause ${id}`);
      } else if (kind === "partition") {
        const groups = rest.split(" | ").map((g) => g.split(","));
        cut.clear();
        for (const g of groups) for (const h of groups) if (g !== h) for (const a of g) for (const b of h) cut.add(pair(a, b));
        endFault("net");
        startFault("net", `partition ${rest}`);
      } else if (kind === "disconnect" || kind === "connect") {
        for (const other of members.keys()) if (other !== id) (kind === "disconnect" ? cut.add(pair(id, other)) : cut.delete(pair(id, other)));
        if (kind === "disconnect") startFault(`disconnect ${id}`, `disconnect ${id}`);
        else endFault(`disconnect ${id}`);
      } else if (kind === "heal") {
        cut.clear();
        endFault("net");
        for (const key of [...open.keys()]) if (key.startsWith("disconnect ")) endFault(key);
      } else if (kind === "ring" || kind === "bridge") {
        endFault("net");
        startFault("net", `${kind} ${rest}`);
      }
      event("nemesis", { type: "nemesis", time: t, message: `${kind}${rest ? ` ${rest}` : ""}` });
      for (const mid of members.keys()) frame(mid);
    } else if (text.startsWith("VIOLATION ") || (text.startsWith("FAILED ") && violation === null)) {
      violation = { t, message: text.replace(/^(VIOLATION|FAILED) /, ""), key: null };
      event("simulator", { type: "error", time: t, message: text });
    } else if (text.startsWith("calm:")) {
      event("nemesis", { type: "nemesis", time: t, message: text });
    }
  }
  for (const id of members.keys()) frame(id);
  // Spares the configuration never named stay out of the picture: they are not members.
  const end = Math.max(t, result.virtualMs);
  if (result.failure && (violation === null || result.failure.startsWith("linearizability"))) {
    const key = /^linearizability: key (\S+):/.exec(result.failure)?.[1] ?? null;
    violation = { t: key === null ? (violation?.t ?? null) : null, message: result.failure, key };
  }
  return {
    version: 1,
    source: "simulator",
    title,
    start: 0,
    end,
    linkUnit: "messages",
    frames,
    operations: result.history.map(operation),
    faults,
    violation,
  };
}

function operation(o: KvOperation): RecordedOperation {
  const unknown = o.unknown === true || o.return === Number.POSITIVE_INFINITY;
  const i = o.input;
  let label: string;
  if (i.op === "get") label = `get ${i.key} -> ${o.output?.value === undefined ? "?" : JSON.stringify(o.output.value)}`;
  else if (i.op === "put") label = `put ${i.key}=${i.value}`;
  else if (i.op === "delete") label = `delete ${i.key}`;
  else label = `cas ${i.key} ${JSON.stringify(i.expect)}->${JSON.stringify(i.value)}${unknown ? "" : o.output?.ok ? ": ok" : ": no match"}`;
  return { client: String(o.client).split(".")[0], label, key: i.key, call: o.call, return: unknown ? null : o.return, outcome: unknown ? "unknown" : "ok" };
}

/** `simRecording` as a self-contained page. */
export function simReplayHtml(lines: string[], result: SimResult, title: string): string {
  return replayHtml(simRecording(lines, result, title));
}
