/**
 * fast-check over the HTTP API of real in-process members (test/unit/http-harness.ts: real
 * HTTP on 127.0.0.1): random methods, paths, query strings, headers, bodies and encodings.
 * Properties: never a 500 (every refusal is a clear 4xx/503/504 with an error code), no crash or
 * unhandled rejection (vitest fails the run on one), and the cluster keeps serving.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_HEADER, SEQ_HEADER } from "../../src/http/protocol.ts";
import { type HttpCluster, startHttpCluster } from "./http-harness.ts";
import { fuzzParams, fuzzTimeout } from "./fuzz-settings.ts";

let cluster: HttpCluster;
beforeAll(async () => {
  cluster = await startHttpCluster({ app: { apiToken: "t", adminToken: "a", limits: { maxKeyBytes: 64, maxValueBytes: 1024 } } });
  await cluster.leader();
});
afterAll(() => cluster.close());

const segment = fc.oneof(
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constantFrom("k", "%ZZ", "%00", "%2F", "%2e%2e", "..", ".", "%", "a%20b", "__proto__", "constructor", "n1", "n9", "cas", "x".repeat(100)),
);
const query = fc.oneof(
  fc.constant(""),
  fc.constantFrom("?stale", "?stale=0", "?stale=true", "?key=", "?key=k", "?key=%ZZ", "?key=a&key=b", "?&&=", "?key=" + "y".repeat(80)),
  segment.map((s) => `?key=${s}`),
);
const path = fc.oneof(
  fc.tuple(segment, query).map(([k, q]) => `/kv/${k}${q}`),
  fc.tuple(segment, query).map(([k, q]) => `/kv/${k}/cas${q}`),
  query.map((q) => `/kv${q}`),
  query.map((q) => `/kv/cas${q}`),
  fc.constantFrom("/admin/members", "/admin/transfer-leader", "/status", "/metrics", "/raft", "/", "/admin", "/kv/", "//kv//k"),
  segment.map((id) => `/admin/members/${id}`),
  fc.webPath(),
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const headers = fc.record(
  {
    Authorization: fc.oneof(fc.constantFrom("Bearer t", "Bearer a", "Bearer x", "bearer t", "Basic t", ""), headerValue),
    "Content-Type": fc.oneof(fc.constantFrom("application/json", "text/plain", "application/octet-stream", "application/json; charset=latin1"), headerValue),
    [CLIENT_HEADER]: fc.oneof(fc.constantFrom("c1", "", "__proto__"), headerValue),
    [SEQ_HEADER]: fc.oneof(fc.constantFrom("1", "2", "0", "-1", "1.5", "99999999999999999999", "abc", ""), headerValue),
    "Content-Encoding": fc.constantFrom("gzip", "identity", "br"),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 2048 }),
  fc.json().map((j) => new TextEncoder().encode(j)),
  fc
    .record({ id: fc.oneof(segment, fc.integer(), fc.constant(null)), url: fc.oneof(fc.webUrl(), fc.string()), role: fc.constantFrom("voter", "learner", "x"), to: fc.oneof(segment, fc.integer()) }, { requiredKeys: [] })
    .map((o) => new TextEncoder().encode(JSON.stringify(o))),
  fc
    .record({ expected: fc.oneof(fc.base64String(), fc.constant(null), fc.integer()), value: fc.oneof(fc.base64String(), fc.string()) }, { requiredKeys: [] })
    .map((o) => new TextEncoder().encode(JSON.stringify(o))),
);
const request = fc.record({
  member: fc.constantFrom("n1", "n2", "n3"),
  method: fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"),
  path,
  headers,
  body,
});

describe("fuzz: HTTP API", () => {
  it(
    "random requests never get a 500, and the cluster keeps serving",
    async () => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const hasBody = r.method !== "GET" && r.method !== "HEAD" && r.body !== undefined;
          const res = await fetch(`${cluster.url(r.member)}${r.path}`, {
            method: r.method,
            headers: r.headers,
            body: hasBody ? (r.body as BodyInit) : undefined,
            redirect: "manual",
          });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status, `${r.method} ${r.path}: ${text}`).not.toBe(500);
          expect(res.status).toBeLessThan(600);
          if (res.status >= 400 && r.method !== "HEAD") expect(JSON.parse(text)).toHaveProperty("error.code");
        }),
        fuzzParams(150),
      );
      expect(statuses.size).toBeGreaterThan(3); // the requests reached many answers, not one refusal
      const leader = await cluster.leader();
      const put = await fetch(`${leader.url}/kv/after-fuzz`, { method: "PUT", body: "still serving", headers: { Authorization: "Bearer t" } });
      expect(put.status).toBe(200);
      const get = await fetch(`${leader.url}/kv/after-fuzz`, { headers: { Authorization: "Bearer t" } });
      expect(await get.text()).toBe("still serving");
    },
    fuzzTimeout(150, 100),
  );
});
