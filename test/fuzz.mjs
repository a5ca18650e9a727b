// `npm run fuzz`: the fast-check properties of `npm test` (the tests named "fuzz: ..."), with
// FUZZ_RUNS runs each (default 2000) and a fresh seed unless FUZZ_SEED is set; the seed is
// printed so a failure can be replayed: FUZZ_SEED=<seed> FUZZ_RUNS=<n> npm run fuzz.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { root } from "./deno/run.mjs";

const runs = process.env.FUZZ_RUNS ?? "2000";
const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
console.log(`fuzz: FUZZ_RUNS=${runs} FUZZ_SEED=${seed}`);
const result = spawnSync(join(root, "node_modules/.bin/vitest"), ["run", "-t", "fuzz: ", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed },
});
process.exit(result.status ?? 1);
