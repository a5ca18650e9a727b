/**
 * TLS for a Deno member: the certificate `Deno.serve` serves (HTTP API and `/raft` over
 * https/wss), and the CA and client certificate it uses to dial peers (a `Deno.HttpClient` given
 * to `WebSocket` and `fetch`). The checks, the expiry rule and the log sentences are
 * src/tls.ts's, as on Node.
 *
 * What Deno cannot do: `Deno.serve` does not ask for client certificates, so a Deno member cannot
 * require mutual TLS on `/raft` (it can present a client certificate to Node members that do), and
 * a running `Deno.serve` keeps its certificate: `reload()` re-reads the files for new dials, and
 * the server picks up a new certificate when it is restarted.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { describeTlsError, loadTlsFiles, x509Parser, TlsConfigError, type TlsExpiry, type TlsFiles, tlsExpiry, type TlsMaterial } from "../../src/tls.ts";

import type { WebSocketConstructor } from "../../src/transport/mesh.ts";

export { describeTlsError, TlsConfigError, type TlsExpiry, type TlsFiles, type TlsMaterial } from "../../src/tls.ts";

/** The slice of Deno's client TLS API used here (declared locally: deno.d.ts stays as it is). */
interface HttpClient {
  close(): void;
}
interface DenoTlsApi {
  createHttpClient(options: { caCerts?: string[]; cert?: string; key?: string }): HttpClient;
}
const denoTls = (): DenoTlsApi => (globalThis as unknown as { Deno: DenoTlsApi }).Deno;

/** node:crypto's X.509 parser (Node's and Deno's alike). */
const parseCertificate = x509Parser(X509Certificate, createPrivateKey);

export class DenoTls {
  readonly files: TlsFiles;
  #material: TlsMaterial;
  #client: HttpClient;

  constructor(files: TlsFiles) {
    if (files.requireClientCert) {
      throw new TlsConfigError(files.cert ?? "--tls-require-client-cert", "a Deno member cannot require client certificates (Deno.serve does not ask for them); require them on Node members, or in a proxy");
    }
    this.files = files;
    this.#material = loadTlsFiles(files, (path) => readFileSync(path, "utf8"), parseCertificate);
    this.#client = this.#newClient();
  }

  get material(): TlsMaterial {
    return this.#material;
  }

  /** Whether this member serves TLS (it has --tls-cert and --tls-key), not only dials TLS peers. */
  get serving(): boolean {
    return this.#material.cert !== undefined;
  }

  /** `cert` and `key` for Deno.serve (none: plain HTTP). */
  serveOptions(): { cert?: string; key?: string } {
    return this.serving ? { cert: this.#material.cert, key: this.#material.key } : {};
  }

  /** Re-reads the files (new dials use the new CA and client certificate). @throws TlsConfigError, keeping the old */
  reload(): TlsMaterial {
    const next = loadTlsFiles(this.files, (path) => readFileSync(path, "utf8"), parseCertificate);
    this.#material = next;
    const old = this.#client;
    this.#client = this.#newClient();
    old.close();
    return next;
  }

  /** The served certificate's expiry; null when this member serves no certificate. */
  expiry(now: number = Date.now()): TlsExpiry | null {
    const notAfter = this.#material.notAfter;
    return notAfter === null ? null : tlsExpiry(notAfter, now);
  }

  /** The WebSocket class the mesh dials peers with; a TLS refusal's error event says why in one sentence. */
  webSocket(): WebSocketConstructor {
    const tls = this;
    return class extends WebSocket {
      constructor(url: string) {
        super(url, { client: tls.#client } as unknown as string[]);
        // Registered first, so the mesh's handler reads the clear sentence.
        this.addEventListener("error", (event) => {
          const clear = describeTlsError({ message: (event as ErrorEvent).message }, url);
          if (clear !== null) Object.defineProperty(event, "message", { value: clear });
        });
      }
    } as unknown as WebSocketConstructor;
  }

  /** fetch with this member's CA and client certificate; a TLS refusal's error says why. */
  readonly fetch: typeof fetch = async (input, init) => {
    try {
      return await fetch(input, { ...init, client: this.#client } as RequestInit);
    } catch (error) {
      const url = input instanceof Request ? input.url : String(input);
      const clear = describeTlsError(error, new URL(url).origin);
      throw clear === null ? error : new TypeError(clear, { cause: error });
    }
  };

  #newClient(): HttpClient {
    const m = this.#material;
    return denoTls().createHttpClient({ caCerts: m.ca ? [m.ca] : undefined, cert: m.clientCert, key: m.clientKey });
  }
}
