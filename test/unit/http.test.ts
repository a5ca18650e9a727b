/**
 * The HTTP API (src/http/app.ts) as docs/internals.md "Client interaction" and the README specify it, over real HTTP
 * on 127.0.0.1 in front of a real 3-node cluster.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, WebSocket } from "ws";
import { upgradeWebSocket } from "@hono/node-server";
import { HttpCluster, PROMETHEUS_LINE, sleep, startHttpCluster, type HttpClusterOptions } from "./http-harness.ts";

let cluster: HttpCluster | null = null;
const extra: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of extra.splice(0).reverse()) await f();
  await cluster?.close();
  cluster = null;
});

async function start(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  cluster = await startHttpCluster(options);
  return cluster;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

async function put(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: "PUT", body: body as BodyInit, headers, redirect: "manual" });
}

async function cas(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "Content-Type": "application/json", ...headers },
    redirect: "manual",
  });
}

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(typeof body.error.message).toBe("string");
  return body.error.code;
}

describe("writes and reads on the leader", () => {
  it("PUT stores the raw body; GET returns it as application/octet-stream", async () => {
    const c = await start();
    const leader = await c.leader();
    const value = new Uint8Array([0, 1, 2, 255, 254]);
    const res = await fetch(`${leader.url}/kv/bin`, { method: "PUT", body: value });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; index: number };
    expect(body.ok).toBe(true);
    expect(body.index).toBeGreaterThan(0);
    expect(res.headers.get("X-Meshraft-Node")).toBe(leader.id);

    const got = await fetch(`${leader.url}/kv/bin`);
    expect(got.status).toBe(200);
    expect(got.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(value);
  });

  it("GET of an absent key is 404 NOT_FOUND; an unknown route is 404 ROUTE_NOT_FOUND", async () => {
    const c = await start();
    const leader = await c.leader();
    const res = await fetch(`${leader.url}/kv/absent`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("NOT_FOUND");
    const nope = await fetch(`${leader.url}/nope`);
    expect(nope.status).toBe(404);
    expect(await errorCode(nope)).toBe("ROUTE_NOT_FOUND");
  });

  it("a key may contain unencoded slashes: the rest of the path after /kv/ is the key (etcd-style names)", async () => {
    const c = await start();
    const leader = await c.leader();
    expect((await put(`${leader.url}/kv/app/config/db`, "v1")).status).toBe(200);
    expect(leader.kv.get("app/config/db")).toEqual(text("v1"));
    expect(await (await fetch(`${leader.url}/kv/app/config/db`)).text()).toBe("v1");
    const swapped = await cas(`${leader.url}/kv/app/config/db/cas`, { expect: "v1", value: "v2" });
    expect(swapped.status).toBe(200);
    expect(leader.kv.get("app/config/db")).toEqual(text("v2"));
    const del = await fetch(`${leader.url}/kv/app/config/db`, { method: "DELETE" });
    expect(((await del.json()) as { existed: boolean }).existed).toBe(true);
    expect(leader.kv.get("app/config/db")).toBeNull();
  });

  it("a removed member says `removed` in /status and refuses client requests with 410 MEMBER_REMOVED", async () => {
    const c = await start();
    const leader = await c.leader();
    const gone = [...c.members.values()].find((m) => m.id !== leader.id)!;
    await leader.node.removeMember(gone.id);
    const deadline = Date.now() + 10_000;
    let status = { role: "" };
    while (status.role !== "removed" && Date.now() < deadline) {
      status = (await (await fetch(`${gone.url}/status`)).json()) as { role: string };
      await sleep(50);
    }
    expect(status.role).toBe("removed");
    for (const [method, path] of [["GET", "/kv/k?stale"], ["GET", "/kv/k"], ["PUT", "/kv/k"]]) {
      const res = await fetch(`${gone.url}${path}`, { method, body: method === "PUT" ? "v" : undefined, redirect: "manual" });
      expect(res.status, `${method} ${path}`).toBe(410);
      expect(await errorCode(res)).toBe("MEMBER_REMOVED");
    }
    // The others go on.
    expect(((await (await fetch(`${leader.url}/status`)).json()) as { role: string }).role).toBe("leader");
  });

  it("a known route with the wrong method is 405 METHOD_NOT_ALLOWED with Allow; an unknown one stays 404", async () => {
    const c = await start();
    const leader = await c.leader();
    const post = await fetch(`${leader.url}/kv/k`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("DELETE, GET, PUT");
    expect(await errorCode(post)).toBe("METHOD_NOT_ALLOWED");
    const status = await fetch(`${leader.url}/status`, { method: "DELETE" });
    expect(status.status).toBe(405);
    expect(status.headers.get("Allow")).toBe("GET");
    const casGet = await fetch(`${leader.url}/admin/transfer-leader`);
    expect(casGet.status).toBe(405);
    expect(casGet.headers.get("Allow")).toBe("POST");
    expect((await fetch(`${leader.url}/nope`, { method: "POST" })).status).toBe(404);
  });

  it("keys are URL-decoded UTF-8: an encoded slash, spaces and non-ASCII are one key", async () => {
    const c = await start();
    const leader = await c.leader();
    const key = "a/b c é 🦀";
    expect((await put(`${leader.url}/kv/${encodeURIComponent(key)}`, "v")).status).toBe(200);
    expect(leader.kv.get(key)).toEqual(text("v"));
    const res = await fetch(`${leader.url}/kv/${encodeURIComponent(key)}`);
    expect(await res.text()).toBe("v");
  });

  it("DELETE removes the key and says whether it existed", async () => {
    const c = await start();
    const leader = await c.leader();
    await put(`${leader.url}/kv/d`, "x");
    const first = await fetch(`${leader.url}/kv/d`, { method: "DELETE" });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ ok: true, existed: true });
    const second = await fetch(`${leader.url}/kv/d`, { method: "DELETE" });
    expect(await second.json()).toMatchObject({ ok: true, existed: false });
    expect((await fetch(`${leader.url}/kv/d`)).status).toBe(404);
  });
});

describe("followers redirect to the leader", () => {
  it("a write to a follower is answered 307 with the leader's URL, same path and query, and X-Meshraft-Leader; nothing is proposed", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const before = leader.node.status().lastIndex;
    const res = await put(`${follower.url}/kv/a%20b?x=1`, "v");
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${leader.url}/kv/a%20b?x=1`);
    expect(res.headers.get("X-Meshraft-Leader")).toBe(leader.id);
    expect(await errorCode(res)).toBe("NOT_LEADER");
    await sleep(50);
    expect(leader.node.status().lastIndex).toBe(before);
    expect(leader.kv.get("a b")).toBeNull();

    for (const [method, path] of [["DELETE", "/kv/k"], ["POST", "/kv/k/cas"]] as const) {
      const r = await fetch(`${follower.url}${path}`, { method, body: method === "POST" ? "{}" : undefined, redirect: "manual" });
      expect(r.status).toBe(307);
      expect(r.headers.get("Location")).toBe(`${leader.url}${path}`);
    }
  });

  it("following the 307 (method and body kept) completes the write on the leader", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    // fetch follows 307 itself with the same method and body.
    const res = await fetch(`${follower.url}/kv/followed`, { method: "PUT", body: "through a follower" });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Meshraft-Node")).toBe(leader.id);
    expect(leader.kv.get("followed")).toEqual(text("through a follower"));
  });

  it("a linearizable read on a follower is redirected; after a write, a read through any node sees it", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const r = await fetch(`${follower.url}/kv/k`, { redirect: "manual" });
    expect(r.status).toBe(307);
    expect(r.headers.get("Location")).toBe(`${leader.url}/kv/k`);

    expect((await put(`${leader.url}/kv/k`, "v1")).status).toBe(200);
    for (const url of c.urls) {
      const res = await fetch(`${url}/kv/k`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("v1");
    }
  });

  it("?stale serves locally on a follower, without a redirect", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    const res = await put(`${leader.url}/kv/s`, "local");
    const { index } = (await res.json()) as { index: number };
    await c.applied(index);
    const stale = await fetch(`${follower.url}/kv/s?stale`, { redirect: "manual" });
    expect(stale.status).toBe(200);
    expect(stale.headers.get("X-Meshraft-Node")).toBe(follower.id);
    expect(await stale.text()).toBe("local");
    const absent = await fetch(`${follower.url}/kv/none?stale=1`, { redirect: "manual" });
    expect(absent.status).toBe(404);
  });

  it("with followerReads, a follower serves linearizable reads itself (ReadIndex from the leader)", async () => {
    const c = await start({ app: { followerReads: true } });
    const leader = await c.leader();
    const follower = await c.follower();
    expect((await put(`${leader.url}/kv/fr`, "fresh")).status).toBe(200);
    const res = await fetch(`${follower.url}/kv/fr`, { redirect: "manual" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("fresh");
  });

  it("with no leader known, writes and linearizable reads get 503 NO_LEADER with Retry-After; stale reads still work", async () => {
    const c = await start({ start: ["n1"] }); // a lone node of three never wins an election
    await sleep(400);
    const url = c.url("n1");
    for (const res of [await put(`${url}/kv/k`, "v"), await fetch(`${url}/kv/k`, { redirect: "manual" })]) {
      expect(res.status).toBe(503);
      expect(res.headers.get("Retry-After")).toBe("1");
      expect(await errorCode(res)).toBe("NO_LEADER");
    }
    expect((await fetch(`${url}/kv/k?stale`)).status).toBe(404);
    expect(c.member("n1").node.status().lastIndex).toBe(0);
  });

  it("a stopped node answers 503 NODE_STOPPED (nothing proposed), never a redirect to itself", async () => {
    const c = await start();
    const leader = await c.leader();
    await leader.node.stop();
    const res = await put(`${leader.url}/kv/k`, "v");
    expect(res.status).toBe(503);
    expect(await errorCode(res)).toBe("NODE_STOPPED");
  });

  it.each([
    ["before propose() is called", true],
    ["while the write is queued for the core", false],
  ])("a node that stops %s answers 503 NODE_STOPPED (nothing was proposed), not 504", async (_when, stopFirst) => {
    const c = await start();
    const leader = await c.leader();
    const lastIndex = leader.node.status().lastIndex;
    // The real propose, with the node stopping at one of the two points where the app has taken
    // the write but the log has not: just before propose(), or just after (proposals reach the
    // core on the driver's next turn).
    const propose = leader.node.propose.bind(leader.node);
    leader.node.propose = (data) => {
      if (stopFirst) void leader.node.stop();
      const pending = propose(data);
      if (!stopFirst) void leader.node.stop();
      return pending;
    };
    const res = await put(`${leader.url}/kv/k`, "v");
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(await errorCode(res)).toBe("NODE_STOPPED");
    expect(leader.node.status().lastIndex).toBe(lastIndex);
  });
});

describe("compare-and-swap", () => {
  it("a CAS that does not match answers with the value it found, so the client can retry without a read", async () => {
    const c = await start();
    const { url } = await c.leader();
    // Absent: current is null.
    const absent = await cas(`${url}/kv/k/cas`, { expect: "x", value: "y" });
    expect(absent.status).toBe(409);
    expect(await absent.json()).toEqual({ ok: false, index: expect.any(Number), current: null });
    // Text: current is the text.
    expect((await put(`${url}/kv/k`, "héllo")).status).toBe(200);
    const text = await cas(`${url}/kv/k/cas`, { expect: "hello", value: "y" });
    expect(await text.json()).toMatchObject({ ok: false, current: "héllo" });
    // Bytes that are not UTF-8: currentBase64 only.
    expect((await fetch(`${url}/kv/k`, { method: "PUT", body: new Uint8Array([0xff, 0x00]) })).status).toBe(200);
    const binary = (await (await cas(`${url}/kv/k/cas`, { expect: "y", value: "z" })).json()) as Record<string, unknown>;
    expect(binary).toMatchObject({ ok: false, currentBase64: "/wA=" });
    expect("current" in binary).toBe(false);
    // A match answers without it.
    expect(await (await cas(`${url}/kv/k/cas`, { expectBase64: "/wA=", value: "z" })).json()).toEqual({ ok: true, index: expect.any(Number) });
  });

  it("answers 200 {ok:true} when expect matches and 409 {ok:false} when it does not; null means absent / delete", async () => {
    const c = await start();
    const { url } = await c.leader();
    const k = `${url}/kv/lock/cas`;
    const first = await cas(k, { expect: null, value: "a" });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ ok: true });
    const again = await cas(k, { expect: null, value: "b" });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ ok: false });
    expect((await cas(k, { expect: "a", value: "b" })).status).toBe(200);
    expect((await cas(k, { expect: "a", value: "c" })).status).toBe(409);
    expect((await cas(k, { expect: "b", value: null })).status).toBe(200);
    expect((await fetch(`${url}/kv/lock`)).status).toBe(404);
  });

  it("rejects a malformed body with 400 BAD_REQUEST", async () => {
    const c = await start();
    const { url } = await c.leader();
    for (const body of ["{not json", "[]", "null", '"x"', "{}", '{"expect":null}', '{"expect":1,"value":"v"}', '{"expect":null,"value":"v","x":1}']) {
      const res = await cas(`${url}/kv/k/cas`, body);
      expect(res.status, body).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
    const invalidUtf8 = await fetch(`${url}/kv/k/cas`, { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) });
    expect(invalidUtf8.status).toBe(400);
    for (const body of ['{"expectBase64":"AA=","value":null}', '{"expect":null,"valueBase64":"A A="}', '{"expect":null,"valueBase64":"AB=="}', '{"expect":null,"expectBase64":null,"value":"v"}']) {
      const res = await cas(`${url}/kv/k/cas`, body);
      expect(res.status, body).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
  });

  it("compares and stores bytes exactly with expectBase64 / valueBase64 (a leading BOM, invalid UTF-8)", async () => {
    const c = await start();
    const leader = await c.leader();
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
    expect((await put(`${leader.url}/kv/k`, bom)).status).toBe(200);
    // Without the BOM the bytes differ: no match.
    expect((await cas(`${leader.url}/kv/k/cas`, { expectBase64: "YQ==", value: "x" })).status).toBe(409);
    const res = await cas(`${leader.url}/kv/k/cas`, { expectBase64: "77u/YQ==", valueBase64: "/wDvu78=" });
    expect(res.status).toBe(200);
    expect(leader.kv.get("k")).toEqual(new Uint8Array([0xff, 0x00, 0xef, 0xbb, 0xbf]));
  });
});

describe("the keys . and ..", () => {
  it("are reached with ?key= on the bare routes (a path drops them as dot segments, even encoded)", async () => {
    const c = await start();
    const { url } = await c.leader();
    for (const key of [".", "..", "%2E", "a/b"]) {
      const q = `?key=${encodeURIComponent(key)}`;
      expect((await put(`${url}/kv${q}`, `v${key}`)).status, key).toBe(200);
      expect(c.members.get((await c.leader()).id)?.kv.get(key)).toEqual(text(`v${key}`));
      expect(await (await fetch(`${url}/kv${q}`)).text()).toBe(`v${key}`);
      expect((await cas(`${url}/kv/cas${q}`, { expect: `v${key}`, value: "w" })).status).toBe(200);
      expect((await fetch(`${url}/kv${q}&stale`)).status).toBe(200);
      const del = await fetch(`${url}/kv${q}`, { method: "DELETE" });
      expect(await del.json()).toMatchObject({ ok: true, existed: true });
    }
    // "%2E" in the path is the key "%2E" only in the query form; in the path it is "." and dropped.
    expect((await fetch(`${url}/kv/%2E`)).status).toBe(404);
    const both = await fetch(`${url}/kv/x?key=y`);
    expect(both.status).toBe(400);
    expect((await fetch(`${url}/kv?key=`)).status).toBe(400);
  });
});

describe("limits", () => {
  const limits = { maxKeyBytes: 8, maxValueBytes: 16, maxBodyBytes: 64 };

  it("a key over maxKeyBytes (UTF-8 bytes after decoding) is 400 KEY_TOO_LARGE; malformed percent-encoding is 400", async () => {
    const c = await start({ app: { limits } });
    const { url } = await c.leader();
    expect((await put(`${url}/kv/${encodeURIComponent("12345678")}`, "v")).status).toBe(200);
    const long = await put(`${url}/kv/${encodeURIComponent("éééé1")}`, "v"); // 9 bytes
    expect(long.status).toBe(400);
    expect(await errorCode(long)).toBe("KEY_TOO_LARGE");
    for (const bad of ["%ZZ", "%ED%A0%80", "%FF"]) {
      const res = await put(`${url}/kv/${bad}`, "v");
      expect(res.status, bad).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
  });

  it("a value over maxValueBytes is 413 VALUE_TOO_LARGE, declared or streamed without Content-Length", async () => {
    const c = await start({ app: { limits } });
    const { url } = await c.leader();
    expect((await put(`${url}/kv/k`, "x".repeat(16))).status).toBe(200);
    const declared = await put(`${url}/kv/k`, "x".repeat(17));
    expect(declared.status).toBe(413);
    expect(await errorCode(declared)).toBe("VALUE_TOO_LARGE");

    // A chunked body: the server counts bytes as they arrive and stops at the limit.
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (++pulls > 1000) ctrl.close();
        else ctrl.enqueue(new Uint8Array(10));
      },
    });
    const streamed = await fetch(`${url}/kv/k`, { method: "PUT", body: stream, duplex: "half" } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await errorCode(streamed)).toBe("VALUE_TOO_LARGE");
    expect(c.member((await c.leader()).id).kv.get("k")).toEqual(text("x".repeat(16)));
  });

  it("a CAS body over maxBodyBytes is 413 BODY_TOO_LARGE; a CAS value over maxValueBytes is 413 VALUE_TOO_LARGE", async () => {
    const c = await start({ app: { limits } });
    const { url } = await c.leader();
    const body = await cas(`${url}/kv/k/cas`, { expect: null, value: "v".repeat(70) });
    expect(body.status).toBe(413);
    expect(await errorCode(body)).toBe("BODY_TOO_LARGE");
    const value = await cas(`${url}/kv/k/cas`, { expect: null, value: "v".repeat(17) });
    expect(value.status).toBe(413);
    expect(await errorCode(value)).toBe("VALUE_TOO_LARGE");
  });

  it("limits above what the KV state machine accepts are refused at creation", async () => {
    await expect(start({ app: { limits: { maxValueBytes: 2 * 1024 * 1024 } } })).rejects.toThrow(/maxValueBytes/);
  });
});

describe("bearer token", () => {
  it("requires Authorization: Bearer <token> on the API (401 UNAUTHORIZED otherwise); /status stays public", async () => {
    const c = await start({ app: { apiToken: "s3cret" } });
    const { url } = await c.leader();
    for (const auth of [undefined, "Bearer wrong", "Bearer s3cretX", "Bearer s3cre", "Basic s3cret", "s3cret"]) {
      const res = await put(`${url}/kv/k`, "v", auth ? { Authorization: auth } : {});
      expect(res.status, auth).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
      expect(await errorCode(res)).toBe("UNAUTHORIZED");
    }
    expect((await put(`${url}/kv/k`, "v", { Authorization: "Bearer s3cret" })).status).toBe(200);
    expect((await fetch(`${url}/kv/k`, { headers: { Authorization: "bearer s3cret" } })).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { Authorization: "Bearer s3cret" } })).status).toBe(200);
    expect((await fetch(`${url}/status`)).status).toBe(200);
  });

  it("counts a 401 answer as 401 in meshraft_http_requests_total, not as 200", async () => {
    const c = await start({ app: { apiToken: "s3cret" } });
    const { url } = await c.leader();
    for (let i = 0; i < 3; i++) expect((await put(`${url}/kv/k`, "v")).status).toBe(401);
    const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: "Bearer s3cret" } })).text();
    const count = (status: string): number =>
      Number(new RegExp(`^meshraft_http_requests_total\\{[^}]*route="/kv/:key"[^}]*status="${status}"[^}]*\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count("401")).toBe(3);
    expect(count("200")).toBe(0);
  });

  it("with publicStatus: false, /status needs the token too", async () => {
    const c = await start({ app: { apiToken: "t", publicStatus: false } });
    const { url } = await c.leader();
    expect((await fetch(`${url}/status`)).status).toBe(401);
  });

  it("/health is open with a token set and says only whether the node runs", async () => {
    const c = await start({ app: { apiToken: "t", publicStatus: false } });
    const { url, node } = await c.leader();
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    await node.stop();
    const stopped = await fetch(`${url}/health`);
    expect(stopped.status).toBe(503);
    expect(await stopped.json()).toEqual({ ok: false });
  });

  it("a follower checks the token before it reveals the leader", async () => {
    const c = await start({ app: { apiToken: "t" } });
    const follower = await c.follower();
    const res = await put(`${follower.url}/kv/k`, "v");
    expect(res.status).toBe(401);
    expect(res.headers.get("X-Meshraft-Leader")).toBeNull();
  });
});

describe("browsers", () => {
  it("with corsOrigins, preflights pass without the token and answers expose the leader headers", async () => {
    const c = await start({ app: { apiToken: "t", corsOrigins: ["https://app.example"] } });
    const leader = await c.leader();
    const follower = await c.follower();
    const pre = await fetch(`${follower.url}/kv/k`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,x-meshraft-client,x-meshraft-seq",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example");
    expect(pre.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("x-meshraft-seq");
    const res = await put(`${follower.url}/kv/k`, "v", { Origin: "https://app.example", Authorization: "Bearer t" });
    expect(res.status).toBe(307);
    expect(res.headers.get("Access-Control-Expose-Headers")).toContain("X-Meshraft-Leader");
    expect(res.headers.get("Location")).toBe(`${leader.url}/kv/k`);
    const other = await fetch(`${leader.url}/kv/k`, { headers: { Origin: "https://evil.example", Authorization: "Bearer t" } });
    expect(other.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("exactly-once sessions", () => {
  it("rejects malformed X-Meshraft-Client / X-Meshraft-Seq with 400", async () => {
    const c = await start();
    const { url } = await c.leader();
    const cases: Record<string, string>[] = [
      { "X-Meshraft-Client": "c" },
      { "X-Meshraft-Seq": "1" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "-1" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "1.5" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "abc" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "1e3" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "9007199254740992" },
      { "X-Meshraft-Client": "c", "X-Meshraft-Seq": "" },
      { "X-Meshraft-Client": "has space", "X-Meshraft-Seq": "1" },
      { "X-Meshraft-Client": "x".repeat(257), "X-Meshraft-Seq": "1" },
    ];
    for (const headers of cases) {
      const res = await put(`${url}/kv/k`, "v", headers);
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(await errorCode(res)).toBe("BAD_REQUEST");
    }
    expect((await put(`${url}/kv/k`, "v", { "X-Meshraft-Client": "x".repeat(256), "X-Meshraft-Seq": "1" })).status).toBe(200);
    expect((await put(`${url}/kv/k`, "v", { "X-Meshraft-Client": "x".repeat(256), "X-Meshraft-Seq": "9007199254740991" })).status).toBe(200);
  });

  it("a resent CAS (same client and seq) returns the original result instead of applying again", async () => {
    const c = await start();
    const leader = await c.leader();
    const session = { "X-Meshraft-Client": "c1", "X-Meshraft-Seq": "1" };
    const first = await cas(`${leader.url}/kv/once/cas`, { expect: null, value: "mine" }, session);
    expect(first.status).toBe(200);
    // Applied again, this CAS would fail: the key is no longer absent.
    const resent = await cas(`${leader.url}/kv/once/cas`, { expect: null, value: "mine" }, session);
    expect(resent.status).toBe(200);
    expect(await resent.json()).toMatchObject({ ok: true, duplicate: true });
  });

  it("a resent PUT applies once: a write made in between is not overwritten", async () => {
    const c = await start();
    const leader = await c.leader();
    expect((await put(`${leader.url}/kv/k`, "o", { "X-Meshraft-Client": "c2", "X-Meshraft-Seq": "1" })).status).toBe(200);
    const session = { "X-Meshraft-Client": "c2", "X-Meshraft-Seq": "7" };
    expect((await put(`${leader.url}/kv/k`, "p", session)).status).toBe(200);
    expect((await put(`${leader.url}/kv/k`, "q")).status).toBe(200); // someone else, no session
    const resent = await put(`${leader.url}/kv/k`, "p", session);
    expect(resent.status).toBe(200);
    expect(await resent.json()).toMatchObject({ ok: true, duplicate: true });
    expect(leader.kv.get("k")).toEqual(text("q"));

    // An older seq than the session's last is not applied either, and says so.
    const older = await put(`${leader.url}/kv/k`, "old", { "X-Meshraft-Client": "c2", "X-Meshraft-Seq": "6" });
    expect(older.status).toBe(409);
    expect(await errorCode(older)).toBe("STALE_SEQUENCE");
    expect(leader.kv.get("k")).toEqual(text("q"));
    // A stale CAS has its own code too: it is not a comparison that failed.
    const staleCas = await cas(`${leader.url}/kv/k/cas`, { expect: "q", value: "old" }, { "X-Meshraft-Client": "c2", "X-Meshraft-Seq": "6" });
    expect(staleCas.status).toBe(409);
    expect(await errorCode(staleCas)).toBe("STALE_SEQUENCE");
    expect(leader.kv.get("k")).toEqual(text("q"));
  });

  it("a write for a session the cluster forgot is 409 SESSION_EXPIRED and applies nothing", async () => {
    const c = await start({ kv: { maxSessions: 1 } });
    const leader = await c.leader();
    expect((await put(`${leader.url}/kv/k`, "a1", { "X-Meshraft-Client": "a", "X-Meshraft-Seq": "1" })).status).toBe(200);
    expect((await put(`${leader.url}/kv/k`, "b1", { "X-Meshraft-Client": "b", "X-Meshraft-Seq": "1" })).status).toBe(200); // evicts "a"
    for (const [method, path, body] of [["PUT", "/kv/k", "a1"], ["DELETE", "/kv/k", undefined], ["POST", "/kv/k/cas", '{"expect":"b1","value":"a2"}']] as const) {
      const res = await fetch(`${leader.url}${path}`, { method, body, headers: { "X-Meshraft-Client": "a", "X-Meshraft-Seq": "2" } });
      expect(res.status, method).toBe(409);
      expect(await errorCode(res)).toBe("SESSION_EXPIRED");
    }
    expect(leader.kv.get("k")).toEqual(text("b1"));
  });

  it("a write whose fate is unknown is 504 OUTCOME_UNKNOWN; resending it with its session after recovery applies it once", async () => {
    const c = await start({ app: { writeTimeoutMs: 200 } });
    const leader = await c.leader();
    c.network.isolate(leader.id); // it can append but never commit
    const session = { "X-Meshraft-Client": "c3", "X-Meshraft-Seq": "1" };
    const res = await cas(`${leader.url}/kv/fate/cas`, { expect: null, value: "v" }, session);
    expect(res.status).toBe(504);
    expect(await errorCode(res)).toBe("OUTCOME_UNKNOWN");
    c.network.heal();

    let answer: Response | null = null;
    for (let i = 0; i < 100 && answer === null; i++) {
      const newLeader = await c.leader();
      const r = await fetch(`${newLeader.url}/kv/fate/cas`, {
        method: "POST",
        body: JSON.stringify({ expect: null, value: "v" }),
        headers: session,
      });
      if (r.status === 200 || r.status === 409) answer = r;
      else await sleep(50);
    }
    expect(answer?.status).toBe(200);
    expect(await answer!.json()).toMatchObject({ ok: true });
    expect((await c.leader()).kv.get("fate")).toEqual(text("v"));
  });
});

describe("status and metrics", () => {
  it("GET /status reports id, role, term, leader, indexes and members with URLs", async () => {
    const c = await start();
    const leader = await c.leader();
    const follower = await c.follower();
    await put(`${leader.url}/kv/k`, "v");
    const s = (await (await fetch(`${leader.url}/status`)).json()) as Record<string, unknown>;
    expect(s).toMatchObject({ id: leader.id, url: leader.url, role: "leader", leader: leader.id, leaderUrl: leader.url, stopped: false });
    expect(s.term).toBeGreaterThan(0);
    expect(s.commitIndex).toBeGreaterThanOrEqual(2);
    expect(s.appliedIndex).toBe(s.commitIndex);
    expect(s.lastIndex).toBe(s.commitIndex);
    expect((s.voters as string[]).sort()).toEqual(["n1", "n2", "n3"]);
    expect(s.learners).toEqual([]);
    expect(s.members).toEqual(expect.arrayContaining(["n1", "n2", "n3"].map((id) => ({ id, url: c.url(id), voter: true }))));

    const fs = (await (await fetch(`${follower.url}/status`)).json()) as Record<string, unknown>;
    expect(fs).toMatchObject({ id: follower.id, role: "follower", leader: leader.id, leaderUrl: leader.url });
  });

  it("GET /metrics is Prometheus text with role, term, indexes, proposal and read counters, latencies and errors by code", async () => {
    const c = await start();
    const leader = await c.leader();
    await put(`${leader.url}/kv/k`, "v");
    await fetch(`${leader.url}/kv/k`);
    await fetch(`${leader.url}/kv/k?stale`);
    await fetch(`${leader.url}/kv/absent`);
    await put(`${leader.url}/kv/${"x".repeat(2000)}`, "v");
    const res = await fetch(`${leader.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    const lines = body.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    for (const line of lines) expect(line).toMatch(PROMETHEUS_LINE);
    const sample = (name: string): number => {
      const line = lines.find((l) => l.startsWith(name + " ") || l === name);
      if (!line) throw new Error(`no sample ${name} in:\n${body}`);
      return Number(line.slice(name.length + 1));
    };
    const s = leader.node.status();
    expect(sample('meshraft_role{role="leader"}')).toBe(1);
    expect(sample('meshraft_role{role="follower"}')).toBe(0);
    expect(sample("meshraft_term")).toBe(s.term);
    expect(sample("meshraft_commit_index")).toBe(s.commitIndex);
    expect(sample("meshraft_applied_index")).toBe(s.appliedIndex);
    expect(sample("meshraft_last_index")).toBe(s.lastIndex);
    expect(sample('meshraft_proposals_total{op="put",outcome="ok"}')).toBe(1);
    expect(sample('meshraft_proposal_duration_seconds_count{op="put"}')).toBe(1);
    expect(sample('meshraft_proposal_duration_seconds_bucket{op="put",le="+Inf"}')).toBe(1);
    expect(sample('meshraft_reads_total{mode="linearizable",outcome="ok"}')).toBe(2);
    expect(sample('meshraft_reads_total{mode="stale",outcome="ok"}')).toBe(1);
    expect(sample("meshraft_read_index_duration_seconds_count")).toBe(2);
    expect(sample('meshraft_http_errors_total{code="NOT_FOUND"}')).toBe(1);
    expect(sample('meshraft_http_errors_total{code="KEY_TOO_LARGE"}')).toBe(1);
    expect(sample('meshraft_http_requests_total{method="PUT",route="/kv/:key",status="200"}')).toBe(1);
    expect(sample("meshraft_kv_keys")).toBe(1);
    expect(body).toContain("# TYPE meshraft_proposal_duration_seconds histogram");
    expect(body).toContain("# TYPE meshraft_proposals_total counter");
  });
});

describe("peer socket", () => {
  it("GET /raft upgrades to the runtime's WebSocket with the mesh's handlers, without the API token", async () => {
    const wss = new WebSocketServer({ noServer: true });
    extra.push(
      () =>
        new Promise<void>((resolve) => {
          for (const client of wss.clients) client.terminate();
          wss.close(() => resolve());
        }),
    );
    const seen: string[] = [];
    const c = await start({
      websocket: wss,
      app: {
        apiToken: "t",
        raftSocket: {
          upgradeWebSocket,
          handlers: (ctx) => ({
            onOpen: (_e, ws) => ws.send(`hello from ${new URL(ctx.req.url).pathname}`),
            onMessage: (e) => void seen.push(String(e.data)),
          }),
        },
      },
    });
    const ws = new WebSocket(`${c.url("n1").replace("http", "ws")}/raft`);
    extra.push(() => ws.close());
    const greeting = await new Promise<string>((resolve, reject) => {
      ws.once("message", (d) => resolve(String(d)));
      ws.once("error", reject);
    });
    expect(greeting).toBe("hello from /raft");
    ws.send("ping");
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10);
    expect(seen).toEqual(["ping"]);
  });

  it("without raftSocket there is no /raft route", async () => {
    const c = await start();
    const res = await fetch(`${c.url("n1")}/raft`);
    expect(res.status).toBe(404);
  });
});
