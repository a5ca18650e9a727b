#!/usr/bin/env node
/**
 * The `meshraft` command.
 *
 *   meshraft start --id n1 --listen 127.0.0.1:7001 --data-dir ./data/n1 --peer n2=http://127.0.0.1:7002 ...
 *   meshraft demo [--base-port 7001] [--data-dir .meshraft]     (what `npm start` runs)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { announceDemo, parseStartArgs, START_USAGE, UsageError } from "./cli-args.ts";
import { startNode } from "./server.ts";

const USAGE = `meshraft: Raft consensus for Node, Deno and browsers

  meshraft start ...    run one member (meshraft start --help)
  meshraft demo         run a local 3-node cluster (data under ./.meshraft), Ctrl-C to stop
      [--base-port 7001] [--data-dir .meshraft] [--nodes 3]`;

async function runStart(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(START_USAGE);
    return;
  }
  const args = parseStartArgs(argv, process.env);
  const running = await startNode(args);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${new Date().toISOString()} info  ${args.id} ${signal}: stopping\n`);
    running.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
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
  ids.forEach((id, i) => {
    const args = ["start", "--id", id, "--listen", `127.0.0.1:${basePort + i}`, "--data-dir", join(dataDir, id)];
    ids.forEach((peer, j) => {
      if (j !== i) args.push("--peer", `${peer}=${url(j)}`);
    });
    // Run the children the way this process runs (tsx from source, or plain node from dist).
    const child = spawn(process.execPath, [...process.execArgv, self, ...args], { stdio: ["ignore", "inherit", "pipe"] });
    child.stderr!.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) {
        // Show roles, failures and warnings; keep the rest of the logs quiet.
        if (/ role |error|warn|started|stopped/.test(line)) process.stderr.write(`${line}\n`);
      }
    });
    child.on("exit", (code, signal) => {
      if (!shuttingDown) console.error(`${id} exited (${signal ?? `code ${code}`}); see the log lines above`);
    });
    children.push(child);
  });

  let shuttingDown = false;
  const shutdown = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log("\nstopping the cluster ...");
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
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());

  await announceDemo(ids, url, () => shuttingDown);
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
    console.error(`meshraft: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(`meshraft: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
