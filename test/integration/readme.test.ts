/**
 * The README's commands do what it says: `npm start` (the `meshraft demo` command) brings up a
 * 3-process cluster, prints where it is and how to use it, serves the HTTP API with leader
 * redirects, and stops cleanly on Ctrl-C (SIGINT); the in-process example runs its tour.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

  it("examples/in-process-cluster.ts runs its tour: election, writes, leader killed, recovery", () => {
    const r = spawnSync(join(root, "node_modules/.bin/tsx"), ["examples/in-process-cluster.ts", "--once"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/new leader: n\d/);
    expect((r.stdout.match(/committed at index/g) ?? []).length).toBe(6);
    expect(r.stdout).toContain("linearizable read of key6");
  });
});
