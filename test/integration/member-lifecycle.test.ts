/**
 * A member's process, as a supervisor sees it (real `meshraft start` processes on 127.0.0.1, real
 * file storage):
 * - a restart whose --peer flags contradict the configuration stored on first start exits 1 and
 *   says why; the same flags, or none, start it;
 * - a node that fails (a storage error it cannot go on after) ends its process with exit code 1
 *   and the reason on stderr, instead of living on with "stopped": true;
 * - running out of file descriptors while saving a snapshot only puts the snapshot off.
 *
 * How the failures are injected, given that the tests run as root (a read-only directory does
 * not stop root's writes): the fatal one by putting a directory where the next snapshot's temp
 * file goes (open() fails with EISDIR); the transient one by starting the process with a small
 * open-file limit (`ulimit -n`, which root may lower for itself) and holding idle connections
 * to it until it has no descriptor left, as 1,100 idle clients did to a limit of 1,024.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ProcessCluster, sleep } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await cluster?.stop();
  cluster = null;
});

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster?.tail(30)}`);
    await sleep(100);
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

/** One request through `agent` (its one kept-alive connection): the status and the body. */
function call(agent: Agent, method: "GET" | "PUT", url: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

const put = async (agent: Agent, url: string, key: string): Promise<number> => (await call(agent, "PUT", `${url}/kv/${key}`, "v")).status;

/** The sequence number the node's next snapshot file gets (one past the highest in the directory). */
function nextSnapshotSeq(dir: string): number {
  const seqs = readdirSync(dir).map((n) => /^snap-(\d{10})\.snap$/.exec(n)).filter((m) => m !== null).map((m) => Number(m![1]));
  return Math.max(0, ...seqs) + 1;
}

const snapshotFile = (seq: number): string => `snap-${String(seq).padStart(10, "0")}.snap`;

describe("a member process as a supervisor sees it", () => {
  it("a restart with --peer flags that contradict the stored configuration exits 1 and says why; the same flags or none start it", async () => {
    cluster = await ProcessCluster.start({ nodes: 1, extraArgs: () => ["--election-timeout-ms", "300"] });
    const c = cluster;
    await c.waitForLeader(20_000);
    const first = await fetch(`${c.url("n1")}/kv/a`, { method: "PUT", body: "1" });
    expect(first.status).toBe(200);
    c.signal("n1", "SIGTERM");
    expect(await exited(c.procs.get("n1")!, 10_000)).toBe(0);

    const withPeer = [...c.startArgs("n1"), "--peer", "n2=http://127.0.0.1:9"];
    const refused = c.spawn("n1", withPeer);
    expect(await exited(refused, 20_000)).toBe(1);
    const said = c.logs.get("n1")!.join("\n");
    expect(said).toContain("storage holds the configuration it was first started with, voters n1=");
    expect(said).toContain(`the members given now, n1=${c.url("n1")}, n2=http://127.0.0.1:9, contradict it`);

    c.spawn("n1"); // the same flags (none: a one-member cluster)
    expect(await c.waitForLeader(20_000)).toBe("n1");
    expect(await (await fetch(`${c.url("n1")}/kv/a`)).text()).toBe("1");
  });

  it.each(["node", "deno"] as const)("a %s member whose node fails on a storage error ends its process with exit code 1 and the reason on stderr", async (runtime) => {
    cluster = await ProcessCluster.start({ members: { n1: { runtime } }, extraArgs: () => ["--snapshot-every", "5", "--election-timeout-ms", "300"] });
    const c = cluster;
    await c.waitForLeader(20_000);
    // A write answered means every earlier save (the configuration record's among them) is done.
    expect((await fetch(`${c.url("n1")}/kv/first`, { method: "PUT", body: "v" })).status).toBe(200);
    const dir = c.dataDir("n1");
    // The next snapshot's temp file cannot be created: a directory is in its place (EISDIR, root or not).
    mkdirSync(join(dir, `${snapshotFile(nextSnapshotSeq(dir))}.tmp`, "blocker"), { recursive: true });
    const child = c.procs.get("n1")!;
    for (let i = 0; i < 10 && child.exitCode === null; i++) {
      await fetch(`${c.url("n1")}/kv/k${i}`, { method: "PUT", body: "v" }).catch(() => null);
    }
    expect(await exited(child, 20_000)).toBe(1);
    const lines = c.logs.get("n1")!;
    expect(lines.some((l) => l.includes("node failed and stopped") && l.includes("EISDIR"))).toBe(true);
    expect(lines.some((l) => /^meshraft: node n1 failed: could not write snapshot .*EISDIR/.test(l))).toBe(true);
  });

  it("out of file descriptors while saving a snapshot: the snapshot is put off and taken once descriptors are free; the process keeps serving", async () => {
    cluster = await ProcessCluster.start({ nodes: 1, later: ["n1"], extraArgs: () => ["--snapshot-every", "10", "--election-timeout-ms", "300"] });
    const c = cluster;
    const limit = 256;
    const [cmd, argv] = c.command("n1");
    // `exec` keeps the PID, so the cluster's kill() ends the member itself.
    const child = spawn("/bin/sh", ["-c", `ulimit -n ${limit} && exec "$0" "$@"`, cmd, ...argv], { cwd: join(import.meta.dirname, "../.."), stdio: ["ignore", "pipe", "pipe"] });
    const log = c.logs.get("n1")!;
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString().split("\n")) if (line) log.push(line);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    c.procs.set("n1", child);
    await c.waitForLeader(20_000);
    const url = c.url("n1");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await put(agent, url, "warm")).toBe(200); // opens the one connection the writes reuse
      const dir = c.dataDir("n1");
      const seq = nextSnapshotSeq(dir);

      // Idle connections until the process has no descriptor left (more than the limit: the
      // server accepts what it can; libuv closes the rest).
      const port = Number(new URL(url).port);
      for (let i = 0; i < limit + 20; i++) {
        const s = connect(port, "127.0.0.1");
        s.on("error", () => {});
        sockets.push(s);
      }
      await until("the process out of descriptors", 10_000, async () => {
        const fds = readdirSync(`/proc/${child.pid}/fd`).length;
        return fds >= limit - 1;
      });

      for (let i = 0; i < 12; i++) expect(await put(agent, url, `k${i}`)).toBe(200);
      await until("a snapshot put off for EMFILE", 10_000, () => log.some((l) => l.includes("snapshot failed; retrying later") && l.includes("EMFILE")));
      expect(nextSnapshotSeq(dir)).toBe(seq); // no snapshot file beyond the record's
      const status = await call(agent, "GET", `${url}/status`);
      expect(status.status).toBe(200);
      expect((JSON.parse(status.body) as { stopped: boolean }).stopped).toBe(false);

      for (const s of sockets.splice(0)) s.destroy();
      // (A failed attempt used up its sequence number: the file that comes is a later one.)
      await until("the snapshot taken once descriptors are free", 30_000, () => nextSnapshotSeq(dir) > seq);
      expect(child.exitCode).toBeNull();
      expect(await put(agent, url, "after")).toBe(200);
      expect(log.some((l) => l.includes("node failed"))).toBe(false);
    } finally {
      agent.destroy();
    }
  });
});
