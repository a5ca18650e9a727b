/**
 * MeshraftClient (src/client/client.ts) against a real 3-node cluster over real HTTP on
 * 127.0.0.1: leader discovery through redirects, retries on 503 and on lost connections, failover
 * when the leader crashes, and sessions that keep a resent write from applying twice.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MeshraftClient, MeshraftHttpError, type MeshraftClientOptions } from "../../src/client/index.ts";
import { closeServer, HttpCluster, sleep, startHttpCluster, type HttpClusterOptions } from "./http-harness.ts";

let cluster: HttpCluster | null = null;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await cluster?.close();
  cluster = null;
});

async function start(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  cluster = await startHttpCluster(options);
  return cluster;
}

interface Sent {
  method: string;
  url: string;
  client: string | null;
  seq: string | null;
}

/** fetch that records every request (and may rewrite the answer) for assertions. */
function recordingFetch(
  around?: (input: string, init: RequestInit, real: () => Promise<Response>, n: number) => Promise<Response>,
): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const f = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    const h = new Headers(init.headers);
    sent.push({ method: init.method ?? "GET", url, client: h.get("X-Meshraft-Client"), seq: h.get("X-Meshraft-Seq") });
    const real = (): Promise<Response> => fetch(input, init);
    return around ? around(url, init, real, sent.length) : real();
  }) as typeof fetch;
  return { fetch: f, sent };
}

function client(c: HttpCluster, options: Partial<MeshraftClientOptions> = {}): MeshraftClient {
  return new MeshraftClient({ urls: c.urls, retryBudgetMs: 10_000, ...options });
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("the KV API", () => {
  it("put, get, getText, cas and delete", async () => {
    const c = await start();
    await c.leader();
    const kv = client(c);
    await kv.put("greeting", "hello");
    await kv.put("bytes", new Uint8Array([0, 255]));
    expect(await kv.getText("greeting")).toBe("hello");
    expect(await kv.get("bytes")).toEqual(new Uint8Array([0, 255]));
    expect(await kv.get("absent")).toBeNull();
    expect(await kv.getText("absent")).toBeNull();

    expect(await kv.cas("lock", null, "me")).toBe(true);
    expect(await kv.cas("lock", null, "you")).toBe(false);
    expect(await kv.cas("lock", text("me"), "you")).toBe(true);
    expect(await kv.cas("lock", "you", null)).toBe(true);
    expect(await kv.get("lock")).toBeNull();

    expect(await kv.delete("greeting")).toBe(true);
    expect(await kv.delete("greeting")).toBe(false);
    expect(await kv.get("greeting")).toBeNull();

    const key = "a/b ?&é";
    await kv.put(key, "odd key");
    expect(await kv.getText(key)).toBe("odd key");
  });

  it("status(url) returns that node's /status", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const kv = client(c);
    const s = await kv.status(follower.url);
    expect(s).toMatchObject({ id: follower.id, role: "follower", leader: leader.id, leaderUrl: leader.url });
    expect((await kv.status()).voters.sort()).toEqual(["n1", "n2", "n3"]);
  });

  it("answers that are not retryable fail at once with the server's code", async () => {
    const c = await start({ app: { limits: { maxValueBytes: 4 } } });
    await c.leader();
    const { fetch, sent } = recordingFetch();
    const kv = client(c, { fetch });
    await kv.put("k", "1234"); // learn the leader
    sent.length = 0;
    const err = await kv.put("k", "12345").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshraftHttpError);
    expect(err).toMatchObject({ status: 413, code: "VALUE_TOO_LARGE" });
    expect(sent).toHaveLength(1);
  });

  it("checks its arguments", async () => {
    expect(() => new MeshraftClient({ urls: [] })).toThrow(TypeError);
    expect(() => new MeshraftClient({ urls: ["ftp://x"] })).toThrow(TypeError);
    expect(() => new MeshraftClient({ urls: ["http://127.0.0.1:1"], clientId: "has space" })).toThrow(TypeError);
    expect(() => new MeshraftClient({ urls: ["http://127.0.0.1:1"], clientId: "x".repeat(201) })).toThrow(TypeError);
    const kv = new MeshraftClient({ urls: ["http://127.0.0.1:1"] });
    await expect(kv.put("", "v")).rejects.toThrow(TypeError);
  });

  it("cas compares and stores bytes exactly: a leading BOM and invalid UTF-8 survive", async () => {
    const c = await start();
    const leader = await c.leader();
    const kv = client(c);
    const bomA = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
    const bomB = new Uint8Array([0xef, 0xbb, 0xbf, 0x62]);
    await kv.put("k", bomA);
    expect(await kv.cas("k", text("a"), "x")).toBe(false); // "a" is not BOM + "a"
    expect(await kv.cas("k", bomA, bomB)).toBe(true);
    expect(leader.kv.get("k")).toEqual(bomB);
    expect(await kv.cas("k", bomB, new Uint8Array([0xff, 0xfe]))).toBe(true);
    expect(await kv.get("k")).toEqual(new Uint8Array([0xff, 0xfe]));
    expect(await kv.cas("k", new Uint8Array([0xff, 0xfe]), null)).toBe(true);
    expect(await kv.get("k")).toBeNull();
  });

  it("the keys . and .. are ordinary keys", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const kv = new MeshraftClient({ urls: [follower.url, leader.url] });
    for (const key of [".", "..", "...", "%2E"]) {
      await kv.put(key, `v${key}`);
      expect(leader.kv.get(key)).toEqual(text(`v${key}`));
      expect(await kv.getText(key)).toBe(`v${key}`);
      expect(await kv.getText(key, { stale: true })).toBe(`v${key}`); // from the leader, which it knows
      expect(await kv.cas(key, `v${key}`, "w")).toBe(true);
      expect(await kv.delete(key)).toBe(true);
      expect(await kv.get(key)).toBeNull();
    }
    expect(kv.leaderId).toBe(leader.id);
    expect(leader.kv.size).toBe(0);
  });
});

describe("leader discovery", () => {
  it("a 404 does not make the client take the node that answered for the leader", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    // The first request reaches a follower route that does not exist (a 404 any node may give).
    const { fetch } = recordingFetch((url, init, real, n) => (n === 1 ? globalThis.fetch(`${follower.url}/no-such-route`, init) : real()));
    const kv = new MeshraftClient({ urls: [follower.url, leader.url], fetch });
    await expect(kv.get("k")).rejects.toMatchObject({ status: 404, code: "ROUTE_NOT_FOUND" });
    expect(kv.leaderId).toBeNull();
    await kv.put("k", "v");
    expect(kv.leaderId).toBe(leader.id);
  });

  it("follows a follower's 307 itself, remembers the leader, and sends later calls straight to it", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const { fetch, sent } = recordingFetch();
    const kv = new MeshraftClient({ urls: [follower.url], fetch });
    await kv.put("k", "v");
    expect(sent.map((s) => s.url)).toEqual([`${follower.url}/kv/k`, `${leader.url}/kv/k`]);
    expect(sent[0].seq).toBe(sent[1].seq); // a redirected write is the same write
    expect(kv.leaderId).toBe(leader.id);

    sent.length = 0;
    expect(await kv.getText("k")).toBe("v");
    await kv.put("k2", "v2");
    expect(sent.map((s) => s.url)).toEqual([`${leader.url}/kv/k`, `${leader.url}/kv/k2`]);
    expect(leader.kv.get("k2")).toEqual(text("v2"));
  });

  it("a stale read goes to whichever node it picks, without a redirect", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    await client(c).put("s", "v");
    await c.applied(leader.node.status().commitIndex);
    const { fetch, sent } = recordingFetch();
    const kv = new MeshraftClient({ urls: [follower.url], fetch });
    expect(await kv.getText("s", { stale: true })).toBe("v");
    expect(sent.map((s) => s.url)).toEqual([`${follower.url}/kv/s?stale`]);
  });

  it("finds the leader through /status where redirects are opaque (browsers' redirect: manual)", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const opaque = { type: "opaqueredirect", status: 0, headers: new Headers(), arrayBuffer: async () => new ArrayBuffer(0) } as unknown as Response;
    const { fetch, sent } = recordingFetch(async (_url, _init, real) => {
      const res = await real();
      return res.status === 307 ? opaque : res;
    });
    const kv = new MeshraftClient({ urls: [follower.url], fetch });
    await kv.put("k", "v");
    expect(sent.map((s) => s.url)).toEqual([`${follower.url}/kv/k`, `${follower.url}/status`, `${leader.url}/kv/k`]);
    expect(leader.kv.get("k")).toEqual(text("v"));
  });
});

describe("retries", () => {
  it("retries 503 NO_LEADER with backoff until a leader is elected", async () => {
    const c = await start({ start: ["n1"] });
    const kv = client(c);
    const write = kv.put("k", "v");
    await sleep(300);
    await c.member("n2").node.start(); // now a majority can elect a leader
    await write;
    const leader = await c.leader();
    expect(leader.kv.get("k")).toEqual(text("v"));
  });

  it("gives up when its attempts run out, with the last error (nothing was sent: not OUTCOME_UNKNOWN)", async () => {
    // Bounded by attempts, not by a short time budget: an attempt still in flight when a budget
    // ends is abandoned, and a write abandoned in flight is rightly OUTCOME_UNKNOWN, which on a
    // loaded machine would make this test about timing.
    const c = await start({ start: ["n1"] });
    const { fetch, sent } = recordingFetch();
    const kv = client(c, { fetch, maxAttempts: 4 });
    const err = await kv.put("k", "v").catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: "NO_LEADER" });
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(new Set(sent.map((s) => s.url)).size).toBe(3); // it tried every node
  });

  it("a write that may have been sent but got no answer fails with OUTCOME_UNKNOWN; a read with UNAVAILABLE", async () => {
    const failing = (async () => {
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    const kv = new MeshraftClient({ urls: ["http://127.0.0.1:9"], fetch: failing, retryBudgetMs: 200 });
    await expect(kv.put("k", "v")).rejects.toMatchObject({ code: "OUTCOME_UNKNOWN", status: 0 });
    await expect(kv.get("k")).rejects.toMatchObject({ code: "UNAVAILABLE", status: 0 });
  });

  it("an attempt that hangs is abandoned after timeoutMs and the next node is tried", async () => {
    const c = await start();
    await c.leader();
    const hung: Server = createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => closeServer(hung));
    const hungUrl = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    const kv = new MeshraftClient({ urls: [hungUrl, ...c.urls], timeoutMs: 200 });
    const started = Date.now();
    await kv.put("k", "v");
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((await c.leader()).kv.get("k")).toEqual(text("v"));
  });

  it("does not retry 401, and sends the token when it has one", async () => {
    const c = await start({ app: { apiToken: "tok" } });
    await c.leader();
    const { fetch, sent } = recordingFetch();
    await expect(client(c, { fetch }).put("k", "v")).rejects.toMatchObject({ status: 401, code: "UNAUTHORIZED" });
    expect(sent).toHaveLength(1);
    const kv = client(c, { token: "tok" });
    await kv.put("k", "v");
    expect(await kv.getText("k")).toBe("v");
  });
});

describe("exactly-once writes", () => {
  it("numbers writes 1, 2, 3 on a session id of its own: clientId, then 128 random bits", async () => {
    const c = await start();
    await c.leader();
    const { fetch, sent } = recordingFetch();
    const kv = client(c, { fetch, clientId: "app-1" });
    await kv.put("a", "1");
    await kv.delete("a");
    await kv.cas("a", null, "2");
    const writes = sent.filter((s) => s.method !== "GET");
    const last = writes.filter((s, i) => i === writes.length - 1 || writes[i + 1].seq !== s.seq);
    expect(kv.clientId).toMatch(/^app-1\.[0-9a-f]{32}$/);
    expect(last.map((s) => s.client)).toEqual([kv.clientId, kv.clientId, kv.clientId]);
    expect(last.map((s) => s.seq)).toEqual(["1", "2", "3"]);
    expect(client(c, { clientId: "app-1" }).clientId).not.toBe(kv.clientId);
  });

  it("two clients given the same clientId (a restarted process) never share a session: every acknowledged write is there", async () => {
    const c = await start();
    const leader = await c.leader();
    const b = client(c, { clientId: "app" });
    await b.put("warm-up", "b0"); // b's session starts before a's
    const a = client(c, { clientId: "app" });
    for (const v of ["a1", "a2", "a3"]) await a.put("k", v);
    for (const v of ["b1", "b2", "b3"]) {
      await b.put("k", v);
      expect(leader.kv.get("k"), v).toEqual(text(v));
    }
    expect(await a.cas("k", "b3", "a4")).toBe(true);
    expect(await b.cas("k", "a4", "b4")).toBe(true);
    expect(leader.kv.get("k")).toEqual(text("b4"));
  });

  it("a write for a session the cluster forgot is resent at once on a new session (nothing of it was applied)", async () => {
    const c = await start({ kv: { maxSessions: 1 } });
    const leader = await c.leader();
    const { fetch, sent } = recordingFetch();
    const a = client(c, { fetch });
    const b = client(c);
    await a.put("k", "a1");
    await b.put("k", "b1"); // the cluster keeps one session: a's is forgotten
    await a.put("k", "a2");
    expect(leader.kv.get("k")).toEqual(text("a2"));
    const writes = sent.filter((s) => s.method === "PUT" && s.url.startsWith(leader.url));
    expect(writes.map((s) => s.seq)).toEqual(["1", "2", "1"]);
    expect(writes[2].client).not.toBe(writes[0].client);
  });

  it("a write whose answer was lost is resent with the same seq and applies once (a CAS does not fail on its own effect)", async () => {
    const c = await start();
    const leader = await c.leader();
    let lost = 0;
    const { fetch, sent } = recordingFetch(async (_url, init, real) => {
      const res = await real();
      if (init.method === "POST" && lost === 0) {
        lost++;
        await res.arrayBuffer();
        throw new TypeError("fetch failed: connection reset after the request was sent");
      }
      return res;
    });
    const kv = client(c, { fetch });
    expect(await kv.cas("once", null, "mine")).toBe(true);
    const posts = sent.filter((s) => s.method === "POST");
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(posts.map((s) => `${s.client}/${s.seq}`)).size).toBe(1);
    expect(leader.kv.get("once")).toEqual(text("mine"));
  });

  it("a 504 OUTCOME_UNKNOWN is resent with the same seq and applies once: a write made in between survives", async () => {
    const c = await start();
    const leader = await c.leader();
    let turned = 0;
    const { fetch, sent } = recordingFetch(async (url, init, real) => {
      const res = await real();
      if (init.method === "PUT" && res.status === 200 && turned === 0) {
        turned++;
        await res.arrayBuffer();
        // Someone else writes after ours applied; a second application of ours would undo it.
        await globalThis.fetch(url, { method: "PUT", body: "someone else" });
        const body = JSON.stringify({ error: { code: "OUTCOME_UNKNOWN", message: "lost leadership" } });
        return new Response(body, { status: 504, headers: { "Content-Type": "application/json" } });
      }
      return res;
    });
    const kv = client(c, { fetch });
    await kv.put("k", "first");
    const puts = sent.filter((s) => s.method === "PUT");
    expect(puts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(puts.map((s) => s.seq)).size).toBe(1);
    expect(leader.kv.get("k")).toEqual(text("someone else"));
  });

  it("concurrent writes from one client all apply (each in flight on its own session lane)", async () => {
    const c = await start();
    const leader = await c.leader();
    const kv = client(c);
    await Promise.all(Array.from({ length: 32 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    for (let i = 0; i < 32; i++) expect(leader.kv.get(`k${i}`)).toEqual(text(`v${i}`));
    await Promise.all(Array.from({ length: 32 }, (_, i) => kv.put(`k${i}`, `w${i}`)));
    for (let i = 0; i < 32; i++) expect(leader.kv.get(`k${i}`)).toEqual(text(`w${i}`));
  });
});

describe("failover", () => {
  it("survives the leader crashing: the client retries and succeeds through the new leader", async () => {
    const c = await start();
    const old = await c.leader();
    const kv = client(c);
    await kv.put("before", "1");
    expect(kv.leaderId).toBe(old.id);
    await c.crash(old.id);
    await kv.put("after", "2");
    const leader = await c.leader();
    expect(leader.id).not.toBe(old.id);
    expect(kv.leaderId).toBe(leader.id);
    expect(await kv.getText("before")).toBe("1");
    expect(await kv.getText("after")).toBe("2");
  });

  it("under concurrent increments, a leader crash neither loses an acknowledged write nor applies one twice", async () => {
    const c = await start();
    const old = await c.leader();
    const kv = client(c, { retryBudgetMs: 15_000 });
    // Each worker appends to its own key with CAS: a double-applied resend would fail the CAS
    // the client believes succeeded, or skip a number.
    const workers = 4;
    const acked = new Array<number>(workers).fill(0);
    let crashed = false;
    const run = async (w: number): Promise<void> => {
      for (let i = 1; i <= 30; i++) {
        const expect = i === 1 ? null : String(i - 1);
        const ok = await kv.cas(`w${w}`, expect, String(i));
        if (!ok) throw new Error(`worker ${w}: CAS ${i - 1} -> ${i} failed: a resend applied twice or a write was lost`);
        acked[w] = i;
        if (w === 0 && i === 10 && !crashed) {
          crashed = true;
          await c.crash(old.id);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, w) => run(w)));
    const leader = await c.leader();
    expect(leader.id).not.toBe(old.id);
    for (let w = 0; w < workers; w++) {
      expect(acked[w]).toBe(30);
      expect(await kv.getText(`w${w}`)).toBe("30");
    }
  });
});

describe("membership and leadership through the client", () => {
  it("adds a member (promoted once caught up), transfers leadership, removes the old leader; admin calls take the admin token", async () => {
    const c = await start({ spares: ["n4"], app: { adminToken: "root" } });
    const old = await c.leader();
    const kv = client(c, { adminToken: "root" });
    await kv.put("before", "1");
    const plain = client(c);
    await expect(plain.members()).rejects.toMatchObject({ status: 401, code: "UNAUTHORIZED" });

    const added = await kv.addMember("n4", c.url("n4"));
    expect(added.members.find((m) => m.id === "n4")).toMatchObject({ role: "learner", promote: true });
    const until = Date.now() + 10_000;
    let view = await kv.members();
    while (view.members.find((m) => m.id === "n4")?.role !== "voter" && Date.now() < until) {
      await sleep(50);
      view = await kv.members();
    }
    expect(view.members.map((m) => `${m.id}:${m.role}`).sort()).toEqual(["n1:voter", "n2:voter", "n3:voter", "n4:voter"]);
    expect(await client(c, { urls: [c.url("n4")] }).getText("before", { stale: true })).toBe("1");

    const moved = await kv.transferLeader("n4");
    expect(moved.leader).toBe("n4");
    expect(kv.leaderId).toBe("n4");
    const after = await kv.removeMember(old.id); // the client finds n4 leading
    expect(after.leader).toBe("n4");
    expect(after.members.map((m) => m.id)).not.toContain(old.id);
    await kv.put("after", "2");
    expect(await kv.getText("after")).toBe("2");
    await expect(kv.removeMember(old.id)).rejects.toMatchObject({ status: 404, code: "MEMBER_NOT_FOUND" });
  }, 30_000);
});
