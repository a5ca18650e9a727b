/**
 * A small datadriven runner in the style of etcd-io/raft's testdata (cockroachdb/datadriven):
 * a transcript file is a list of commands, each optionally followed by the output it produced,
 *
 *   command arg arg        # a comment
 *   ----
 *   output line
 *   output line
 *   <empty line ends the block>
 *
 * Lines starting with `#` and empty lines outside blocks are kept as they are. A command whose
 * output is empty has no block. Running a file executes each command through `handler` and
 * compares what it returns with the stored block; with MESHRAFT_REWRITE=1 (`npm run
 * test:rewrite`) the blocks are written back from what the commands produced instead, for review
 * with `git diff`.
 *
 * A file with no block at all is in the older format (commands and `expect` lines only): it still
 * runs and its `expect` lines are still checked, but its output is not compared until it is
 * rewritten once.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

export const rewriting: boolean = process.env.MESHRAFT_REWRITE === "1";

export const BLOCK = "----";

export interface Command {
  /** 1-based line of the command in the file. */
  line: number;
  /** The command line without its comment, trimmed. */
  text: string;
  cmd: string;
  args: string[];
}

/** Whether a file holds any output block (new format) or none (older, expect-only format). */
export function hasTranscript(text: string): boolean {
  return text.split("\n").some((l) => l === BLOCK);
}

/**
 * Runs every command of the transcript at `path`; `handler` returns the command's output (lines
 * joined by "\n", "" for none) and throws to fail. Compares (or rewrites) the output blocks.
 */
export function runTranscript(path: string, handler: (c: Command) => string, options: { rewrite?: boolean } = {}): void {
  const rewrite = options.rewrite ?? rewriting;
  const original = readFileSync(path, "utf8");
  const compare = hasTranscript(original);
  const lines = original.split("\n");
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i];
    const text = raw.replace(/#.*$/, "").trim();
    out.push(raw);
    i++;
    if (!text) continue;
    const at = i;
    // The stored block, if any: "----", its lines, and the empty line that ends it.
    let stored = "";
    if (lines[i] === BLOCK) {
      const body: string[] = [];
      i++;
      while (i < lines.length && lines[i] !== "") body.push(lines[i++]);
      if (i < lines.length) i++;
      stored = body.join("\n");
    }
    const [cmd, ...args] = text.split(/\s+/);
    const where = `${path}:${at}: ${text}`;
    let actual: string;
    try {
      actual = handler({ line: at, text, cmd, args });
    } catch (err) {
      const e = err as Error;
      e.message = `line ${at}: ${text}\n${e.message}`;
      throw e;
    }
    if (actual !== "") out.push(BLOCK, ...actual.split("\n"), "");
    if (!rewrite && compare) {
      expect(actual, `${where}\n(run \`npm run test:rewrite\` and review the diff if the change is intended)`).toBe(stored);
    }
  }
  if (rewrite) {
    // A block ending the file leaves one empty line; keep exactly one trailing newline.
    let text = out.join("\n");
    text = text.replace(/\n+$/, "") + "\n";
    if (text !== original) writeFileSync(path, text);
  }
}

/** The `key=value` arguments of a command; a repeated key keeps its last value. */
export function keyValues(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq < 0) throw new Error(`expected key=value, got ${a}`);
    out.set(a.slice(0, eq), a.slice(eq + 1));
  }
  return out;
}

/** `n1,n2` as a list; "" and "none" are the empty list. */
export function idList(v: string | undefined): string[] {
  if (v === undefined || v === "" || v === "none") return [];
  return v.split(",");
}
