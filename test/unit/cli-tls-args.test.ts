/**
 * `meshraft start`'s TLS and rate flags (issue 15): --tls-cert/--tls-key go together and make the
 * default URL https://, --tls-ca, mutual TLS (--tls-client-cert/--tls-client-key,
 * --tls-require-client-cert) and --rate-limit are checked with messages that say what to type.
 */
import { describe, expect, it } from "vitest";
import { parseStartArgs, UsageError } from "../../src/cli-args.ts";

const base = ["--id", "n1", "--listen", "127.0.0.1:7001", "--data-dir", "/tmp/x"];

describe("TLS flags", () => {
  it("--tls-cert and --tls-key give the files and an https:// default URL", () => {
    const a = parseStartArgs([...base, "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"]);
    expect(a.tls).toEqual({ cert: "c.pem", key: "k.pem", ca: "ca.pem" });
    expect(a.url).toBe("https://127.0.0.1:7001");
    expect(parseStartArgs(base).tls).toBeUndefined();
    expect(parseStartArgs(base).url).toBe("http://127.0.0.1:7001");
    // Behind a proxy that terminates TLS, the URL is https:// without a certificate here.
    expect(parseStartArgs([...base, "--url", "https://raft.example.com"]).url).toBe("https://raft.example.com");
  });

  it("mutual TLS: client certificate and key together; requiring client certificates needs a CA", () => {
    const a = parseStartArgs([
      ...base, "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca", "--tls-client-cert", "cc", "--tls-client-key", "ck", "--tls-require-client-cert",
    ]);
    expect(a.tls).toEqual({ cert: "c", key: "k", ca: "ca", clientCert: "cc", clientKey: "ck", requireClientCert: true });
    // A member without a server certificate may still dial TLS peers with a CA and a client certificate.
    expect(parseStartArgs([...base, "--tls-ca", "ca"]).tls).toEqual({ ca: "ca" });
  });

  it.each([
    [["--tls-cert", "c"], /--tls-cert and --tls-key go together/],
    [["--tls-key", "k"], /--tls-cert and --tls-key go together/],
    [["--tls-cert", "c", "--tls-key", "k", "--tls-client-cert", "cc"], /--tls-client-cert and --tls-client-key go together/],
    [["--tls-cert", "c", "--tls-key", "k", "--tls-require-client-cert"], /--tls-require-client-cert needs --tls-ca/],
    [["--tls-require-client-cert", "--tls-ca", "ca"], /--tls-require-client-cert needs --tls-cert/],
    [["--tls-cert", "c", "--tls-key", "k", "--url", "http://127.0.0.1:7001"], /--url is http:\/\/ but this member serves TLS/],
    [["--rate-limit", "0"], /--rate-limit takes a positive number of requests per second/],
    [["--rate-limit", "x"], /--rate-limit takes a positive number of requests per second/],
  ])("refuses %j", (extra, message) => {
    expect(() => parseStartArgs([...base, ...extra])).toThrow(UsageError);
    expect(() => parseStartArgs([...base, ...extra])).toThrow(message);
  });

  it("--rate-limit N sets requests per second per client address", () => {
    expect(parseStartArgs([...base, "--rate-limit", "200"]).limits?.requestsPerSecondPerClient).toBe(200);
    expect(parseStartArgs(base).limits?.requestsPerSecondPerClient).toBeUndefined();
  });
});
