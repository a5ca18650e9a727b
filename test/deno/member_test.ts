/**
 * Whole members on Deno, in one process: `startMember` serves the hono app with Deno.serve and
 * the peer socket through hono/deno, on 127.0.0.1; two members keep files, one Deno KV. And the
 * peer socket's idle timeout: a link with no Raft traffic stays open on the mesh's pings alone.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createDenoMesh, denoIdleTimeoutSeconds, raftSocketFor, startMember, type RunningMember } from "../../adapters/deno/index.ts";
import { MeshraftClient } from "../../src/client/index.ts";
import { harness } from "./harness.ts";
import { freshDir } from "./tmp.ts";

function freePorts(n: number): number[] {
  const listeners = Array.from({ length: n }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

async function until<T>(what: string, probe: () => T | null | Promise<T | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

harness.describe("meshraft members on Deno", () => {
  harness.it("three members (files and Deno KV) elect a leader; a follower answers 307 to it; a write through any member commits everywhere", async () => {
    const ids = ["n1", "n2", "n3"];
    const ports = freePorts(3);
    const url = (i: number) => `http://127.0.0.1:${ports[i]}`;
    const dir = await freshDir("members");
    const kv = await Deno.openKv(":memory:");
    const members: RunningMember[] = [];
    try {
      for (const [i, id] of ids.entries()) {
        members.push(
          await startMember(
            {
              id,
              listen: { host: "127.0.0.1", port: ports[i] },
              url: url(i),
              dataDir: `${dir}/${id}`,
              kv: id === "n3" ? kv : undefined,
              peers: ids.flatMap((p, j) => (p === id ? [] : [{ id: p, url: url(j) }])),
              clusterId: "deno-members",
              secret: "members-secret",
              insecure: false,
              logLevel: "error",
            },
            () => {},
          ),
        );
      }
      const leader = await until("a leader all agree on", () => {
        const leaders = members.filter((m) => m.node.isLeader);
        return leaders.length === 1 && members.every((m) => m.node.status().leaderId === leaders[0].node.id) ? leaders[0] : null;
      });
      const follower = members.find((m) => m !== leader)!;
      const res = await fetch(`${follower.url}/kv/a`, { method: "PUT", body: "1", redirect: "manual" });
      assert.equal(res.status, 307);
      assert.equal(res.headers.get("location"), `${leader.url}/kv/a`);
      await res.body?.cancel();

      for (const m of members) await new MeshraftClient({ urls: [m.url] }).put(`via-${m.node.id}`, m.node.id);
      await until("every member to apply the writes", () =>
        members.every((m) => ids.every((id) => new TextDecoder().decode(m.kv.get(`via-${id}`) ?? new Uint8Array()) === id)) ? true : null
      );
      const status = await (await fetch(`${follower.url}/status`)).json();
      assert.equal(status.leader, leader.node.id);
    } finally {
      await Promise.all(members.map((m) => m.stop()));
      kv.close();
      await Deno.remove(dir, { recursive: true });
    }
  });

  harness.it("a peer link through hono/deno, with Deno's idle timeout set to 1 s, stays open without a reconnect on the mesh's pings", async () => {
    assert.equal(denoIdleTimeoutSeconds({}), 30, "Deno's default, twice the mesh's default idle timeout");
    assert.equal(denoIdleTimeoutSeconds({ idleTimeoutMs: 20_000 }), 40);
    const [pa, pb] = freePorts(2);
    const liveness = { pingIntervalMs: 200, idleTimeoutMs: 600 };
    const a = createDenoMesh({ id: "a", clusterId: "idle", peers: [{ id: "b", url: `http://127.0.0.1:${pb}` }], logger: () => {}, ...liveness });
    const b = createDenoMesh({ id: "b", clusterId: "idle", peers: [{ id: "a", url: `http://127.0.0.1:${pa}` }], logger: () => {}, ...liveness });
    // b accepts (a dials: its id sorts first); Deno would ping after 0.5 s of silence and close after 1 s.
    const socket = raftSocketFor(b, { idleTimeoutSeconds: 1 });
    const app = new Hono();
    app.get("/raft", socket.upgrade);
    const server = Deno.serve({ hostname: "127.0.0.1", port: pb, onListen: () => {} }, app.fetch);
    try {
      a.start(() => {});
      b.start(() => {});
      await a.waitUntilConnected({ timeoutMs: 5_000 });
      await new Promise((r) => setTimeout(r, 3_000));
      for (const [mesh, peer] of [[a, "b"], [b, "a"]] as const) {
        const s = mesh.stats().peers[peer];
        assert.equal(s.state, "open");
        assert.equal(s.opened, 1, `${mesh.id}'s link to ${peer} was never reopened: ${JSON.stringify(s)}`);
        assert.equal(s.idleTimeouts, 0);
      }
    } finally {
      await a.close();
      await b.close();
      await server.shutdown();
    }
  });
});
