/**
 * A real cluster: three `meshraft start` processes on 127.0.0.1 with file storage, the WebSocket
 * mesh and the HTTP API, driven through real sockets. Kills are SIGKILL, pauses SIGSTOP, and only
 * the processes these tests started are signalled.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { MeshraftClient } from "../../src/client/client.ts";
import { startWorkload, verify } from "./mixed-workload.ts";
import { ProcessCluster, sleep } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

const dec = new TextDecoder();

describe("a 3-process cluster on 127.0.0.1", () => {
  it("elects a leader; a follower redirects writes with 307 to the leader; reads are linearizable", async () => {
    cluster = await ProcessCluster.start();
    const leader = await cluster.waitForLeader();
    // A follower that has heard from the leader: one that has not yet answers 503 NO_LEADER.
    const follower = await cluster.followerOf(leader);

    const res = await fetch(`${cluster.url(follower)}/kv/greeting?x=1`, { method: "PUT", body: "hello", redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe(`${cluster.url(leader)}/kv/greeting?x=1`);
    expect(res.headers.get("x-meshraft-leader")).toBe(leader);

    const client = new MeshraftClient({ urls: [cluster.url(follower)] });
    await client.put("greeting", "hello");
    for (const id of cluster.ids) {
      const reader = new MeshraftClient({ urls: [cluster.url(id)] });
      expect(await reader.getText("greeting")).toBe("hello");
    }
    const s = await cluster.status(leader);
    expect(s).toMatchObject({ role: "leader", leader });
  }, 60_000);

  it("survives SIGKILL of the leader under concurrent writes: no acknowledged write is lost, the history is linearizable", async () => {
    cluster = await ProcessCluster.start();
    const c = cluster;
    const leader = await c.waitForLeader();
    const w = startWorkload(() => c.urls());
    await sleep(1_500);
    await c.kill(leader);
    const newLeader = await c.waitForLeader(20_000, c.ids.filter((id) => id !== leader));
    expect(newLeader).not.toBe(leader);
    await sleep(1_500);
    c.spawn(leader); // restart on the same data directory
    await sleep(2_000);
    await w.stop();

    const writes = w.history.filter((h) => h.input.op === "put" && !h.unknown).length;
    expect(writes).toBeGreaterThan(50);
    // The restarted node catches up to the leader.
    const final = await c.waitForLeader();
    const deadline = Date.now() + 15_000;
    let caughtUp = false;
    while (!caughtUp && Date.now() < deadline) {
      const [ls, rs] = await Promise.all([c.status(final), c.status(leader)]);
      caughtUp = ls !== null && rs !== null && rs.appliedIndex >= ls.commitIndex && ls.commitIndex > 0;
      if (!caughtUp) await sleep(200);
    }
    expect(caughtUp, c.tail()).toBe(true);
    // Every acknowledged write is in the restarted node's state (its local reads join the history
    // after every acknowledged put), and the whole history is linearizable.
    expect(await verify(w, [c.url(leader)])).toBeNull();
  }, 120_000);

  it("a paused leader (SIGSTOP) is replaced; after SIGCONT it cannot serve a stale read, and no term has two leaders", async () => {
    cluster = await ProcessCluster.start();
    const c = cluster;
    const old = await c.waitForLeader();
    const client = new MeshraftClient({ urls: c.urls(), timeoutMs: 2_000 });
    await client.put("x", "before");
    c.signal(old, "SIGSTOP");
    try {
      const others = c.ids.filter((id) => id !== old);
      const next = await c.waitForLeader(20_000, others);
      expect(next).not.toBe(old);
      await new MeshraftClient({ urls: others.map((id) => c.url(id)) }).put("x", "after");
    } finally {
      c.signal(old, "SIGCONT");
    }
    // Straight after resuming, the old leader still believes it leads. A linearizable read there
    // must not return "before": it is redirected, or confirmed only after catching up.
    const res = await fetch(`${c.url(old)}/kv/x`, { redirect: "manual", signal: AbortSignal.timeout(10_000) });
    if (res.status === 200) expect(dec.decode(new Uint8Array(await res.arrayBuffer()))).toBe("after");
    else expect([307, 503, 504]).toContain(res.status);
    // Sampled over a while: any two nodes that claim leadership claim different terms.
    for (let i = 0; i < 20; i++) {
      const statuses = (await Promise.all(c.ids.map((id) => c.status(id)))).filter((s) => s?.role === "leader");
      const terms = statuses.map((s) => s!.term);
      expect(new Set(terms).size).toBe(terms.length);
      await sleep(50);
    }
  }, 90_000);
});

describe("bad input against a running cluster", () => {
  it("garbage and oversized frames on the peer socket are refused and the cluster keeps working", async () => {
    cluster = await ProcessCluster.start();
    const c = cluster;
    const leader = await c.waitForLeader();
    const target = c.ids.find((id) => id !== leader)!;
    const closed = (ws: WebSocket): Promise<number> => new Promise((r) => ws.once("close", (code) => r(code)));

    const garbage = new WebSocket(`${c.url(target).replace("http", "ws")}/raft`);
    await new Promise((r) => garbage.once("open", r));
    const garbageClosed = closed(garbage);
    garbage.send(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
    expect(await garbageClosed).toBeGreaterThanOrEqual(1000);

    const big = new WebSocket(`${c.url(target).replace("http", "ws")}/raft`);
    await new Promise((r) => big.once("open", r));
    const bigClosed = closed(big);
    big.send(new Uint8Array(65 * 1024 * 1024)); // over the 64 MiB frame limit
    expect(await bigClosed).toBe(1009); // "message too big", refused before it is buffered

    await new MeshraftClient({ urls: c.urls() }).put("still", "working");
    expect(c.alive(target)).toBe(true);
  }, 60_000);

  it("a peer with the wrong secret is refused with a logged reason", async () => {
    cluster = await ProcessCluster.start({ secret: "right-secret" });
    const c = cluster;
    await c.waitForLeader();
    // An attacker claiming to be n1 speaks the handshake by hand: a well-formed HELLO, then a
    // PROOF it cannot compute without the secret. n2 must refuse it with a logged reason.
    const ws = new WebSocket(`${c.url("n2").replace("http", "ws")}/raft`);
    await new Promise((r) => ws.once("open", r));
    const control = (tag: number, body: unknown): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(body));
      const frame = new Uint8Array(1 + json.length);
      frame[0] = tag;
      frame.set(json, 1);
      return frame;
    };
    const closedWith = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.once("message", () => ws.send(control(0x12, { proof: "00".repeat(32) }))); // WELCOME -> bogus PROOF
    ws.send(control(0x10, { protocol: 1, cluster: "meshraft", from: "n1", to: "n2", nonce: "ab".repeat(32), auth: true }));
    expect(await closedWith).toBe(4004); // AUTH_FAILED
    const deadline = Date.now() + 5_000;
    let line: string | undefined;
    while (!line && Date.now() < deadline) {
      line = c.logs.get("n2")!.find((l) => /refused a link from n1/.test(l));
      if (!line) await sleep(50);
    }
    expect(line, c.logs.get("n2")!.join("\n")).toMatch(/secret/);
    // The real n1 stays connected: the cluster keeps working.
    await new MeshraftClient({ urls: c.urls() }).put("still", "working");
  }, 60_000);

  it("malformed HTTP requests get clear 4xx errors", async () => {
    cluster = await ProcessCluster.start();
    const c = cluster;
    const leader = await c.waitForLeader();
    const url = c.url(leader);
    const badJson = await fetch(`${url}/kv/a/cas`, { method: "POST", body: "{not json" });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe("BAD_REQUEST");
    const badKey = await fetch(`${url}/kv/%ZZ`, { method: "PUT", body: "x" });
    expect(badKey.status).toBe(400);
    const tooBig = await fetch(`${url}/kv/big`, { method: "PUT", body: new Uint8Array(2 * 1024 * 1024) });
    expect(tooBig.status).toBe(413);
    const badSeq = await fetch(`${url}/kv/a`, { method: "PUT", body: "x", headers: { "x-meshraft-client": "c", "x-meshraft-seq": "-1" } });
    expect(badSeq.status).toBe(400);
    await new MeshraftClient({ urls: c.urls() }).put("still", "working");
  }, 60_000);

  it("a corrupt log file stops that node with an error naming the file and offset; the others keep working", async () => {
    cluster = await ProcessCluster.start();
    const c = cluster;
    const leader = await c.waitForLeader();
    const client = new MeshraftClient({ urls: c.urls() });
    for (let i = 0; i < 20; i++) await client.put(`k${i}`, `value-${i}`.repeat(20));
    const victim = c.ids.find((id) => id !== leader)!;
    await c.kill(victim);
    const seg = readdirSync(c.dataDir(victim)).find((f) => f.endsWith(".seg"));
    expect(seg).toBeDefined();
    const file = join(c.dataDir(victim), seg!);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 3)] ^= 0xff; // a byte in the middle, not a torn tail
    writeFileSync(file, bytes);
    const child = c.spawn(victim);
    const code = await new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    expect(code).not.toBe(0);
    const out = c.logs.get(victim)!.join("\n");
    expect(out).toMatch(/corrupt storage in .*\.seg at byte offset \d+/);
    await client.put("after", "corruption");
    expect(await client.getText("after")).toBe("corruption");
  }, 60_000);
});
