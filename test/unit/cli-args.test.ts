/** `meshraft start` flags: defaults, the loopback-only rule without a secret, and clear usage errors. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseStartArgs, UsageError } from "../../src/cli-args.ts";
import { MAX_URL_BYTES } from "../../src/core/member-url.ts";
import { fuzzParams } from "./fuzz-settings.ts";

const base = ["--id", "n1", "--listen", "127.0.0.1:7001", "--data-dir", "/tmp/d"];

describe("meshraft start arguments", () => {
  it("parses a member with peers, defaulting the advertised URL to the listen address", () => {
    const a = parseStartArgs([...base, "--peer", "n2=http://127.0.0.1:7002", "--peer", "n3=http://127.0.0.1:7003/"]);
    expect(a).toMatchObject({
      id: "n1",
      listen: { host: "127.0.0.1", port: 7001 },
      url: "http://127.0.0.1:7001",
      dataDir: "/tmp/d",
      clusterId: "meshraft",
      peers: [
        { id: "n2", url: "http://127.0.0.1:7002" },
        { id: "n3", url: "http://127.0.0.1:7003" },
      ],
    });
  });

  it("takes the secret and token from flags or from MESHRAFT_SECRET / MESHRAFT_TOKEN", () => {
    expect(parseStartArgs([...base, "--secret", "s", "--token", "t"])).toMatchObject({ secret: "s", token: "t" });
    expect(parseStartArgs(base, { MESHRAFT_SECRET: "s2", MESHRAFT_TOKEN: "t2" })).toMatchObject({ secret: "s2", token: "t2" });
  });

  it("refuses a non-loopback listen address without a secret, unless --insecure", () => {
    const open = ["--id", "n1", "--listen", "0.0.0.0:7001", "--data-dir", "/tmp/d"];
    expect(() => parseStartArgs(open)).toThrow(/refusing to listen on 0.0.0.0 without --secret/);
    expect(parseStartArgs([...open, "--secret", "s"]).secret).toBe("s");
    expect(parseStartArgs([...open, "--insecure"]).insecure).toBe(true);
  });

  it("takes snapshot thresholds in entries and in bytes", () => {
    expect(parseStartArgs([...base, "--snapshot-every", "500", "--snapshot-bytes", "1048576"])).toMatchObject({ node: { snapshotEveryEntries: 500, snapshotEveryBytes: 1048576 } });
    expect(parseStartArgs(base).node?.snapshotEveryBytes).toBeUndefined();
    expect(() => parseStartArgs([...base, "--snapshot-bytes", "1MiB"])).toThrow(/--snapshot-bytes takes a whole number of bytes/);
  });

  it("--read-mode chooses how reads are confirmed: read-index (the default) or lease", () => {
    expect(parseStartArgs(base).node?.readMode).toBeUndefined();
    expect(parseStartArgs([...base, "--read-mode", "lease"]).node?.readMode).toBe("lease");
    expect(parseStartArgs([...base, "--read-mode=read-index"]).node?.readMode).toBe("read-index");
    expect(() => parseStartArgs([...base, "--read-mode", "fast"])).toThrow(/--read-mode is read-index or lease, got "fast"/);
  });

  it("checks the node's settings with the node's own validate(): a heartbeat no shorter than the election timeout is a usage error", () => {
    expect(() => parseStartArgs([...base, "--heartbeat-interval-ms", "2000", "--election-timeout-ms", "1000"])).toThrow(
      /the node's settings do not go together: electionTicks \(40\) must exceed heartbeatTicks \(80\)/,
    );
    expect(() => parseStartArgs([...base, "--heartbeat-interval-ms", "2000", "--election-timeout-ms", "1000"])).toThrow(UsageError);
    expect(parseStartArgs([...base, "--heartbeat-interval-ms", "100", "--election-timeout-ms", "1000"]).node).toMatchObject({ heartbeatIntervalMs: 100, electionTimeoutMs: 1000 });
  });

  it("--private-status makes /status need the token; it is public by default", () => {
    expect(parseStartArgs(base).privateStatus).toBe(false);
    expect(parseStartArgs([...base, "--private-status"]).privateStatus).toBe(true);
  });

  it("says what is wrong with bad input", () => {
    expect(() => parseStartArgs(["--listen", "127.0.0.1:1", "--data-dir", "d"])).toThrow(/--id is required/);
    expect(() => parseStartArgs([...base.slice(0, 2), "--listen", "7001", "--data-dir", "d"])).toThrow(/--listen takes HOST:PORT/);
    expect(() => parseStartArgs([...base, "--peer", "n2"])).toThrow(/--peer takes ID=URL/);
    expect(() => parseStartArgs([...base, "--peer", "n1=http://x:1"])).toThrow(/this node's own id/);
    expect(() => parseStartArgs([...base, "--peer", "n2=ftp://x"])).toThrow(/only http/);
    expect(() => parseStartArgs([...base, "--bogus", "1"])).toThrow(/unknown option --bogus/);
    expect(() => parseStartArgs([...base, "--election-timeout-ms", "-5"])).toThrow(/positive whole number/);
    expect(() => parseStartArgs(["--id", "bad id", "--listen", "127.0.0.1:1", "--data-dir", "d"])).toThrow(/--id: member id "bad id" is not/);
  });

  it("refuses ids that break the member id rule, built-in object property names included, as --id and in --peer", () => {
    for (const bad of ["__proto__", "constructor", "a\nb", ".", "x".repeat(65)]) {
      expect(() => parseStartArgs(["--id", bad, "--listen", "127.0.0.1:1", "--data-dir", "d"])).toThrow(UsageError);
      expect(() => parseStartArgs([...base, "--peer", `${bad}=http://127.0.0.1:7002`])).toThrow(UsageError);
    }
    expect(parseStartArgs(["--id", "n.1", "--listen", "127.0.0.1:1", "--data-dir", "d"]).id).toBe("n.1");
  });

  it("refuses a --url, --peer or --join URL longer than MAX_URL_BYTES (2048), the limit of every layer", () => {
    const at = (bytes: number): string => `http://127.0.0.1:7002/${"p".repeat(bytes - "http://127.0.0.1:7002/".length)}`;
    expect(at(MAX_URL_BYTES)).toHaveLength(2048);
    expect(parseStartArgs([...base, "--url", at(MAX_URL_BYTES)]).url).toBe(at(MAX_URL_BYTES));
    expect(parseStartArgs([...base, "--peer", `n2=${at(MAX_URL_BYTES)}`]).peers).toEqual([{ id: "n2", url: at(MAX_URL_BYTES) }]);
    const tooLong = at(MAX_URL_BYTES + 1);
    for (const args of [["--url", tooLong], ["--peer", `n2=${tooLong}`], ["--join", tooLong]]) {
      expect(() => parseStartArgs([...base, ...args])).toThrow(UsageError);
      expect(() => parseStartArgs([...base, ...args])).toThrow(/the URL is 2049 bytes; member URLs are limited to 2048 bytes/);
    }
    // Counted in UTF-8 bytes, as the wire counts them: 1,000 two-byte characters are 2,000 bytes.
    expect(() => parseStartArgs([...base, "--url", `http://127.0.0.1:7002/${"é".repeat(1_020)}`])).toThrow(/is 2062 bytes/);
  });
});

describe("secrets and tokens from files", () => {
  const read = (path: string): string => readFileSync(path, "utf8");

  it("--secret-file, --token-file and --admin-token-file read the value from a file (one final line break dropped), without a warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshraft-secrets-"));
    try {
      writeFileSync(join(dir, "secret"), "s3cr3t value\n");
      writeFileSync(join(dir, "token"), "tok\r\n");
      writeFileSync(join(dir, "admin"), "adm");
      const a = parseStartArgs(
        [...base, "--secret-file", join(dir, "secret"), "--token-file", join(dir, "token"), "--admin-token-file", join(dir, "admin")],
        {},
        read,
      );
      expect(a).toMatchObject({ secret: "s3cr3t value", token: "tok", adminToken: "adm", warnings: [] });
      writeFileSync(join(dir, "empty"), "\n");
      expect(() => parseStartArgs([...base, "--secret-file", join(dir, "empty")], {}, read)).toThrow(/--secret-file .* is empty/);
      expect(() => parseStartArgs([...base, "--token-file", join(dir, "missing")], {}, read)).toThrow(UsageError);
      expect(() => parseStartArgs([...base, "--secret", "x", "--secret-file", join(dir, "secret")], {}, read)).toThrow(/do not go together/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("warns about every secret given on the command line (visible in ps), never about the environment", () => {
    const a = parseStartArgs([...base, "--secret", "s", "--token", "t", "--admin-token", "a"]);
    expect(a.warnings).toHaveLength(3);
    expect(a.warnings![0]).toMatch(/--secret on the command line is visible to every local user \(ps\); use --secret-file FILE or MESHRAFT_SECRET/);
    for (const w of a.warnings!) expect(w).not.toMatch(/=s\b| s$/);
    expect(parseStartArgs(base, { MESHRAFT_SECRET: "s", MESHRAFT_TOKEN: "t" }).warnings).toEqual([]);
  });
});

describe("fuzz: CLI arguments", () => {
  const flags = [
    "--id", "--listen", "--data-dir", "--peer", "--url", "--cluster-id", "--secret", "--token", "--admin-token",
    "--secret-file", "--token-file", "--admin-token-file", "--join", "--learner", "--insecure", "--election-timeout-ms",
    "--heartbeat-interval-ms", "--log-level", "--snapshot-every", "--snapshot-bytes", "--snapshot-margin", "--bogus", "-h",
    "--rate-limit", "--tls-cert", "--tls-key", "--tls-ca", "--tls-client-cert", "--tls-client-key", "--tls-require-client-cert",
  ];
  const values = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom("n1", "n2", "__proto__", "127.0.0.1:7001", "0.0.0.0:1", "7001", "n2=http://127.0.0.1:7002", "n2=", "=x",
      "http://127.0.0.1:7002", "ftp://x", "-5", "0", "99999999999999999999", "debug", "d", "", "\n", "--id"),
    fc.constantFrom(...flags).map((f) => `${f}=x`),
  );
  const argv = fc.array(fc.oneof(fc.constantFrom(...flags), values), { maxLength: 14 });

  it("parseStartArgs returns StartArgs or throws UsageError, never anything else", () => {
    let parsed = 0;
    fc.assert(
      fc.property(argv, fc.boolean(), (args, withBase) => {
        try {
          const a = parseStartArgs(withBase ? [...base, ...args] : args, {}, () => "file-secret");
          expect(typeof a.id).toBe("string");
          parsed++;
        } catch (error) {
          if (!(error instanceof UsageError)) throw error;
          expect(error.message.length).toBeGreaterThan(0);
        }
      }),
      fuzzParams(3000),
    );
    expect(parsed).toBeGreaterThan(0);
  });
});
