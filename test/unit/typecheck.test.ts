/**
 * The whole tree type-checks under strict TypeScript with isolatedDeclarations (so the JSR package
 * has no slow types), and the npm build emits JavaScript whose entry points import and run.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const tsc = join(root, "node_modules/.bin/tsc");

describe("types and build", () => {
  it("tsc --noEmit passes over src, adapters, tests, benchmarks and examples", () => {
    const r = spawnSync(tsc, ["-p", "tsconfig.json", "--noEmit"], { cwd: root, encoding: "utf8", timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 130_000);

  it("the npm build emits runnable JavaScript with rewritten import extensions", async () => {
    const out = mkdtempSync(join(tmpdir(), "meshraft-build-"));
    try {
      const r = spawnSync(tsc, ["-p", "tsconfig.build.json", "--outDir", out], { cwd: root, encoding: "utf8", timeout: 120_000 });
      expect(r.stdout + r.stderr).toBe("");
      const main = await import(pathToFileURL(join(out, "src/index.js")).href);
      const testing = await import(pathToFileURL(join(out, "src/testing/index.js")).href);
      expect(typeof main.RaftNode).toBe("function");
      expect(typeof testing.simulate).toBe("function");
      const result = await testing.simulate({ seed: 7, durationMs: 500 });
      expect(result.ok).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 130_000);
});
