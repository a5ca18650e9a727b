/**
 * docs/internals.md names files and functions so that a reader can follow a request through the
 * code; a rename that leaves the document behind must fail here. What is checked, in the
 * document's inline code (fenced blocks are skipped):
 *
 * - a path (`src/node.ts`, `test/unit/scenarios/*.txt`): the file exists (a glob: something matches);
 * - a path followed by a name (`src/node.ts` `RaftNode.propose`, `src/http/app.ts` `keyOf`): that
 *   file declares the name (a function, class, interface, type or variable; `Class.member`: the
 *   class or interface, and a method or field of that name);
 * - any other name on its own (`Progress.becomeProbe`, `HardState`, `keyOf`, `snapshotEveryBytes`):
 *   some file under src/ or adapters/ declares it in the same way, so that renamed options and
 *   functions are caught too; an error code (`OUTCOME_UNKNOWN`): some file has it as a string.
 * Other code spans (option values, headers, routes: anything that is not a bare name) are prose.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const doc = readFileSync(join(root, "docs", "internals.md"), "utf8");

const PATH = /^(?:src|adapters|test|bench|examples|docs)\/[\w./*-]+\.(?:ts|txt|md|json|mjs)$/;
const NAME = /^#?[A-Za-z_$][\w$]*(?:\.#?[A-Za-z_$][\w$]*)?$/;

/** Inline code spans outside fenced blocks, with whether each follows the previous one directly. */
function codeSpans(markdown: string): { text: string; afterPrevious: boolean }[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, "");
  const spans: { text: string; afterPrevious: boolean }[] = [];
  const re = /`([^`\n]+)`/g;
  let end = -1;
  for (let m = re.exec(prose); m !== null; m = re.exec(prose)) {
    const between = end < 0 ? "x" : prose.slice(end, m.index);
    spans.push({ text: m[1], afterPrevious: /^\s*$/.test(between) });
    end = m.index + m[0].length;
  }
  return spans;
}

function escape(s: string): string {
  return s.replace(/[$#]/g, (c) => `\\${c}`);
}

/** Whether `source` declares `name` at top level or inside a function. */
function declaresTopLevel(source: string, name: string): boolean {
  const n = escape(name);
  return new RegExp(`\\b(?:function\\*?|class|interface|type|const|let|var|enum)\\s+${n}\\b`).test(source);
}

/** Whether `source` declares a method or field `member` (indented, at the start of a line). */
function declaresMember(source: string, member: string): boolean {
  const n = escape(member);
  const modifiers = "(?:(?:private|public|protected|readonly|static|async|override|get|set|declare)\\s+)*";
  return new RegExp(`^\\s+${modifiers}${n}\\??\\s*[(<:=]`, "m").test(source);
}

function declares(source: string, name: string): boolean {
  // An error code (`OUTCOME_UNKNOWN`) is a string some file produces.
  if (/^[A-Z][A-Z0-9_]+$/.test(name)) return source.includes(`"${name}"`) || declaresTopLevel(source, name);
  const [owner, member] = name.split(".");
  if (member === undefined) return declaresTopLevel(source, owner) || declaresMember(source, owner);
  return new RegExp(`\\b(?:class|interface)\\s+${escape(owner)}\\b`).test(source) && declaresMember(source, member);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

function pathExists(path: string): boolean {
  if (!path.includes("*")) return existsSync(join(root, path));
  const dir = join(root, dirname(path));
  const pattern = new RegExp(`^${path.slice(dirname(path).length + 1).replace(/[.]/g, "\\.").replace(/\*/g, ".*")}$`);
  return existsSync(dir) && readdirSync(dir).some((f) => pattern.test(f));
}

describe("docs/internals.md", () => {
  const spans = codeSpans(doc);
  const sources = [...sourceFiles(join(root, "src")), ...sourceFiles(join(root, "adapters"))].map((p) => ({
    path: relative(root, p),
    text: readFileSync(p, "utf8"),
  }));

  it("is where the code's pointers lead: each section a comment names exists", () => {
    const files = [...sources, ...sourceFiles(join(root, "test")).map((p) => ({ path: relative(root, p), text: readFileSync(p, "utf8") }))];
    const headings = new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((m) => m[1].trim()));
    const pointers: string[] = [];
    const broken: string[] = [];
    for (const f of files) {
      for (const m of f.text.matchAll(/docs\/internals\.md,? "([^"]+)"/g)) {
        pointers.push(`${f.path}: ${m[1]}`);
        if (!headings.has(m[1])) broken.push(`${f.path}: ${m[1]}`);
      }
    }
    expect(pointers.length).toBeGreaterThanOrEqual(3);
    expect(broken).toEqual([]);
    // The design document these comments once named is not in the repository.
    const design = ["DESIGN", "md"].join(".");
    if (!existsSync(join(root, design))) expect(files.filter((f) => f.text.includes(design)).map((f) => f.path)).toEqual([]);
  });

  it("names only files that exist", () => {
    const paths = spans.filter((s) => PATH.test(s.text)).map((s) => s.text);
    expect(paths.length).toBeGreaterThan(20);
    expect(paths.filter((p) => !pathExists(p))).toEqual([]);
  });

  it("names only functions that the named file declares", () => {
    const missing: string[] = [];
    let checked = 0;
    spans.forEach((s, i) => {
      const prev = spans[i - 1];
      if (!s.afterPrevious || !prev || !PATH.test(prev.text) || !NAME.test(s.text)) return;
      checked++;
      const file = join(root, prev.text);
      if (!existsSync(file) || !declares(readFileSync(file, "utf8"), s.text)) missing.push(`${prev.text} ${s.text}`);
    });
    expect(checked).toBeGreaterThan(60);
    expect(missing).toEqual([]);
  });

  it("names only classes, functions, types, members and options that exist", () => {
    const missing: string[] = [];
    let checked = 0;
    spans.forEach((s, i) => {
      const prev = spans[i - 1];
      if (s.afterPrevious && prev && PATH.test(prev.text)) return; // checked against its file above
      if (!NAME.test(s.text)) return;
      checked++;
      if (!sources.some((f) => declares(f.text, s.text))) missing.push(s.text);
    });
    expect(checked).toBeGreaterThan(60);
    expect(missing).toEqual([]);
  });
});
