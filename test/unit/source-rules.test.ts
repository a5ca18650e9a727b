/**
 * The rule that makes meshraft runtime-agnostic (docs/internals.md, "Layout"), enforced:
 *
 * - nothing under src/ imports `node:*`, `ws`, `idb-keyval`, `hono/deno` or `@hono/node-server`,
 *   touches `Deno`, calls `require(`, or uses the DOM-only globals `document`, `window`,
 *   `localStorage`: those belong in adapters/;
 * - nothing under src/core/ reads time, schedules work, draws randomness or does IO, and it
 *   imports nothing outside src/core/: the core is a pure state machine;
 * - an adapter imports src/, never another adapter (adapters/deno/ nothing from adapters/node/):
 *   what two runtimes share lives in src/, and each adapter supplies only what differs.
 *
 * Comments are stripped before matching, so a doc comment may name what the code must not use.
 * Identifier rules also ignore the contents of strings, templates and regex literals; import rules
 * read the module specifiers.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

interface Violation {
  file: string;
  line: number;
  rule: string;
}

/** A forbidden use, matched against code with comments and string contents blanked out. */
interface UseRule {
  rule: string;
  pattern: RegExp;
  coreOnly: boolean;
}

// `(?<![\w$.])` keeps property names (`options.window`, `x.fetch`) and longer identifiers out.
const USE_RULES: UseRule[] = [
  { rule: "uses Deno (runtime-specific; belongs in adapters/deno)", pattern: /(?<![\w$])Deno\s*(?:\?\.|\.|\[)/g, coreOnly: false },
  { rule: "uses require( (CommonJS; src/ is ESM only)", pattern: /(?<![\w$.])require\s*\(/g, coreOnly: false },
  {
    rule: "uses a DOM-only global (document, window, localStorage)",
    pattern: /(?:(?<![\w$.])|(?<=globalThis\.))(?:document|window|localStorage)(?![\w$])/g,
    coreOnly: false,
  },
  { rule: "src/core uses setTimeout (time belongs to the driver)", pattern: /(?<![\w$.])setTimeout(?![\w$])/g, coreOnly: true },
  { rule: "src/core uses setInterval (time belongs to the driver)", pattern: /(?<![\w$.])setInterval(?![\w$])/g, coreOnly: true },
  { rule: "src/core uses Date.now (time belongs to the driver)", pattern: /(?<![\w$.])Date\s*\.\s*now(?![\w$])/g, coreOnly: true },
  { rule: "src/core uses new Date (time belongs to the driver)", pattern: /(?<![\w$.])new\s+Date(?![\w$])/g, coreOnly: true },
  {
    rule: "src/core uses performance.now (time belongs to the driver)",
    pattern: /(?<![\w$.])performance\s*\.\s*now(?![\w$])/g,
    coreOnly: true,
  },
  { rule: "src/core uses Math.random (inject a seeded Random)", pattern: /(?<![\w$.])Math\s*\.\s*random(?![\w$])/g, coreOnly: true },
  { rule: "src/core uses queueMicrotask (scheduling belongs to the driver)", pattern: /(?<![\w$.])queueMicrotask(?![\w$])/g, coreOnly: true },
  { rule: "src/core uses fetch (IO belongs to the driver)", pattern: /(?<![\w$.])fetch(?![\w$])/g, coreOnly: true },
];

/** Module specifiers src/ must never import (after an optional npm:/jsr: prefix). */
const FORBIDDEN_IMPORTS: { rule: string; pattern: RegExp }[] = [
  { rule: "imports node:* (runtime-specific; belongs in adapters/node)", pattern: /^node:/ },
  { rule: "imports ws (Node's WebSocket; belongs in adapters/node)", pattern: /^ws(?:[@/]|$)/ },
  { rule: "imports idb-keyval (browser storage; belongs in adapters/browser)", pattern: /^idb-keyval(?:[@/]|$)/ },
  { rule: "imports hono/deno (belongs in adapters/deno)", pattern: /^hono\/deno(?:[@/]|$)/ },
  { rule: "imports @hono/node-server (belongs in adapters/node)", pattern: /^@hono\/node-server(?:[@/]|$)/ },
];

// Static imports and re-exports (`import x from "m"`, `import "m"`, `export * from "m"`, with
// `type`, across lines) and dynamic `import("m")`. Group 1 is the specifier.
const IMPORT_PATTERNS = [
  /(?<![\w$.])(?:import|export)\s*(?:type\s+)?(?:[\w$*{},\s]*?\s*from\s*)?(["'])([^"'\n]+)\1/g,
  /(?<![\w$.])import\s*\(\s*(["'])([^"'\n]+)\1\s*\)/g,
];

const KEYWORDS_BEFORE_REGEX = new Set([
  "return", "typeof", "instanceof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "yield", "await",
]);

/**
 * Two views of `source`, both the same length with newlines kept (so offsets map to lines):
 * `code` has comments blanked; `bare` also has the contents of strings, templates and regex
 * literals blanked (`${...}` inside templates stays code). A small scanner, not a parser: a `/`
 * starts a regex literal when the previous token cannot end an expression.
 */
function stripSource(source: string): { code: string; bare: string } {
  const code = source.split("");
  const bare = source.split("");
  const n = source.length;
  const blank = (arr: string[], from: number, to: number): void => {
    for (let k = from; k < to && k < n; k++) if (arr[k] !== "\n") arr[k] = " ";
  };
  const templateDepths: number[] = []; // brace depth at each open `${`
  let depth = 0;
  let prev = ""; // last significant token: a punctuator, a word, or a quote for a literal
  let i = 0;

  // Scans template text from `start` to its closing backtick or to a `${`; returns where code resumes.
  const scanTemplate = (start: number): number => {
    let j = start;
    while (j < n && source[j] !== "`" && !(source[j] === "$" && source[j + 1] === "{")) j += source[j] === "\\" ? 2 : 1;
    blank(bare, start, j);
    if (j < n && source[j] === "$") {
      templateDepths.push(depth);
      depth++;
      prev = "{";
      return j + 2;
    }
    prev = '"';
    return j + 1;
  };

  while (i < n) {
    const c = source[i];
    const d = source[i + 1];
    if (c === "/" && d === "/") {
      const end = source.indexOf("\n", i);
      const j = end < 0 ? n : end;
      blank(code, i, j);
      blank(bare, i, j);
      i = j;
    } else if (c === "/" && d === "*") {
      const end = source.indexOf("*/", i + 2);
      const j = end < 0 ? n : end + 2;
      blank(code, i, j);
      blank(bare, i, j);
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && source[j] !== c && source[j] !== "\n") j += source[j] === "\\" ? 2 : 1;
      blank(bare, i + 1, j);
      prev = '"';
      i = j + 1;
    } else if (c === "`") {
      i = scanTemplate(i + 1);
    } else if (c === "/" && (prev === "" || "(,=:[!&|?{};+-*%<>~^".includes(prev) || KEYWORDS_BEFORE_REGEX.has(prev))) {
      let j = i + 1;
      let inClass = false;
      while (j < n && source[j] !== "\n" && (inClass || source[j] !== "/")) {
        if (source[j] === "\\") j++;
        else if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        j++;
      }
      blank(bare, i + 1, j);
      prev = '"';
      i = j + 1;
    } else if (/[\w$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(source[j])) j++;
      prev = source.slice(i, j);
      i = j;
    } else {
      if (c === "{") depth++;
      if (c === "}") {
        depth--;
        if (templateDepths.length > 0 && templateDepths[templateDepths.length - 1] === depth) {
          templateDepths.pop();
          i = scanTemplate(i + 1);
          continue;
        }
      }
      if (!/\s/.test(c)) prev = c;
      i++;
    }
  }
  return { code: code.join(""), bare: bare.join("") };
}

/**
 * The violations in one file. `file` is its path from the repository root with forward slashes
 * (`src/core/raft.ts`): it decides whether the core rules apply and where relative imports land.
 */
function checkSource(file: string, source: string): Violation[] {
  const inCore = file.startsWith("src/core/");
  const adapter = /^adapters\/([^/]+)\//.exec(file)?.[1];
  const { code, bare } = stripSource(source);
  const lineAt = (offset: number): number => {
    let line = 1;
    for (let k = 0; k < offset; k++) if (source.charCodeAt(k) === 10) line++;
    return line;
  };
  const found: Violation[] = [];

  for (const { rule, pattern, coreOnly } of USE_RULES) {
    if (adapter !== undefined || (coreOnly && !inCore)) continue;
    for (const m of bare.matchAll(pattern)) found.push({ file, line: lineAt(m.index), rule });
  }

  for (const pattern of IMPORT_PATTERNS) {
    for (const m of code.matchAll(pattern)) {
      const specifier = m[2];
      const line = lineAt(m.index + m[0].lastIndexOf(specifier));
      const name = specifier.replace(/^(?:npm|jsr):/, "");
      if (adapter !== undefined) {
        const target = specifier.startsWith(".") ? posix.normalize(posix.join(posix.dirname(file), specifier)) : "";
        const other = /^adapters\/([^/]+)\//.exec(target)?.[1];
        if (other !== undefined && other !== adapter) {
          found.push({ file, line, rule: `adapters/${adapter} imports another adapter: "${specifier}" (shared code belongs in src/)` });
        }
        continue;
      }
      for (const { rule, pattern: forbidden } of FORBIDDEN_IMPORTS) {
        if (forbidden.test(name)) found.push({ file, line, rule: `${rule}: "${specifier}"` });
      }
      if (inCore) {
        const target = specifier.startsWith(".") ? posix.normalize(posix.join(posix.dirname(file), specifier)) : specifier;
        if (!target.startsWith("src/core/")) {
          found.push({ file, line, rule: `src/core imports from outside src/core: "${specifier}"` });
        }
      }
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.isFile() && e.name.endsWith(".ts") ? [full] : [];
  });
}

const format = (v: Violation): string => `${v.file}:${v.line}: ${v.rule}`;

describe("src/ is runtime-agnostic and src/core/ is pure", () => {
  const files = sourceFiles(join(root, "src"));

  it("finds the source files (the scan itself works)", () => {
    const names = files.map((f) => relative(root, f).split("\\").join("/"));
    expect(names).toContain("src/index.ts");
    expect(names.some((f) => f.startsWith("src/core/"))).toBe(true);
  });

  it("no file under src/ breaks a rule", () => {
    const violations = files.flatMap((f) => checkSource(relative(root, f).split("\\").join("/"), readFileSync(f, "utf8")));
    expect(violations.map(format)).toEqual([]);
  });
});

describe("adapters import src/, never each other", () => {
  const files = sourceFiles(join(root, "adapters"));

  it("finds the adapters' files (the scan itself works)", () => {
    const names = files.map((f) => relative(root, f).split("\\").join("/"));
    expect(names).toContain("adapters/node/index.ts");
    expect(names).toContain("adapters/deno/index.ts");
  });

  it("no adapter imports another adapter", () => {
    const violations = files.flatMap((f) => checkSource(relative(root, f).split("\\").join("/"), readFileSync(f, "utf8")));
    expect(violations.map(format)).toEqual([]);
  });
});

describe("the rule checker catches violations (so the test above can fail)", () => {
  const rulesHit = (file: string, source: string): string[] => checkSource(file, source).map(format);

  it("reports each forbidden import under src/ with its line", () => {
    const source = [
      `import { readFile } from "node:fs/promises";`,
      `import WebSocket from 'ws';`,
      `import { get } from "idb-keyval";`,
      `import { upgradeWebSocket } from "hono/deno";`,
      `export { serve } from "@hono/node-server";`,
      `const m = await import("node:crypto");`,
      `import {`,
      `  type Thing,`,
      `} from "npm:ws@8";`,
    ].join("\n");
    const hits = rulesHit("src/transport/x.ts", source);
    expect(hits).toEqual([
      expect.stringMatching(/^src\/transport\/x\.ts:1: imports node:\*/),
      expect.stringMatching(/^src\/transport\/x\.ts:2: imports ws/),
      expect.stringMatching(/:3: imports idb-keyval/),
      expect.stringMatching(/:4: imports hono\/deno/),
      expect.stringMatching(/:5: imports @hono\/node-server/),
      expect.stringMatching(/:6: imports node:\*.*"node:crypto"/),
      expect.stringMatching(/:9: imports ws.*"npm:ws@8"/),
    ]);
  });

  it("reports Deno, require( and DOM-only globals under src/", () => {
    const source = [
      `const env = Deno.env.get("X");`,
      `const fs = require("fs");`,
      `document.title = "x";`,
      `const w = globalThis.window;`,
      `localStorage.setItem("k", "v");`,
    ].join("\n");
    expect(rulesHit("src/http/x.ts", source)).toEqual([
      "src/http/x.ts:1: uses Deno (runtime-specific; belongs in adapters/deno)",
      "src/http/x.ts:2: uses require( (CommonJS; src/ is ESM only)",
      "src/http/x.ts:3: uses a DOM-only global (document, window, localStorage)",
      "src/http/x.ts:4: uses a DOM-only global (document, window, localStorage)",
      "src/http/x.ts:5: uses a DOM-only global (document, window, localStorage)",
    ]);
  });

  it("reports time, randomness, scheduling, IO and outside imports in src/core/ only", () => {
    const source = [
      `import type { Clock } from "../clock.ts";`,
      `import { Encoder } from "@msgpack/msgpack";`,
      `import { Progress } from "./progress.ts";`,
      `setTimeout(() => {}, 1); setInterval(f, 1);`,
      `const t = Date.now() + performance.now() + new Date().getTime();`,
      `const r = Math.random();`,
      `queueMicrotask(f);`,
      `await fetch("http://x");`,
    ].join("\n");
    const hits = rulesHit("src/core/x.ts", source);
    expect(hits.map((h) => h.split(": ")[0])).toEqual([
      "src/core/x.ts:1",
      "src/core/x.ts:2",
      "src/core/x.ts:4",
      "src/core/x.ts:4",
      "src/core/x.ts:5",
      "src/core/x.ts:5",
      "src/core/x.ts:5",
      "src/core/x.ts:6",
      "src/core/x.ts:7",
      "src/core/x.ts:8",
    ]);
    expect(hits.join("\n")).toMatch(/outside src\/core: "\.\.\/clock\.ts"/);
    // The same source outside the core breaks none of the core rules.
    expect(rulesHit("src/node.ts", source)).toEqual([]);
  });

  it("reports an adapter importing another adapter, and nothing else in adapters/", () => {
    const source = [
      `import { FileStorage } from "../node/file-storage.ts";`,
      `export { parseStartArgs } from "../node/cli-args.ts";`,
      `import { readFile } from "node:fs/promises";`,
      `import { FileStorage as Core } from "../../src/storage/file/file-storage.ts";`,
      `import { createDenoMesh } from "./mesh.ts";`,
      `const m = await import("../browser/index.ts");`,
      `const pid = Deno.pid;`,
    ].join("\n");
    expect(rulesHit("adapters/deno/x.ts", source)).toEqual([
      'adapters/deno/x.ts:1: adapters/deno imports another adapter: "../node/file-storage.ts" (shared code belongs in src/)',
      'adapters/deno/x.ts:2: adapters/deno imports another adapter: "../node/cli-args.ts" (shared code belongs in src/)',
      'adapters/deno/x.ts:6: adapters/deno imports another adapter: "../browser/index.ts" (shared code belongs in src/)',
    ]);
  });

  it("ignores comments, strings, templates and regex literals, but not code inside ${}", () => {
    const source = [
      `/** Never calls setTimeout, Date.now or Math.random; no Deno.serve, no require("x"). */`,
      `// import { x } from "node:fs"; document.body`,
      `const s = "window and document and Date.now() and Deno.exit";`,
      `const re = /\\/\\/ not a comment, setTimeout/g; const half = a / 2; // fetch`,
      `const t = \`window \${ n /* fetch */ } \${ setTimeout } text\`;`,
      `const o = x.fetch + options.window + windowSize + myfetch;`,
      `/* a block comment`,
      `   import "ws"; */ const late = Math.random();`,
    ].join("\n");
    const hits = rulesHit("src/core/x.ts", source);
    expect(hits).toEqual([
      "src/core/x.ts:5: src/core uses setTimeout (time belongs to the driver)",
      "src/core/x.ts:8: src/core uses Math.random (inject a seeded Random)",
    ]);
  });
});
