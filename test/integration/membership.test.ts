/**
 * Membership changes on real processes (127.0.0.1, file storage, the WebSocket mesh): a 3-node
 * cluster under continuous writes grows to 5 with `meshraft start --join`, the original leader
 * is removed, leadership is transferred, and afterwards every acknowledged write is on every
 * member and the history is linearizable. The initial nodes snapshot every 200 entries, so the
 * joining nodes catch up through InstallSnapshot, not only the log.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { AdminMembersBody, AdminTransferBody } from "../../src/http/protocol.ts";
import { startWorkload, verify } from "./mixed-workload.ts";
import { ProcessCluster, sleep, type StatusBody } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

interface FullStatus extends StatusBody {
  voters: string[];
  learners: string[];
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster?.tail()}`);
    await sleep(100);
  }
}

describe("membership changes on a real cluster", () => {
  it("grows 3 -> 5 by --join under writes, removes the original leader, transfers leadership; nothing acknowledged is lost", async () => {
    cluster = await ProcessCluster.start({ nodes: 5, initial: 3, extraArgs: () => ["--snapshot-every", "200", "--snapshot-margin", "20"] });
    const c = cluster;
    const firstLeader = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    let members = ["n1", "n2", "n3"];
    const w = startWorkload(() => members.map((id) => c.url(id)));
    const status = async (id: string): Promise<FullStatus | null> => (await c.status(id)) as FullStatus | null;

    // Enough writes that the joiners need a snapshot (the log is compacted every 200 entries).
    await until("500 entries committed", 60_000, async () => ((await status(firstLeader))?.commitIndex ?? 0) > 500);

    // Both join at once, through a follower: one of them meets CONF_CHANGE_IN_PROGRESS and retries.
    const joinStarted = Date.now();
    c.spawn("n4");
    c.spawn("n5");
    members = ["n1", "n2", "n3", "n4", "n5"];
    for (const id of ["n4", "n5"]) {
      await until(`${id} promoted to voter`, 60_000, async () => (await status(id))?.voters?.includes(id));
    }
    const joinedMs = Date.now() - joinStarted;
    const view = (await (await fetch(`${c.url("n2")}/admin/members`)).json()) as AdminMembersBody; // redirected to the leader
    expect(view.joint).toBe(false);
    expect(view.members.map((m) => `${m.id}:${m.role}`).sort()).toEqual(["n1:voter", "n2:voter", "n3:voter", "n4:voter", "n5:voter"]);
    expect(c.logs.get("n4")!.some((l) => l.includes("joined the cluster as voter"))).toBe(true);

    // Remove the original leader (sent to another member: redirected); it steps down and a new leader emerges.
    const leaderNow = await c.waitForLeader(20_000, members);
    const someoneElse = members.find((id) => id !== leaderNow)!;
    const del = await fetch(`${c.url(someoneElse)}/admin/members/${firstLeader}`, { method: "DELETE" });
    expect(del.status, `${await del.clone().text()}\n${c.tail(30)}`).toBe(200);
    const after = (await del.json()) as AdminMembersBody;
    expect(after.members.map((m) => m.id)).not.toContain(firstLeader);
    members = members.filter((id) => id !== firstLeader);
    const newLeader = await c.waitForLeader(20_000, members);
    expect(newLeader).not.toBe(firstLeader);
    await until(`${firstLeader} to know it was removed`, 20_000, async () => {
      const s = await status(firstLeader);
      return s !== null && !s.voters.includes(firstLeader) && s.role !== "leader";
    });

    // Hand leadership to a chosen member, then to "the most up-to-date one".
    const target = members.find((id) => id !== newLeader)!;
    const tr = await fetch(`${c.url(newLeader)}/admin/transfer-leader`, { method: "POST", body: JSON.stringify({ to: target }) });
    expect(tr.status, await tr.clone().text()).toBe(200);
    expect(((await tr.json()) as AdminTransferBody).leader).toBe(target);
    const tr2 = await fetch(`${c.url(newLeader)}/admin/transfer-leader`, { method: "POST" }); // redirected to `target`
    expect(tr2.status, await tr2.clone().text()).toBe(200);
    expect(((await tr2.json()) as AdminTransferBody).leader).not.toBe(target);

    await sleep(500); // writes keep flowing under the new leader
    await w.stop();
    const finalLeader = await c.waitForLeader(20_000, members);
    const commit = (await status(finalLeader))!.commitIndex;
    for (const id of members) await until(`${id} to apply ${commit}`, 20_000, async () => ((await status(id))?.appliedIndex ?? 0) >= commit);
    const acked = [...w.acked.values()].reduce((n, v) => n + v.length, 0);
    expect(acked).toBeGreaterThan(100);
    expect(await verify(w, members.map((id) => c.url(id)))).toBeNull();
    // The log was compacted long before they joined: both caught up from a snapshot.
    for (const id of ["n4", "n5"]) expect(c.logs.get(id)!.some((l) => l.includes("state restored from a snapshot"))).toBe(true);
    console.log(`membership test: joined and promoted 2 members in ${joinedMs} ms; ${acked} acknowledged writes`);
  }, 180_000);

  it("a member that joins without the cluster secret is removed again, and the joining process exits with a clear error", async () => {
    cluster = await ProcessCluster.start({ nodes: 4, initial: 3, secret: "s3cret", extraArgs: () => ["--link-timeout-ms", "3000"] });
    const c = cluster;
    const leader = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    // n4 as a user who forgot --secret types it.
    const args = c.startArgs("n4");
    args.splice(args.indexOf("--secret"), 2);
    const joiner = c.spawn("n4", args);
    const exitCode = await new Promise<number | null>((r) => {
      const force = setTimeout(() => r(-1), 45_000);
      joiner.once("exit", (code) => {
        clearTimeout(force);
        r(code);
      });
    });
    const joinerLog = c.logs.get("n4")!.join("\n");
    expect(exitCode, joinerLog).toBe(1);
    expect(joinerLog).toMatch(/joined the cluster as voter/);
    expect(joinerLog).toMatch(/meshraft: .*no authenticated link to any member within 3000 ms/);
    // The leader took it out of the configuration again, and said why.
    const view = await until("n4 removed from the configuration", 30_000, async () => {
      const res = await fetch(`${c.url(leader)}/admin/members`).catch(() => null);
      const body = res?.ok ? ((await res.json()) as AdminMembersBody) : null;
      return body && !body.members.some((m) => m.id === "n4") ? body : null;
    });
    expect(view.members.map((m) => m.id).sort()).toEqual(["n1", "n2", "n3"]);
    const leaderNow = await c.waitForLeader(20_000, ["n1", "n2", "n3"]);
    expect([...c.logs.get(leader)!, ...c.logs.get(leaderNow)!].some((l) => / warn .*removing learner n4: no authenticated link/.test(l))).toBe(true);
  }, 120_000);
});
