/**
 * The runtime-neutral part of a member's TLS (the Node and Deno adapters' tls.ts load the files
 * and wire servers and clients): the flags' file set, the expiry rule, and one clear sentence for
 * each way a TLS connection to a peer is refused, whichever runtime reported it.
 */
import { MeshraftError } from "./errors.ts";

/** Where a member's TLS material is (PEM files), as the CLI flags name them. */
export interface TlsFiles {
  /** --tls-cert: the member's certificate (chain), served to clients and peers. Without it (and
   * --tls-key) the member serves plain HTTP and uses the rest only to dial TLS peers. */
  cert?: string;
  /** --tls-key: its private key. */
  key?: string;
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
  /** The served certificate and key; absent on a member that only dials TLS peers. */
  cert?: string;
  key?: string;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  /** The served certificate's end of validity (null without one). */
  notAfter: Date | null;
  /** Its subject, for log lines ("CN=n1"); "" without one. */
  subject: string;
}

/** What the adapters' X.509 parser (node:crypto's X509Certificate on Node and Deno) tells. */
export interface ParsedCertificate {
  notAfter: Date;
  /** "CN=n1" and the like, one line. */
  subject: string;
  /** Whether `keyPem` is this certificate's private key (throws if it is not a key). */
  matchesKey(keyPem: string): boolean;
}

/**
 * A ParsedCertificate reader from node:crypto's X509Certificate and createPrivateKey (available on
 * Node and Deno; passed in, since src/ imports no runtime module).
 */
export function x509Parser(
  X509: new (pem: string) => { validTo: string; subject: string; checkPrivateKey(key: unknown): boolean },
  createPrivateKey: (pem: string) => unknown,
): Parser {
  return (pem) => {
    const x509 = new X509(pem);
    return {
      notAfter: new Date(x509.validTo),
      subject: x509.subject.replace(/\n/g, ", "),
      matchesKey: (keyPem) => x509.checkPrivateKey(createPrivateKey(keyPem)),
    };
  };
}

type Reader = (path: string) => string;
type Parser = (pem: string) => ParsedCertificate;

function read(readText: Reader, file: string, what: string): string {
  let text: string;
  try {
    text = readText(file);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new TlsConfigError(file, `cannot read the ${what}: ${typeof code === "string" ? code : String(e)}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TlsConfigError(file, `the ${what} is not PEM`);
  return text;
}

function certificate(parse: Parser, file: string, pem: string, what: string): ParsedCertificate {
  try {
    return parse(pem);
  } catch (e) {
    throw new TlsConfigError(file, `the ${what} is not a certificate: ${(e as Error).message}`);
  }
}

function keyFor(certFile: string, cert: ParsedCertificate, keyFile: string, keyPem: string): void {
  let matches: boolean;
  try {
    matches = cert.matchesKey(keyPem);
  } catch (e) {
    throw new TlsConfigError(keyFile, `not a private key: ${(e as Error).message}`);
  }
  if (!matches) throw new TlsConfigError(keyFile, `this key does not belong to the certificate ${certFile}`);
}

/**
 * Reads (`readText`) and checks the files: each is PEM, each certificate parses, each key matches
 * its certificate, mutual TLS has a CA. @throws TlsConfigError naming the file
 */
export function loadTlsFiles(files: TlsFiles, readText: Reader, parse: Parser): TlsMaterial {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new TlsConfigError(files.cert ?? files.key!, "--tls-cert and --tls-key go together");
  }
  const material: TlsMaterial = { notAfter: null, subject: "" };
  if (files.cert !== undefined && files.key !== undefined) {
    material.cert = read(readText, files.cert, "certificate");
    material.key = read(readText, files.key, "private key");
    const x509 = certificate(parse, files.cert, material.cert, "certificate");
    keyFor(files.cert, x509, files.key, material.key);
    material.notAfter = x509.notAfter;
    material.subject = x509.subject;
  } else if (files.requireClientCert) {
    throw new TlsConfigError(files.ca ?? "--tls-require-client-cert", "requiring client certificates needs --tls-cert and --tls-key (a member serving TLS)");
  }
  if (files.ca !== undefined) {
    material.ca = read(readText, files.ca, "CA certificate");
    certificate(parse, files.ca, material.ca, "CA certificate");
  } else if (files.requireClientCert) {
    throw new TlsConfigError(files.cert ?? "--tls-require-client-cert", "mutual TLS needs --tls-ca, the CA that signs the peers' client certificates");
  }
  if ((files.clientCert === undefined) !== (files.clientKey === undefined)) {
    throw new TlsConfigError(files.clientCert ?? files.clientKey!, "--tls-client-cert and --tls-client-key go together");
  }
  if (files.clientCert !== undefined && files.clientKey !== undefined) {
    material.clientCert = read(readText, files.clientCert, "client certificate");
    material.clientKey = read(readText, files.clientKey, "client key");
    const client = certificate(parse, files.clientCert, material.clientCert, "client certificate");
    keyFor(files.clientCert, client, files.clientKey, material.clientKey);
  }
  return material;
}


export interface TlsExpiry {
  notAfter: string;
  /** Whole days left (negative once expired). */
  daysLeft: number;
  /** Fewer than EXPIRY_WARNING_DAYS days left (or expired). */
  expiresSoon: boolean;
}

export function tlsExpiry(notAfter: Date, now: number): TlsExpiry {
  const daysLeft = Math.floor((notAfter.getTime() - now) / 86_400_000);
  return { notAfter: notAfter.toISOString(), daysLeft, expiresSoon: daysLeft < EXPIRY_WARNING_DAYS };
}

/** The warning logged (and repeated daily) while a served certificate expires within 30 days. */
export function expiryWarning(subject: string, e: TlsExpiry): string {
  return e.daysLeft < 0
    ? `TLS: the certificate ${subject} expired on ${e.notAfter}; clients and peers refuse it: replace --tls-cert and send SIGHUP`
    : `TLS: the certificate ${subject} expires on ${e.notAfter} (in ${e.daysLeft} days): replace --tls-cert and send SIGHUP`;
}

const UNTRUSTED = "its certificate is not signed by a trusted CA (give the cluster's CA with --tls-ca)";
const MISMATCH = "its certificate does not match the URL's host name or address";
const EXPIRED = "its certificate has expired or is not valid yet";
const NOT_TLS = "it does not speak TLS (an http:// member dialed as https://?)";

/** Node's error codes. */
const BY_CODE: Record<string, string> = {
  ERR_TLS_CERT_ALTNAME_INVALID: MISMATCH,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED,
  CERT_HAS_EXPIRED: EXPIRED,
  CERT_NOT_YET_VALID: EXPIRED,
  ERR_SSL_WRONG_VERSION_NUMBER: NOT_TLS,
  ERR_SSL_PACKET_LENGTH_TOO_LONG: NOT_TLS,
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "it requires a client certificate (give one with --tls-client-cert/--tls-client-key)",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "it refused this member's client certificate (not signed by its CA?)",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "it refused this member's client certificate: signed by a CA it does not trust",
};

/** Deno's (rustls') messages. */
const BY_TEXT: [RegExp, string][] = [
  [/UnknownIssuer|BadSignature/, UNTRUSTED],
  [/NotValidForName|NotValidForNameContext/, MISMATCH],
  [/\bExpired|NotValidYet/, EXPIRED],
  [/InvalidContentType|CorruptMessage|wrong version number/i, NOT_TLS],
  [/invalid HTTP version parsed/, "it speaks TLS: dial it as https://"],
  [/CertificateRequired/, "it requires a client certificate (give one with --tls-client-cert/--tls-client-key)"],
];

/** A clear sentence for a TLS failure reaching `url`, or null when `error` is not one. */
export function describeTlsError(error: unknown, url: string): string | null {
  const e = error as { code?: unknown; message?: unknown; cause?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const message = typeof e?.message === "string" ? e.message : String(error);
  let why = code === undefined ? undefined : BY_CODE[code];
  if (why === undefined) why = BY_TEXT.find(([re]) => re.test(message))?.[1];
  if (why === undefined && e?.cause !== undefined && e.cause !== error) return describeTlsError(e.cause, url);
  if (why === undefined) return null;
  return `TLS: refused ${url}: ${why} (${code ? `${code}: ` : ""}${message})`;
}
