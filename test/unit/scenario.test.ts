/**
 * Scenario tests that read like transcripts: each file in ./scenarios is a script of commands
 * against a CoreCluster, with `expect` lines stating what must hold at that point.
 *
 *   cluster n1 n2 n3 [preVote=false] [checkQuorum=false] [seed=N] [readMode=lease] [forward=true]
 *           [members=n1,n2] [promoteLag=N]
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
import { CoreCluster, type CoreClusterOptions } from "../../src/testing/core-cluster.ts";

const dir = join(import.meta.dirname, "scenarios");

function run(script: string): void {
  let c: CoreCluster | null = null;
  const cluster = (): CoreCluster => {
    if (!c) throw new Error("the script must start with `cluster ...`");
    return c;
  };
  const lines = script.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln].replace(/#.*$/, "").trim();
    if (!line) continue;
    const where = `line ${ln + 1}: ${line}`;
    const [cmd, ...args] = line.split(/\s+/);
    try {
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
            outcome = cluster().node(args[0]).proposeConfChange(items).status;
          } catch (err) {
            if (!(err instanceof ConfChangeError)) throw err;
            outcome = err.kind;
          }
          cluster().process();
          if (arrow >= 0) expect(outcome).toBe(args[arrow + 1]);
          break;
        }
        case "read": {
          const res = cluster().node(args[0]).readIndex();
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
    } catch (err) {
      const e = err as Error;
      e.message = `${where}\n${e.message}`;
      throw e;
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
    it(`${file}: ${title}`, () => run(script));
  }
});
