/**
 * An all-Deno cluster: three `deno run adapters/deno/cli.ts start` processes on 127.0.0.1 with
 * file storage, narrow permissions (network on 127.0.0.1, read and write on their data
 * directory, the host name), driven through real sockets. Kills are SIGKILL, and only the
 * processes these tests started are signalled.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MeshraftClient } from "../../src/client/client.ts";
import { startWorkload, verify } from "./mixed-workload.ts";
import { ProcessCluster, sleep } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

const allDeno = { n1: { runtime: "deno" }, n2: { runtime: "deno" }, n3: { runtime: "deno" } } as const;

describe("a 3-process Deno cluster on 127.0.0.1", () => {
  it("elects a leader; a follower redirects writes with 307 to the leader; writes and linearizable reads work through every member", async () => {
    cluster = await ProcessCluster.start({ members: allDeno });
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader)!;

    const res = await fetch(`${c.url(follower)}/kv/greeting`, { method: "PUT", body: "hello", redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe(`${c.url(leader)}/kv/greeting`);
    expect(res.headers.get("x-meshraft-leader")).toBe(leader);

    for (const id of c.ids) await new MeshraftClient({ urls: [c.url(id)] }).put(`via-${id}`, id);
    for (const id of c.ids) {
      const reader = new MeshraftClient({ urls: [c.url(id)] });
      for (const via of c.ids) expect(await reader.getText(`via-${via}`)).toBe(via);
    }
    expect(await c.status(leader)).toMatchObject({ role: "leader", leader });
  }, 60_000);

  it("survives SIGKILL of the leader under concurrent writes; the restarted member catches up; no acknowledged write is lost; the history is linearizable", async () => {
    cluster = await ProcessCluster.start({ members: allDeno });
    const c = cluster;
    const leader = await c.waitForLeader();
    const w = startWorkload(() => c.urls());
    await sleep(1_500);
    await c.kill(leader);
    const next = await c.waitForLeader(20_000, c.ids.filter((id) => id !== leader));
    expect(next).not.toBe(leader);
    await sleep(1_000);
    c.spawn(leader); // the same data directory: the dead process's lock is taken over
    await sleep(2_000);
    await w.stop();

    expect(w.history.filter((h) => h.input.op === "put" && !h.unknown).length).toBeGreaterThan(50);
    const final = await c.waitForLeader();
    for (const id of c.ids) await c.waitForCatchUp(id, final);
    expect(c.logs.get(leader)!.join("\n")).toMatch(/taking over the lock of Deno process \d+, which is not running/);
    expect(await verify(w, c.urls()), c.tail()).toBeNull();
  }, 120_000);
});
