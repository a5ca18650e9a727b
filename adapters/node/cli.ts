#!/usr/bin/env node
/**
 * The `meshraft` command.
 *
 *   meshraft start --id n1 --listen 127.0.0.1:7001 --data-dir ./data/n1 --peer n2=http://127.0.0.1:7002 ...
 *   meshraft demo [--base-port 7001] [--data-dir .meshraft]     (what `npm start` runs)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { announceDemo, DemoMembers, parseStartArgs, START_USAGE, UsageError } from "./cli-args.ts";
import { attachDemoMember } from "./demo-member.ts";
import { startDemoSupervisor } from "./demo-supervisor.ts";
import { startNode } from "./server.ts";

const USAGE = `meshraft: Raft consensus for Node, Deno and browsers

  meshraft start ...    run one member (meshraft start --help)
  meshraft demo         run a local 3-node cluster (data under ./.meshraft), Ctrl-C to stop
      [--base-port 7001] [--data-dir .meshraft] [--nodes 3] [--admin-token T] [--ready-timeout-ms 15000]
      (with --admin-token, the members' admin routes and the demo's controls want it)`;

async function runStart(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(START_USAGE);
    return;
  }
  const args = parseStartArgs(argv, process.env, (path) => readFileSync(path, "utf8"));
  for (const warning of args.warnings ?? []) process.stderr.write(`${new Date().toISOString()} warn  ${args.id} ${warning}\n`);
  const running = await startNode(args);
  attachDemoMember(running.mesh);
  let stopping = false;
  const stop = (why: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${new Date().toISOString()} info  ${args.id} ${why}: stopping\n`);
    running.stop().then(
      () => process.exit(code),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // A member whose node failed (a storage error it cannot go on after) never recovers in place:
  // exit non-zero with the reason, so a supervisor sees it and restarts it from its storage.
  void running.failed.then((error) => {
    process.stderr.write(`meshraft: node ${args.id} failed: ${error.message}\n`);
    stop("failed", 1);
  });
}

function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new UsageError(`--${name} needs a value`);
  return v;
}

async function runDemo(argv: string[]): Promise<void> {
  const basePort = Number(flag(argv, "base-port", "7001"));
  const n = Number(flag(argv, "nodes", "3"));
  const dataDir = resolve(flag(argv, "data-dir", ".meshraft"));
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + n > 65535) throw new UsageError("--base-port takes a port number");
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new UsageError("--nodes takes a number from 1 to 9");
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const url = (i: number): string => `http://127.0.0.1:${basePort + i}`;
  const self = fileURLToPath(import.meta.url);
  mkdirSync(dataDir, { recursive: true });

  console.log(`dashboard: ${url(0)}/dashboard   (meshraft demo: a ${n}-node cluster on this machine, data in ${dataDir})\n`);
  const children: ChildProcess[] = [];
  const members = new DemoMembers(ids);
  // The controls the dashboard offers under the demo (kill, pause, cut, load): before the members,
  // which announce their URL.
  const adminToken = argv.includes("--admin-token") ? flag(argv, "admin-token", "") : undefined;
  const demo = await startDemoSupervisor({
    ids,
    urlOf: (id) => url(ids.indexOf(id)),
    child: (id) => children[ids.indexOf(id)],
    respawn: (id) => spawnMember(id, ids.indexOf(id)),
    adminToken: adminToken ?? process.env.MESHRAFT_ADMIN_TOKEN,
  });
  const spawnMember = (id: string, i: number): void => {
    const args = ["start", "--id", id, "--listen", `127.0.0.1:${basePort + i}`, "--data-dir", join(dataDir, id)];
    if (adminToken !== undefined) args.push("--admin-token", adminToken);
    ids.forEach((peer, j) => {
      if (j !== i) args.push("--peer", `${peer}=${url(j)}`);
    });
    // Run the children the way this process runs (tsx from source, or plain node from dist).
    const child = spawn(process.execPath, [...process.execArgv, self, ...args], {
      stdio: ["ignore", "inherit", "pipe", "ipc"],
      env: { ...process.env, MESHRAFT_DEMO_CONTROL: demo.url },
    });
    child.stderr!.setEncoding("utf8");
    let partial = "";
    child.stderr!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (members.line(id, line)) process.stderr.write(`${line}\n`);
    });
    // "close", not "exit": the child's last stderr lines (its fatal message) have been read by then.
    child.on("close", (code, signal) => {
      if (partial && members.line(id, partial)) process.stderr.write(`${partial}\n`);
      partial = "";
      if (!shuttingDown) console.error(members.exited(id, signal ?? `code ${code}`));
    });
    children[i] = child;
  };
  ids.forEach(spawnMember);

  let shuttingDown = false;
  const shutdown = async (exitCode = 0): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log("\nstopping the cluster ...");
    await demo.close();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.exitCode !== null || c.signalCode !== null) return done();
            const force = setTimeout(() => c.kill("SIGKILL"), 5_000);
            c.once("exit", () => {
              clearTimeout(force);
              done();
            });
            c.kill("SIGTERM");
          }),
      ),
    );
    console.log("stopped.");
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());

  const waitMs = Number(flag(argv, "ready-timeout-ms", "15000"));
  if (!(await announceDemo(members, url, () => shuttingDown, waitMs))) await shutdown(1);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
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
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main().catch((err) => {
  if (err instanceof UsageError) {
    // A mistake in `start`'s options gets start's usage, not the overview of every command.
    console.error(`meshraft: ${err.message}\n\n${process.argv[2] === "start" ? START_USAGE : USAGE}`);
    process.exit(2);
  }
  console.error(`meshraft: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
