/**
 * Argument parsing for the `meshraft` CLI: small, strict, with messages that say what to type.
 */
import { memberUrlProblem } from "./core/member-url.ts";
import type { HttpLimits } from "./http/app.ts";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./kv/kv.ts";
import type { MemberNodeOptions } from "./member.ts";
import { nodeIdProblem } from "./core/node-id.ts";
import { validateRaftNodeOptions } from "./node/options.ts";
import type { TlsFiles } from "./tls.ts";

export interface StartArgs {
  id: string;
  /** host:port to listen on. */
  listen: { host: string; port: number };
  /** Base URL advertised to peers and clients (default http://<listen>). */
  url: string;
  dataDir: string;
  peers: { id: string; url: string }[];
  clusterId: string;
  secret?: string;
  token?: string;
  /** Token of the /admin routes, also sent when joining (default: `token`). */
  adminToken?: string;
  /** Members to join through (`--join`, repeatable); empty for a member of the initial cluster. */
  join?: string[];
  /** Join as a learner that stays one (no vote; serves reads close to its users). */
  learner?: boolean;
  /** Allow listening on a non-loopback address without a cluster secret. */
  insecure: boolean;
  /** `/status` needs the API token too (it is public by default; `/health` always is). */
  privateStatus?: boolean;
  /**
   * The Raft node's settings, under RaftNodeOptions' names (`--election-timeout-ms`,
   * `--heartbeat-interval-ms`, `--read-mode`, `--snapshot-every`, `--snapshot-bytes`,
   * `--snapshot-margin`); unset ones take the node's defaults.
   */
  node?: MemberNodeOptions;
  /** A learner with no authenticated link this long after joining is removed; a joiner exits. */
  linkTimeoutMs?: number;
  /** Client API limits (lower than the built-in ones only: MAX_KEY_BYTES, MAX_VALUE_BYTES), and `--rate-limit`. */
  limits?: HttpLimits;
  /**
   * TLS (`--tls-*`): with `cert` and `key` the API and `/raft` are served over https/wss; `ca` is
   * trusted when dialing peers; the rest is mutual TLS. Files, read by the runtime at start.
   */
  tls?: Partial<TlsFiles>;
  logLevel: "debug" | "info" | "warn" | "error";
  /** Things to tell the operator at startup (a secret given on the command line). */
  warnings?: string[];
}

/** Reads a whole text file (the CLI's runtime supplies it: Node's fs module, Deno's readTextFileSync). @throws on failure */
export type ReadTextFile = (path: string) => string;

export class UsageError extends Error {
  override name = "UsageError";
}

export const START_USAGE: string = `usage: meshraft start --id ID --listen HOST:PORT --data-dir DIR [--peer ID=URL]...
                      [--join URL]... [--learner] [--admin-token TOKEN]
                      [--url URL] [--cluster-id NAME] [--secret SECRET] [--token TOKEN]
                      [--election-timeout-ms N] [--heartbeat-interval-ms N] [--log-level LEVEL]
                      [--snapshot-every N] [--snapshot-bytes N] [--snapshot-margin N]
                      [--link-timeout-ms N] [--max-key-bytes N] [--max-value-bytes N]
                      [--read-mode read-index|lease] [--private-status] [--rate-limit N]
                      [--tls-cert FILE --tls-key FILE] [--tls-ca FILE]
                      [--tls-client-cert FILE --tls-client-key FILE] [--tls-require-client-cert]

  --id                  this member's id (1-64 letters, digits, ., _ and -)
  --listen              address for the HTTP API and the peer socket (/raft)
  --data-dir            where the log, hard state and snapshots live
  --peer ID=URL         another voter of the initial cluster (repeat for each); stored on the
                        first start: a restart takes the same ones or none, never others
  --join URL            join a running cluster through any member (repeat for more seeds):
                        added as a learner, promoted to voter once caught up; not with --peer.
                        Ignored once this node's data holds a configuration
  --learner             with --join: stay a learner (receives the log, serves reads, never votes)
  --admin-token         bearer token of the /admin routes and of --join (or MESHRAFT_ADMIN_TOKEN;
                        default: --token)
  --url                 the URL others use to reach this node (default http://HOST:PORT); announced to
                        peers, which redirect clients to it; a --peer elsewhere that names this
                        node at another URL is logged as a warning on both members
  --cluster-id          a name every member must share (default "meshraft")
  --secret              cluster secret: peers authenticate with HMAC challenge-response
                        (or MESHRAFT_SECRET); without it the node listens on loopback only
  --token               bearer token required by the client API (or MESHRAFT_TOKEN)
  --secret-file, --token-file, --admin-token-file FILE
                        read that value from FILE (one final line break dropped), so it does
                        not show in ps as a command-line value does
  --insecure            allow a non-loopback --listen without --secret
  --private-status      /status needs --token too (it lists member ids and URLs); /health stays
                        open, answering only whether the node runs
  --snapshot-every      snapshot the state and compact the log every N applied entries
                        (default 10000; 0: not by count)
  --snapshot-bytes      ... and whenever the entries applied since the last snapshot hold N
                        bytes (default 67108864, 64 MiB; 0: not by size)
  --snapshot-margin     entries kept below a snapshot for slightly slow followers (default 1000)
  --link-timeout-ms     a joining node that completes no mesh handshake (a wrong --secret or
                        --cluster-id, a firewall) within N ms exits with an error, and the leader
                        removes a learner it has no link with after N ms (default 30000)
  --max-key-bytes       longest key the client API takes, in UTF-8 bytes (default and most 1024)
  --max-value-bytes     largest value the client API takes, in bytes (default and most 1048576)
  --rate-limit N        requests per second per client address (burst 2N); more are answered
                        429 RATE_LIMITED with Retry-After (default: no limit)

  --tls-cert, --tls-key FILE
                        serve the API and /raft over TLS (https://, wss://) with this PEM
                        certificate (chain) and key; the default --url becomes https://.
                        SIGHUP re-reads them (Node); /status and the log report expiry within
                        30 days
  --tls-ca FILE         trust this CA (PEM) when dialing peers and joining, in addition to the
                        system's CAs: a cluster on a private CA. A peer certificate that does not
                        match its URL or that no trusted CA signed is refused (no switch skips it)
  --tls-client-cert, --tls-client-key FILE
                        present this certificate when dialing peers (mutual TLS)
  --tls-require-client-cert
                        refuse /raft sockets without a client certificate signed by --tls-ca
                        (Node; API clients need none)

  --read-mode           how GET /kv confirms it reads the latest value: read-index (default; a
                        heartbeat round per batch of reads) or lease (the leader answers at once
                        while its lease holds; assumes members' clocks run at rates within 10%
                        of each other; give every member the same mode)`;

function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`${flag} takes HOST:PORT (for example 127.0.0.1:7001), got "${value}"`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

function parseUrl(value: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`${flag} takes a URL such as http://127.0.0.1:7002, got "${value}"`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UsageError(`${flag}: only http:// and https:// URLs are supported, got "${value}"`);
  }
  const problem = memberUrlProblem(value);
  if (problem) throw new UsageError(`${flag}: ${problem.message}`);
  return value.replace(/\/+$/, "");
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive whole number of milliseconds, got "${value}"`);
  return n;
}

function count(value: string | undefined, flag: string, unit = "entries"): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} takes a whole number of ${unit}, got "${value}"`);
  return n;
}

/** A size limit that may only be lowered: the state machine refuses more than `max` anyway. */
function byteLimit(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`${flag} takes a number of bytes from 1 to ${max}, got "${value}"`);
  return n;
}

function rate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`--rate-limit takes a positive number of requests per second, got "${value}"`);
  return n;
}

/** The `--tls-*` flags, checked for the combinations that work; undefined without any. */
function tlsFiles(one: (name: string) => string | undefined, requireClientCert: boolean): Partial<TlsFiles> | undefined {
  const [cert, key, ca, clientCert, clientKey] = ["tls-cert", "tls-key", "tls-ca", "tls-client-cert", "tls-client-key"].map(one);
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--tls-cert and --tls-key go together (the certificate and its private key)");
  if ((clientCert === undefined) !== (clientKey === undefined)) throw new UsageError("--tls-client-cert and --tls-client-key go together");
  if (requireClientCert && cert === undefined) throw new UsageError("--tls-require-client-cert needs --tls-cert and --tls-key (a member serving TLS)");
  if (requireClientCert && ca === undefined) throw new UsageError("--tls-require-client-cert needs --tls-ca, the CA that signs the peers' client certificates");
  const files: Partial<TlsFiles> = { cert, key, ca, clientCert, clientKey };
  if (requireClientCert) files.requireClientCert = true;
  for (const k of Object.keys(files) as (keyof TlsFiles)[]) if (files[k] === undefined) delete files[k];
  return Object.keys(files).length > 0 ? files : undefined;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function parseStartArgs(
  argv: string[],
  env: Record<string, string | undefined> = {},
  readTextFile?: ReadTextFile,
): StartArgs {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const known = new Set([
    "id",
    "listen",
    "url",
    "data-dir",
    "peer",
    "cluster-id",
    "secret",
    "token",
    "admin-token",
    "secret-file",
    "token-file",
    "admin-token-file",
    "join",
    "election-timeout-ms",
    "heartbeat-interval-ms",
    "log-level",
    "snapshot-every",
    "snapshot-bytes",
    "snapshot-margin",
    "link-timeout-ms",
    "max-key-bytes",
    "max-value-bytes",
    "read-mode",
    "rate-limit",
    "tls-cert",
    "tls-key",
    "tls-ca",
    "tls-client-cert",
    "tls-client-key",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument "${a}"`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0 && name !== "peer") {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === "insecure" || name === "learner" || name === "private-status" || name === "tls-require-client-cert") {
      flags.add(name);
      continue;
    }
    if (!known.has(name)) throw new UsageError(`unknown option --${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
    }
    const list = values.get(name) ?? [];
    list.push(value);
    values.set(name, list);
  }
  const one = (name: string): string | undefined => {
    const v = values.get(name);
    if (v && v.length > 1) throw new UsageError(`--${name} given more than once`);
    return v?.[0];
  };
  const id = one("id");
  if (!id) throw new UsageError("--id is required");
  const idProblem = nodeIdProblem(id);
  if (idProblem !== null) throw new UsageError(`--id: ${idProblem}`);
  const listenRaw = one("listen");
  if (!listenRaw) throw new UsageError("--listen is required (for example --listen 127.0.0.1:7001)");
  const listen = parseHostPort(listenRaw, "--listen");
  const dataDir = one("data-dir");
  if (!dataDir) throw new UsageError("--data-dir is required");
  const peers: { id: string; url: string }[] = [];
  for (const p of values.get("peer") ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new UsageError(`--peer takes ID=URL (for example n2=http://127.0.0.1:7002), got "${p}"`);
    const peerId = p.slice(0, eq);
    const peerIdProblem = nodeIdProblem(peerId);
    if (peerIdProblem !== null) throw new UsageError(`--peer: ${peerIdProblem}`);
    if (peerId === id) throw new UsageError(`--peer ${peerId} is this node's own id`);
    if (peers.some((x) => x.id === peerId)) throw new UsageError(`--peer ${peerId} given twice`);
    peers.push({ id: peerId, url: parseUrl(p.slice(eq + 1), `--peer ${peerId}`) });
  }
  const join = (values.get("join") ?? []).map((u) => parseUrl(u, "--join"));
  if (join.length > 0 && peers.length > 0) {
    throw new UsageError("--join and --peer do not go together: a joining node learns the members from the cluster");
  }
  const learner = flags.has("learner");
  if (learner && join.length === 0) throw new UsageError("--learner goes with --join URL (the cluster to join as a learner)");
  const tls = tlsFiles(one, flags.has("tls-require-client-cert"));
  const serving = tls?.cert !== undefined;
  const hostForUrl = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  const url = one("url") ? parseUrl(one("url")!, "--url") : `${serving ? "https" : "http"}://${hostForUrl}:${listen.port}`;
  if (serving && url.startsWith("http://")) throw new UsageError(`--url is http:// but this member serves TLS (--tls-cert): give its https:// URL`);
  const warnings: string[] = [];
  /**
   * `--NAME VALUE`, `--NAME-file PATH` (its content, without the final line break) or the
   * environment. A value on the command line shows in `ps` to every local user: warned about.
   */
  const secretOption = (name: string, envName: string): string | undefined => {
    const value = one(name);
    const file = one(`${name}-file`);
    if (value !== undefined && file !== undefined) throw new UsageError(`--${name} and --${name}-file do not go together`);
    if (value !== undefined) {
      warnings.push(`--${name} on the command line is visible to every local user (ps); use --${name}-file FILE or ${envName}`);
      return value;
    }
    if (file === undefined) return env[envName];
    if (!readTextFile) throw new UsageError(`--${name}-file is not supported by this CLI`);
    let text: string;
    try {
      text = readTextFile(file);
    } catch (error) {
      throw new UsageError(`--${name}-file ${file}: cannot read it (${error instanceof Error ? error.message : String(error)})`);
    }
    text = text.replace(/\r?\n$/, "");
    if (text === "") throw new UsageError(`--${name}-file ${file} is empty`);
    return text;
  };
  const secret = secretOption("secret", "MESHRAFT_SECRET");
  const token = secretOption("token", "MESHRAFT_TOKEN");
  const adminToken = secretOption("admin-token", "MESHRAFT_ADMIN_TOKEN");
  const insecure = flags.has("insecure");
  if (!secret && !insecure && !isLoopback(listen.host)) {
    throw new UsageError(
      `refusing to listen on ${listen.host} without --secret: peers could not be authenticated. ` +
        `Set --secret (or MESHRAFT_SECRET), listen on 127.0.0.1, or pass --insecure.`,
    );
  }
  const logLevel = (one("log-level") ?? "info") as StartArgs["logLevel"];
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new UsageError(`--log-level is one of debug, info, warn, error`);
  const readMode = one("read-mode");
  if (readMode !== undefined && readMode !== "read-index" && readMode !== "lease") {
    throw new UsageError(`--read-mode is read-index or lease, got "${readMode}"`);
  }
  const et = one("election-timeout-ms");
  const hb = one("heartbeat-interval-ms");
  const node: MemberNodeOptions = {
    electionTimeoutMs: et ? positiveInt(et, "--election-timeout-ms") : undefined,
    heartbeatIntervalMs: hb ? positiveInt(hb, "--heartbeat-interval-ms") : undefined,
    readMode,
    snapshotEveryEntries: count(one("snapshot-every"), "--snapshot-every"),
    snapshotEveryBytes: count(one("snapshot-bytes"), "--snapshot-bytes", "bytes"),
    snapshotMarginEntries: count(one("snapshot-margin"), "--snapshot-margin"),
  };
  // The node's own rules (heartbeat shorter than the election timeout, ...), checked here by the
  // same validate() a RaftNode runs, so a bad combination is a usage error and not a failed start.
  try {
    validateRaftNodeOptions({ id, members: join.length > 0 ? [] : [id, ...peers.map((p) => p.id)], join: join.length > 0, ...node });
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(`the node's settings do not go together: ${error.message}`);
    throw error;
  }
  return {
    id,
    listen,
    url,
    dataDir,
    peers,
    clusterId: one("cluster-id") ?? "meshraft",
    secret: secret || undefined,
    token: token || undefined,
    adminToken: adminToken || undefined,
    join,
    learner,
    insecure,
    privateStatus: flags.has("private-status"),
    node,
    limits: {
      maxKeyBytes: byteLimit(one("max-key-bytes"), "--max-key-bytes", MAX_KEY_BYTES),
      maxValueBytes: byteLimit(one("max-value-bytes"), "--max-value-bytes", MAX_VALUE_BYTES),
      requestsPerSecondPerClient: rate(one("rate-limit")),
    },
    tls,
    linkTimeoutMs: one("link-timeout-ms") ? positiveInt(one("link-timeout-ms")!, "--link-timeout-ms") : undefined,
    logLevel,
    warnings,
  };
}

/**
 * What a demo knows of its members, fed from their stderr lines and exits; the same on every
 * runtime. A member counts as the demo's own once it logged `started`: it bound its port itself,
 * so what answers there is this member and not, say, an earlier demo still holding the port.
 */
export class DemoMembers {
  private readonly started = new Set<string>();
  /** The last fatal or error line of each member, shown when it exits. */
  private readonly lastError = new Map<string, string>();
  /** Why the demo failed (the first member that exited, with its own message), or null. */
  failure: string | null = null;

  constructor(readonly ids: string[]) {}

  /** Records one stderr line of member `id`; returns whether the demo shows it. */
  line(id: string, line: string): boolean {
    if (line.trim() === "") return false;
    if (new RegExp(`^\\S+ info +${id} started\\b`).test(line)) this.started.add(id);
    // `meshraft: ...` is the CLI's fatal message (the process exits after it); `error` lines are the log's.
    const fatal = line.startsWith("meshraft: ");
    if (fatal || /^\S+ error /.test(line)) this.lastError.set(id, fatal ? line.slice("meshraft: ".length) : line);
    // Show roles, failures and warnings; keep the rest of the logs quiet.
    return fatal || / role |error|warn|started|stopped/.test(line);
  }

  /** Member `id` exited (`how`: "code 1" or a signal name); returns the line to print. */
  exited(id: string, how: string): string {
    const error = this.lastError.get(id);
    const message = `${id} exited (${how})${error ? `: ${error}` : "; see the log lines above"}`;
    this.failure ??= message;
    return message;
  }

  allStarted(): boolean {
    return this.ids.every((id) => this.started.has(id));
  }
}

/**
 * The demo's last step, the same on every runtime: wait (at most 25 s) until every member started
 * and one of them reports a leader, then print the members and commands to try. `url(i)` is member
 * i's base URL. Returns false, having said why, when the demo failed (a member exited, or no
 * leader); the caller stops the other members and exits non-zero.
 */
export async function announceDemo(members: DemoMembers, url: (i: number) => string, stopped: () => boolean, waitMs = 25_000): Promise<boolean> {
  // Generous default: on a loaded machine three members started from source (tsx) took up to 20 s.
  const ids = members.ids;
  const deadline = Date.now() + waitMs;
  let leader: string | null = null;
  while (!leader && Date.now() < deadline && !stopped() && members.failure === null) {
    await new Promise((r) => setTimeout(r, 200));
    if (!members.allStarted()) continue;
    for (let i = 0; i < ids.length && !leader; i++) {
      try {
        const s = (await (await fetch(`${url(i)}/status`)).json()) as { id?: string; leader?: string | null };
        // A member that answers under another id is some other cluster's: never report its leader.
        if (s.id === ids[i] && s.leader && ids.includes(s.leader)) leader = s.leader;
      } catch {
        // not up yet
      }
    }
  }
  if (stopped()) return true;
  if (members.failure !== null) {
    console.error(`demo failed: ${members.failure}`);
    return false;
  }
  if (!leader) {
    console.error(`demo failed: ${members.allStarted() ? "no leader" : "not every member started"} after ${waitMs / 1000} s; see the log lines above`);
    return false;
  }
  const follower = ids.find((id) => id !== leader) ?? leader;
  const fUrl = url(ids.indexOf(follower));
  console.log(`\nready: ${ids.map((id, i) => `${id} ${url(i)}`).join(", ")}; leader ${leader}\n`);
  console.log("try:");
  console.log(`  curl -L -X PUT --data-binary 'hello' ${fUrl}/kv/greeting    # a follower redirects to the leader`);
  console.log(`  curl -L ${fUrl}/kv/greeting                                  # linearizable read`);
  console.log(`  curl '${fUrl}/kv/greeting?stale'                             # local read on the follower`);
  console.log(`  curl -L -X POST -d '{"expect":"hello","value":"world"}' ${fUrl}/kv/greeting/cas`);
  console.log(`  curl ${url(0)}/status`);
  console.log(`  curl ${url(0)}/metrics`);
  console.log("\nCtrl-C stops the cluster; the data stays in the data directory.");
  return true;
}
