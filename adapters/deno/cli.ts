/**
 * The `meshraft` command on Deno (src/runtime/cli.ts runs it; this file supplies Deno's parts),
 * with the flags of the Node one (src/cli-args.ts parses them) and Deno KV storage as an option:
 *
 *   deno run -A adapters/deno/cli.ts start --id n1 --listen 127.0.0.1:7001 --data-dir ./data/n1 \
 *       --peer n2=http://127.0.0.1:7002 ... [--kv PATH [--kv-lease-ms N]]
 *   deno run -A adapters/deno/cli.ts demo [--base-port 7001] [--data-dir .meshraft-deno] [--nodes 3]
 *
 * `deno task start` runs the demo. The permissions a member needs: --allow-net (its listen
 * address and its peers), --allow-read and --allow-write on its data directory (or KV file),
 * --allow-sys=hostname, and --allow-env=MESHRAFT_SECRET,MESHRAFT_TOKEN to read those; the demo
 * also --allow-run to start the members.
 */
import { parseStartArgs, type ReadTextFile, START_USAGE, UsageError } from "../../src/cli-args.ts";
import { runCli, takeFlag } from "../../src/runtime/cli.ts";
import { type DenoStartArgs, startMember } from "./server.ts";

const DENO_USAGE = `${START_USAGE}

  on Deno also:
  --kv PATH             keep the node's state in the Deno KV database at PATH instead of
                        files (then --data-dir may be left out); one instance per node id
  --kv-lease-ms N       how long the node id lease in Deno KV lasts unrenewed (default 10000)`;

const USAGE = `meshraft (Deno): Raft consensus for Node, Deno and browsers

  meshraft start ...    run one member (start --help)
  meshraft demo         run a local 3-node cluster (data under ./.meshraft-deno), Ctrl-C to stop
      [--base-port 7001] [--data-dir .meshraft-deno] [--nodes 3]`;

/** An environment variable, or undefined when it is unset or not readable (no --allow-env). */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Parses `start`'s arguments: the Node CLI's flags plus --kv and --kv-lease-ms. */
export function parseDenoStartArgs(
  argv: string[],
  environment: Record<string, string | undefined>,
  readTextFile?: ReadTextFile,
): DenoStartArgs {
  const rest = [...argv];
  const kv = takeFlag(rest, "kv");
  const lease = takeFlag(rest, "kv-lease-ms");
  if (lease !== undefined && kv === undefined) throw new UsageError("--kv-lease-ms needs --kv");
  const kvLeaseMs = lease === undefined ? undefined : Number(lease);
  if (kvLeaseMs !== undefined && !(Number.isInteger(kvLeaseMs) && kvLeaseMs >= 100)) {
    throw new UsageError(`--kv-lease-ms takes a whole number of milliseconds, at least 100, got "${lease}"`);
  }
  // With --kv the data directory is optional: the KV path stands in for it.
  if (kv !== undefined && !rest.some((a) => a === "--data-dir" || a.startsWith("--data-dir="))) rest.push("--data-dir", kv);
  return { ...parseStartArgs(rest, environment, readTextFile), kv, kvLeaseMs };
}

if (import.meta.main) {
  const self = import.meta.filename!;
  void runCli<DenoStartArgs>(
    {
      usage: USAGE,
      startUsage: DENO_USAGE,
      demoDataDir: ".meshraft-deno",
      parseStartArgs: (argv) =>
        parseDenoStartArgs(
          argv,
          { MESHRAFT_SECRET: env("MESHRAFT_SECRET"), MESHRAFT_TOKEN: env("MESHRAFT_TOKEN"), MESHRAFT_ADMIN_TOKEN: env("MESHRAFT_ADMIN_TOKEN") },
          (path) => Deno.readTextFileSync(path),
        ),
      startMember: (args) => startMember(args),
      spawnMember: (startArgv, dataDir, onStderr) => {
        const args = ["run", "--allow-net=127.0.0.1", `--allow-read=${dataDir}`, `--allow-write=${dataDir}`, "--allow-sys=hostname", "--no-prompt", self, "start", ...startArgv];
        const child = new Deno.Command(Deno.execPath(), { args, stdin: "null", stdout: "inherit", stderr: "piped" }).spawn();
        const stderrRead = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(new WritableStream({ write: onStderr }));
        return {
          exited: Promise.all([child.status, stderrRead.catch(() => {})]).then(([s]) => s.signal ?? `code ${s.code}`),
          kill: (signal) => {
            try {
              child.kill(signal);
            } catch {
              // already gone
            }
          },
        };
      },
      resolveDir: (dir) => dir,
      joinPath: (dir, name) => `${dir}/${name}`,
      mkdir: (dir) => Deno.mkdir(dir, { recursive: true }),
      onSignal: (handler) => {
        Deno.addSignalListener("SIGINT", () => handler("SIGINT"));
        Deno.addSignalListener("SIGTERM", () => handler("SIGTERM"));
      },
      exit: (code) => Deno.exit(code),
    },
    Deno.args,
  );
}
