/**
 * MeshraftClient: the KV API of a meshraft cluster over fetch. It finds and remembers the leader,
 * follows 307s itself, retries what is safe to retry, and numbers writes so that a resent write
 * applies once. It uses only fetch, AbortController, TextEncoder/TextDecoder and
 * crypto.getRandomValues, so the same code runs in Node, Deno and browsers.
 *
 * What is retried (within `retryBudgetMs` and `maxAttempts`, with backoff and jitter):
 * - 503 (no leader, dropped proposal, read timeout, node stopped) and 429 (this client's rate
 *   over the member's limit): nothing happened;
 * - connection failures and per-attempt timeouts, and 504 OUTCOME_UNKNOWN: a write's fate may be
 *   unknown, but every write carries a session (client id + seq) that the retry reuses, so the
 *   state machine answers a resend of an applied write with its original result;
 * - 307 is followed at once and not counted as an attempt;
 * - 409 SESSION_EXPIRED (the cluster forgot the session): when no attempt of the write can have
 *   been applied, it is resent at once on a new session; otherwise it fails with OUTCOME_UNKNOWN.
 *
 * Sessions belong to one client instance: their ids carry 128 random bits chosen at construction
 * and their seqs start at 1, so two clients (or a restarted one) never share a session, whatever
 * `clientId` they were given or their clocks say. A shared session would lose writes: the cluster
 * answers a write whose seq equals the session's last one with that write's result.
 * Anything else (4xx, 500) is returned or thrown as it is.
 */
import { MeshraftError } from "../errors.ts";
import {
  bytesToBase64,
  CLIENT_HEADER,
  isValidClientId,
  LEADER_HEADER,
  NODE_HEADER,
  SEQ_HEADER,
  type AdminMembersBody,
  type AdminTransferBody,
  type CasRequestBody,
  type ErrorBody,
  type StatusBody,
  type WriteBody,
} from "../http/protocol.ts";

export interface BackoffOptions {
  /** Delay before the first retry, in ms (doubled per retry, with jitter). Default 20. */
  initialMs?: number;
  /** Longest delay between attempts, in ms. Default 500. */
  maxMs?: number;
}

export interface MeshraftClientOptions {
  /** Base URLs of some or all nodes (`http://127.0.0.1:7001`); the leader is found from them. */
  urls: string[];
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent instead of `token` on the `/admin` calls (members, transferLeader). Default: `token`. */
  adminToken?: string;
  /**
   * A label for this client's sessions (printable ASCII, up to 200 characters), e.g. the app's
   * name: the session id is `<clientId>.<128 random bits>`, unique to this client instance.
   * Default: the random part alone. Concurrent writes use `<session id>.<n>` as well.
   */
  clientId?: string;
  /** Longest wait for one HTTP answer, in ms. Default 5000. */
  timeoutMs?: number;
  /** Longest time one call spends across all its attempts and backoff, in ms. Default 15000. */
  retryBudgetMs?: number;
  /** Most attempts per call (redirects followed are not counted). Default 100. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** Most redirects followed in a row before the attempt counts as failed. Default 5. */
  maxRedirects?: number;
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * A call that failed. `status` is the HTTP status of the last answer (0 when there was none:
 * connection failure or timeout); `code` is the server's error code, or `UNAVAILABLE` when no node
 * answered. `OUTCOME_UNKNOWN` means a write may or may not have been applied.
 */
export class MeshraftHttpError extends MeshraftError {
  readonly status: number;
  /** The URL of the last attempt. */
  readonly url: string | null;
  constructor(status: number, code: string, message: string, url: string | null, options?: { cause?: unknown }) {
    super(code, message);
    this.status = status;
    this.url = url;
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}

export interface GetOptions {
  /** Serve from whichever node answers, without confirming leadership (may be stale). */
  stale?: boolean;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  url: string;
  /** A write: whether an earlier attempt of this call may have reached the log. */
  uncertain?: boolean;
}

interface Call {
  method: "GET" | "PUT" | "DELETE" | "POST";
  /** Path and query, already encoded. */
  path: string;
  body?: Uint8Array;
  contentType?: string;
  /** Writes carry a session and are retried after unknown outcomes. */
  write: boolean;
  /** Answered only by the leader: a success (200, or 409 from a write) tells where the leader is. */
  leaderOnly: boolean;
  /** A fixed node (status): no leader preference. */
  url?: string;
  /** Overrides the client's token (admin calls). */
  token?: string;
}

/** One session lane: at most one write in flight, so its seqs reach the log in order. */
interface Lane {
  client: string;
  /** The last seq used; a new lane starts at 0, so its first write is seq 1. */
  seq: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class MeshraftClient {
  /** The id of this instance's first session lane: `clientId` option (if any), then random bits. */
  readonly clientId: string;
  private readonly urls: string[];
  private readonly token: string | undefined;
  private readonly adminToken: string | undefined;
  private readonly timeoutMs: number;
  private readonly retryBudgetMs: number;
  private readonly maxAttempts: number;
  private readonly maxRedirects: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly fetchFn: typeof fetch;
  /** Base URL of the node believed to lead, or null to try `urls` in turn. */
  private leaderUrl: string | null = null;
  private leaderIdValue: string | null = null;
  /** Index into `urls` of the next node to try when no leader is known. */
  private next = 0;
  private readonly freeLanes: Lane[] = [];
  private lanes = 0;

  constructor(options: MeshraftClientOptions) {
    if (!Array.isArray(options.urls) || options.urls.length === 0) throw new TypeError("MeshraftClient needs at least one URL");
    this.urls = options.urls.map((u) => {
      const url = new URL(u);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`not an http(s) URL: ${u}`);
      return trimSlash(url.href);
    });
    this.token = options.token;
    this.adminToken = options.adminToken ?? options.token;
    // Room for the random part and the lane suffix within the server's 256-character limit.
    if (options.clientId !== undefined && (!isValidClientId(options.clientId) || options.clientId.length > 200)) {
      throw new TypeError("clientId must be 1 to 200 printable ASCII characters without spaces");
    }
    this.clientId = options.clientId === undefined ? randomId() : `${options.clientId}.${randomId()}`;
    this.timeoutMs = positive("timeoutMs", options.timeoutMs ?? 5_000);
    this.retryBudgetMs = positive("retryBudgetMs", options.retryBudgetMs ?? 15_000);
    this.maxAttempts = positive("maxAttempts", options.maxAttempts ?? 100);
    this.maxRedirects = options.maxRedirects ?? 5;
    this.backoffInitialMs = positive("backoff.initialMs", options.backoff?.initialMs ?? 20);
    this.backoffMaxMs = positive("backoff.maxMs", options.backoff?.maxMs ?? 500);
    if (options.fetch) this.fetchFn = options.fetch;
    else if (typeof globalThis.fetch === "function") {
      // Called unbound, a browser's fetch throws "Illegal invocation".
      this.fetchFn = (input, init) => globalThis.fetch(input, init);
    } else throw new TypeError("this runtime has no global fetch: pass options.fetch");
  }

  /** The id of the node this client believes leads, if it has learned it. */
  get leaderId(): string | null {
    return this.leaderIdValue;
  }

  /** Sets `key` to `value` (a string is stored as UTF-8). */
  async put(key: string, value: string | Uint8Array): Promise<void> {
    const body = typeof value === "string" ? encoder.encode(value) : value;
    await this.write({ method: "PUT", path: kvPath(key), body, contentType: "application/octet-stream", write: true, leaderOnly: true });
  }

  /** Deletes `key`; resolves with whether it existed. */
  async delete(key: string): Promise<boolean> {
    const res = await this.write({ method: "DELETE", path: kvPath(key), write: true, leaderOnly: true });
    return res.existed === true;
  }

  /**
   * Sets `key` to `value` only if it currently holds `expect` (`null`: only if absent; a `null`
   * value deletes). Resolves with whether it did. Strings are compared and stored as UTF-8;
   * byte arrays exactly as they are (they travel in base64).
   */
  async cas(key: string, expect: string | Uint8Array | null, value: string | Uint8Array | null): Promise<boolean> {
    const payload: CasRequestBody = {};
    if (expect instanceof Uint8Array) payload.expectBase64 = bytesToBase64(expect);
    else payload.expect = expect;
    if (value instanceof Uint8Array) payload.valueBase64 = bytesToBase64(value);
    else payload.value = value;
    const body = encoder.encode(JSON.stringify(payload));
    const res = await this.write({ method: "POST", path: kvPath(key, "cas"), body, contentType: "application/json", write: true, leaderOnly: true });
    return res.ok;
  }

  /** The value of `key`, or null if absent. Linearizable unless `stale` is set. */
  async get(key: string, options: GetOptions = {}): Promise<Uint8Array | null> {
    const stale = options.stale === true;
    const res = await this.call({ method: "GET", path: kvPath(key, "", stale ? "stale" : ""), write: false, leaderOnly: !stale });
    if (res.status === 200) return res.body;
    if (res.status === 404 && errorOf(res)?.code === "NOT_FOUND") return null;
    throw httpError(res);
  }

  /** `get`, decoded as UTF-8. */
  async getText(key: string, options: GetOptions = {}): Promise<string | null> {
    const value = await this.get(key, options);
    return value === null ? null : decoder.decode(value);
  }

  /** `GET /status` of `url` (default: the leader if known, else any node that answers). */
  async status(url?: string): Promise<StatusBody> {
    const res = await this.call({ method: "GET", path: "/status", write: false, leaderOnly: false, url: url === undefined ? undefined : trimSlash(url) });
    if (res.status !== 200) throw httpError(res);
    return JSON.parse(decoder.decode(res.body)) as StatusBody;
  }

  /** The membership as the leader sees it (`GET /admin/members`). */
  async members(): Promise<AdminMembersBody> {
    return this.admin<AdminMembersBody>("GET", "/admin/members");
  }

  /**
   * Adds a member (`POST /admin/members`): a voter by default (a learner first, promoted once
   * caught up), or a learner. Resolves once the change took effect. Adding one that is already
   * there in that role changes nothing; a change while another is in flight fails with
   * CONF_CHANGE_IN_PROGRESS (retry later).
   */
  async addMember(id: string, url: string, role: "voter" | "learner" = "voter"): Promise<AdminMembersBody> {
    return this.admin<AdminMembersBody>("POST", "/admin/members", { id, url, role });
  }

  /** Removes a member, voter or learner (the leader included: it hands over). */
  async removeMember(id: string): Promise<AdminMembersBody> {
    return this.admin<AdminMembersBody>("DELETE", `/admin/members/${encodeURIComponent(id)}`);
  }

  /** Hands leadership to `to`, or to the most up-to-date voter; resolves with the new leader. */
  async transferLeader(to?: string): Promise<AdminTransferBody> {
    const res = await this.admin<AdminTransferBody>("POST", "/admin/transfer-leader", to === undefined ? {} : { to });
    this.leaderUrl = res.leaderUrl;
    this.leaderIdValue = res.leader;
    return res;
  }

  // -------------------------------------------------------------------------------------------

  /** An `/admin` call on the leader: no session (the routes are idempotent or refuse a repeat). */
  private async admin<T>(method: Call["method"], path: string, json?: unknown): Promise<T> {
    const body = json === undefined ? undefined : encoder.encode(JSON.stringify(json));
    const res = await this.call({ method, path, body, contentType: body ? "application/json" : undefined, write: false, leaderOnly: true, token: this.adminToken });
    if (res.status !== 200) throw httpError(res);
    return JSON.parse(decoder.decode(res.body)) as T;
  }

  /** A write on a session lane; every retry of it reuses the lane's seq. */
  private async write(call: Call): Promise<WriteBody> {
    const lane = this.freeLanes.pop() ?? this.newLane();
    lane.seq++;
    try {
      for (;;) {
        const res = await this.call(call, { [CLIENT_HEADER]: lane.client, [SEQ_HEADER]: String(lane.seq) });
        if (res.status === 200 || (res.status === 409 && call.method === "POST" && errorOf(res) === null)) {
          return JSON.parse(decoder.decode(res.body)) as WriteBody;
        }
        const e = httpError(res);
        if (e.code !== "SESSION_EXPIRED") throw e;
        if (res.uncertain) {
          throw new MeshraftHttpError(e.status, "OUTCOME_UNKNOWN", `the write may or may not have been applied: the cluster forgot its session before a resend reached it (${e.message})`, e.url, { cause: e });
        }
        // No attempt was applied (none can have reached the log but this refused one): start over
        // on a session the cluster has never seen.
        Object.assign(lane, this.newLane(), { seq: 1 });
      }
    } finally {
      // Even after OUTCOME_UNKNOWN: the next write on this lane has a higher seq, so if the old one
      // still commits later, the session table answers it as stale instead of applying it.
      this.freeLanes.push(lane);
    }
  }

  /** A lane on a session id this instance has not used before (clientId is unique to it). */
  private newLane(): Lane {
    const n = this.lanes++;
    return { client: n === 0 ? this.clientId : `${this.clientId}.${n}`, seq: 0 };
  }

  /** Sends `call` until it gets an answer that is not worth retrying, or the budget runs out. */
  private async call(call: Call, session?: Record<string, string>): Promise<Answer> {
    const deadline = Date.now() + this.retryBudgetMs;
    const headers: Record<string, string> = { ...session };
    const token = call.token ?? this.token;
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    if (call.contentType) headers["Content-Type"] = call.contentType;
    // Whether a write may have reached the log: decides the final error's code.
    let uncertain = false;
    let lastError: MeshraftHttpError | null = null;

    for (let attempt = 1; ; attempt++) {
      let base = call.url ?? this.preferredUrl();
      let target = base + call.path;
      for (let hops = 0; ; hops++) {
        let res: Answer;
        try {
          res = await this.send(target, call, headers, deadline);
        } catch (cause) {
          if (call.write) uncertain = true;
          this.unreachable(base);
          lastError = new MeshraftHttpError(0, "UNAVAILABLE", `no answer from ${target}: ${describe(cause)}`, target, { cause });
          break;
        }
        if (res.status === 307 || res.status === 0) {
          const next = res.status === 307 ? this.redirectTarget(res, target, call.path) : await this.askForLeader(base, call.path, headers, deadline);
          if (next === null || hops >= this.maxRedirects) {
            lastError = new MeshraftHttpError(res.status, "NO_LEADER", `${target} redirected, but no usable leader URL was found`, target);
            this.unreachable(base);
            break;
          }
          base = next.base;
          target = next.target;
          continue;
        }
        if (res.status === 429) {
          lastError = httpError(res);
          break;
        }
        if (res.status === 503) {
          lastError = httpError(res);
          // A dropped proposal or a read timeout is the leader's transient trouble; otherwise the
          // node knows no leader or is stopped: try the others meanwhile.
          if (lastError.code !== "PROPOSAL_DROPPED" && lastError.code !== "READ_TIMEOUT") this.unreachable(base);
          break;
        }
        if (res.status === 504 && call.write) {
          uncertain = true;
          lastError = httpError(res);
          break;
        }
        // Only the leader gets as far as these answers (a follower validates some input first). A
        // 404 can come from any node (a route it does not have): it says nothing of leadership.
        if (call.leaderOnly && (res.status === 200 || (res.status === 409 && call.write))) {
          this.rememberLeader(base, res.headers.get(NODE_HEADER));
        }
        return { ...res, uncertain };
      }
      const delay = this.backoff(attempt);
      if (attempt >= this.maxAttempts || Date.now() + delay >= deadline) {
        const last = lastError as MeshraftHttpError;
        if (!uncertain || last.code === "OUTCOME_UNKNOWN") throw last;
        throw new MeshraftHttpError(
          last.status,
          "OUTCOME_UNKNOWN",
          `the write may or may not have been applied (gave up after ${attempt} attempts; last: ${last.message})`,
          last.url,
          { cause: last },
        );
      }
      await sleep(delay);
    }
  }

  /** One fetch, body read, within the per-attempt timeout and the call's deadline. */
  private async send(target: string, call: Call, headers: Record<string, string>, deadline: number): Promise<Answer> {
    const ac = new AbortController();
    const ms = Math.max(1, Math.min(this.timeoutMs, deadline - Date.now()));
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${ms} ms`)), ms);
    try {
      const res = await this.fetchFn(target, {
        method: call.method,
        headers,
        body: call.body as Uint8Array<ArrayBuffer> | undefined,
        redirect: "manual",
        signal: ac.signal,
      });
      // A browser hides a manual redirect (type "opaqueredirect", status 0); askForLeader copes.
      const status = res.type === "opaqueredirect" ? 0 : res.status;
      const body = new Uint8Array(await res.arrayBuffer());
      return { status, headers: res.headers, body, url: target };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Where a 307 points, and the leader base URL it reveals. */
  private redirectTarget(res: Answer, from: string, path: string): { base: string; target: string } | null {
    const location = res.headers.get("Location");
    if (location === null) return null;
    let url: URL;
    try {
      url = new URL(location, from);
    } catch {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    const target = url.href;
    // The server appends the request's path and query to the leader's base URL.
    const base = target.endsWith(path) ? target.slice(0, target.length - path.length) : url.origin;
    this.rememberLeader(base, res.headers.get(LEADER_HEADER));
    return { base, target };
  }

  /** Where a redirect we may not read points (browsers): ask the node's /status for the leader. */
  private async askForLeader(
    base: string,
    path: string,
    headers: Record<string, string>,
    deadline: number,
  ): Promise<{ base: string; target: string } | null> {
    const auth: Record<string, string> = headers.Authorization ? { Authorization: headers.Authorization } : {};
    const statusCall: Call = { method: "GET", path: "/status", write: false, leaderOnly: false };
    const res = await this.send(base + "/status", statusCall, auth, deadline).catch(() => null);
    if (res === null || res.status !== 200) return null;
    const status = JSON.parse(decoder.decode(res.body)) as StatusBody;
    if (status.leaderUrl === null) return null;
    const leader = trimSlash(status.leaderUrl);
    this.rememberLeader(leader, status.leader);
    return { base: leader, target: leader + path };
  }

  private preferredUrl(): string {
    return this.leaderUrl ?? this.urls[this.next % this.urls.length];
  }

  private rememberLeader(base: string, id: string | null): void {
    this.leaderUrl = base;
    if (id !== null) this.leaderIdValue = id;
  }

  /** `base` failed: forget it as leader and move on to the next configured URL. */
  private unreachable(base: string): void {
    if (this.leaderUrl === base) {
      this.leaderUrl = null;
      this.leaderIdValue = null;
    }
    const i = this.urls.indexOf(base);
    this.next = i >= 0 ? i + 1 : this.next + 1;
  }

  /** Exponential backoff with jitter in [d/2, d). */
  private backoff(attempt: number): number {
    const d = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(attempt - 1, 20));
    return d / 2 + Math.random() * (d / 2);
  }
}

/**
 * The path of `key`'s route (`/kv/<key>`, with `/<action>` and `?<query>`). The keys `.` and `..`
 * go in the query (`/kv?key=..`) instead: URL parsing, here and on the server, drops them from a
 * path as dot segments, even percent-encoded.
 */
function kvPath(key: string, action = "", query = ""): string {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("a key must be a non-empty string");
  const tail = action === "" ? "" : `/${action}`;
  if (key === "." || key === "..") return `/kv${tail}?key=${encodeURIComponent(key)}${query === "" ? "" : `&${query}`}`;
  return `/kv/${encodeURIComponent(key)}${tail}${query === "" ? "" : `?${query}`}`;
}

function errorOf(res: Answer): ErrorBody["error"] | null {
  try {
    const parsed = JSON.parse(decoder.decode(res.body)) as Partial<ErrorBody>;
    return parsed && typeof parsed.error === "object" && parsed.error !== null ? parsed.error : null;
  } catch {
    return null;
  }
}

function httpError(res: Answer): MeshraftHttpError {
  const e = errorOf(res);
  return new MeshraftHttpError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `HTTP ${res.status} from ${res.url}`, res.url);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

function positive(name: string, v: number): number {
  if (!(typeof v === "number" && v > 0)) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
