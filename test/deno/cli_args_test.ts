/** The Deno CLI's `start` arguments: the Node CLI's flags (same parser), plus --kv and --kv-lease-ms. */
import assert from "node:assert/strict";
import { parseDenoStartArgs } from "../../adapters/deno/cli.ts";
import { UsageError } from "../../src/cli-args.ts";
import { freshDir } from "./tmp.ts";

const base = ["--id", "n1", "--listen", "127.0.0.1:7001"];

Deno.test("Deno CLI: the Node CLI's flags parse the same, with files under --data-dir by default", () => {
  const args = parseDenoStartArgs([...base, "--data-dir", "d", "--peer", "n2=http://127.0.0.1:7002", "--election-timeout-ms", "500"], {});
  assert.equal(args.dataDir, "d");
  assert.equal(args.kv, undefined);
  assert.deepEqual(args.peers, [{ id: "n2", url: "http://127.0.0.1:7002" }]);
  assert.equal(args.node?.electionTimeoutMs, 500);
  assert.throws(() => parseDenoStartArgs([...base, "--data-dir", "d", "--bogus", "1"], {}), UsageError);
});

Deno.test("Deno CLI: --kv PATH keeps the state in Deno KV and makes --data-dir optional; --kv-lease-ms sets the lease", () => {
  assert.deepEqual(
    (({ kv, kvLeaseMs, dataDir }) => ({ kv, kvLeaseMs, dataDir }))(parseDenoStartArgs([...base, "--kv", "db.kv", "--kv-lease-ms", "2500"], {})),
    { kv: "db.kv", kvLeaseMs: 2500, dataDir: "db.kv" },
  );
  assert.equal(parseDenoStartArgs([...base, "--kv=db.kv", "--data-dir", "d"], {}).dataDir, "d");
  assert.throws(() => parseDenoStartArgs([...base, "--data-dir", "d", "--kv-lease-ms", "2500"], {}), /--kv-lease-ms needs --kv/);
  assert.throws(() => parseDenoStartArgs([...base, "--kv", "db.kv", "--kv-lease-ms", "5"], {}), /at least 100/);
  assert.throws(() => parseDenoStartArgs([...base, "--kv"], {}), /--kv needs a value/);
});

Deno.test("Deno CLI: --secret-file reads the secret through the reader the CLI passes (Deno.readTextFileSync)", async () => {
  const dir = await freshDir("secret-file");
  try {
    Deno.writeTextFileSync(`${dir}/secret`, "from-a-file\n");
    const args = parseDenoStartArgs([...base, "--data-dir", "d", "--secret-file", `${dir}/secret`], {}, (p) => Deno.readTextFileSync(p));
    assert.equal(args.secret, "from-a-file");
    assert.deepEqual(args.warnings, []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
