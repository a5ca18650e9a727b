/**
 * Recordings the dashboard replays (issue 14): the same view over a live cluster, a recorded
 * stretch of one, or a simulator run. A recording is the frames the page would have read from the
 * members' streams, each stamped with its time and member, plus what only a test harness knows:
 * each client operation, the fault schedule, a violation. `replayHtml` embeds one in the dashboard
 * page, which then plays it instead of connecting (a self-contained file: no network).
 *
 * The live page exports the frames it received over the last minutes in this format (its
 * "export recording" button); src/testing/sim-replay.ts builds one from a simulator trace.
 */
import { DASHBOARD_HTML, REPLAY_MARKER } from "./dashboard-page.ts";
import type { DashboardEvent, DashboardStatus } from "./dashboard.ts";

export interface RecordedFrame {
  /** ms: wall clock for a live recording, virtual time for the simulator. */
  t: number;
  member: string;
  kind: "status" | "event";
  data: DashboardStatus | DashboardEvent | { type: string; time: number; message: string };
}

export interface RecordedOperation {
  client: string;
  /** What it did, for the tooltip: `put k=v`, `get k -> v`, `cas k v1->v2: ok`. */
  label: string;
  key: string;
  call: number;
  /** null: no answer (outcome unknown). */
  return: number | null;
  outcome: "ok" | "failed" | "unknown";
}

export interface RecordedFault {
  start: number;
  /** null: still on when the recording ends. */
  end: number | null;
  what: string;
}

export interface DashboardRecording {
  version: 1;
  source: "simulator" | "live";
  title: string;
  start: number;
  end: number;
  /** What `links[].bytesOut` counts: bytes (live) or messages (the simulator has no frames). */
  linkUnit: "bytes" | "messages";
  /** In time order. */
  frames: RecordedFrame[];
  operations: RecordedOperation[];
  faults: RecordedFault[];
  /** A safety or linearizability violation the run found, where it is known. */
  violation: { t: number | null; message: string; key: string | null } | null;
}

/** The dashboard page playing `recording`: one self-contained file. */
export function replayHtml(recording: DashboardRecording): string {
  // Inside a script element nothing may read as a closing tag or a comment opener.
  const json = JSON.stringify(recording).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  const at = DASHBOARD_HTML.indexOf(REPLAY_MARKER);
  return `${DASHBOARD_HTML.slice(0, at)}<script>window.MESHRAFT_REPLAY = ${json};</script>${DASHBOARD_HTML.slice(at + REPLAY_MARKER.length)}`;
}
