/**
 * How transcripts (test/unit/scenarios, test/unit/transcripts) print the core's data: one line
 * per message, one header line per Ready, `I@T` for index I of term T. See scenario.test.ts.
 */
import { decodeConfEntry } from "../../src/core/membership.ts";
import type { ConfState, Entry, Message, Ready } from "../../src/core/types.ts";

const utf8 = new TextDecoder();

/** `voters=n1,n2 outgoing=n1,n3 learners=n4 promote=n4 urls=n4:http://h:1`, empty parts left out. */
export function formatConf(c: ConfState): string {
  const parts = [`voters=${c.voters.join(",") || "none"}`];
  if (c.votersOutgoing.length > 0) parts.push(`outgoing=${c.votersOutgoing.join(",")}`);
  if (c.learners.length > 0) parts.push(`learners=${c.learners.join(",")}`);
  if (c.promote && c.promote.length > 0) parts.push(`promote=${c.promote.join(",")}`);
  if (c.urls && Object.keys(c.urls).length > 0) {
    // A URL too long to read is shown by its length.
    const show = (u: string): string => (u.length <= 60 ? u : `<${u.length} chars>`);
    parts.push(`urls=${Object.entries(c.urls).map(([id, u]) => `${id}:${show(u)}`).join(",")}`);
  }
  return parts.join(" ");
}

/** `5@2 "a"`, `1@1 noop`, `3@2 config(voters=n1,n2 outgoing=n1)`. */
export function formatEntry(e: Entry): string {
  if (e.type === "noop") return `${e.index}@${e.term} noop`;
  if (e.type === "config") return `${e.index}@${e.term} config(${formatConf(decodeConfEntry(e.data).conf)})`;
  return `${e.index}@${e.term} ${JSON.stringify(utf8.decode(e.data))}`;
}

/**
 * A request id as `#n`: its place in the sending node's life. Each life starts its ids at a random
 * multiple of 2^32 (so a restarted node's ids never match its earlier ones); the transcript shows
 * only the count within the life, which is what a reader follows.
 */
export function formatRequestId(id: number): string {
  return `#${id % 2 ** 32}`;
}

function range(entries: readonly { index: number }[]): string {
  if (entries.length === 0) return "[]";
  return `[${entries[0].index}..${entries[entries.length - 1].index}]`;
}

/** One line per message, the fields a reader of the paper looks at. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "RequestVote":
      return `${head} last=${m.lastLogIndex}@${m.lastLogTerm}${m.preVote ? " pre" : ""}${m.transfer ? " transfer" : ""}`;
    case "RequestVoteResponse":
      return `${head} ${m.voteGranted ? "granted" : "rejected"}${m.preVote ? " pre" : ""}`;
    case "AppendEntries":
      return `${head} prev=${m.prevLogIndex}@${m.prevLogTerm} entries=${range(m.entries)} commit=${m.leaderCommit}`;
    case "AppendEntriesResponse":
      return m.success ? `${head} ok match=${m.matchIndex}` : `${head} reject prev=${m.matchIndex} hint=${m.hintIndex}@${m.hintTerm}`;
    case "Heartbeat":
      return `${head} commit=${m.leaderCommit}${m.readRound > 0 ? ` read=${m.readRound}` : ""}`;
    case "HeartbeatResponse":
      return `${head}${m.readRound > 0 ? ` read=${m.readRound}` : ""}`;
    case "InstallSnapshot":
      return `${head} snapshot=${m.meta.index}@${m.meta.term} offset=${m.offset} bytes=${m.data.length}${m.done ? " done" : ""}`;
    case "InstallSnapshotResponse":
      return `${head} snapshot=${m.snapshotIndex} next=${m.nextOffset} match=${m.matchIndex}${m.done ? " done" : ""}`;
    case "TimeoutNow":
      return head;
    case "ForwardProposal":
      return `${head} req=${formatRequestId(m.requestId)} entries=${m.entries.length}`;
    case "ForwardProposalResponse":
      return m.rejected ? `${head} req=${formatRequestId(m.requestId)} rejected leader=${m.leaderId ?? "none"}` : `${head} req=${formatRequestId(m.requestId)} at=${m.index}@${m.entryTerm}`;
    case "ReadIndex":
      return `${head} req=${formatRequestId(m.requestId)}`;
    case "ReadIndexResponse":
      return m.rejected ? `${head} req=${formatRequestId(m.requestId)} rejected leader=${m.leaderId ?? "none"}` : `${head} req=${formatRequestId(m.requestId)} index=${m.index}`;
  }
}

/** The header line of a Ready, then its messages indented, one a line. */
export function formatReady(id: string, rd: Ready): string[] {
  const parts: string[] = [];
  if (rd.softState) parts.push(`role=${rd.softState.role} term=${rd.softState.term} leader=${rd.softState.leaderId ?? "none"}`);
  if (rd.hardState) parts.push(`hard term=${rd.hardState.term} vote=${rd.hardState.votedFor ?? "none"} commit=${rd.hardState.commit}`);
  if (rd.snapshot) parts.push(`snapshot ${rd.snapshot.meta.index}@${rd.snapshot.meta.term}`);
  if (rd.entries.length > 0) parts.push(`persist [${rd.entries.map(formatEntry).join(", ")}]`);
  if (rd.committedEntries.length > 0) parts.push(`apply [${rd.committedEntries.map(formatEntry).join(", ")}]`);
  if (rd.readStates.length > 0) parts.push(`reads [${rd.readStates.map((r) => `${formatRequestId(r.requestId)}@${r.index}`).join(", ")}]`);
  if (rd.forwardedProposals.length > 0) parts.push(`forwarded [${rd.forwardedProposals.map((f) => `${f.requestId}@${f.index}`).join(", ")}]`);
  if (rd.rejections.length > 0) parts.push(`rejected [${rd.rejections.map((r) => `${r.requestId}:${r.reason}`).join(", ")}]`);
  const lines = [`${id} ready:${parts.length > 0 ? " " + parts.join("; ") : ""}`];
  for (const m of rd.earlyMessages) lines.push(`  ${formatMessage(m)} (early)`);
  for (const m of rd.messages) lines.push(`  ${formatMessage(m)}`);
  return lines;
}

