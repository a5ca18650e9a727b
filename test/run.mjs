// `npm test`: the one command that proves the project (.ci/run calls exactly it after `npm ci`).
//
//   npm test                    Chromium check (installed by apt when missing, as root), vitest
//                               (all of test/**/*.test.ts but test/browser), the browser tests on
//                               their own, then the Deno suite
//                               (test/deno/run.mjs: `deno check` of src/ entry points + `deno test`)
//   npm test -- <vitest args>   only vitest, with those arguments (filters, -t "name", ...);
//                               the Deno suite is skipped. Run it alone with `npm run test:deno`.
//
// The last line printed is always `N passed, M failed, K skipped` (test cases over both runners; the
// `deno check` step counts as one); CI reads it. The exit code is non-zero if any step failed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureChromium } from "./browser/ensure-chromium.mjs";
import { denoBin, root, run, runDenoSuite } from "./deno/run.mjs";

const vitestArgs = process.argv.slice(2);
const vitestBin = join(root, "node_modules/.bin/vitest");

const missing = [vitestBin, denoBin].filter((bin) => !existsSync(bin));
if (missing.length > 0) {
  for (const bin of missing) console.error(`missing ${bin}`);
  console.error("Dependencies are not installed: run `npm install` (or `npm ci`) in the repository root.");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// The browser tests run Debian's Chromium (test/browser/chromium.ts): installed through apt when
// missing and this runs as root, else a message that says how to install it.
try {
  await ensureChromium();
} catch (e) {
  console.error(e.message);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const tmp = mkdtempSync(join(tmpdir(), "meshraft-test-"));
let passed = 0;
let failed = 0;
let skipped = 0;
const skippedNames = [];

/** One vitest run with `args`; adds its counts to the totals. */
async function vitestRun(name, args) {
  const jsonReport = join(tmp, `${name}.json`);
  const vitest = await run(vitestBin, ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${jsonReport}`, ...args]);
  let failedHere = 0;
  if (existsSync(jsonReport)) {
    const report = JSON.parse(readFileSync(jsonReport, "utf8"));
    passed += report.numPassedTests;
    failedHere += report.numFailedTests;
    // it.skipIf: a condition of this machine (root, no prlimit, no /dev/full) rules the test out.
    for (const file of report.testResults) {
      for (const a of file.assertionResults) {
        if (a.status === "pending" || a.status === "skipped" || a.status === "todo") {
          skippedNames.push(a.fullName);
          skipped++;
        }
      }
    }
    // A file that failed to load or whose hooks threw has no failed test of its own: count it once.
    failedHere += report.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
  }
  if (vitest.code !== 0 && failedHere === 0) failedHere = 1;
  failed += failedHere;
}

if (vitestArgs.length > 0) {
  await vitestRun("vitest", vitestArgs);
} else {
  // The browser tests run on their own, after the rest: a page's timers and a Chromium on two
  // cores shared with every other test file in parallel made their timing unlike a user's.
  await vitestRun("vitest", ["--exclude", "test/browser/**"]);
  console.log("\nBrowser tests (real Chromium), on their own");
  await vitestRun("browser", ["test/browser"]);
}
rmSync(tmp, { recursive: true, force: true });

if (vitestArgs.length > 0) {
  console.log("\nDeno suite skipped: arguments were given, and they are vitest's (npm run test:deno runs it).");
} else {
  console.log("\nDeno suite (deno check + deno test)");
  const deno = await runDenoSuite();
  passed += deno.passed;
  failed += deno.failed;
  skipped += deno.skipped ?? 0;
}

if (skippedNames.length > 0) {
  console.log("\nSkipped, because their condition does not hold on this machine (see each test's skipIf):");
  for (const name of skippedNames) console.log(`  - ${name}`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
