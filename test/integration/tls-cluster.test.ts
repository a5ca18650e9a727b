/**
 * Members over TLS (issue 15), as real `meshraft start` processes on 127.0.0.1 with certificates
 * made at test time by a private CA (test/fixtures/tls-certs.ts): the API over https and the mesh
 * over wss, trusting the CA with --tls-ca. A 3-member cluster elects, replicates and survives
 * SIGKILL of its leader; a member whose certificate another CA signed is refused with a clear log
 * line; a plain-text dial to a TLS member fails cleanly; clients use https; mutual TLS refuses a
 * peer without a client certificate; SIGHUP serves a new certificate; expiry shows in /status.
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NodeTls } from "../../adapters/node/tls.ts";
import { MeshraftClient } from "../../src/client/index.ts";
import { createTestPki, pem, type TestPki } from "../fixtures/tls-certs.ts";
import { ProcessCluster, sleep } from "./process-cluster.ts";

let pki: TestPki;
let other: TestPki;
/** What the test calls members with: trusts the test CA. */
let trusting: NodeTls;
let cluster: ProcessCluster | null = null;

beforeAll(() => {
  pki = createTestPki();
  other = createTestPki("another CA");
  trusting = new NodeTls({ ...pki.issue("test-client"), ca: pki.ca.cert });
});
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});
afterAll(() => {
  pki?.cleanup();
  other?.cleanup();
});

/** A member's TLS flags: its certificate from `ca` (default the test CA), trusting the test CA. */
function tlsArgs(id: string, ca: TestPki = pki, extra: string[] = []): string[] {
  const c = ca.issue(`${id}-${Math.random().toString(36).slice(2, 8)}`);
  return ["--tls-cert", c.cert, "--tls-key", c.key, "--tls-ca", pki.ca.cert, ...extra];
}

async function waitForLog(c: ProcessCluster, id: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = c.logs.get(id)!.find((l) => pattern.test(l));
    if (line) return line;
    await sleep(100);
  }
  throw new Error(`no log line of ${id} matching ${pattern} within ${timeoutMs} ms\n${c.tail()}`);
}

function servedSubject(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, ca: pem(pki.ca.cert) }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    });
    s.on("error", reject);
  });
}

describe("a TLS cluster (Node)", () => {
  it("elects, replicates over wss, serves clients over https and survives SIGKILL of its leader", async () => {
    cluster = await ProcessCluster.start({ nodes: 3, scheme: "https", fetch: trusting.fetch, secret: "s3cret", extraArgs: (id) => tlsArgs(id) });
    const c = cluster;
    const leader = await c.waitForLeader(60_000);
    const client = new MeshraftClient({ urls: c.urls(), fetch: trusting.fetch, retryBudgetMs: 30_000 });
    for (let i = 0; i < 10; i++) await client.put(`k${i}`, `v${i}`);
    expect(new TextDecoder().decode((await client.get("k9"))!)).toBe("v9");
    for (const id of c.ids) expect(c.url(id)).toMatch(/^https:/);

    await c.kill(leader);
    const next = await c.waitForLeader(60_000, c.ids.filter((id) => id !== leader));
    expect(next).not.toBe(leader);
    await client.put("after", "kill");
    for (let i = 0; i < 10; i++) expect(new TextDecoder().decode((await client.get(`k${i}`))!)).toBe(`v${i}`);
    c.spawn(leader);
    await c.waitForCatchUp(leader, next, 60_000);

    // A plain-text request to a TLS member fails, and the member keeps serving.
    await expect(fetch(`http://127.0.0.1:${c.ports.get(next)}/status`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect((await c.status(next))?.role).toBe("leader");
  }, 180_000);

  it("a member whose certificate another CA signed is refused with a clear log line; the others go on", async () => {
    // n1 and n2 dial n3 (the lower id dials): its certificate is not signed by the CA they trust.
    cluster = await ProcessCluster.start({
      nodes: 3,
      scheme: "https",
      fetch: trusting.fetch,
      secret: "s3cret",
      extraArgs: (id) => tlsArgs(id, id === "n3" ? other : pki),
    });
    const c = cluster;
    await c.waitForLeader(60_000, ["n1", "n2"]);
    const line = await waitForLog(c, "n1", /TLS: refused wss:\/\/127\.0\.0\.1:\d+\/raft: its certificate is not signed by a trusted CA/);
    expect(line).toContain(String(c.ports.get("n3")));
    const client = new MeshraftClient({ urls: [c.url("n1"), c.url("n2")], fetch: trusting.fetch, retryBudgetMs: 30_000 });
    await client.put("k", "v");
    const n3 = new NodeTls({ ...other.issue("n3-client"), ca: other.ca.cert });
    const status = (await (await n3.fetch(`${c.url("n3")}/status`)).json()) as { commitIndex: number; leader: string | null };
    expect(status.commitIndex).toBe(0);
  }, 120_000);

  it("a plain-text member dialing a TLS member fails cleanly: a clear log line, both keep running", async () => {
    // n1 serves plain HTTP and lists n2 with http://; n2 serves TLS.
    cluster = await ProcessCluster.start({
      nodes: 2,
      secret: "s3cret",
      extraArgs: (id) => (id === "n2" ? tlsArgs(id) : []),
    });
    const c = cluster;
    await waitForLog(c, "n2", /TLS: handshake with a client failed: a plain-text request \(http:\/\/, ws:\/\/\) reached this TLS port/);
    await sleep(1000);
    expect(c.alive("n1") && c.alive("n2")).toBe(true);
    expect((await c.status("n1"))?.id).toBe("n1");
  }, 60_000);
});

describe("a TLS cluster of Node and Deno members", () => {
  it("elects, replicates over wss between runtimes and survives SIGKILL of its leader", async () => {
    cluster = await ProcessCluster.start({
      members: { n1: { runtime: "node" }, n2: { runtime: "node" }, n3: { runtime: "deno" } },
      scheme: "https",
      fetch: trusting.fetch,
      secret: "s3cret",
      readPaths: [pki.dir],
      extraArgs: (id) => tlsArgs(id),
    });
    const c = cluster;
    const leader = await c.waitForLeader(60_000);
    const client = new MeshraftClient({ urls: c.urls(), fetch: trusting.fetch, retryBudgetMs: 30_000 });
    for (let i = 0; i < 5; i++) await client.put(`k${i}`, `v${i}`);
    await c.waitForCatchUp("n3", leader, 60_000); // the Deno member has it all, over wss
    await c.kill(leader);
    const next = await c.waitForLeader(60_000, c.ids.filter((id) => id !== leader));
    await client.put("after", "kill");
    for (let i = 0; i < 5; i++) expect(new TextDecoder().decode((await client.get(`k${i}`))!)).toBe(`v${i}`);
    expect((await c.status(next))?.role).toBe("leader");
  }, 240_000);
});

describe("mutual TLS, reload and expiry", () => {
  it("with --tls-require-client-cert a peer without a client certificate is refused; with one it links", async () => {
    const withClient = (id: string): string[] => {
      const own = pki.issue(`${id}-client`);
      return tlsArgs(id, pki, ["--tls-require-client-cert", "--tls-client-cert", own.cert, "--tls-client-key", own.key]);
    };
    cluster = await ProcessCluster.start({
      nodes: 3,
      scheme: "https",
      fetch: trusting.fetch,
      secret: "s3cret",
      // n1 presents no client certificate: n2 and n3 refuse its dials.
      extraArgs: (id) => (id === "n1" ? tlsArgs(id, pki, ["--tls-require-client-cert"]) : withClient(id)),
    });
    const c = cluster;
    await c.waitForLeader(60_000, ["n2", "n3"]);
    await waitForLog(c, "n2", /client certificate|no client certificate/);
    const client = new MeshraftClient({ urls: [c.url("n2"), c.url("n3")], fetch: trusting.fetch, retryBudgetMs: 30_000 });
    await client.put("k", "v"); // clients need no certificate
    expect(((await c.status("n1"))?.commitIndex ?? 0)).toBe(0);
  }, 120_000);

  it("SIGHUP serves a renewed certificate without a restart; /status and the log report one that expires within 30 days", async () => {
    const first = pki.issue("hup-1", { days: 10 });
    const live = { cert: join(pki.dir, "hup-live.crt"), key: join(pki.dir, "hup-live.key") };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    cluster = await ProcessCluster.start({
      nodes: 1,
      scheme: "https",
      fetch: trusting.fetch,
      extraArgs: () => ["--tls-cert", live.cert, "--tls-key", live.key, "--tls-ca", pki.ca.cert],
    });
    const c = cluster;
    await c.waitForLeader(60_000);
    const port = c.ports.get("n1")!;
    expect(await servedSubject(port)).toBe("hup-1");
    const status = (await (await trusting.fetch(`${c.url("n1")}/status`)).json()) as { tls?: { daysLeft: number; expiresSoon: boolean } };
    expect(status.tls).toMatchObject({ daysLeft: 9, expiresSoon: true });
    await waitForLog(c, "n1", /warn .*TLS: the certificate CN=hup-1 expires on .* \(in 9 days\)/);

    const second = pki.issue("hup-2", { days: 90 });
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    c.signal("n1", "SIGHUP");
    await waitForLog(c, "n1", /TLS: reloaded .*CN=hup-2/);
    expect(await servedSubject(port)).toBe("hup-2");
    const after = (await (await trusting.fetch(`${c.url("n1")}/status`)).json()) as { tls?: { expiresSoon: boolean } };
    expect(after.tls?.expiresSoon).toBe(false);
    expect(c.alive("n1")).toBe(true);
  }, 90_000);
});
