/**
 * Authorization follows the route the router dispatches to, not the raw request path: hono
 * decodes percent-escapes before routing, so `/%61dmin/transfer-leader` reaches the admin
 * handler and must need the admin token. Real HTTP on 127.0.0.1 with raw paths (node:http sends
 * the path as given, like `curl --path-as-is`; fetch would normalize it).
 */
import type { IncomingMessage } from "node:http";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { Context } from "hono";
import { HttpCluster, sleep, startHttpCluster, type HttpClusterOptions } from "./http-harness.ts";

let cluster: HttpCluster | null = null;

afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function start(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  cluster = await startHttpCluster(options);
  return cluster;
}

/** One request with `path` sent byte for byte; the status and body. */
function raw(base: string, method: string, path: string, token?: string, body?: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), method, path, headers, timeout: 5_000 }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Percent-encodes the character at `i` of `path` (`upper`: hex digits in upper case). */
function encodeAt(path: string, i: number, upper = false): string {
  const hex = path.charCodeAt(i).toString(16);
  return `${path.slice(0, i)}%${upper ? hex.toUpperCase() : hex}${path.slice(i + 1)}`;
}

/**
 * Spellings of `path` that a router or a URL parser may take for it: every letter of it
 * percent-encoded in turn (lower- and upper-case hex), the whole first segment encoded, double
 * encoding, other letter case, dot segments (plain and encoded), doubled and trailing slashes.
 */
function variants(path: string): string[] {
  const out = new Set<string>();
  for (let i = 1; i < path.length; i++) {
    if (!/[a-z]/i.test(path[i])) continue;
    out.add(encodeAt(path, i));
    out.add(encodeAt(path, i, true));
  }
  const [, first, ...rest] = path.split("/");
  const tail = rest.length > 0 ? `/${rest.join("/")}` : "";
  const encodedFirst = [...first].map((ch) => `%${ch.charCodeAt(0).toString(16)}`).join("");
  out.add(`/${encodedFirst}${tail}`);
  out.add(`/${encodedFirst.replaceAll("%", "%25")}${tail}`); // double-encoded
  out.add(encodeAt(path, 1).replace("%", "%25"));
  out.add(`/${first.toUpperCase()}${tail}`);
  out.add(`/${first[0].toUpperCase()}${first.slice(1)}${tail}`);
  out.add(`/status/..${path}`);
  out.add(`/kv/..${path}`);
  out.add(`/x/%2e%2e${path}`);
  out.add(`/x/%2E%2E${path}`);
  out.add(`/x/.%2e${path}`);
  out.add(`/./${path.slice(1)}`);
  out.add(`/${first}/.${tail}`);
  out.add(`/${first}/./${rest.join("/")}`);
  out.add(`/${first}/x/..${tail}`);
  out.add(`/${first}/x/%2e%2e${tail}`);
  out.add(`//${path.slice(1)}`);
  out.add(`${path}/`);
  out.add(`${path}/.`);
  out.add(`${path}?x=1`);
  out.add(path);
  return [...out];
}

const ADMIN_ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "GET", path: "/admin/members" },
  { method: "POST", path: "/admin/members", body: JSON.stringify({ id: "n9", url: "http://127.0.0.1:9" }) },
  { method: "DELETE", path: "/admin/members/n2" },
  { method: "POST", path: "/admin/transfer-leader", body: JSON.stringify({ to: "n2" }) },
];

const CLIENT_ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "PUT", path: "/kv/k", body: "v" },
  { method: "GET", path: "/kv/k" },
  { method: "DELETE", path: "/kv/k" },
  { method: "POST", path: "/kv/k/cas", body: JSON.stringify({ expect: null, value: "v" }) },
  { method: "GET", path: "/metrics" },
  { method: "GET", path: "/status" },
];

describe("authorization is decided on the route that handles the request", () => {
  it("no spelling of an admin path (encoded, double-encoded, mixed case, dot segments) reaches an admin handler with the client token or none; nothing changes", async () => {
    const c = await start({ app: { apiToken: "api", adminToken: "adm", publicStatus: false }, node: { electionTimeoutMs: 1_000 } });
    const leader = await c.leader();
    const before = { lastIndex: leader.node.status().lastIndex, voters: leader.node.membership().voters.join() };
    // The router really takes an encoded spelling for the admin route: with the admin token it answers.
    expect((await raw(leader.url, "GET", "/%61dmin/members", "adm")).status).toBe(200);
    expect((await raw(leader.url, "GET", "/adm%69n/members", "adm")).status).toBe(200);
    let tried = 0;
    for (const route of ADMIN_ROUTES) {
      for (const path of variants(route.path)) {
        for (const token of ["api", undefined, "wrong"]) {
          const res = await raw(leader.url, route.method, path, token, route.body);
          // 401 where an admin handler would answer, 404 where none matches: never the handler.
          expect([401, 404], `${route.method} ${path} token=${token}: ${res.status} ${res.body}`).toContain(res.status);
          tried++;
        }
      }
    }
    expect(tried).toBeGreaterThan(200);
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
    expect(leader.node.status().lastIndex).toBe(before.lastIndex);
    expect(leader.node.membership().voters.join()).toBe(before.voters);
  });

  it("no spelling of a KV, /metrics or (non-public) /status path is served without the API token or with the admin token", async () => {
    const c = await start({ app: { apiToken: "api", adminToken: "adm", publicStatus: false } });
    const leader = await c.leader();
    expect((await raw(leader.url, "PUT", "/kv/k", "api", "v0")).status).toBe(200);
    expect((await raw(leader.url, "GET", "/%6detrics", "api")).status).toBe(200);
    for (const route of CLIENT_ROUTES) {
      for (const path of variants(route.path)) {
        for (const token of ["adm", undefined, "wrong"]) {
          const res = await raw(leader.url, route.method, path, token, route.body);
          expect([401, 404], `${route.method} ${path} token=${token}: ${res.status} ${res.body}`).toContain(res.status);
        }
      }
    }
    expect(new TextDecoder().decode(leader.kv.get("k")!)).toBe("v0");
  });

  it("with only an admin token, encoded admin paths still need it while the KV API stays open", async () => {
    const c = await start({ app: { adminToken: "adm" } });
    const leader = await c.leader();
    const before = leader.node.status().lastIndex;
    for (const path of variants("/admin/transfer-leader")) {
      const res = await raw(leader.url, "POST", path, undefined, JSON.stringify({ to: "n2" }));
      expect([401, 404], `${path}: ${res.status} ${res.body}`).toContain(res.status);
    }
    expect((await raw(leader.url, "PUT", "/kv/k", undefined, "v")).status).toBe(200);
    await sleep(100);
    expect(leader.node.status().role).toBe("leader");
    expect(leader.node.status().lastIndex).toBe(before + 1);
  });

  it("every admin change is logged with the token kind and the remote address; refusals too", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) };
    const remoteAddress = (ctx: Context): string | undefined => (ctx.env as { incoming?: IncomingMessage }).incoming?.socket.remoteAddress;
    const c = await start({ app: { apiToken: "api", adminToken: "adm", logger, remoteAddress }, node: { electionTimeoutMs: 1_000 } });
    const leader = await c.leader();
    expect((await raw(leader.url, "POST", "/%61dmin/transfer-leader", "api", JSON.stringify({ to: "n2" }))).status).toBe(401);
    expect(lines.some((l) => /^warn admin: refused POST \/admin\/transfer-leader \(401\), token=client remote=127\.0\.0\.1$/.test(l)), lines.join("\n")).toBe(true);
    const to = leader.id === "n2" ? "n3" : "n2";
    expect((await raw(leader.url, "POST", "/admin/transfer-leader", "adm", JSON.stringify({ to }))).status).toBe(200);
    const line = lines.find((l) => l.includes("transfer leadership"));
    expect(line).toBe(`info admin: transfer leadership to "${to}": ${to} leads; asked by token=admin remote=127.0.0.1`);
  });
});
