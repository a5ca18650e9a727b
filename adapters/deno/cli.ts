/**
 * The `meshraft` command on Deno, with the flags of the Node one (src/cli-args.ts
 * parses them) and Deno KV storage as an option:
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
import { announceDemo, DemoMembers, parseStartArgs, type ReadTextFile, START_USAGE, UsageError } from "../../src/cli-args.ts";
import { startDenoNode, type DenoStartArgs } from "./server.ts";

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

/** Takes `--name value` / `--name=value` out of argv; undefined when absent. */
function takeFlag(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const [flag] = argv.splice(i, 1);
  if (flag.includes("=")) return flag.slice(flag.indexOf("=") + 1);
  const value = argv.splice(i, 1)[0];
  if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
  return value;
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

async function runStart(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(DENO_USAGE);
    return;
  }
  const args = parseDenoStartArgs(
    argv,
    { MESHRAFT_SECRET: env("MESHRAFT_SECRET"), MESHRAFT_TOKEN: env("MESHRAFT_TOKEN"), MESHRAFT_ADMIN_TOKEN: env("MESHRAFT_ADMIN_TOKEN") },
    (path) => Deno.readTextFileSync(path),
  );
  for (const warning of args.warnings ?? []) console.error(`${new Date().toISOString()} warn  ${args.id} ${warning}`);
  const running = await startDenoNode(args);
  let stopping = false;
  const stop = (why: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    console.error(`${new Date().toISOString()} info  ${args.id} ${why}: stopping`);
    running.stop().then(
      () => Deno.exit(code),
      (err) => {
        console.error(err);
        Deno.exit(1);
      },
    );
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT", 0));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM", 0));
  // A member that failed (its node stopped on a storage error, or it lost its node id to another
  // instance) exits non-zero, so a supervisor sees it and restarts it (a restart is refused for as
  // long as another instance holds the id).
  running.failed.then((error) => {
    console.error(`meshraft: node ${args.id} failed: ${error.message}`);
    stop("failed", 1);
  });
}

function flag(argv: string[], name: string, fallback: string): string {
  return takeFlag([...argv], name) ?? fallback;
}

async function runDemo(argv: string[]): Promise<void> {
  const basePort = Number(flag(argv, "base-port", "7001"));
  const n = Number(flag(argv, "nodes", "3"));
  const dataDir = flag(argv, "data-dir", ".meshraft-deno");
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + n > 65535) throw new UsageError("--base-port takes a port number");
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError("--nodes takes a number from 1 to 9");
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const url = (i: number): string => `http://127.0.0.1:${basePort + i}`;
  await Deno.mkdir(dataDir, { recursive: true });

  console.log(`meshraft demo on Deno: a ${n}-node cluster on this machine (data in ${dataDir})\n`);
  const self = import.meta.filename!;
  let shuttingDown = false;
  const members = new DemoMembers(ids);
  const children = ids.map((id, i) => {
    const args = ["run", "--allow-net=127.0.0.1", `--allow-read=${dataDir}`, `--allow-write=${dataDir}`, "--allow-sys=hostname", "--no-prompt", self];
    args.push("start", "--id", id, "--listen", `127.0.0.1:${basePort + i}`, "--data-dir", `${dataDir}/${id}`);
    ids.forEach((peer, j) => {
      if (j !== i) args.push("--peer", `${peer}=${url(j)}`);
    });
    const child = new Deno.Command(Deno.execPath(), { args, stdin: "null", stdout: "inherit", stderr: "piped" }).spawn();
    let partial = "";
    const stderrRead = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write(chunk) {
          const lines = (partial + chunk).split("\n");
          partial = lines.pop()!;
          for (const line of lines) if (members.line(id, line)) console.error(line);
        },
      }),
    );
    // After the stderr is read to its end, so the member's fatal message is known.
    void Promise.all([child.status, stderrRead.catch(() => {})]).then(([s]) => {
      if (partial && members.line(id, partial)) console.error(partial);
      if (!shuttingDown) console.error(members.exited(id, s.signal ?? `code ${s.code}`));
    });
    return child;
  });

  const shutdown = async (exitCode = 0): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log("\nstopping the cluster ...");
    await Promise.all(
      children.map(async (c) => {
        const force = setTimeout(() => c.kill("SIGKILL"), 5_000);
        try {
          c.kill("SIGTERM");
        } catch {
          // already gone
        }
        await c.status;
        clearTimeout(force);
      }),
    );
    console.log("stopped.");
    Deno.exit(exitCode);
  };
  Deno.addSignalListener("SIGINT", () => void shutdown());
  Deno.addSignalListener("SIGTERM", () => void shutdown());

  if (!(await announceDemo(members, url, () => shuttingDown))) await shutdown(1);
}

function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "start":
      return runStart(rest);
    case "demo":
      return runDemo(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return Promise.resolve();
    default:
      return Promise.reject(new UsageError(`unknown command "${command}"`));
  }
}

if (import.meta.main) {
  main(Deno.args).catch((err) => {
    if (err instanceof UsageError) {
      // A mistake in `start`'s options gets start's usage, not the overview of every command.
      console.error(`meshraft: ${err.message}\n\n${Deno.args[0] === "start" ? DENO_USAGE : USAGE}`);
      Deno.exit(2);
    }
    console.error(`meshraft: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  });
}
