/**
 * The `meshraft` command, the same on every runtime: `start` runs one member until a signal (or
 * its failure) stops it, `demo` supervises a local cluster of `start` children. A runtime adapter
 * supplies a CliRuntime — its argument parser, `startMember`, how to spawn a child member, its
 * signals and exit — and calls `runCli` (adapters/node/cli.ts, adapters/deno/cli.ts).
 */
import { announceDemo, DemoMembers, UsageError } from "../cli-args.ts";
import { startDemoSupervisor, type DemoSupervisor, type ServeDemoControls } from "../http/demo-controls.ts";
import type { MemberArgs, RunningMember } from "./member.ts";

/** A child member of the demo. */
export interface ChildMember {
  /** Resolves once the child exited and its stderr was read to the end: "code N" or the signal's name. */
  exited: Promise<string>;
  /** Sends a signal; does nothing if the child is gone. */
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** Freezes the process (SIGSTOP) and lets it go on (SIGCONT), for the demo's controls. */
  pause?(): void;
  resume?(): void;
  /** A message to the member over an IPC channel (the demo's cut link), where the runtime has one. */
  send?(message: unknown): void;
}

export interface CliRuntime<A extends MemberArgs = MemberArgs> {
  /** The overview `meshraft help` prints. */
  usage: string;
  /** What `meshraft start --help` prints, and a usage error in `start`'s options. */
  startUsage: string;
  /** The demo's data directory when --data-dir is not given. */
  demoDataDir: string;
  /** Parses `start`'s arguments (the runtime reads the environment and files its own way). */
  parseStartArgs(argv: string[]): A;
  startMember(args: A): Promise<RunningMember>;
  /**
   * Runs this program as `start <startArgv>` in a child process that may read and write
   * `dataDir`; every chunk of its stderr goes to `onStderr`.
   */
  spawnMember(startArgv: string[], dataDir: string, onStderr: (chunk: string) => void, env?: Record<string, string>): ChildMember;
  /** Serves the demo's controls (kill, pause, cut, load: src/http/demo-controls.ts); without it the demo has none. */
  serveDemoControls?: ServeDemoControls;
  /** The demo's data directory as its children should get it (Node: absolute). */
  resolveDir(dir: string): string;
  joinPath(dir: string, name: string): string;
  mkdir(dir: string): Promise<void>;
  /** Calls `handler` on SIGINT and on SIGTERM. */
  onSignal(handler: (signal: "SIGINT" | "SIGTERM") => void): void;
  exit(code: number): never;
}

/** Takes `--name value` / `--name=value` out of argv; undefined when absent. */
export function takeFlag(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const [flag] = argv.splice(i, 1);
  if (flag.includes("=")) return flag.slice(flag.indexOf("=") + 1);
  const value = argv.splice(i, 1)[0];
  if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
  return value;
}

const timestamp = (): string => new Date().toISOString();

async function runStart<A extends MemberArgs>(rt: CliRuntime<A>, argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(rt.startUsage);
    return;
  }
  const args = rt.parseStartArgs(argv);
  for (const warning of args.warnings ?? []) console.error(`${timestamp()} warn  ${args.id} ${warning}`);
  const running = await rt.startMember(args);
  let stopping = false;
  const stop = (why: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    console.error(`${timestamp()} info  ${args.id} ${why}: stopping`);
    running.stop().then(
      () => rt.exit(code),
      (err) => {
        console.error(err);
        rt.exit(1);
      },
    );
  };
  rt.onSignal((signal) => stop(signal, 0));
  // A member that failed (its node stopped on a storage error, or it lost its node id to another
  // instance) never recovers in place: exit non-zero with the reason, so a supervisor sees it and
  // restarts it from its storage (a restart is refused for as long as another instance holds the id).
  void running.failed.then((error) => {
    console.error(`meshraft: node ${args.id} failed: ${error.message}`);
    stop("failed", 1);
  });
}

async function runDemo<A extends MemberArgs>(rt: CliRuntime<A>, argv: string[]): Promise<void> {
  const rest = [...argv];
  const basePort = Number(takeFlag(rest, "base-port") ?? "7001");
  const n = Number(takeFlag(rest, "nodes") ?? "3");
  const dataDir = rt.resolveDir(takeFlag(rest, "data-dir") ?? rt.demoDataDir);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + n > 65535) throw new UsageError("--base-port takes a port number");
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError("--nodes takes a number from 1 to 9");
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const url = (i: number): string => `http://127.0.0.1:${basePort + i}`;
  await rt.mkdir(dataDir);

  console.log(`dashboard: ${url(0)}/dashboard   (meshraft demo: a ${n}-node cluster on this machine, data in ${dataDir})\n`);
  let shuttingDown = false;
  const members = new DemoMembers(ids);
  const adminToken = takeFlag(rest, "admin-token");
  const readyMs = Number(takeFlag(rest, "ready-timeout-ms") ?? "15000");
  const children: ChildMember[] = [];
  // The dashboard's demo controls, before the members, which announce where they are.
  let demo: DemoSupervisor | null = null;
  const spawn = (id: string, i: number): void => {
    const args = ["--id", id, "--listen", `127.0.0.1:${basePort + i}`, "--data-dir", rt.joinPath(dataDir, id)];
    ids.forEach((peer, j) => {
      if (j !== i) args.push("--peer", `${peer}=${url(j)}`);
    });
    if (adminToken !== undefined) args.push("--admin-token", adminToken);
    let partial = "";
    const child = rt.spawnMember(args, dataDir, (chunk) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (members.line(id, line)) console.error(line);
    }, demo?.envFor(id));
    // After its stderr is read to the end, so the member's fatal message is known.
    void child.exited.then((how) => {
      if (partial && members.line(id, partial)) console.error(partial);
      partial = "";
      if (!shuttingDown) console.error(members.exited(id, how));
    });
    children[i] = child;
    demo?.processes.started(child);
  };
  if (rt.serveDemoControls) {
    demo = await startDemoSupervisor({
      ids,
      urlOf: (id) => url(ids.indexOf(id)),
      child: (id) => children[ids.indexOf(id)],
      respawn: (id) => spawn(id, ids.indexOf(id)),
      adminToken,
      serve: rt.serveDemoControls,
    });
  }
  ids.forEach(spawn);

  const shutdown = async (exitCode = 0): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log("\nstopping the cluster ...");
    await demo?.close();
    await Promise.all(
      children.map(async (c) => {
        const force = setTimeout(() => c.kill("SIGKILL"), 5_000);
        c.kill("SIGTERM");
        await c.exited;
        clearTimeout(force);
      }),
    );
    console.log("stopped.");
    rt.exit(exitCode);
  };
  rt.onSignal(() => void shutdown());

  if (!(await announceDemo(members, url, () => shuttingDown, readyMs))) await shutdown(1);
}

/** Runs the command in `argv` (the arguments after the program's name) and exits on failure. */
export function runCli<A extends MemberArgs>(rt: CliRuntime<A>, argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const run = (): Promise<void> => {
    switch (command) {
      case "start":
        return runStart(rt, rest);
      case "demo":
        return runDemo(rt, rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(rt.usage);
        return Promise.resolve();
      default:
        return Promise.reject(new UsageError(`unknown command "${command}"`));
    }
  };
  return run().catch((err) => {
    if (err instanceof UsageError) {
      // A mistake in `start`'s options gets start's usage, not the overview of every command.
      console.error(`meshraft: ${err.message}\n\n${command === "start" ? rt.startUsage : rt.usage}`);
      rt.exit(2);
    }
    console.error(`meshraft: ${err instanceof Error ? err.message : String(err)}`);
    rt.exit(1);
  });
}
