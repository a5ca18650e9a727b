/**
 * `meshraft start` as a newcomer meets it: a usage mistake prints start's own usage, and a
 * --listen port that is taken fails before the data directory is touched, naming the process
 * that holds the port (issue 11, rough edges).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { denoBin, denoRunArgs, freePorts, sleep } from "./process-cluster.ts";

const root = join(import.meta.dirname, "../..");

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "adapters/node/cli.ts", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const force = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.once("exit", (code) => {
      clearTimeout(force);
      resolve({ code, out });
    });
  });
}

/**
 * Runs one member (`command(tmpDir, port)`) until its output matches `ready` (at most 30 s), then
 * `check`; stops it with SIGTERM and removes its temporary directory.
 */
async function withMember(command: (tmp: string, port: number) => string[], ready: RegExp, check: (m: { tmp: string; port: number }) => Promise<void>): Promise<void> {
  const [port] = await freePorts(1);
  const tmp = mkdtempSync(join(tmpdir(), "meshraft-cli-"));
  const [bin, ...args] = command(tmp, port);
  const child = spawn(bin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  try {
    const deadline = Date.now() + 30_000;
    while (!ready.test(out) && child.exitCode === null && Date.now() < deadline) await sleep(100);
    expect(out).toMatch(ready);
    await check({ tmp, port });
  } finally {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

describe("meshraft start", () => {
  it("a usage mistake prints start's usage, not the overview of every command", async () => {
    const r = await runCli(["start", "--listen", "127.0.0.1:7001", "--data-dir", "/nonexistent"]);
    expect(r.code).toBe(2);
    expect(r.out).toContain("meshraft: --id is required");
    expect(r.out).toContain("usage: meshraft start");
    expect(r.out).not.toContain("meshraft demo");
  });

  it("a --listen port in use fails before the data directory is created, naming the process that holds it", async () => {
    const [port] = await freePorts(1);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(port, "127.0.0.1", () => r()));
    const tmp = mkdtempSync(join(tmpdir(), "meshraft-port-"));
    try {
      const dataDir = join(tmp, "n1");
      const r = await runCli(["start", "--id", "n1", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir]);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(`meshraft: 127.0.0.1:${port} is already in use by process ${process.pid}`);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      holder.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("on Deno, --kv DIR/FILE creates DIR as --data-dir does", async () => {
    await withMember(
      (tmp, port) => [denoBin, ...denoRunArgs(tmp), join(root, "adapters/deno/cli.ts"), "start", "--id", "n3", "--listen", `127.0.0.1:${port}`, "--kv", join(tmp, "data", "n3.kv")],
      / n3 started /,
      async ({ tmp }) => expect(existsSync(join(tmp, "data", "n3.kv"))).toBe(true),
    );
  });

  it("--max-value-bytes lowers the client API's value limit (413 VALUE_TOO_LARGE above it); above the built-in 1 MiB it is a usage error", async () => {
    const tooBig = await runCli(["start", "--id", "n1", "--listen", "127.0.0.1:7001", "--data-dir", "/nonexistent", "--max-value-bytes", "1048577"]);
    expect(tooBig.code).toBe(2);
    expect(tooBig.out).toContain("--max-value-bytes takes a number of bytes from 1 to 1048576");

    await withMember(
      (tmp, port) => [process.execPath, "--import", "tsx", "adapters/node/cli.ts", "start", "--id", "n1", "--listen", `127.0.0.1:${port}`, "--data-dir", join(tmp, "n1"), "--max-value-bytes", "16"],
      / role leader /,
      async ({ port }) => {
        const url = `http://127.0.0.1:${port}/kv/k`;
        expect((await fetch(url, { method: "PUT", body: "x".repeat(16) })).status).toBe(200);
        const over = await fetch(url, { method: "PUT", body: "x".repeat(17) });
        expect(over.status).toBe(413);
        expect(((await over.json()) as { error: { code: string } }).error.code).toBe("VALUE_TOO_LARGE");
      },
    );
  });
});
