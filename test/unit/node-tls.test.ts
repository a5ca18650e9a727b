/**
 * adapters/node/tls.ts on real TLS sockets on 127.0.0.1, with certificates made at test time
 * (test/fixtures/tls-certs.ts): the files are checked before use, fetch and the mesh's WebSocket
 * trust exactly the given CA and say clearly why they refuse a peer, a reload serves the new
 * certificate without a restart, mutual TLS tells a peer with a good client certificate from one
 * without, and expiry within 30 days is reported.
 */
import { copyFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { connect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { NodeTls, TlsConfigError, tlsExpiry } from "../../adapters/node/tls.ts";
import { createTestPki, pem, type TestPki } from "../fixtures/tls-certs.ts";

let pki: TestPki;
let other: TestPki;
const servers: Server[] = [];

beforeAll(() => {
  pki = createTestPki();
  other = createTestPki("another CA");
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});
afterAll(() => {
  pki?.cleanup();
  other?.cleanup();
});

/** An https server with `tls`, answering its CN-free hello and the client certificate check. */
async function serve(tls: NodeTls): Promise<{ server: Server; url: string; port: number }> {
  const server = createServer(tls.serverOptions(), (req, res) => {
    const problem = tls.peerCertificateProblem(req.socket);
    res.writeHead(200, { "content-type": "text/plain", "x-test": "1" });
    res.end(`${req.method} ${req.url} ${problem ?? "ok"}`);
  });
  tls.attach(server);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { server, url: `https://127.0.0.1:${port}`, port };
}

function servedCN(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, ca: pem(ca) }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    });
    s.on("error", reject);
  });
}

describe("loading", () => {
  it("refuses missing, non-PEM and mismatched files, naming the file", () => {
    const n1 = pki.issue("load-n1");
    const n2 = pki.issue("load-n2");
    const notPem = `${pki.dir}/not.pem`;
    writeFileSync(notPem, "hello");
    const fail = (files: ConstructorParameters<typeof NodeTls>[0]): TlsConfigError => {
      try {
        new NodeTls(files);
      } catch (e) {
        expect(e).toBeInstanceOf(TlsConfigError);
        return e as TlsConfigError;
      }
      throw new Error("no error");
    };
    expect(fail({ cert: `${pki.dir}/missing.crt`, key: n1.key }).message).toMatch(/missing\.crt: cannot read the certificate: ENOENT/);
    expect(fail({ cert: notPem, key: n1.key }).message).toMatch(/not\.pem: the certificate is not PEM/);
    expect(fail({ cert: n1.cert, key: n2.key }).message).toContain(`${n2.key}: this key does not belong to the certificate ${n1.cert}`);
    expect(fail({ cert: n1.cert, key: n1.key, clientCert: n1.cert }).message).toMatch(/--tls-client-cert and --tls-client-key go together/);
    expect(fail({ cert: n1.cert, key: n1.key, requireClientCert: true }).message).toMatch(/mutual TLS needs --tls-ca/);
    expect(new NodeTls({ cert: n1.cert, key: n1.key, ca: pki.ca.cert }).material.subject).toBe("CN=load-n1");
  });

  it("reports a certificate expiring within 30 days", () => {
    const soon = new NodeTls({ ...pki.issue("soon", { days: 10 }) }).expiry();
    expect(soon.expiresSoon).toBe(true);
    expect(soon.daysLeft).toBe(9);
    expect(new NodeTls({ ...pki.issue("later", { days: 90 }) }).expiry().expiresSoon).toBe(false);
    const notAfter = new Date("2027-01-01T00:00:00Z");
    expect(tlsExpiry(notAfter, Date.parse("2027-01-02T00:00:00Z"))).toEqual({ notAfter: notAfter.toISOString(), daysLeft: -1, expiresSoon: true });
  });
});

describe("fetch and WebSocket to peers", () => {
  it("fetch trusts the given CA; another CA's or a mismatching certificate is refused with a clear reason", async () => {
    const { url } = await serve(new NodeTls({ ...pki.issue("f1"), ca: pki.ca.cert }));
    const trusting = new NodeTls({ ...pki.issue("f2"), ca: pki.ca.cert });
    const res = await trusting.fetch(`${url}/status?x=1`, { method: "POST", body: new Uint8Array([104, 105]), headers: { a: "b" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-test")).toBe("1");
    expect(await res.text()).toBe("POST /status?x=1 ok");

    const stranger = new NodeTls({ ...other.issue("f3"), ca: other.ca.cert });
    await expect(stranger.fetch(`${url}/status`)).rejects.toThrow(/^TLS: refused https:\/\/127\.0\.0\.1:\d+: its certificate is not signed by a trusted CA/);

    const elsewhere = await serve(new NodeTls({ ...pki.issue("f4", { ips: ["10.1.2.3"], dns: ["example.org"] }) }));
    await expect(trusting.fetch(`${elsewhere.url}/`)).rejects.toThrow(/TLS: refused .*: its certificate does not match the URL's host name or address/);
    // The system's CAs are not trusted instead of --tls-ca's either.
    await expect(globalThis.fetch(`${url}/status`)).rejects.toThrow();
  });

  it("the mesh's WebSocket dials wss:// with the CA, and a refusal's error says why", async () => {
    const tls = new NodeTls({ ...pki.issue("w1"), ca: pki.ca.cert });
    const { server, port } = await serve(tls);
    const wss = new WebSocketServer({ server });
    wss.on("connection", (ws) => ws.send("hi"));
    const Ws = new NodeTls({ ...pki.issue("w2"), ca: pki.ca.cert }).webSocket();
    const ok = new Ws(`wss://127.0.0.1:${port}/raft`);
    expect(await new Promise((r) => ok.on("message", (d) => r(String(d))))).toBe("hi");
    ok.close();

    const Stranger = new NodeTls({ ...other.issue("w3"), ca: other.ca.cert }).webSocket();
    const bad = new Stranger(`wss://127.0.0.1:${port}/raft`);
    const error = await new Promise<Error>((r) => bad.on("error", r));
    expect(error.message).toMatch(/^TLS: refused wss:\/\/127\.0\.0\.1:\d+\/raft: its certificate is not signed by a trusted CA/);
    // A plain-text dial to a TLS member fails (no upgrade), without hanging.
    const plain = new WebSocket(`ws://127.0.0.1:${port}/raft`);
    plain.on("error", () => {});
    expect(await new Promise((r) => plain.on("close", () => r("closed")))).toBe("closed");
    wss.close();
  });
});

describe("reload", () => {
  it("serves the new certificate after reload(), without a restart; a broken file keeps the old one", async () => {
    const first = pki.issue("r1");
    const files = { cert: `${pki.dir}/live.crt`, key: `${pki.dir}/live.key` };
    copyFileSync(first.cert, files.cert);
    copyFileSync(first.key, files.key);
    const tls = new NodeTls(files);
    const { port } = await serve(tls);
    expect(await servedCN(port, pki.ca.cert)).toBe("r1");

    const second = pki.issue("r2");
    copyFileSync(second.cert, files.cert);
    copyFileSync(second.key, files.key);
    expect(tls.reload().subject).toBe("CN=r2");
    expect(await servedCN(port, pki.ca.cert)).toBe("r2");

    writeFileSync(files.key, "garbage");
    expect(() => tls.reload()).toThrow(TlsConfigError);
    expect(await servedCN(port, pki.ca.cert)).toBe("r2");
  });
});

describe("mutual TLS", () => {
  it("a peer with a client certificate from the CA passes; none, or one from another CA, is named as the problem", async () => {
    const tls = new NodeTls({ ...pki.issue("m1"), ca: pki.ca.cert, requireClientCert: true });
    const { url } = await serve(tls);
    const withCert = (c: { cert: string; key: string }) => new NodeTls({ ...c, ca: pki.ca.cert, clientCert: c.cert, clientKey: c.key });
    expect(await (await withCert(pki.issue("m2")).fetch(url)).text()).toBe("GET / ok");
    expect(await (await new NodeTls({ ...pki.issue("m3"), ca: pki.ca.cert }).fetch(url)).text()).toMatch(/no client certificate/);
    expect(await (await withCert(other.issue("m4")).fetch(url)).text()).toMatch(/client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });
});
