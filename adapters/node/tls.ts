/**
 * TLS for a Node member: the certificate it serves (HTTP API and `/raft` over https/wss), the CA it
 * trusts when it dials peers (ws) and calls them (fetch, when joining), optional mutual TLS for
 * peers, reload without a restart (SIGHUP), and the expiry warning.
 *
 * There is deliberately no "skip verification" switch: a cluster on self-signed certificates
 * trusts its private CA with `--tls-ca` (in addition to the system's CAs, as on Deno). A peer whose certificate does not match its URL, or is
 * signed by another CA, is refused, and the dial's log line says which and why (`describeTlsError`).
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { rootCertificates, type SecureContextOptions, type TLSSocket } from "node:tls";
import type { Server as HttpsServer } from "node:https";
import type { MiddlewareHandler } from "hono";
import WebSocket from "ws";
import type { Logger } from "../../src/member.ts";
import type { WebSocketConstructor } from "../../src/transport/mesh.ts";
import { describeTlsError, expiryWarning, loadTlsFiles, x509Parser, type TlsExpiry, type TlsFiles, tlsExpiry, type TlsMaterial } from "../../src/tls.ts";

export { describeTlsError, EXPIRY_WARNING_DAYS, expiryWarning, TlsConfigError, type TlsExpiry, type TlsFiles, tlsExpiry, type TlsMaterial } from "../../src/tls.ts";

/** The files read with node:fs and checked with node:crypto's X509Certificate (Deno does the same). */
export function loadTls(files: TlsFiles): TlsMaterial {
  return loadTlsFiles(files, (path) => readFileSync(path, "utf8"), parseCertificate);
}

/** node:crypto's X.509 parser (Node's and Deno's alike). */
const parseCertificate = x509Parser(X509Certificate, createPrivateKey);

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

  /** Whether this member serves TLS (it has --tls-cert and --tls-key), not only dials TLS peers. */
  get serving(): boolean {
    return this.#material.cert !== undefined;
  }

  /** For https.createServer (and @hono/node-server's `serverOptions`). */
  serverOptions(): { cert?: string; key?: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } {
    const m = this.#material;
    // A client certificate is asked for but checked only on /raft (`peerCertificateProblem`), so
    // clients of the API need none.
    return { cert: m.cert, key: m.key, ca: m.ca, requestCert: this.files.requireClientCert === true, rejectUnauthorized: false };
  }

  /** TLS options of an outgoing connection to a peer (ws, https). */
  clientOptions(): { ca?: string[]; cert?: string; key?: string } {
    const m = this.#material;
    // In addition to the system's CAs, as Deno's caCerts: a member dials both private-CA hosts
    // and publicly certified ones (a Deno Deploy app).
    return { ca: m.ca ? [...rootCertificates, m.ca] : undefined, cert: m.clientCert, key: m.clientKey };
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

  /** The served certificate's expiry; null when this member serves no certificate. */
  expiry(now: number = Date.now()): TlsExpiry | null {
    const notAfter = this.#material.notAfter;
    return notAfter === null ? null : tlsExpiry(notAfter, now);
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
  webSocket(base: Record<string, unknown> = {}): WebSocketConstructor {
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
    } as unknown as WebSocketConstructor;
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

/** How often a member re-checks its certificate's expiry (and warns again while it is close). */
const EXPIRY_CHECK_MS = 12 * 3_600_000;

/**
 * A member's https server, kept current: SIGHUP reloads the files (a failure keeps the old
 * certificate and says why), the expiry is checked now and every 12 hours (a warning from 30 days
 * before), and failed TLS handshakes of clients (a plain-text request, an untrusted client
 * certificate) are logged at most once a second. Returns what undoes it, for the server's close.
 */
export function keepTlsServer(server: HttpsServer, tls: NodeTls, log: Logger): () => void {
  tls.attach(server);
  const checkExpiry = (): void => {
    const e = tls.expiry();
    if (e?.expiresSoon) log("warn", expiryWarning(tls.material.subject, e), { notAfter: e.notAfter });
  };
  const reload = (): void => {
    try {
      const m = tls.reload();
      log("info", `TLS: reloaded ${tls.files.cert} (${m.subject}, valid until ${m.notAfter?.toISOString()})`);
      checkExpiry();
    } catch (error) {
      log("error", `TLS: reload failed, still serving the previous certificate: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  let lastClientError = 0;
  let suppressed = 0;
  const onClientError = (error: Error & { code?: string }, socket: { remoteAddress?: string }): void => {
    // A client that went away mid-handshake (a timeout, a refused certificate on its side, which
    // it logs itself) says nothing about this member's configuration.
    if (error.code === "ECONNRESET" || error.code === "EPIPE" || error.code === "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN") {
      log("debug", `TLS: handshake with a client failed: ${error.code}`, { remote: socket.remoteAddress ?? "unknown" });
      return;
    }
    const now = Date.now();
    if (now - lastClientError < 1000) {
      suppressed++;
      return;
    }
    lastClientError = now;
    const more = suppressed > 0 ? ` (${suppressed} more since the last such line)` : "";
    suppressed = 0;
    const why = error.code === "ERR_SSL_HTTP_REQUEST" ? "a plain-text request (http://, ws://) reached this TLS port; clients and peers must use https://" : (error.code ?? error.message);
    log("warn", `TLS: handshake with a client failed: ${why}${more}`, { remote: socket.remoteAddress ?? "unknown" });
  };
  server.on("tlsClientError", onClientError);
  process.on("SIGHUP", reload);
  checkExpiry();
  const timer = setInterval(checkExpiry, EXPIRY_CHECK_MS);
  timer.unref();
  return () => {
    process.off("SIGHUP", reload);
    server.off("tlsClientError", onClientError);
    clearInterval(timer);
  };
}

/**
 * The `/raft` upgrade behind a client certificate check (mutual TLS, `requireClientCert`): a
 * socket without a certificate the CA signed is answered 403 and logged, never upgraded.
 */
export function requireClientCertificate(upgrade: MiddlewareHandler, tls: NodeTls, log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const incoming = (c.env as { incoming?: { socket?: unknown } } | undefined)?.incoming;
    const problem = tls.peerCertificateProblem(incoming?.socket ?? null);
    if (problem !== null) {
      const remote = (incoming?.socket as { remoteAddress?: string } | undefined)?.remoteAddress ?? "unknown";
      log("warn", `TLS: refused a /raft socket: ${problem}`, { remote });
      return c.text("a client certificate signed by the cluster's CA is required", 403);
    }
    return upgrade(c, next);
  };
}
