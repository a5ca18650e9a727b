/**
 * The local demo (`npm start`, `deno task start`) as a user runs it: three members on
 * consecutive free ports and a fresh data directory. `runDemo` waits for its "ready:" line, hands
 * the check the output and a follower's URL, then presses Ctrl-C and requires a clean stop: exit
 * code 0, "stopped." printed, and no member answering any more.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { consecutiveFreePorts, sleep } from "./process-cluster.ts";

const root = join(import.meta.dirname, "../..");

export interface RunningDemo {
  /** Everything printed so far (stdout and stderr). */
  out(): string;
  /** The first member's port; members are at base, base+1, base+2. */
  base: number;
  leader: string;
  followerUrl: string;
  /** The demo's data directory (a fresh temporary one). */
  dataDir: string;
}

/** `command(base, dataDir)` gives the program and its arguments. */
export async function runDemo(command: (base: number, dataDir: string) => string[], check: (demo: RunningDemo) => Promise<void>): Promise<void> {
  const base = await consecutiveFreePorts(3);
  const data = mkdtempSync(join(tmpdir(), "meshraft-demo-"));
  const [bin, ...args] = command(base, data);
  const demo = spawn(bin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  demo.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  demo.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes("ready:") && Date.now() < deadline) await sleep(100);
    expect(out, out).toContain("ready:");
    const leader = /leader (n\d)/.exec(out.slice(out.indexOf("ready:")))![1];
    const follower = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    await check({ out: () => out, base, leader, followerUrl: `http://127.0.0.1:${base + Number(follower.slice(1)) - 1}`, dataDir: data });

    const exited = new Promise<number | null>((r) => demo.once("exit", (code) => r(code)));
    demo.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(out).toContain("stopped.");
    // The three members are gone: nothing answers any more.
    for (let i = 0; i < 3; i++) await expect(fetch(`http://127.0.0.1:${base + i}/status`)).rejects.toThrow();
  } finally {
    if (demo.exitCode === null) demo.kill("SIGKILL");
    rmSync(data, { recursive: true, force: true });
  }
}
