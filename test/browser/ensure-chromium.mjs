// Makes sure Debian's Chromium is installed for the browser tests (playwright-core drives it; it
// never downloads a browser of its own). `npm test` calls this before vitest.
//
// Missing /usr/bin/chromium: as root, `apt-get update && apt-get install -y chromium` (quiet,
// each step bounded in time); as anyone else, an error that says the exact command to run.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export const chromiumPath = "/usr/bin/chromium";
export const INSTALL_COMMAND = "sudo apt-get update && sudo apt-get install -y chromium";

/** Each apt step may take this long before it is stopped and the setup fails. */
const APT_STEP_TIMEOUT_MS = 15 * 60_000;

export class ChromiumMissingError extends Error {
  code = "CHROMIUM_MISSING";
}

/** Runs `cmd`, keeping its output unless it fails; rejects after `timeoutMs` (killing it by PID). */
function runQuiet(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    let output = "";
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} took longer than ${timeoutMs / 1000} s; stopped it\n${output}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit code ${code}`})\n${output}`));
    });
  });
}

/**
 * Resolves with the Chromium path once it exists. Installs it through apt when running as root;
 * otherwise throws ChromiumMissingError naming the command that installs it.
 */
export async function ensureChromium({ log = (line) => console.log(line) } = {}) {
  if (existsSync(chromiumPath)) return chromiumPath;
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot) {
    throw new ChromiumMissingError(
      `the browser tests need Debian's Chromium at ${chromiumPath}; install it with:\n  ${INSTALL_COMMAND}`,
    );
  }
  log(`${chromiumPath} is missing: installing Debian's chromium (apt-get update && apt-get install -y chromium) ...`);
  await runQuiet("apt-get", ["-qq", "update"], APT_STEP_TIMEOUT_MS);
  await runQuiet("apt-get", ["-qq", "-y", "install", "chromium"], APT_STEP_TIMEOUT_MS);
  if (!existsSync(chromiumPath)) throw new ChromiumMissingError(`apt-get installed chromium, but ${chromiumPath} is still missing`);
  log(`installed ${chromiumPath}`);
  return chromiumPath;
}

// `node test/browser/ensure-chromium.mjs`: the setup step alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  ensureChromium().then(
    (path) => console.log(`chromium: ${path}`),
    (e) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
