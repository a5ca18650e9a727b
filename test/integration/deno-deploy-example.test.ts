/**
 * examples/deno-deploy/main.ts, run locally under Deno as Deploy would run it (configuration from
 * the environment, state in Deno KV, peers by URL, the cluster secret required): as a learner that
 * joins a running cluster of three Node members, as one voter of a cluster with two Node members,
 * and as two instances of one app sharing one KV database, of which only one may hold the node id
 * at a time.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MeshraftClient } from "../../src/client/client.ts";
import type { AdminMembersBody } from "../../src/http/protocol.ts";
import { denoBin, freePorts, ProcessCluster, sleep } from "./process-cluster.ts";

const root = join(import.meta.dirname, "../..");
let cluster: ProcessCluster | null = null;
let scratch: string | null = null;
const apps = new Set<ChildProcess>();
afterEach(async () => {
  for (const app of apps) app.kill("SIGKILL");
  apps.clear();
  await cluster?.stop();
  cluster = null;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = null;
});

/** Starts the Deploy entrypoint under Deno with `env`, as a Deploy app's instance. */
function startApp(dataRoot: string, port: number, env: Record<string, string>): { child: ChildProcess; out: () => string } {
  const args = ["run", "--cached-only", "--no-prompt", "--allow-net=127.0.0.1,0.0.0.0", "--allow-env", `--allow-read=${dataRoot}`, `--allow-write=${dataRoot}`, "examples/deno-deploy/main.ts"];
  const child = spawn(denoBin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOSTNAME: "127.0.0.1", PORT: String(port), ...env } });
  apps.add(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

describe("the Deno Deploy member (examples/deno-deploy/main.ts)", () => {
  it("joins a running cluster of three Node members through MESHRAFT_JOIN as a learner: never votes, redirects writes, serves stale and linearizable reads itself", async () => {
    const secret = "deploy-learner-secret";
    cluster = await ProcessCluster.start({ nodes: 3, secret });
    const c = cluster;
    const leader = await c.waitForLeader(20_000);
    const dataRoot = (scratch = mkdtempSync(join(tmpdir(), "meshraft-deploy-")));
    const [port] = await freePorts(1);
    const appUrl = `http://127.0.0.1:${port}`;
    // MESHRAFT_LEARNER is left unset: a Deploy member that joins is a learner by default. The
    // seeds are followers where possible, so the join is redirected to the leader.
    const seeds = c.ids.filter((id) => id !== leader).map((id) => c.url(id));
    const app = startApp(dataRoot, port, {
      MESHRAFT_ID: "z1",
      MESHRAFT_URL: appUrl,
      MESHRAFT_JOIN: seeds.join(", "),
      MESHRAFT_SECRET: secret,
      MESHRAFT_KV_PATH: join(dataRoot, "z1.kv"),
    });
    const members = async (): Promise<AdminMembersBody> => (await (await fetch(`${c.url(leader)}/admin/members`)).json()) as AdminMembersBody;
    const roleOfZ1 = async (): Promise<string | undefined> => (await members()).members.find((m) => m.id === "z1")?.role;
    await waitFor("z1 in the leader's configuration", async () => ((await roleOfZ1()) ? true : null), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${app.out()}\n${c.tail()}`);
    });
    // Caught up long since (the log is short), yet not promoted: it stays a learner.
    for (let i = 0; i < 12; i++) {
      expect(await roleOfZ1(), app.out()).toBe("learner");
      await sleep(250);
    }
    expect((await members()).members.filter((m) => m.role === "voter").map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);

    // A write sent to the learner is redirected to the leader, nothing proposed.
    const put = await fetch(`${appUrl}/kv/edge`, { method: "PUT", body: "never written here", redirect: "manual" });
    expect(put.status, app.out()).toBe(307);
    expect(put.headers.get("location")).toBe(`${c.url(leader)}/kv/edge`);

    const viaCluster = new MeshraftClient({ urls: c.urls() });
    await viaCluster.put("edge", "first");
    const stale = await waitFor("the write to reach the learner", async () => {
      const res = await fetch(`${appUrl}/kv/edge?stale`, { redirect: "manual" });
      return res.status === 200 ? await res.text() : null;
    });
    expect(stale).toBe("first");
    // Linearizable: a write acknowledged just before is seen by the learner's very next read,
    // answered there after the leader confirmed the read index (not redirected).
    await viaCluster.put("edge", "second");
    const read = await fetch(`${appUrl}/kv/edge`, { redirect: "manual" });
    expect(read.status, app.out()).toBe(200);
    expect(await read.text()).toBe("second");

    // The README's way out: DELETE /admin/members/z1 through any member.
    const del = await fetch(`${seeds[0]}/admin/members/z1`, { method: "DELETE" });
    expect(del.status, await del.clone().text()).toBe(200);
    expect(((await del.json()) as AdminMembersBody).members.map((m) => m.id)).not.toContain("z1");
    expect(app.out()).not.toMatch(/no cluster secret configured/);
  }, 90_000);

  it("joins two Node members by URL with the cluster secret, takes writes and serves linearizable reads as a follower", async () => {
    const secret = "deploy-example-secret";
    // n1, n2: Node hosts; z3: the Deploy app (its id sorts last, so the hosts dial it).
    cluster = await ProcessCluster.start({
      members: { n1: { runtime: "node", extraArgs: ["--secret", secret] }, n2: { runtime: "node", extraArgs: ["--secret", secret] }, z3: { runtime: "deno" } },
      later: ["z3"],
    });
    const c = cluster;
    const leader = await c.waitForLeader(30_000, ["n1", "n2"]);
    const app = startApp(c.dataRoot, c.ports.get("z3")!, {
      MESHRAFT_ID: "z3",
      MESHRAFT_URL: c.url("z3"),
      MESHRAFT_PEERS: `n1=${c.url("n1")}, n2=${c.url("n2")}`,
      MESHRAFT_SECRET: secret,
      MESHRAFT_KV_PATH: join(c.dataRoot, "z3.kv"),
    });
    await c.waitForCatchUp("z3", leader, 30_000);

    const viaApp = new MeshraftClient({ urls: [c.url("z3")] });
    await viaApp.put("edge", "written through the Deploy member");
    expect(await new MeshraftClient({ urls: [c.url("n1")] }).getText("edge")).toBe("written through the Deploy member");
    // A linearizable read on the app, a follower: answered there (ReadIndex), not redirected.
    expect((await c.status("z3"))?.role).toBe("follower");
    const res = await fetch(`${c.url("z3")}/kv/edge`, { redirect: "manual" });
    expect(res.status, app.out()).toBe(200);
    expect(await res.text()).toBe("written through the Deploy member");
    expect(app.out()).not.toMatch(/no cluster secret configured/);
    // HOSTNAME and PORT (set by startApp) are where it listens, and it says so.
    expect(app.out()).toContain(`meshraft member z3 (Deno Deploy example) listening on http://127.0.0.1:${c.ports.get("z3")}`);
  }, 90_000);

  it("two instances of one app on one KV database: the second answers 503 NODE_ID_LEASED, and takes over once the first is gone and its lease ran out", async () => {
    const dataRoot = (scratch = mkdtempSync(join(tmpdir(), "meshraft-deploy-")));
    const [p1, p2] = await freePorts(2);
    const env = { MESHRAFT_ID: "z1", MESHRAFT_SECRET: "s", MESHRAFT_KV_PATH: join(dataRoot, "z1.kv"), MESHRAFT_KV_LEASE_MS: "1500" };
    const first = startApp(dataRoot, p1, { ...env, MESHRAFT_URL: `http://127.0.0.1:${p1}` });
    await waitFor("the first instance to lead its one-member cluster", async () => {
      const s = (await (await fetch(`http://127.0.0.1:${p1}/status`)).json()) as { role?: string };
      return s.role === "leader" ? true : null;
    });
    await new MeshraftClient({ urls: [`http://127.0.0.1:${p1}`] }).put("k", "from the first instance");

    const second = startApp(dataRoot, p2, { ...env, MESHRAFT_URL: `http://127.0.0.1:${p2}` });
    const refused = await waitFor("the second instance to answer", async () => {
      const res = await fetch(`http://127.0.0.1:${p2}/status`);
      return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as { error?: { code: string; message: string } } };
    });
    expect(refused.status, second.out()).toBe(503);
    expect(refused.retryAfter).toBe("2");
    expect(refused.body.error?.code).toBe("NODE_ID_LEASED");
    expect(refused.body.error?.message).toMatch(/node id z1 is held by another instance/);
    expect((await fetch(`http://127.0.0.1:${p1}/kv/k?stale`)).status).toBe(200);

    first.child.kill("SIGKILL");
    const value = await waitFor("the second instance to take over", async () => {
      const res = await fetch(`http://127.0.0.1:${p2}/kv/k`);
      return res.status === 200 ? await res.text() : null;
    });
    expect(value).toBe("from the first instance");
  }, 60_000);
});
