/**
 * The test PKI (test/fixtures/tls-certs.ts) makes what the TLS tests rely on: a member certificate
 * that a client trusting the test CA accepts for 127.0.0.1, that a client trusting another CA
 * refuses, and that does not pass for another address. Real TLS handshakes on 127.0.0.1.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type AddressInfo } from "node:net";
import { connect, createServer, type Server } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, pem, type TestPki } from "../fixtures/tls-certs.ts";

let pki: TestPki;
let other: TestPki;
let server: Server;
let port: number;

beforeAll(async () => {
  pki = createTestPki();
  other = createTestPki("another CA");
  const n1 = pki.issue("n1");
  server = createServer({ cert: pem(n1.cert), key: pem(n1.key) }, (socket) => socket.end("hello"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  pki?.cleanup();
  other?.cleanup();
});

/** The TLS handshake's outcome: "ok" or the error code the client saw. */
function dial(ca: string, servername?: string, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca: pem(ca), servername }, () => {
      socket.end();
      resolve("ok");
    });
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe("test PKI", () => {
  it("issues a leaf for 127.0.0.1 and localhost, signed by its CA, valid for the days asked", () => {
    const cert = new X509Certificate(readFileSync(pki.issue("n2", { days: 10 }).cert));
    const ca = new X509Certificate(readFileSync(pki.ca.cert));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.checkIP("10.0.0.1")).toBeUndefined();
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(9);
    expect(days).toBeLessThanOrEqual(10);
    expect(cert.verify(new X509Certificate(readFileSync(other.ca.cert)).publicKey)).toBe(false);
  });

  it("a client trusting the CA completes the handshake; one trusting another CA or dialing another name is refused", async () => {
    expect(await dial(pki.ca.cert)).toBe("ok");
    expect(await dial(pki.ca.cert, "localhost")).toBe("ok");
    expect(await dial(other.ca.cert)).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(await dial(pki.ca.cert, "example.org")).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });
});
