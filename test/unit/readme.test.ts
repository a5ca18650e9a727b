/**
 * The README's commands work: `npm start`'s program runs its tour to the end (with --once so it
 * stops by itself), and the README opens with the two commands.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");

describe("README", () => {
  it("npm start runs the in-process cluster tour: election, writes, leader killed, recovery", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.scripts.start).toBe("tsx examples/in-process-cluster.ts");
    const r = spawnSync(join(root, "node_modules/.bin/tsx"), ["examples/in-process-cluster.ts", "--once"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/leader: n\d/);
    expect(r.stdout).toMatch(/new leader: n\d/);
    expect((r.stdout.match(/committed at index/g) ?? []).length).toBe(6);
    expect(r.stdout).toMatch(/keys key1,key2,key3,key4,key5,key6\n.*keys key1,key2,key3,key4,key5,key6\n.*keys key1,key2,key3,key4,key5,key6/);
    expect(r.stdout).toContain("linearizable read of key6");
    expect(r.stdout).toContain("value6");
  });

  it("opens with the two commands", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const firstBlock = readme.slice(readme.indexOf("```sh"), readme.indexOf("```", readme.indexOf("```sh") + 5));
    expect(firstBlock).toContain("npm install && npm start");
    expect(firstBlock).toContain("npm test");
  });
});
