/**
 * The scratch directory of the Deno suite: test/deno/run.mjs creates it, passes it in
 * MESHRAFT_DENO_TMP and grants read and write on it alone; it removes it afterwards.
 */
export function scratchDir(): string {
  const dir = Deno.env.get("MESHRAFT_DENO_TMP");
  if (!dir) throw new Error("MESHRAFT_DENO_TMP is not set: run the Deno suite with `npm run test:deno` (test/deno/run.mjs)");
  return dir;
}

/** A fresh directory under the scratch directory. */
export function freshDir(name: string): Promise<string> {
  return Deno.makeTempDir({ dir: scratchDir(), prefix: `${name}-` });
}
