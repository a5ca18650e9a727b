/**
 * The README's "Local-first tab clusters" section does what it says, in real Chromium:
 * - `npm run example:tabs` bundles and serves the example on 127.0.0.1 and prints the URL; the
 *   printed page forms a cluster and answers `globalThis.meshraftTabs`;
 * - the section's two code blocks (worker.ts with a Counter state machine, page.ts), type-checked
 *   against this repository's sources, bundled with esbuild and run as written.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleBrowser } from "../../scripts/bundle-browser.ts";
import { serveStatic, type StaticServer } from "../../scripts/static-server.ts";
import { launchChromium } from "./chromium.ts";

const root = join(import.meta.dirname, "../..");
const WAIT_MS = 45_000;
let browser: Browser;
const children: ChildProcess[] = [];
const servers: StaticServer[] = [];

beforeAll(async () => {
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGKILL");
});

/** The section's text, up to the next `## ` heading. */
function section(): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const start = readme.indexOf("## Local-first tab clusters");
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf("\n## ", start + 5);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe("README: Local-first tab clusters", () => {
  it("npm run example:tabs serves the example on 127.0.0.1, and the printed page is a working tab cluster", async () => {
    expect(section()).toContain("npm run example:tabs");
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.scripts["example:tabs"]).toBe("tsx examples/browser-tabs/serve.ts");
    // What the script runs (npm would put a shell between us and the server's PID).
    const child = spawn(join(root, "node_modules/.bin/tsx"), ["examples/browser-tabs/serve.ts"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    await expect.poll(() => out, { timeout: WAIT_MS }).toMatch(/http:\/\/127\.0\.0\.1:\d+\//);
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}?cluster=readme-${Date.now().toString(36)}`);
    await page.waitForFunction(() => globalThis.meshraftTabs !== undefined, null, { timeout: WAIT_MS });
    await expect.poll(() => page.evaluate(async () => (await globalThis.meshraftTabs!.status()).leader), { timeout: WAIT_MS }).not.toBeNull();
    const got = await page.evaluate(async () => {
      const t = globalThis.meshraftTabs!;
      await t.put("greeting", "hello");
      return [await t.get("greeting"), (await t.status()).ids];
    });
    expect(got).toEqual(["hello", ["t1", "t2", "t3"]]);
    await context.close();

    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once("exit", (c) => r(c))));
    expect(code, out).toBe(0);
  }, 120_000);

  it("the section's worker.ts and page.ts type-check, bundle and run as written", async () => {
    const blocks = [...section().matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    const worker = blocks.find((b) => b.startsWith("// worker.ts"));
    const page = blocks.find((b) => b.startsWith("// page.ts"));
    expect(worker).toBeDefined();
    expect(page).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "meshraft-readme-tabs-"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(dir, "worker.ts"), worker!);
    // The page as written, then what it computed, for the test to read.
    writeFileSync(join(dir, "page.ts"), `${page!}\n(globalThis as any).readme = { index, result, total, ids, leader, members };\n`);
    writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="./page.js"></script>`);

    const paths = { "meshraft/browser": join(root, "adapters/browser/index.ts"), meshraft: join(root, "src/index.ts") };
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.json"),
        compilerOptions: { paths: Object.fromEntries(Object.entries(paths).map(([k, v]) => [k, [v]])), isolatedDeclarations: false, declaration: false, types: [] },
        include: [join(dir, "worker.ts"), join(dir, "page.ts")],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json"), "--noEmit"], { encoding: "utf8", timeout: 120_000 });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);

    await bundleBrowser(join(dir, "worker.ts"), join(dir, "worker.js"), { alias: paths });
    await bundleBrowser(join(dir, "page.ts"), join(dir, "page.js"), { alias: paths });
    const server = await serveStatic(dir);
    servers.push(server);
    const context = await browser.newContext();
    const p = await context.newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(server.url);
    await p.waitForFunction(() => (globalThis as { readme?: unknown }).readme !== undefined, null, { timeout: WAIT_MS });
    const r = (await p.evaluate(() => (globalThis as { readme?: unknown }).readme)) as { index: number; result: number; total: number; ids: string[]; leader: string; members: { id: string }[] };
    expect(errors).toEqual([]);
    expect(r.index).toBeGreaterThan(0);
    expect(r.result).toBe(5);
    expect(r.total).toBe(5);
    expect(r.ids).toEqual(["t1", "t2", "t3"]);
    expect(r.members.map((m) => m.id)).toEqual(["t1", "t2", "t3"]);
    expect(["t1", "t2", "t3"]).toContain(r.leader);
    await context.close();
  }, 180_000);
});
