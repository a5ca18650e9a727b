/**
 * The README's commands do what it says: `npm start` (the `meshraft demo` command) brings up a
 * 3-process cluster, prints where it is and how to use it, serves the HTTP API with leader
 * redirects, and stops cleanly on Ctrl-C (SIGINT); the in-process example runs its tour.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runDemo } from "./demo.ts";

const root = join(import.meta.dirname, "../..");

describe("README", () => {
  it("opens with the two commands, and npm start runs `meshraft demo`", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const firstBlock = readme.slice(readme.indexOf("```sh"), readme.indexOf("```", readme.indexOf("```sh") + 5));
    expect(firstBlock).toContain("npm install && npm start");
    expect(firstBlock).toContain("npm test");
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.scripts.start).toBe("tsx adapters/node/cli.ts demo");
  });

  it("npm start: a 3-process cluster that answers the printed curl commands and stops on Ctrl-C", async () => {
    await runDemo(
      (base, data) => [process.execPath, "--import", "tsx", "adapters/node/cli.ts", "demo", "--base-port", String(base), "--data-dir", data],
      async ({ out, base, leader, followerUrl: fUrl }) => {
        expect(out()).toContain(`n1 http://127.0.0.1:${base}`);
        // The dashboard's URL comes first, and it serves the page.
        const dashboard = `http://127.0.0.1:${base}/dashboard`;
        expect(out().split("\n")[0]).toMatch(new RegExp(`^dashboard: ${dashboard} `));
        const page = await fetch(dashboard);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain("/dashboard/events");
        expect(out()).toContain("curl -L -X PUT");
        // What `curl -L -X PUT --data-binary 'hello' <follower>/kv/greeting` does: follow the 307.
        const put = await fetch(`${fUrl}/kv/greeting`, { method: "PUT", body: "hello" });
        expect(put.status).toBe(200);
        const get = await fetch(`${fUrl}/kv/greeting`);
        expect(await get.text()).toBe("hello");
        const stale = await fetch(`${fUrl}/kv/greeting?stale`);
        expect(await stale.text()).toBe("hello");
        const status = (await (await fetch(`http://127.0.0.1:${base}/status`)).json()) as { leader: string };
        expect(status.leader).toBe(leader);
        const metrics = await (await fetch(`http://127.0.0.1:${base}/metrics`)).text();
        expect(metrics).toMatch(/^meshraft_/m);
      },
    );
  }, 60_000);

  it("a second npm start on the same ports and data directory shows the member's own error and exits non-zero", async () => {
    const demoArgs = (base: number, data: string): string[] => [process.execPath, "--import", "tsx", "adapters/node/cli.ts", "demo", "--base-port", String(base), "--data-dir", data];
    await runDemo(demoArgs, async ({ base, dataDir }) => {
      const [bin, ...args] = demoArgs(base, dataDir);
      const second = spawn(bin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      second.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      second.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      const force = setTimeout(() => second.kill("SIGKILL"), 45_000);
      const code = await new Promise<number | null>((r) => second.once("exit", (c) => r(c)));
      clearTimeout(force);
      expect(code, out).not.toBe(0);
      expect(code, out).not.toBe(null);
      // The member's own message, not only "n1 exited": its port is held by the first demo.
      // Whichever member exits first stops the demo, so any of the three may be the one named.
      expect(out).toMatch(/n[123] exited \(code 1\): .*in use by process \d+/);
      // The first demo's members answered on these ports, but they are not this demo's.
      expect(out).not.toContain("ready:");
    });
  }, 90_000);

  it("examples/in-process-cluster.ts runs its tour: election, writes, leader killed, recovery", () => {
    const r = spawnSync(join(root, "node_modules/.bin/tsx"), ["examples/in-process-cluster.ts", "--once"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/new leader: n\d/);
    expect((r.stdout.match(/committed at index/g) ?? []).length).toBe(6);
    expect(r.stdout).toContain("linearizable read of key6");
  });

  it("the 'Embedding a node' program runs verbatim, importing \"meshraft\" as an installed package and from a built clone", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Embedding a node"));
    const program = /```ts\n([\s\S]*?)```/.exec(section)![1];
    const tmp = mkdtempSync(join(tmpdir(), "meshraft-embed-"));
    try {
      // The package as `npm run build` leaves it: package.json, dist/, and its dependencies.
      const pkg = join(tmp, "meshraft");
      mkdirSync(pkg);
      const build = spawnSync(join(root, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json", "--outDir", join(pkg, "dist")], { cwd: root, encoding: "utf8", timeout: 120_000 });
      expect(build.stdout + build.stderr).toBe("");
      copyFileSync(join(root, "package.json"), join(pkg, "package.json"));
      symlinkSync(join(root, "node_modules"), join(pkg, "node_modules"));
      // A user's project with meshraft installed under node_modules.
      const app = join(tmp, "app");
      mkdirSync(join(app, "node_modules"), { recursive: true });
      symlinkSync(pkg, join(app, "node_modules/meshraft"));
      writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module", dependencies: { meshraft: "*" } }));
      for (const dir of [app, pkg]) {
        writeFileSync(join(dir, "main.ts"), program);
        const r = spawnSync(join(root, "node_modules/.bin/tsx"), ["main.ts"], { cwd: dir, encoding: "utf8", timeout: 60_000 });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^n\d committed a=1 at index \d+\nn\d reads a=1\n$/);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 180_000);
});
