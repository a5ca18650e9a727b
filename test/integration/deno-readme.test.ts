/**
 * The README's Deno commands do what it says: `deno task start` (the Deno CLI's `demo`) brings up
 * a 3-process Deno cluster and stops on Ctrl-C; `deno publish --dry-run` finds the JSR package
 * clean (no slow types, a license, every export resolvable).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { consecutiveFreePorts, denoBin, sleep } from "./process-cluster.ts";

const root = join(import.meta.dirname, "../..");

describe("README (Deno)", () => {
  it("deno task start: a 3-process Deno cluster that takes a write through a follower and stops on Ctrl-C", async () => {
    const base = await consecutiveFreePorts(3);
    const data = mkdtempSync(join(tmpdir(), "meshraft-deno-demo-"));
    const demo = spawn(denoBin, ["task", "start", "--base-port", String(base), "--data-dir", data], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    demo.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    demo.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes("ready:") && Date.now() < deadline) await sleep(100);
      expect(out, out).toContain("ready:");
      const leader = /leader (n\d)/.exec(out.slice(out.indexOf("ready:")))![1];
      const follower = ["n1", "n2", "n3"].find((id) => id !== leader)!;
      const fUrl = `http://127.0.0.1:${base + Number(follower.slice(1)) - 1}`;
      expect((await fetch(`${fUrl}/kv/greeting`, { method: "PUT", body: "hello" })).status).toBe(200);
      expect(await (await fetch(`${fUrl}/kv/greeting`)).text()).toBe("hello");

      const exited = new Promise<number | null>((r) => demo.once("exit", (code) => r(code)));
      demo.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(out).toContain("stopped.");
      for (let i = 0; i < 3; i++) await expect(fetch(`http://127.0.0.1:${base + i}/status`)).rejects.toThrow();
    } finally {
      if (demo.exitCode === null) demo.kill("SIGKILL");
      rmSync(data, { recursive: true, force: true });
    }
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
