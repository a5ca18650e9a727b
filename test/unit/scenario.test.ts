/**
 * Scenario tests that read like transcripts (etcd-io/raft's datadriven testdata): each file in
 * ./scenarios is a script of commands against a CoreCluster (bare Raft cores, no time, no IO).
 * Under each command that did something is what it did, compared with what the core now does:
 *
 *   propose n1 c -> appended             # the command (an `-> outcome` is asserted as well)
 *   ----
 *   n1 ready: persist [4@1 "c"]           # one header line per Ready a node performed
 *     n1->n2 AppendEntries term=1 prev=3@1 entries=[4..4] commit=3 (early)
 *     n1->n3 AppendEntries term=1 prev=3@1 entries=[4..4] commit=3 (early)
 *   drop n1->n3 Heartbeat term=1 commit=3 (cut)
 *   <empty line ends the block>
 *
 * A Ready header names what changed and what the driver must do, in the order it does it:
 * `role=R term=T leader=L` (soft state, when it changed), `hard term= vote= commit=` (to persist),
 * `persist [...]` (entries to make durable), `snapshot I@T`, `apply [...]` (committed entries),
 * `reads [req@index]`, `forwarded [req@index]`, `rejected [req:reason]`. Its messages follow,
 * one a line, `(early)` for a leader's replication that may go out before its own fsync.
 * `I@T` is index I of term T; entries show their data ("a"), `noop`, or `config(...)`.
 * `drop` lines are messages a partition, cut link or crash kept from being delivered.
 * Commands that change nothing (and `expect`) have no block.
 *
 * Regenerate the blocks after an intended change of behaviour with `npm run test:rewrite`
 * (MESHRAFT_REWRITE=1) and review the diff: it is the change in what goes over the wire. A file
 * without any block (the older format) still runs with its `expect` lines checked; rewrite it once
 * to add its transcript. Commands:
 *
 *   cluster n1 n2 n3 [preVote=false] [checkQuorum=false] [seed=N] [readMode=lease] [forward=true]
 *           [members=n1,n2] [promoteLag=N] [electionTicks=N]
 *   change ID OP:MEMBER... [-> appended|rejected|in-progress|invalid]
 *           OP: add-voter, add-learner, add-learner+promote, remove
 *   campaign ID | tick ID [N] | tick-all [N] | deliver | stabilize | transfer FROM TO
 *   propose ID DATA [-> appended|rejected|forwarded]
 *   read ID [-> pending|rejected]
 *   partition A B | C     isolate ID     cut A>B     heal     crash ID     restart ID
 *   expect ID role=.. term=.. leader=..|none commit=.. last=.. vote=..|none applied=a,b,c reads=N
 *           voters=a,b learners=c|none outgoing=a,b|none
 *   expect leader ID|none
 *   expect log ID TERMS...
 *   until-leader [N]     (tick everyone and stabilize until some node leads, at most N rounds)
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfChangeError, type ConfChangeItem } from "../../src/core/membership.ts";
import type { ConfChangeResult, ProposeResult, ReadResult } from "../../src/core/raft.ts";
import { type ClusterEvent, CoreCluster, type CoreClusterOptions } from "../../src/testing/core-cluster.ts";
import { hasTranscript, runTranscript, type Command } from "./datadriven.ts";
import { formatMessage, formatReady, formatRequestId } from "./transcript-format.ts";

const dir = join(import.meta.dirname, "scenarios");

/** What a propose, change or read call returned: `appended 4@1`, `rejected not-leader leader=n1`. */
function formatResult(res: ProposeResult | ConfChangeResult | ReadResult): string {
  switch (res.status) {
    case "appended":
      return `appended ${res.index}@${res.term}`;
    case "forwarded":
    case "pending":
      return `${res.status} req=${formatRequestId(res.requestId)}`;
    case "rejected":
      return `rejected${"reason" in res ? ` ${res.reason}` : ""} leader=${res.leaderId ?? "none"}`;
  }
}

function formatEvent(e: ClusterEvent): string[] {
  if (e.kind === "ready") return formatReady(e.id, e.ready);
  return [`drop ${formatMessage(e.message)} (${e.reason})`];
}

function run(file: string): void {
  let c: CoreCluster | null = null;
  let trace: string[] = [];
  const cluster = (): CoreCluster => {
    if (!c) throw new Error("the script must start with `cluster ...`");
    return c;
  };
  runTranscript(join(dir, file), ({ cmd, args }: Command): string => {
    trace = [];
    step(cmd, args);
    return trace.join("\n");
  });

  function step(cmd: string, args: string[]): void {
      switch (cmd) {
        case "cluster": {
          const ids = args.filter((a) => !a.includes("="));
          const opts: CoreClusterOptions = {};
          for (const kv of args.filter((a) => a.includes("="))) {
            const [k, v] = kv.split("=");
            if (k === "preVote") opts.preVote = v === "true";
            else if (k === "checkQuorum") opts.checkQuorum = v === "true";
            else if (k === "seed") opts.seed = Number(v);
            else if (k === "readMode") opts.readMode = v as "lease" | "read-index";
            else if (k === "forward") opts.forwardProposals = v === "true";
            else if (k === "electionTicks") opts.electionTicks = Number(v);
            else if (k === "members") opts.members = v.split(",");
            else if (k === "promoteLag") opts.promoteLagEntries = Number(v);
            else throw new Error(`unknown cluster option ${k}`);
          }
          c = new CoreCluster(ids, opts);
          c.observer = (e) => trace.push(...formatEvent(e));
          break;
        }
        case "campaign":
          cluster().campaign(args[0]);
          break;
        case "transfer":
          cluster().node(args[0]).transferLeader(args[1]);
          cluster().process();
          break;
        case "tick":
          cluster().tick(args[0], Number(args[1] ?? 1));
          break;
        case "tick-all":
          cluster().tickAll(Number(args[0] ?? 1));
          break;
        case "deliver":
          cluster().deliver();
          break;
        case "stabilize":
          cluster().stabilize();
          break;
        case "until-leader": {
          const max = Number(args[0] ?? 200);
          let i = 0;
          for (; i < max && cluster().leader() === null; i++) {
            cluster().tickAll();
            cluster().stabilize();
          }
          if (cluster().leader() === null) throw new Error(`no leader after ${max} rounds`);
          break;
        }
        case "propose": {
          const res = cluster().propose(args[0], args[1]);
          trace.unshift(formatResult(res));
          if (args[2] === "->") expect(res.status).toBe(args[3]);
          break;
        }
        case "change": {
          const arrow = args.indexOf("->");
          const items = (arrow < 0 ? args.slice(1) : args.slice(1, arrow)).map((a): ConfChangeItem => {
            const [op, id] = a.split(":");
            if (op === "add-learner+promote") return { op: "add-learner", id, promote: true };
            if (op === "add-voter" || op === "add-learner" || op === "remove") return { op, id };
            throw new Error(`unknown change ${op}`);
          });
          let outcome: string;
          try {
            const res = cluster().node(args[0]).proposeConfChange(items);
            outcome = res.status;
            trace.push(formatResult(res));
          } catch (err) {
            if (!(err instanceof ConfChangeError)) throw err;
            outcome = err.kind;
            trace.push(`${err.kind}: ${err.message}`);
          }
          cluster().process();
          if (arrow >= 0) expect(outcome).toBe(args[arrow + 1]);
          break;
        }
        case "read": {
          const res = cluster().node(args[0]).readIndex();
          trace.push(formatResult(res));
          cluster().process();
          if (args[1] === "->") expect(res.status).toBe(args[2]);
          break;
        }
        case "partition": {
          const groups = args.join(" ").split("|").map((g) => g.trim().split(/\s+/).filter(Boolean));
          cluster().partition(...groups);
          break;
        }
        case "isolate":
          cluster().isolate(args[0]);
          break;
        case "cut": {
          const [from, to] = args[0].split(">");
          cluster().cutLink(from, to);
          break;
        }
        case "heal":
          cluster().heal();
          break;
        case "crash":
          cluster().crash(args[0]);
          break;
        case "restart":
          cluster().restart(args[0]);
          break;
        case "expect":
          expectLine(cluster(), args);
          break;
        default:
          throw new Error(`unknown command ${cmd}`);
      }
  }
}

function expectLine(c: CoreCluster, args: string[]): void {
  if (args[0] === "leader") {
    expect(c.leader() ?? "none").toBe(args[1]);
    return;
  }
  if (args[0] === "log") {
    expect(c.logTerms(args[1])).toBe(args.slice(2).join(" "));
    return;
  }
  const id = args[0];
  const n = c.node(id);
  for (const kv of args.slice(1)) {
    const [k, v] = kv.split("=");
    const actual: Record<string, unknown> = {
      role: n.role,
      term: String(n.term),
      leader: n.leaderId ?? "none",
      commit: String(n.log.committed),
      last: String(n.log.lastIndex()),
      vote: n.votedFor ?? "none",
      applied: c.appliedData(id).join(","),
      reads: String(c.readStates.get(id)!.length),
      voters: n.conf.voters.join(",") || "none",
      learners: n.conf.learners.join(",") || "none",
      outgoing: n.conf.votersOutgoing.join(",") || "none",
    };
    if (!(k in actual)) throw new Error(`unknown expectation ${k}`);
    expect(actual[k], `${id} ${k}`).toBe(v);
  }
}

describe("scenarios", () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
    const script = readFileSync(join(dir, file), "utf8");
    const title = script.split("\n")[0].replace(/^#\s*/, "");
    const legacy = hasTranscript(script) ? "" : " (no transcript yet: npm run test:rewrite)";
    it(`${file}: ${title}${legacy}`, () => run(file));
  }
});
