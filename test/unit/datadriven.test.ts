/**
 * The transcript runner (test/unit/datadriven.ts) that the scenario, quorum and membership
 * transcripts rely on: what it compares, and that a file in the older format (no output blocks)
 * still runs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Command, runTranscript } from "./datadriven.ts";

const dir = mkdtempSync(join(tmpdir(), "meshraft-datadriven-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `t${n++}.txt`);
  writeFileSync(path, text);
  return path;
}

/** Runs `text` with a handler that answers `outputs[cmd]` and records what it was asked. */
function run(text: string, outputs: Record<string, string>): Command[] {
  const seen: Command[] = [];
  runTranscript(file(text), (c) => {
    seen.push(c);
    return outputs[c.cmd] ?? "";
  });
  return seen;
}

const transcript = "# title\nsay hello world   # a comment\n----\nhello\nworld\n\nquiet\n\n# more\nsay again\n----\nagain\n";

describe("runTranscript", () => {
  it("runs each command once with its arguments and line, skipping comments and blocks", () => {
    const seen: Command[] = [];
    const outs = ["hello\nworld", "", "again"];
    runTranscript(file(transcript), (c) => outs[seen.push(c) - 1]);
    expect(seen.map((c) => [c.line, c.cmd, c.args.join(" ")])).toEqual([
      [2, "say", "hello world"],
      [7, "quiet", ""],
      [10, "say", "again"],
    ]);
  });

  it("passes when every command produced its stored block, and a command with no block produced nothing", () => {
    let i = 0;
    const outs = ["hello\nworld", "", "again"];
    expect(() => runTranscript(file(transcript), () => outs[i++])).not.toThrow();
  });

  it("fails on a different output, naming the command's line", () => {
    let i = 0;
    const outs = ["hello\nthere", "", "again"];
    expect(() => runTranscript(file(transcript), () => outs[i++])).toThrow(/:2: say hello world/);
  });

  it("fails when a command without a block produced output", () => {
    let i = 0;
    const outs = ["hello\nworld", "unexpected", "again"];
    expect(() => runTranscript(file(transcript), () => outs[i++])).toThrow(/:7: quiet/);
  });

  it("runs a file in the older format (no block at all) without comparing its output", () => {
    const old = "# old\ncluster n1\nexpect n1 role=leader\n";
    const seen = run(old, { cluster: "something", expect: "" });
    expect(seen.map((c) => c.cmd)).toEqual(["cluster", "expect"]);
  });

  it("still fails a file in the older format when a command fails (its expect lines are checked)", () => {
    const old = "# old\ncluster n1\nexpect n1 role=leader\n";
    expect(() =>
      runTranscript(file(old), (c) => {
        if (c.cmd === "expect") throw new Error("n1 role: expected leader");
        return "";
      }),
    ).toThrow(/line 3: expect n1 role=leader\nn1 role: expected leader/);
  });

  it("rewrites an older-format file into a transcript that then passes, and rewriting again changes nothing", () => {
    const path = file("# old\ncluster n1\n\ncampaign n1   # go\nexpect n1 role=leader\n");
    const outputs: Record<string, string> = { cluster: "", campaign: "n1 ready: role=leader\n  n1->n2 Heartbeat", expect: "" };
    const handler = (c: Command): string => outputs[c.cmd];
    runTranscript(path, handler, { rewrite: true });
    const once = readFileSync(path, "utf8");
    expect(once).toBe("# old\ncluster n1\n\ncampaign n1   # go\n----\nn1 ready: role=leader\n  n1->n2 Heartbeat\n\nexpect n1 role=leader\n");
    expect(() => runTranscript(path, handler)).not.toThrow();
    expect(() => runTranscript(path, (c) => (c.cmd === "campaign" ? "other" : handler(c)))).toThrow(/:4: campaign n1/);
    runTranscript(path, handler, { rewrite: true });
    expect(readFileSync(path, "utf8")).toBe(once);
  });
});
