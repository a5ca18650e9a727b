/**
 * TLS for a Node member: the certificate it serves (HTTP API and `/raft` over https/wss), the CA it
 * trusts when it dials peers (ws) and calls them (fetch, when joining), optional mutual TLS for
 * peers, reload without a restart (SIGHUP), and the expiry warning.
 *
 * There is deliberately no "skip verification" switch: a cluster on self-signed certificates
 * trusts its private CA with `--tls-ca`. A peer whose certificate does not match its URL, or is
 * signed by another CA, is refused, and the dial's log line says which and why (`describeTlsError`).
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import WebSocket from "ws";
import { MeshraftError } from "../../src/errors.ts";

/** Where a member's TLS material is (PEM files), as the CLI flags name them. */
export interface TlsFiles {
  /** --tls-cert: the member's certificate (chain), served to clients and peers. */
  cert: string;
  /** --tls-key: its private key. */
  key: string;
  /** --tls-ca: CA certificate(s) trusted for peers (instead of the system's list), and for mutual TLS. */
  ca?: string;
  /** --tls-client-cert / --tls-client-key: presented when dialing peers (mutual TLS). */
  clientCert?: string;
  clientKey?: string;
  /** Refuse a `/raft` socket whose client certificate is not signed by `ca` (mutual TLS). */
  requireClientCert?: boolean;
}

/** A certificate closer to expiry than this is reported in /status and the logs. */
export const EXPIRY_WARNING_DAYS = 30;

/** The TLS files are missing, unreadable, not PEM, or do not belong together. */
export class TlsConfigError extends MeshraftError {
  readonly file: string;
  constructor(file: string, reason: string) {
    super("TLS_CONFIG", `TLS: ${file}: ${reason}`);
    this.file = file;
  }
}

/** The loaded files, checked. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  /** The served certificate's end of validity. */
  notAfter: Date;
  /** Its subject, for log lines ("CN=n1"). */
  subject: string;
}

export interface TlsExpiry {
  notAfter: string;
  daysLeft: number;
  /** Fewer than EXPIRY_WARNING_DAYS days left (or expired). */
  expiresSoon: boolean;
}

function read(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new TlsConfigError(file, `cannot read the ${what}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TlsConfigError(file, `the ${what} is not PEM`);
  return text;
}

function certificate(file: string, pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new TlsConfigError(file, `the ${what} is not a certificate: ${(e as Error).message}`);
  }
}

function keyFor(certFile: string, cert: X509Certificate, keyFile: string, keyPem: string): void {
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new TlsConfigError(keyFile, `not a private key: ${(e as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new TlsConfigError(keyFile, `this key does not belong to the certificate ${certFile}`);
}

/** Reads and checks the files (each certificate parses, each key matches its certificate). */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = read(files.cert, "certificate");
  const key = read(files.key, "private key");
  const x509 = certificate(files.cert, cert, "certificate");
  keyFor(files.cert, x509, files.key, key);
  const material: TlsMaterial = { cert, key, notAfter: new Date(x509.validTo), subject: x509.subject.replace(/\n/g, ", ") };
  if (files.ca !== undefined) {
    material.ca = read(files.ca, "CA certificate");
    certificate(files.ca, material.ca, "CA certificate");
  } else if (files.requireClientCert) {
    throw new TlsConfigError(files.cert, "mutual TLS needs --tls-ca, the CA that signs the peers' client certificates");
  }
  if ((files.clientCert === undefined) !== (files.clientKey === undefined)) {
    throw new TlsConfigError(files.clientCert ?? files.clientKey!, "--tls-client-cert and --tls-client-key go together");
  }
  if (files.clientCert !== undefined && files.clientKey !== undefined) {
    material.clientCert = read(files.clientCert, "client certificate");
    material.clientKey = read(files.clientKey, "client key");
    keyFor(files.clientCert, certificate(files.clientCert, material.clientCert, "client certificate"), files.clientKey, material.clientKey);
  }
  return material;
}

/** Days until `notAfter` (negative once expired), and whether that is within the warning window. */
export function tlsExpiry(notAfter: Date, now: number = Date.now()): TlsExpiry {
  const daysLeft = Math.floor((notAfter.getTime() - now) / 86_400_000);
  return { notAfter: notAfter.toISOString(), daysLeft, expiresSoon: daysLeft < EXPIRY_WARNING_DAYS };
}

const UNTRUSTED = "its certificate is not signed by a trusted CA (give the cluster's CA with --tls-ca)";

const TLS_ERRORS: Record<string, string> = {
  ERR_TLS_CERT_ALTNAME_INVALID: "its certificate does not match the URL's host name or address",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: "its certificate is self-signed and not trusted (sign it with the cluster's CA, given with --tls-ca)",
  CERT_HAS_EXPIRED: "its certificate has expired",
  CERT_NOT_YET_VALID: "its certificate is not valid yet",
  ERR_SSL_WRONG_VERSION_NUMBER: "it does not speak TLS (an http:// member dialed as https://?)",
  ERR_SSL_PACKET_LENGTH_TOO_LONG: "it does not speak TLS (an http:// member dialed as https://?)",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "it requires a client certificate (give one with --tls-client-cert/--tls-client-key)",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "it refused this member's client certificate (not signed by its CA?)",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "it refused this member's client certificate: signed by a CA it does not trust",
};

/** A clear sentence for a TLS failure reaching `url`, or null when `error` is not one. */
export function describeTlsError(error: unknown, url: string): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  const why = TLS_ERRORS[code];
  if (why === undefined) return null;
  return `TLS: refused ${url}: ${why} (${code}: ${(error as Error).message})`;
}

/**
 * A member's TLS: the current material, reloadable. Servers created with `serverOptions()` and
 * registered with `attach` get the new certificate on `reload()`; dials made after a reload use
 * the new CA and client certificate.
 */
export class NodeTls {
  readonly files: TlsFiles;
  #material: TlsMaterial;
  #agent: Agent;
  readonly #servers = new Set<{ setSecureContext(options: SecureContextOptions): void }>();

  constructor(files: TlsFiles) {
    this.files = files;
    this.#material = loadTls(files);
    this.#agent = this.#newAgent();
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** For https.createServer (and @hono/node-server's `serverOptions`). */
  serverOptions(): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } {
    const m = this.#material;
    // A client certificate is asked for but checked only on /raft (`peerCertificateProblem`), so
    // clients of the API need none.
    return { cert: m.cert, key: m.key, ca: m.ca, requestCert: this.files.requireClientCert === true, rejectUnauthorized: false };
  }

  /** TLS options of an outgoing connection to a peer (ws, https). */
  clientOptions(): { ca?: string; cert?: string; key?: string } {
    const m = this.#material;
    return { ca: m.ca, cert: m.clientCert, key: m.clientKey };
  }

  /** The server gets the new certificate on every `reload()`. */
  attach(server: { setSecureContext(options: SecureContextOptions): void }): void {
    this.#servers.add(server);
  }

  /**
   * Re-reads the files; on success the attached servers serve the new certificate at once and new
   * dials use the new CA. On failure the old material stays in use and the error is thrown.
   */
  reload(): TlsMaterial {
    const next = loadTls(this.files);
    this.#material = next;
    const old = this.#agent;
    this.#agent = this.#newAgent();
    old.destroy();
    for (const server of this.#servers) server.setSecureContext(this.serverOptions());
    return next;
  }

  expiry(now?: number): TlsExpiry {
    return tlsExpiry(this.#material.notAfter, now);
  }

  /**
   * Why an inbound `/raft` socket may not become a peer link: with mutual TLS, a missing client
   * certificate or one the CA did not sign. null when it may.
   */
  peerCertificateProblem(socket: unknown): string | null {
    if (!this.files.requireClientCert) return null;
    const tls = socket as Partial<TLSSocket> | null;
    if (!tls || typeof tls.getPeerCertificate !== "function") return "not a TLS connection";
    if (tls.authorized) return null;
    const cert = tls.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return "no client certificate (mutual TLS is required on /raft)";
    return `client certificate refused: ${String(tls.authorizationError ?? "not signed by the cluster's CA")}`;
  }

  /**
   * The `ws` WebSocket class the mesh dials peers with: this member's CA and client certificate,
   * and TLS failures rewritten into one clear sentence (`describeTlsError`) for the dial's log line.
   */
  webSocket(base: Record<string, unknown> = {}): new (url: string) => WebSocket {
    const tls = this;
    return class extends WebSocket {
      constructor(url: string) {
        super(url, { ...base, ...tls.clientOptions() });
        // Registered first, so the mesh's own error handler sees the rewritten message.
        this.on("error", (error: Error) => {
          const clear = describeTlsError(error, url);
          if (clear !== null) error.message = clear;
        });
      }
    };
  }

  /**
   * `fetch` for https URLs with this member's CA and client certificate (node:https underneath;
   * http URLs go to the global fetch). For MeshraftClient's `fetch` option and joining a cluster.
   */
  readonly fetch: typeof fetch = (input, init) => tlsFetch(() => this.#agent)(input, init);

  #newAgent(): Agent {
    return new Agent({ keepAlive: true, ...this.clientOptions() });
  }
}

/**
 * A minimal fetch over node:https with `agent()` (its CA and client certificate): what
 * MeshraftClient needs (method, headers, byte or text body, abort signal, no redirect following).
 */
export function tlsFetch(agent: () => Agent): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (url.protocol !== "https:") return globalThis.fetch(input, init);
    const body = req.body === null ? undefined : Buffer.from(await req.arrayBuffer());
    const headers: Record<string, string> = {};
    req.headers.forEach((value, name) => (headers[name] = value));
    return new Promise<Response>((resolve, reject) => {
      const signal = init?.signal ?? undefined;
      const done = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const h = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
          const status = res.statusCode ?? 0;
          const empty = status === 204 || status === 205 || status === 304 || req.method === "HEAD";
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: h }));
        });
      };
      let r: ClientRequest;
      try {
        r = httpsRequest(url, { method: req.method, headers, agent: agent(), signal }, done);
      } catch (e) {
        reject(e);
        return;
      }
      r.on("error", (error) => {
        const clear = describeTlsError(error, url.origin);
        reject(signal?.aborted ? signal.reason : new TypeError(clear ?? `fetch failed: ${error.message}`, { cause: error }));
      });
      r.end(body);
    });
  };
}
