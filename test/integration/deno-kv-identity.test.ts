/**
 * One node id, one Deno KV database, two processes: Deno Deploy may run two instances of one app
 * at once, and both would open the same node's state. The second must be refused while the first
 * holds the node's lease; one that takes over a lease that ran out must fence the old holder off.
 * Single-member clusters (no peers), so each process is leader of its own log.
 */
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { MeshraftClient } from "../../src/client/client.ts";
import { freePorts, ProcessCluster, sleep } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

/** Runs a second `start` of node n1 against n1's KV database on another port, to its exit. */
async function secondInstance(c: ProcessCluster, timeoutMs: number): Promise<{ code: number | null; out: string; port: number; kill: () => void; exited: Promise<number | null> }> {
  const [port] = await freePorts(1);
  const [cmd, args] = c.command("n1", c.startArgs("n1", port));
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const code = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
  return { code, get out() { return out; }, port, kill: () => child.kill("SIGKILL"), exited };
}

describe("two processes claiming one node id against one Deno KV database", () => {
  it("the second is refused while the first runs; the first keeps serving its data", async () => {
    cluster = await ProcessCluster.start({ members: { n1: { runtime: "deno", kvLeaseMs: 3_000 } } });
    const c = cluster;
    await c.waitForLeader();
    const client = new MeshraftClient({ urls: [c.url("n1")] });
    await client.put("owner", "first");

    const second = await secondInstance(c, 15_000);
    expect(second.code, second.out).toBe(1);
    expect(second.out).toMatch(/node id n1 is held by another instance \(instance [0-9a-f-]+ on \S+ pid \d+/);
    expect(second.out).toMatch(/Two instances must never run one node id/);

    expect(c.alive("n1")).toBe(true);
    await client.put("after", "refusal");
    expect(await client.getText("owner")).toBe("first");
    expect(await client.getText("after")).toBe("refusal");
  }, 60_000);

  it("after SIGKILL the id stays taken until the lease runs out; then a new process takes it over with all the data", async () => {
    // A lease long enough that the second instance, however slowly a loaded machine starts it,
    // asks while the killed holder's lease still runs.
    cluster = await ProcessCluster.start({ members: { n1: { runtime: "deno", kvLeaseMs: 8_000 } } });
    const c = cluster;
    await c.waitForLeader();
    await new MeshraftClient({ urls: [c.url("n1")] }).put("k", "v");
    await c.kill("n1");
    const killedAt = Date.now();

    const early = await secondInstance(c, 15_000);
    expect(early.code, early.out).toBe(1);
    expect(early.out).toMatch(/node id n1 is held by another instance/);

    await sleep(Math.max(0, killedAt + 8_250 - Date.now()));
    c.spawn("n1");
    await c.waitForLeader();
    expect(await new MeshraftClient({ urls: [c.url("n1")] }).getText("k")).toBe("v");
  }, 60_000);

  it("a process paused past its lease is replaced; when it resumes it is fenced off and exits, and nothing it held is lost", async () => {
    cluster = await ProcessCluster.start({ members: { n1: { runtime: "deno", kvLeaseMs: 1_000 } } });
    const c = cluster;
    await c.waitForLeader();
    await new MeshraftClient({ urls: [c.url("n1")] }).put("x", "from the first");
    c.signal("n1", "SIGSTOP");
    await sleep(1_500);

    const successor = await secondInstance(c, 4_000); // still running after 4 s: it started
    try {
      expect(successor.code, successor.out).toBeNull();
      // Running is not yet serving: a loaded machine may take longer to open the port.
      const url = `http://127.0.0.1:${successor.port}`;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !(await fetch(`${url}/status`).then((r) => r.ok, () => false))) await sleep(100);
      const client = new MeshraftClient({ urls: [url] });
      expect(await client.getText("x")).toBe("from the first");
      await client.put("x", "from the successor");

      const first = c.procs.get("n1")!;
      const firstExit = new Promise<number | null>((r) => first.once("exit", (code) => r(code)));
      c.signal("n1", "SIGCONT");
      const code = await Promise.race([firstExit, sleep(15_000).then(() => "still running")]);
      expect(code, c.tail()).toBe(1);
      expect(c.logs.get("n1")!.join("\n")).toMatch(/lost the lease on node id n1: it is now held by instance/);

      expect(await client.getText("x")).toBe("from the successor");
    } finally {
      successor.kill();
      await successor.exited;
    }
  }, 60_000);
});
