/**
 * The one HTTP app every runtime serves (docs/internals.md, "Client interaction"): the KV client API with
 * leader redirects, `/status`, `/metrics`, and the peer socket at `/raft`. Runtime adapters only
 * hand it to their server (`@hono/node-server` on Node, Deno's `serve`) and supply `upgradeWebSocket`.
 *
 * The promises each answer makes, which MeshraftClient relies on:
 * - 307 (to the leader) and 503 mean nothing was proposed: resend freely;
 * - 504 OUTCOME_UNKNOWN means the write was proposed and may still commit: only a resend with the
 *   same X-Meshraft-Client and X-Meshraft-Seq is safe (the KV state machine answers it from its
 *   session table instead of applying it twice).
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { matchedRoutes } from "hono/route";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { UpgradeWebSocket, WSEvents } from "hono/ws";
import { realClock } from "../clock.ts";
import { NotLeaderError, OutcomeUnknownError } from "../errors.ts";
import {
  encodeKvCommand,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type KvCommand,
  type KvRefusal,
  type KvResult,
  type KvSession,
  type KvStateMachine,
} from "../kv/kv.ts";
import { isMember } from "../core/membership.ts";
import type { RaftNode } from "../node.ts";
import type { PeerLinkCounters } from "../transport/transport.ts";
import { mountAdminRoutes } from "./admin.ts";
import { mountDashboardEvents, mountDashboardPage } from "./dashboard.ts";
import { ApiError, apiErrorFrom, noLeader, nodeStopped } from "./errors.ts";
import { createHttpMetrics, PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
import type { NodeInstruments } from "./metrics-instruments.ts";
import { RateLimiter } from "./rate-limit.ts";
import { eventLoopDelayGauges, type EventLoopDelaySource } from "../event-loop-delay.ts";
import {
  base64ToBytes,
  bytesToBase64,
  CLIENT_HEADER,
  isValidClientId,
  LEADER_HEADER,
  NODE_HEADER,
  parseSeq,
  SEQ_HEADER,
  type StatusBody,
  type WriteBody,
} from "./protocol.ts";

export interface HttpLimits {
  /** Longest key, in UTF-8 bytes after URL-decoding. Default and maximum: MAX_KEY_BYTES (1024). */
  maxKeyBytes?: number;
  /** Largest value (PUT body, CAS expect/value), in bytes. Default and maximum: MAX_VALUE_BYTES (1 MiB). */
  maxValueBytes?: number;
  /**
   * Largest request body other than a PUT's (the CAS JSON), in bytes. Default: room for two
   * base64 values of maxValueBytes, plus 64 KiB.
   */
  maxBodyBytes?: number;
  /**
   * Requests this member answers at once (`/raft` upgrades not counted); one more is answered
   * 503 OVERLOADED with Retry-After at once. Default 1024.
   */
  maxConcurrentRequests?: number;
  /**
   * Requests per second per client address (`remoteAddress`; `/raft` not counted); a client over
   * it is answered 429 RATE_LIMITED with Retry-After at once (./rate-limit.ts, burst twice the
   * rate). Default: none.
   */
  requestsPerSecondPerClient?: number;
}

/** Where the app reports what an operator should see. `console` fits. */
export interface HttpLogger {
  /** Every admin change (who asked, from where, what came of it). Default: `warn`. */
  info?(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Which configured token a request carried: the admin token, the API (client) token, or neither. */
export type TokenKind = "admin" | "client" | "none";

/**
 * The peer socket on `GET /raft`: either a ready `upgrade` handler (what the runtime adapters hand
 * over: their `upgradeWebSocket` around the mesh's handlers, with their own options), or the
 * runtime's `upgradeWebSocket` (`@hono/node-server`, `hono/deno`) and the mesh's `handlers`,
 * called once per incoming connection.
 */
export type RaftSocketOptions =
  | { upgrade: MiddlewareHandler }
  | {
      // `any`: each runtime's helper has its own socket and option types.
      // deno-lint-ignore no-explicit-any
      upgradeWebSocket: UpgradeWebSocket<any, any>;
      // deno-lint-ignore no-explicit-any
      handlers: (c: Context) => WSEvents<any> | Promise<WSEvents<any>>;
    };

export interface AppOptions {
  node: RaftNode<KvResult>;
  /** The state machine `node` applies to; reads are served from it. */
  kv: KvStateMachine;
  /** This node's own base URL, as clients reach it (reported in /status). */
  selfUrl: string;
  /**
   * Base URLs of the other members by id, for redirects. Falls back to the URLs the RaftNode was
   * given in `members`. A base URL may carry a path prefix; the request's path is appended.
   */
  peers?: Map<string, string> | Record<string, string>;
  /** The URL a member announced for itself in the mesh handshake (Transport.announcedUrl); preferred. */
  announcedUrl?: (id: string) => string | null;
  /** Each peer's link (Transport.linkStats), for /metrics and the dashboard. */
  linkStats?: () => Record<string, PeerLinkCounters>;
  /** Timings measured around the node's storage, state machine and transport, for /metrics. */
  instruments?: NodeInstruments;
  /**
   * When set, every route except `GET /raft` (peers authenticate in the mesh handshake),
   * `GET /health` (it reveals nothing) and, unless `publicStatus` is false, `GET /status`,
   * requires `Authorization: Bearer <apiToken>`.
   */
  apiToken?: string;
  /**
   * When set, the `/admin/*` routes require `Authorization: Bearer <adminToken>` (instead of the
   * API token). Without it they take the API token, like every other route.
   */
  adminToken?: string;
  /**
   * Serve `GET /status` without the token. Default true: clients find the leader through it and
   * dashboards show it; it reveals member ids, roles and URLs, so set false where those are
   * secret (`/health` stays open for load balancers).
   */
  publicStatus?: boolean;
  /** Mounts the peer socket at `GET /raft`. */
  raftSocket?: RaftSocketOptions;
  limits?: HttpLimits;
  /**
   * Answer a write 504 OUTCOME_UNKNOWN after this many ms without a result. Default: none beyond
   * the node's own `proposalTimeoutMs`.
   */
  writeTimeoutMs?: number;
  /**
   * Serve linearizable reads on followers too (the follower asks the leader for a read index,
   * then waits to apply up to it) instead of redirecting them. Default false.
   */
  followerReads?: boolean;
  /**
   * Origins (`https://app.example`, or `*`) whose browser pages may call the API cross-origin.
   * Default: none (no CORS headers). Preflights pass without the token, as browsers send them.
   */
  corsOrigins?: string[];
  logger?: HttpLogger;
  /**
   * The client's address, for the admin audit log. Runtime-specific (the Node adapter reads the
   * socket, Deno the serve handler's info), so the runtime supplies it. Default: "unknown".
   */
  remoteAddress?: (c: Context) => string | undefined;
  /** With TLS: the served certificate's expiry, for /status (`tls`). */
  tlsStatus?: () => StatusBody["tls"];
  /**
   * The runtime's event-loop delay, shown in `/metrics` as `meshraft_event_loop_delay_seconds`
   * (the Node adapter passes `perf_hooks.monitorEventLoopDelay`; see src/event-loop-delay.ts).
   */
  eventLoopDelay?: EventLoopDelaySource;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function createApp(options: AppOptions): Hono {
  const { node, kv } = options;
  const maxKeyBytes = limit("maxKeyBytes", options.limits?.maxKeyBytes, MAX_KEY_BYTES);
  const maxValueBytes = limit("maxValueBytes", options.limits?.maxValueBytes, MAX_VALUE_BYTES);
  const maxBodyBytes = limit("maxBodyBytes", options.limits?.maxBodyBytes, 2 * Math.ceil(maxValueBytes / 3) * 4 + 65_536, Number.MAX_SAFE_INTEGER);
  const maxConcurrentRequests = limit("maxConcurrentRequests", options.limits?.maxConcurrentRequests, 1024, Number.MAX_SAFE_INTEGER);
  let inFlight = 0;
  const perClient = options.limits?.requestsPerSecondPerClient;
  const rateLimiter = perClient === undefined ? null : new RateLimiter({ ratePerSecond: perClient }, realClock);
  const writeTimeoutMs = options.writeTimeoutMs;
  if (writeTimeoutMs !== undefined && !(writeTimeoutMs > 0)) {
    throw new RangeError(`writeTimeoutMs must be a positive number of milliseconds, got ${writeTimeoutMs}`);
  }
  const peers = new Map<string, string>(options.peers instanceof Map ? options.peers : Object.entries(options.peers ?? {}));
  // A member's own announced URL wins over a listed one, which may be mistyped (the mesh warns).
  const urlOf = (id: string): string | null => (id === node.id ? options.selfUrl : (options.announcedUrl?.(id) ?? peers.get(id) ?? node.urlOf(id)));
  const metrics = createHttpMetrics(node, kv, options.linkStats, options.instruments);
  if (options.eventLoopDelay) eventLoopDelayGauges(metrics.registry, options.eventLoopDelay);
  const log = options.logger;
  const publicStatus = options.publicStatus ?? true;

  const app = new Hono();
  // Before the auth middleware: the dashboard page is public, and preflights carry no token.
  mountDashboardPage(app, { node, selfUrl: options.selfUrl, urlOf });

  if (options.corsOrigins && options.corsOrigins.length > 0) {
    const origins = options.corsOrigins;
    app.use(
      "/kv/*",
      cors({
        origin: origins.includes("*") ? "*" : origins,
        allowMethods: ["GET", "PUT", "POST", "DELETE"],
        allowHeaders: ["Authorization", "Content-Type", CLIENT_HEADER, SEQ_HEADER],
        exposeHeaders: ["Location", "Retry-After", LEADER_HEADER, NODE_HEADER],
      }),
    );
    app.use("/status", cors({ origin: origins.includes("*") ? "*" : origins, allowHeaders: ["Authorization"] }));
  }

  /** Which configured token `c` carries; the admin token wins when both tokens are the same. */
  const tokenKind = (c: Context): TokenKind => {
    const header = c.req.header("Authorization");
    if (options.adminToken !== undefined && authorized(header, options.adminToken)) return "admin";
    if (options.apiToken !== undefined && authorized(header, options.apiToken)) return "client";
    return "none";
  };
  const caller = (c: Context): string => `token=${tokenKind(c)} remote=${options.remoteAddress?.(c) ?? "unknown"}`;
  const audit = (message: string): void => (log?.info ?? log?.warn)?.call(log, message);

  /** Counts an answered request in /metrics, under the status it was answered with. */
  const countRequest = (c: Context, route: string, started: number): void => {
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.requestSeconds.observe((realClock.now() - started) / 1000, { route });
  };
  /**
   * Answers `e` at once and counts it: the metrics middleware below never sees a request refused
   * here, and a throw would reach onError only after every middleware had returned.
   */
  const refuse = (c: Context, e: ApiError): void => {
    const started = realClock.now();
    c.res = errorAnswer(c, e);
    countRequest(c, routeLabel(dispatchedRoute(c)), started);
  };

  // Before anything else: a request over the limit costs no parsing, no Raft work.
  app.use("*", async (c, next) => {
    if (c.req.path.endsWith("/raft")) return next();
    if (rateLimiter !== null) {
      const client = options.remoteAddress?.(c) ?? "unknown";
      if (!rateLimiter.take(client)) {
        return refuse(c, new ApiError(429, "RATE_LIMITED", `more than ${rateLimiter.ratePerSecond} requests per second from ${client}; retry later`, { "Retry-After": "1" }));
      }
    }
    if (inFlight >= maxConcurrentRequests) {
      return refuse(c, new ApiError(503, "OVERLOADED", `this node is answering ${inFlight} requests (maxConcurrentRequests); retry later`, { "Retry-After": "1" }));
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  });

  app.use("*", async (c, next) => {
    const started = realClock.now();
    // Authorization is decided on the route the router dispatches to, never on the raw path: the
    // router decodes percent-escapes (`/%61dmin/...` reaches the admin handlers), so a label
    // taken from the raw path would let the client token through to /admin.
    const route = routeLabel(dispatchedRoute(c));
    // Not on the peer socket: a 101 answer's headers cannot be merged.
    if (route !== "/raft") c.header(NODE_HEADER, node.id);
    try {
      const token = route === "/admin" ? (options.adminToken ?? options.apiToken) : options.apiToken;
      if (token !== undefined && route !== "/raft" && route !== "/health" && !(route === "/status" && publicStatus)) {
        if (!authorized(c.req.header("Authorization"), token)) {
          if (route === "/admin") log?.warn(`admin: refused ${c.req.method} ${c.req.path} (401), ${caller(c)}`);
          // Answered here, not thrown: a throw reaches onError only after the `finally` below
          // counted the request, with the status it had then (200).
          c.res = errorAnswer(
            c,
            new ApiError(401, "UNAUTHORIZED", "this API requires Authorization: Bearer <token>", {
              "WWW-Authenticate": 'Bearer realm="meshraft"',
            }),
          );
          return;
        }
      }
      await next();
    } finally {
      countRequest(c, route, started);
    }
  });

  const errorAnswer = (c: Context, e: ApiError): Response => {
    metrics.errors.inc({ code: e.code });
    if (e.code === "INTERNAL") log?.error(`${c.req.method} ${c.req.path}: ${e.message}`);
    else if (e.code === "OUTCOME_UNKNOWN") log?.warn(`${c.req.method} ${c.req.path}: ${e.message}`);
    return c.json(e.body(), e.status as ContentfulStatusCode, e.headers);
  };
  app.onError((err, c) => errorAnswer(c, apiErrorFrom(err)));
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    // A route that exists for other methods answers 405 with them in Allow (RFC 9110 §15.5.6).
    const allow = allowedMethods(app.routes, path);
    if (allow.length > 0) {
      return errorAnswer(c, new ApiError(405, "METHOD_NOT_ALLOWED", `${c.req.method} is not allowed on ${path}; allowed: ${allow.join(", ")}`, { Allow: allow.join(", ") }));
    }
    return errorAnswer(c, new ApiError(404, "ROUTE_NOT_FOUND", `no route for ${c.req.method} ${path}`));
  });

  // ---------------------------------------------------------------------------------------------
  // Leadership

  /**
   * The answer to a request this node must not serve because another node leads: 307 to the
   * leader with the same path and query, or 503 when no leader (or no URL for it) is known.
   */
  function redirectToLeader(c: Context, leaderId: string | null, hintedUrl: string | null): Response {
    // A redirect to itself would loop: leadership is changing under this request.
    if (leaderId === null || leaderId === node.id) throw noLeader(`node ${node.id} knows no leader yet; retry shortly`, null);
    const base = urlOf(leaderId) ?? hintedUrl;
    if (base === null) throw noLeader(`the leader is ${leaderId}, but node ${node.id} has no URL for it`, leaderId);
    const url = new URL(c.req.url);
    const location = base.replace(/\/+$/, "") + url.pathname + url.search;
    c.header("Location", location);
    c.header(LEADER_HEADER, leaderId);
    return c.json({ error: { code: "NOT_LEADER", message: `the leader is ${leaderId} at ${base}` } }, 307);
  }

  /** Null when this node leads (so it may propose or read), else the redirect. */
  function unlessLeader(c: Context): Response | null {
    if (node.stopped) throw nodeStopped(node.id);
    const s = node.status();
    return s.role === "leader" ? null : redirectToLeader(c, s.leaderId, null);
  }

  // ---------------------------------------------------------------------------------------------
  // Request parsing

  /**
   * The key of a KV request. On `/kv/<key>` (`/kv/<key>/cas` for CAS) it is the rest of the path,
   * percent-decoded, slashes included: etcd users name keys a/b/c. On the bare `/kv` (`/kv/cas`) it
   * is `?key=`: that form exists for the keys `.` and `..`, which URL parsing (the client's and the
   * server's) removes as dot segments of a path, even percent-encoded. A request names its key
   * one way only.
   */
  function keyOf(c: Context, form: "path" | "path-cas" | "query"): string {
    const url = new URL(c.req.url);
    const fromQuery = /(?:^|&)key=([^&]*)/.exec(url.search.slice(1));
    if (form !== "query" && fromQuery) throw new ApiError(400, "BAD_REQUEST", "the key is in the path: no ?key= allowed");
    const raw = form === "query" ? (fromQuery?.[1] ?? "") : url.pathname.slice("/kv/".length, form === "path-cas" ? -"/cas".length : undefined);
    if (raw === "") throw new ApiError(400, "BAD_REQUEST", "missing key");
    let key: string;
    try {
      key = decodeURIComponent(raw);
    } catch {
      throw new ApiError(400, "BAD_REQUEST", "the key is not valid percent-encoded UTF-8");
    }
    const bytes = utf8.encode(key).byteLength;
    if (bytes > maxKeyBytes) throw new ApiError(400, "KEY_TOO_LARGE", `the key is ${bytes} bytes; the limit is ${maxKeyBytes}`);
    return key;
  }

  function sessionOf(c: Context): KvSession {
    const client = c.req.header(CLIENT_HEADER);
    const seqText = c.req.header(SEQ_HEADER);
    if (client === undefined && seqText === undefined) return {};
    if (client === undefined || seqText === undefined) {
      throw new ApiError(400, "BAD_REQUEST", `${CLIENT_HEADER} and ${SEQ_HEADER} go together`);
    }
    if (!isValidClientId(client)) {
      throw new ApiError(400, "BAD_REQUEST", `${CLIENT_HEADER} must be 1 to 256 printable ASCII characters without spaces`);
    }
    const seq = parseSeq(seqText);
    if (seq === null) throw new ApiError(400, "BAD_REQUEST", `${SEQ_HEADER} must be a non-negative safe integer`);
    return { client, seq };
  }

  // ---------------------------------------------------------------------------------------------
  // A removed member: its state is frozen and its idea of the leader stale, so it serves nothing.

  // Only a node that was a member can be removed: a joiner catching up is not yet one.
  let wasMember = isMember(node.membership(), node.id);
  const removed = (): boolean => {
    const member = isMember(node.membership(), node.id);
    wasMember ||= member;
    return wasMember && !member;
  };
  node.on((e) => {
    if (e.type === "membership") removed();
  });
  app.use("/kv/*", async (c, next) => {
    if (removed()) {
      throw new ApiError(410, "MEMBER_REMOVED", `${node.id} was removed from the cluster; send requests to its members (listed in their /status)`);
    }
    await next();
  });

  // ---------------------------------------------------------------------------------------------
  // Writes

  /**
   * Proposes a command and waits for its result. A NotLeaderError means nothing was proposed and
   * becomes a redirect; every other failure after `propose()` was called is a 504 or a 503 that
   * says why (see apiErrorFrom).
   */
  async function propose(c: Context, op: string, cmd: KvCommand): Promise<{ result: KvResult; index: number } | Response> {
    const data = encodeKvCommand(cmd);
    const started = realClock.now();
    try {
      const outcome = await withTimeout(node.propose(data), writeTimeoutMs);
      metrics.proposals.inc({ op, outcome: "ok" });
      metrics.proposalSeconds.observe((realClock.now() - started) / 1000, { op });
      return { result: outcome.result, index: outcome.index };
    } catch (err) {
      if (err instanceof NotLeaderError) {
        metrics.proposals.inc({ op, outcome: "not_leader" });
        return redirectToLeader(c, err.leaderId, err.leaderUrl);
      }
      const e = apiErrorFrom(err);
      metrics.proposals.inc({ op, outcome: e.code === "OUTCOME_UNKNOWN" ? "unknown" : e.code.toLowerCase() });
      throw e;
    }
  }

  /** 200, or 409 for a CAS that did not match; a write its session refused is a 409 with its code. */
  function writeAnswer(c: Context, result: KvResult, index: number, extra: Partial<WriteBody> = {}): Response {
    if (result.refused) refused(result.refused);
    const body: WriteBody = { ok: result.ok, index, ...extra };
    if (result.duplicate) body.duplicate = true;
    return c.json(body, result.ok ? 200 : 409);
  }

  /** What a CAS that did not match found: the value as text when it is UTF-8, else as base64. */
  function currentValue(prev: Uint8Array | null): Pick<WriteBody, "current" | "currentBase64"> {
    if (prev === null) return { current: null };
    try {
      return { current: strictUtf8.decode(prev) };
    } catch {
      return { currentBase64: bytesToBase64(prev) };
    }
  }

  /** The session answered without applying anything. */
  function refused(code: KvRefusal): never {
    if (code === "SESSION_EXPIRED") {
      throw new ApiError(409, "SESSION_EXPIRED", `the cluster no longer holds this ${CLIENT_HEADER} session; nothing was applied now (a resend's original may have been): start a new session at ${SEQ_HEADER} 1`);
    }
    throw new ApiError(409, "STALE_SEQUENCE", `${SEQ_HEADER} is older than this client's last write; nothing was applied`);
  }

  // Each KV route also takes its key as `?key=` on the bare path (`/kv`, `/kv/cas`): see keyOf.
  const putKv = (inQuery: boolean) => async (c: Context) => {
    const key = keyOf(c, inQuery ? "query" : "path");
    const session = sessionOf(c);
    rejectDeclaredLength(c, maxValueBytes, "VALUE_TOO_LARGE");
    const redirect = unlessLeader(c);
    if (redirect) return redirect;
    const value = await readBody(c.req.raw, maxValueBytes);
    if (value === null) throw new ApiError(413, "VALUE_TOO_LARGE", `the value exceeds ${maxValueBytes} bytes`);
    const r = await propose(c, "put", { op: "put", key, value, ...session });
    if (r instanceof Response) return r;
    return writeAnswer(c, r.result, r.index);
  };
  app.put("/kv/:key{.+}", putKv(false));
  app.put("/kv", putKv(true));

  const deleteKv = (inQuery: boolean) => async (c: Context) => {
    const key = keyOf(c, inQuery ? "query" : "path");
    const session = sessionOf(c);
    const redirect = unlessLeader(c);
    if (redirect) return redirect;
    const r = await propose(c, "delete", { op: "delete", key, ...session });
    if (r instanceof Response) return r;
    return writeAnswer(c, r.result, r.index, { existed: r.result.existed });
  };
  app.delete("/kv/:key{.+}", deleteKv(false));
  app.delete("/kv", deleteKv(true));

  const casKv = (inQuery: boolean) => async (c: Context) => {
    const key = keyOf(c, inQuery ? "query" : "path-cas");
    const session = sessionOf(c);
    rejectDeclaredLength(c, maxBodyBytes, "BODY_TOO_LARGE");
    const redirect = unlessLeader(c);
    if (redirect) return redirect;
    const raw = await readBody(c.req.raw, maxBodyBytes);
    if (raw === null) throw new ApiError(413, "BODY_TOO_LARGE", `the body exceeds ${maxBodyBytes} bytes`);
    const { expect, value } = parseCas(raw, maxValueBytes);
    const r = await propose(c, "cas", { op: "cas", key, expect, value, ...session });
    if (r instanceof Response) return r;
    // A resend's answer comes from the session table, which keeps no values: no `current` then.
    return writeAnswer(c, r.result, r.index, r.result.ok || r.result.duplicate ? {} : currentValue(r.result.prev));
  };
  app.post("/kv/:key{.+}/cas", casKv(false));
  app.post("/kv/cas", casKv(true));

  // ---------------------------------------------------------------------------------------------
  // Reads

  const getKv = (inQuery: boolean) => async (c: Context) => {
    const key = keyOf(c, inQuery ? "query" : "path");
    const stale = isStale(c.req.query("stale"));
    if (!stale) {
      if (!options.followerReads) {
        const redirect = unlessLeader(c);
        if (redirect) return redirect;
      } else if (node.stopped) {
        throw nodeStopped(node.id);
      }
      const started = realClock.now();
      try {
        await node.read();
      } catch (err) {
        metrics.reads.inc({ mode: "linearizable", outcome: err instanceof NotLeaderError ? "not_leader" : "failed" });
        if (err instanceof NotLeaderError) return redirectToLeader(c, err.leaderId, err.leaderUrl);
        throw apiErrorFrom(err);
      }
      metrics.readIndexSeconds.observe((realClock.now() - started) / 1000);
    }
    metrics.reads.inc({ mode: stale ? "stale" : "linearizable", outcome: "ok" });
    const value = kv.get(key);
    if (value === null) throw new ApiError(404, "NOT_FOUND", `no value for key ${JSON.stringify(key)}`);
    c.header("Content-Type", "application/octet-stream");
    return c.body(value as Uint8Array<ArrayBuffer>, 200);
  };
  app.get("/kv/:key{.+}", getKv(false));
  app.get("/kv", getKv(true));

  // ---------------------------------------------------------------------------------------------
  // Operations

  // For load balancers and supervisors: open even when a token is set, and it tells nothing but
  // whether this member's node runs (200) or has stopped (503).
  app.get("/health", (c) => (node.stopped ? c.json({ ok: false }, 503) : c.json({ ok: true }, 200)));

  app.get("/status", (c) => {
    const s = node.status();
    const ids = [...s.voters, ...s.learners];
    const body: StatusBody = {
      id: s.id,
      url: options.selfUrl,
      role: removed() ? "removed" : s.role,
      term: s.term,
      leader: s.leaderId,
      leaderUrl: s.leaderId === null ? null : urlOf(s.leaderId),
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      lastIndex: s.lastIndex,
      voters: s.voters,
      learners: s.learners,
      members: ids.map((id) => ({ id, url: urlOf(id), voter: s.voters.includes(id) })),
      stopped: node.stopped,
    };
    const tls = options.tlsStatus?.();
    if (tls) body.tls = tls;
    return c.json(body);
  });

  app.get("/metrics", (c) => {
    c.header("Content-Type", PROMETHEUS_CONTENT_TYPE);
    return c.body(metrics.registry.render());
  });

  mountAdminRoutes(app, {
    node,
    audit: (c, message) => audit(`admin: ${message}; asked by ${caller(c)}`),
    urlOf,
    unlessLeader,
    redirectToLeader,
    readJson: async (c) => {
      rejectDeclaredLength(c, 65_536, "BODY_TOO_LARGE");
      const raw = await readBody(c.req.raw, 65_536);
      if (raw === null) throw new ApiError(413, "BODY_TOO_LARGE", "the body exceeds 65536 bytes");
      if (raw.byteLength === 0) return null;
      try {
        return JSON.parse(strictUtf8.decode(raw));
      } catch (e) {
        throw new ApiError(400, "BAD_REQUEST", `the body is not JSON: ${(e as Error).message}`);
      }
    },
  });

  mountDashboardEvents(app, { node, selfUrl: options.selfUrl, urlOf, metrics, linkStats: options.linkStats, instruments: options.instruments, eventLoopDelay: options.eventLoopDelay });

  if (options.raftSocket) {
    const socket = options.raftSocket;
    app.get("/raft", "upgrade" in socket ? socket.upgrade : socket.upgradeWebSocket((c) => socket.handlers(c)));
  }

  return app;
}

// -----------------------------------------------------------------------------------------------

function limit(name: string, value: number | undefined, fallback: number, max: number = fallback): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new RangeError(`limits.${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return v;
}

/** The methods of the routes whose pattern matches `path` (middleware, method "ALL", left out). */
function allowedMethods(routes: { method: string; path: string }[], path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    if (r.method === "ALL") continue;
    // hono patterns: ":name" is one segment, ":name{re}" matches re; the rest is literal.
    let pattern = "";
    let last = 0;
    for (const m of r.path.matchAll(/:\w+(?:\{([^}]*)\})?/g)) {
      pattern += escapeRegExp(r.path.slice(last, m.index)) + `(?:${m[1] ?? "[^/]+"})`;
      last = m.index + m[0].length;
    }
    pattern += escapeRegExp(r.path.slice(last));
    if (new RegExp(`^${pattern}$`).test(path)) methods.add(r.method);
  }
  return [...methods].sort();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The pattern of the route handler the router dispatched `c` to (middleware, registered for every
 * method, left out), or null when none matched (the 404 handler answers).
 */
function dispatchedRoute(c: Context): string | null {
  return matchedRoutes(c).find((r) => r.method !== "ALL")?.path ?? null;
}

/**
 * The label of a route pattern, for metrics and for choosing the token: "/admin" for every admin
 * route, "other" for a request no route handles (it still needs the API token).
 */
function routeLabel(pattern: string | null): string {
  if (pattern === null) return "other";
  if (pattern === "/kv/:key{.+}" || pattern === "/kv") return "/kv/:key";
  if (pattern === "/kv/:key{.+}/cas" || pattern === "/kv/cas") return "/kv/:key/cas";
  if (pattern === "/status" || pattern === "/health" || pattern === "/metrics" || pattern === "/raft") return pattern;
  if (pattern.startsWith("/admin/")) return "/admin";
  return "other";
}

/** `?stale`, `?stale=1`, `?stale=true` ask for a local read; `?stale=0` and `?stale=false` do not. */
function isStale(value: string | undefined): boolean {
  return value !== undefined && value !== "0" && value !== "false";
}

/**
 * Compares a bearer token in time that depends only on the expected token's length, so the
 * answer's timing does not reveal how much of a guess was right.
 */
export function authorized(header: string | undefined, token: string): boolean {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  const given = utf8.encode(m ? m[1] : "");
  const expected = utf8.encode(token);
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (given[i] ?? 0) ^ expected[i];
  return diff === 0 && m !== null;
}

/** 413 at once when Content-Length already says the body is too large: no byte is read. */
function rejectDeclaredLength(c: Context, max: number, code: "VALUE_TOO_LARGE" | "BODY_TOO_LARGE"): void {
  const declared = c.req.header("Content-Length");
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > max) {
    throw new ApiError(413, code, `the body is ${declared} bytes; the limit is ${max}`);
  }
}

/** The whole body, or null as soon as it exceeds `max` bytes (the rest is never buffered). */
async function readBody(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) <= max) {
    // The HTTP parser holds the body to its declared length, so this reads at most `max` bytes,
    // and arrayBuffer() skips building a WHATWG stream (a quarter of a busy leader's CPU).
    const bytes = new Uint8Array(await req.arrayBuffer());
    return bytes.byteLength <= max ? bytes : null;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * The CAS body: each of `expect` and `value` as a UTF-8 string (`"expect"`) or as base64 bytes
 * (`"expectBase64"`), or null. Base64 carries any bytes exactly (a leading BOM, invalid UTF-8).
 */
function parseCas(raw: Uint8Array, maxValueBytes: number): { expect: Uint8Array | null; value: Uint8Array | null } {
  const bad = (why: string): never => {
    throw new ApiError(400, "BAD_REQUEST", `the CAS body must be JSON {"expect" or "expectBase64": string|null, "value" or "valueBase64": string|null}: ${why}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictUtf8.decode(raw));
  } catch (e) {
    return bad((e as Error).message);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return bad("not an object");
  const body = parsed as Record<string, unknown>;
  const fields = ["expect", "value", "expectBase64", "valueBase64"];
  for (const k of Object.keys(body)) if (!fields.includes(k)) bad(`unexpected field ${JSON.stringify(k)}`);
  const field = (name: "expect" | "value"): Uint8Array | null => {
    const b64 = `${name}Base64`;
    const inBase64 = Object.hasOwn(body, b64);
    if (Object.hasOwn(body, name) === inBase64) bad(`give exactly one of ${name} and ${b64} (null is allowed)`);
    const v = inBase64 ? body[b64] : body[name];
    if (v === null) return null;
    if (typeof v !== "string") return bad(`${name} must be a string or null`);
    let bytes: Uint8Array;
    if (inBase64) {
      const decoded = base64ToBytes(v);
      if (decoded === null) return bad(`${b64} is not canonical base64`);
      bytes = decoded;
    } else {
      if (/\p{Cs}/u.test(v)) bad(`${name} contains a lone surrogate`);
      bytes = utf8.encode(v);
    }
    if (bytes.byteLength > maxValueBytes) {
      throw new ApiError(413, "VALUE_TOO_LARGE", `${name} is ${bytes.byteLength} bytes; the limit is ${maxValueBytes}`);
    }
    return bytes;
  };
  return { expect: field("expect"), value: field("value") };
}

/** `promise`, or OutcomeUnknownError after `ms` (the proposal itself goes on). */
function withTimeout<T>(promise: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const cancel = realClock.setTimer(ms, () => reject(new OutcomeUnknownError(`no result within ${ms} ms`)));
    promise.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (e) => {
        cancel();
        reject(e);
      },
    );
  });
}
