/**
 * One cluster of two runtimes: n1 and n2 are `node --import tsx adapters/node/cli.ts start`
 * processes with file storage, n3 is `deno run adapters/deno/cli.ts start` with Deno KV storage,
 * all on 127.0.0.1 and speaking the same mesh protocol. The Node members start first and elect a
 * Node leader. Under a concurrent client workload, leaders are SIGKILLed and restarted until
 * each kind has been killed and the Deno member has led; then every member must hold every
 * acknowledged write and the history must be linearizable.
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

describe("a mixed cluster: two Node members and one Deno member", () => {
  it("takes writes through every member; the Deno member leads; kills and restarts of both kinds lose no acknowledged write; the history is linearizable", async () => {
    cluster = await ProcessCluster.start({
      members: {
        // The Deno member's much shorter election timeout makes it the likely winner once a Node
        // leader dies: the surviving Node follower refuses votes only until its own (longer)
        // timeout has passed since the last heartbeat, and campaigns itself only later.
        n1: { runtime: "node", extraArgs: ["--election-timeout-ms", "1000"] },
        n2: { runtime: "node", extraArgs: ["--election-timeout-ms", "1000"] },
        n3: { runtime: "deno", kvLeaseMs: 1_500, extraArgs: ["--election-timeout-ms", "150"] },
      },
      later: ["n3"],
    });
    const c = cluster;
    // The two Node members form a quorum and elect one of them; the Deno member joins after.
    await c.waitForLeader(30_000, ["n1", "n2"]);
    c.spawn("n3");
    await c.waitForCatchUp("n3", await c.waitForLeader(30_000), 30_000);

    // Writes through every member: followers redirect, the client follows.
    for (const id of c.ids) await new MeshraftClient({ urls: [c.url(id)] }).put(`via-${id}`, `written through ${c.runtime(id)}`);
    for (const id of c.ids) {
      const reader = new MeshraftClient({ urls: [c.url(id)] });
      for (const via of c.ids) expect(await reader.getText(`via-${via}`)).toBe(`written through ${c.runtime(via)}`);
    }

    const w = startWorkload(() => c.urls());
    const killed = { node: 0, deno: 0 };
    const leaders: string[] = [];
    for (let round = 0; round < 8 && !(killed.node > 0 && killed.deno > 0 && leaders.includes("n3")); round++) {
      const leader = await c.waitForLeader(30_000);
      leaders.push(leader);
      await sleep(1_000); // let the workload write under this leader
      await c.kill(leader);
      killed[c.runtime(leader)]++;
      await c.waitForLeader(30_000, c.ids.filter((id) => id !== leader));
      await sleep(500);
      await c.restart(leader); // a Deno KV member waits out its lease first
      await c.waitForCatchUp(leader, await c.waitForLeader(30_000), 30_000);
    }
    await sleep(1_000);
    await w.stop();

    expect(leaders, `leaders in turn: ${leaders.join(", ")}`).toContain("n3");
    expect(killed.node, `leaders in turn: ${leaders.join(", ")}`).toBeGreaterThan(0);
    expect(killed.deno, `leaders in turn: ${leaders.join(", ")}`).toBeGreaterThan(0);
    expect(w.history.filter((h) => h.input.op === "put" && !h.unknown).length).toBeGreaterThan(100);
    const final = await c.waitForLeader();
    for (const id of c.ids) await c.waitForCatchUp(id, final);
    expect(await verify(w, c.urls()), c.tail()).toBeNull();
    const acked = w.history.filter((h) => h.input.op === "put" && !h.unknown).length;
    console.log(`mixed cluster: leaders killed in turn ${leaders.map((id) => `${id} (${c.runtime(id)})`).join(", ")}; ${acked} acknowledged puts`);
  }, 180_000);
});
