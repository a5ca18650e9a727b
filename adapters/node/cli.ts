#!/usr/bin/env node
/**
 * The `meshraft` command on Node (src/runtime/cli.ts runs it; this file supplies Node's parts).
 *
 *   meshraft start --id n1 --listen 127.0.0.1:7001 --data-dir ./data/n1 --peer n2=http://127.0.0.1:7002 ...
 *   meshraft demo [--base-port 7001] [--data-dir .meshraft]     (what `npm start` runs)
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseStartArgs, START_USAGE } from "../../src/cli-args.ts";
import { runCli } from "../../src/runtime/cli.ts";
import { serveDemoControls } from "./demo-supervisor.ts";
import { startMember } from "./server.ts";

const USAGE = `meshraft: Raft consensus for Node, Deno and browsers

  meshraft start ...    run one member (meshraft start --help)
  meshraft demo         run a local 3-node cluster (data under ./.meshraft), Ctrl-C to stop
      [--base-port 7001] [--data-dir .meshraft] [--nodes 3] [--admin-token T] [--ready-timeout-ms 15000]
      (the dashboard's demo controls: kill, pause, cut links, load; with --admin-token they want it)`;

const self = fileURLToPath(import.meta.url);

void runCli(
  {
    usage: USAGE,
    startUsage: START_USAGE,
    demoDataDir: ".meshraft",
    parseStartArgs: (argv) => parseStartArgs(argv, process.env, (path) => readFileSync(path, "utf8")),
    startMember: (args) => startMember(args),
    spawnMember: (startArgv, _dataDir, onStderr, env) => {
      // Run the children the way this process runs (tsx from source, or plain node from dist);
      // the IPC channel carries the demo's cut links (adapters/node/demo-member.ts).
      const child = spawn(process.execPath, [...process.execArgv, self, "start", ...startArgv], {
        stdio: ["ignore", "inherit", "pipe", "ipc"],
        env: { ...process.env, ...env },
      });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", onStderr);
      return {
        // "close", not "exit": the child's last stderr lines (its fatal message) have been read by then.
        exited: new Promise((done) => child.on("close", (code, signal) => done(signal ?? `code ${code}`))),
        kill: (signal) => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
        pause: () => child.kill("SIGSTOP"),
        resume: () => child.kill("SIGCONT"),
        send: (message) => {
          if (child.connected) child.send(message as object);
        },
      };
    },
    serveDemoControls,
    resolveDir: (dir) => resolve(dir),
    joinPath: (dir, name) => join(dir, name),
    mkdir: async (dir) => {
      await mkdir(dir, { recursive: true });
    },
    onSignal: (handler) => {
      process.on("SIGINT", () => handler("SIGINT"));
      process.on("SIGTERM", () => handler("SIGTERM"));
    },
    exit: (code) => process.exit(code),
  },
  process.argv.slice(2),
);
