// The Deno suite (`npm run test:deno`; test/run.mjs runs it after vitest), under the `deno` from
// node_modules — never a global one:
//
//   1. `deno check` of the entry points (src/index.ts, src/testing/index.ts, src/http/index.ts,
//      src/client/index.ts, adapters/deno/index.ts, adapters/deno/cli.ts,
//      examples/deno-deploy/main.ts), counted as one test case;
//   2. `deno test` over test/deno/ (deno.json's "test.include") with narrow permissions:
//      --allow-net=127.0.0.1       the WebSocket mesh and member tests (Deno.serve on free loopback
//                                  ports, the global WebSocket and fetch dialing them);
//      --allow-read=<scratch>      file storage and Deno KV (SQLite) tests, in one scratch
//      --allow-write=<scratch>     directory this script creates and removes afterwards;
//      --allow-env=MESHRAFT_DENO_TMP  which tells the tests where that directory is;
//      --allow-sys=hostname        FileStorage records the host in its LOCK file.
//      Deno KV is enabled by deno.json ("unstable": ["kv"]). Nothing runs subprocesses or
//      reaches any other host or path, and --no-prompt turns an accidental permission request
//      into a failure instead of a prompt.
//
// Dependencies: deno.json sets "nodeModulesDir": "manual", so Deno resolves npm: specifiers
// (@msgpack/msgpack) from the ./node_modules that `npm ci` installed, and `deno test
// --cached-only` forbids any download (`deno check` has no such flag in deno 2.9.5; it resolves
// the same way). "lock": false because package-lock.json already pins what is in node_modules.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const denoBin = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));

const ENTRY_POINTS = [
  "src/index.ts",
  "src/testing/index.ts",
  "src/http/index.ts",
  "src/client/index.ts",
  "adapters/deno/index.ts",
  "adapters/deno/cli.ts",
  "examples/deno-deploy/main.ts",
];
const COMMON = ["--config", "deno.json"];

/** Runs a command from the repository root; stdout is echoed live and also returned. */
export function run(cmd, args, { capture = false, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: env ? { ...process.env, ...env } : process.env, stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"] });
    let out = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk) => {
      process.stdout.write(chunk);
      out += chunk;
    });
    child.on("error", (error) => {
      console.error(`could not run ${cmd}: ${error.message}`);
      resolve({ code: 1, out });
    });
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Runs both steps; resolves with test-case counts. */
export async function runDenoSuite() {
  if (!existsSync(denoBin)) {
    console.error("node_modules/.bin/deno is missing: run `npm install` (or `npm ci`) first.");
    return { passed: 0, failed: 1 };
  }
  const check = await run(denoBin, ["check", ...COMMON, ...ENTRY_POINTS]);
  const scratch = mkdtempSync(join(tmpdir(), "meshraft-deno-"));
  const permissions = ["--allow-net=127.0.0.1", `--allow-read=${scratch}`, `--allow-write=${scratch}`, "--allow-env=MESHRAFT_DENO_TMP", "--allow-sys=hostname"];
  const test = await run(denoBin, ["test", ...COMMON, "--cached-only", "--no-prompt", ...permissions], { capture: true, env: { MESHRAFT_DENO_TMP: scratch } });
  rmSync(scratch, { recursive: true, force: true });
  // Deno ends with e.g. "ok | 17 passed (3 steps) | 0 failed (869ms)"; steps are not counted.
  const plain = stripVTControlCharacters(test.out);
  const summary = [...plain.matchAll(/^(?:ok|FAILED) \| (\d+) passed.*? \| (\d+) failed/gm)].at(-1);
  let passed = summary ? Number(summary[1]) : 0;
  let failed = summary ? Number(summary[2]) : 0;
  const ignored = Number(/\| (\d+) ignored/.exec(summary?.[0] ?? "")?.[1] ?? 0);
  if (test.code !== 0 && failed === 0) failed = 1; // it failed before running tests (type errors, bad config)
  if (check.code === 0) passed++;
  else failed++;
  return { passed, failed, skipped: ignored };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { passed, failed } = await runDenoSuite();
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
