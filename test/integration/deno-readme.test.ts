/**
 * The README's Deno commands do what it says: `deno task start` (the Deno CLI's `demo`) brings up
 * a 3-process Deno cluster and stops on Ctrl-C; `deno publish --dry-run` finds the JSR package
 * clean (no slow types, a license, every export resolvable).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { runDemo } from "./demo.ts";
import { denoBin } from "./process-cluster.ts";

const root = join(import.meta.dirname, "../..");

describe("README (Deno)", () => {
  it("deno task start: a 3-process Deno cluster that takes a write through a follower and stops on Ctrl-C", async () => {
    await runDemo(
      (base, data) => [denoBin, "task", "start", "--base-port", String(base), "--data-dir", data],
      async ({ followerUrl: fUrl }) => {
        expect((await fetch(`${fUrl}/kv/greeting`, { method: "PUT", body: "hello" })).status).toBe(200);
        expect(await (await fetch(`${fUrl}/kv/greeting`)).text()).toBe("hello");
      },
    );
  }, 60_000);

  it("deno publish --dry-run is clean: no slow types, no warnings, LICENSE and the ./deno export included", () => {
    const r = spawnSync(denoBin, ["publish", "--dry-run", "--allow-dirty"], { cwd: root, encoding: "utf8", timeout: 120_000 });
    const out = stripVTControlCharacters(r.stdout + r.stderr);
    expect(r.status, out).toBe(0);
    expect(out).toContain("Checking for slow types in the public API...");
    expect(out).toContain("Success Dry run complete");
    expect(out.replace("Checking for slow types in the public API...", "")).not.toMatch(/warning|slow type/i);
    expect(out).toMatch(/file:\/\/\S+\/LICENSE /);
    expect(out).toMatch(/Check adapters\/deno\/index\.ts/);
  }, 130_000);
});
