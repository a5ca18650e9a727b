/**
 * The wire side of the cluster benchmark, shared by the orchestrator (bench/cluster.ts) and the
 * load generator (bench/cluster-load.ts): a keep-alive HTTP client (node:http or fetch), and how
 * each system under test spells a put, a linearizable get and "who leads".
 *
 * - meshraft: `PUT /kv/:key` (raw body), `GET /kv/:key` (ReadIndex), `GET /status`; a follower
 *   answers 307 with `Location` on the leader.
 * - etcd: the v3 JSON gateway on the client port, `POST /v3/kv/put` and `POST /v3/kv/range` with
 *   base64 keys and values (a range is linearizable unless `serializable` is set), and
 *   `POST /v3/maintenance/status` (`leader` equals `header.member_id` on the leader).
 */
import http from "node:http";

/** `floor`: a trivial node:http server that answers like a meshraft leader (bench/cluster-procs.ts). */
export type System = "meshraft" | "etcd" | "floor";
/** `autocannon` drives the measured points; lookups, prefill and failover use node:http then. */
export type ClientKind = "http" | "fetch" | "autocannon";

export interface Answer {
  status: number;
  /** `Location` of a redirect. */
  location: string | null;
  body: Buffer;
}

export interface HttpClient {
  readonly kind: ClientKind;
  /** `base` is an origin (`http://127.0.0.1:7001`), `path` starts with `/`. */
  request(base: string, req: Req, timeoutMs: number): Promise<Answer>;
  close(): void;
}

export interface Req {
  method: "GET" | "PUT" | "POST";
  path: string;
  body: Buffer | null;
  contentType?: string;
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/** node:http with a keep-alive Agent holding up to `maxSockets` connections per node. */
function nodeHttpClient(maxSockets: number): HttpClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, keepAliveMsecs: 10_000 });
  const origins = new Map<string, { hostname: string; port: number }>();
  const originOf = (base: string): { hostname: string; port: number } => {
    let o = origins.get(base);
    if (!o) {
      const u = new URL(base);
      o = { hostname: u.hostname, port: Number(u.port) || 80 };
      origins.set(base, o);
    }
    return o;
  };
  return {
    kind: "http",
    request(base, r, timeoutMs) {
      const { hostname, port } = originOf(base);
      const headers: Record<string, string | number> = {};
      if (r.body) {
        headers["content-length"] = r.body.byteLength;
        headers["content-type"] = r.contentType ?? "application/octet-stream";
      }
      return new Promise<Answer>((resolve, reject) => {
        const req = http.request({ agent, hostname, port, method: r.method, path: r.path, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const location = res.headers.location ?? null;
            resolve({ status: res.statusCode ?? 0, location, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) });
          });
          res.on("error", reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new BenchTimeout(timeoutMs)));
        req.on("error", reject);
        req.end(r.body ?? undefined);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/**
 * Node's built-in fetch (undici) with its own Agent: keep-alive, up to `connections` per origin.
 * Node 20 does not export undici's Agent; the class of the global dispatcher is that Agent.
 */
async function fetchClient(connections: number): Promise<HttpClient> {
  await fetch("data:,").catch(() => {});
  const global = (globalThis as Record<symbol, unknown>)[Symbol.for("undici.globalDispatcher.1")] as
    | { constructor: new (o: object) => { close(): Promise<void> } }
    | undefined;
  if (!global) throw new Error("cannot find undici's Agent behind fetch in this Node version; use --client http");
  const dispatcher = new global.constructor({ connections, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, pipelining: 1 });
  return {
    kind: "fetch",
    async request(base, r, timeoutMs) {
      const init: RequestInit & { dispatcher: unknown } = {
        method: r.method,
        body: r.body ? (r.body as Uint8Array<ArrayBuffer>) : undefined,
        headers: r.body ? { "content-type": r.contentType ?? "application/octet-stream" } : undefined,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher,
      };
      const res = await fetch(base + r.path, init);
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, location: res.headers.get("location"), body };
    },
    close() {
      void dispatcher.close();
    },
  };
}

export function createClient(kind: ClientKind, connections: number): Promise<HttpClient> {
  // autocannon is no request/response library: it runs whole points (bench/cluster-load.ts).
  return kind === "fetch" ? fetchClient(connections) : Promise.resolve(nodeHttpClient(connections));
}

export class BenchTimeout extends Error {
  code = "TIMEOUT";
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

// ---------------------------------------------------------------------------------------------
// The systems' requests
// ---------------------------------------------------------------------------------------------

const b64 = (s: string | Buffer): string => Buffer.from(s).toString("base64");

export function putReq(system: System, key: string, value: Buffer): Req {
  if (system !== "etcd") return { method: "PUT", path: `/kv/${key}`, body: value };
  const body = Buffer.from(`{"key":"${b64(key)}","value":"${b64(value)}"}`);
  return { method: "POST", path: "/v3/kv/put", body, contentType: "application/json" };
}

export function getReq(system: System, key: string): Req {
  if (system !== "etcd") return { method: "GET", path: `/kv/${key}`, body: null };
  return { method: "POST", path: "/v3/kv/range", body: Buffer.from(`{"key":"${b64(key)}"}`), contentType: "application/json" };
}

/**
 * Whether an answer is the operation's success. An etcd range of a missing key is a 200 without
 * `kvs`: the benchmark writes every key first, so that is counted as an error (`missing`).
 */
export function outcome(system: System, op: "put" | "get", a: Answer): "ok" | string {
  if (a.status !== 200) return String(a.status);
  if (system === "etcd" && op === "get" && a.body.indexOf('"kvs"') < 0) return "missing";
  return "ok";
}

/** The origin of a redirect's `Location` (meshraft's 307 carries the leader's full URL). */
export function originOf(location: string): string {
  const u = new URL(location);
  return u.origin;
}

interface MeshraftStatus {
  id: string;
  url: string;
  role: string;
  term: number;
  leader: string | null;
  leaderUrl: string | null;
  commitIndex: number;
  appliedIndex: number;
}

interface EtcdStatus {
  header?: { member_id?: string };
  leader?: string;
  raftIndex?: string;
  raftAppliedIndex?: string;
  raftTerm?: string;
}

/** What one member says about itself and the leader. */
export interface MemberView {
  url: string;
  /** This member leads. */
  leads: boolean;
  /** An id for the leader this member believes in (meshraft node id, etcd member id), or null. */
  leader: string | null;
  term: number;
  /** Applied (meshraft) / raft applied (etcd) index. */
  applied: number;
  /** Commit (meshraft) / raft index (etcd). */
  commit: number;
}

export async function memberView(client: HttpClient, system: System, url: string, timeoutMs = 1000): Promise<MemberView | null> {
  try {
    if (system !== "etcd") {
      const a = await client.request(url, { method: "GET", path: "/status", body: null }, timeoutMs);
      if (a.status !== 200) return null;
      const s = JSON.parse(a.body.toString()) as MeshraftStatus;
      return { url, leads: s.role === "leader", leader: s.leader, term: s.term, applied: s.appliedIndex, commit: s.commitIndex };
    }
    const a = await client.request(url, { method: "POST", path: "/v3/maintenance/status", body: Buffer.from("{}"), contentType: "application/json" }, timeoutMs);
    if (a.status !== 200) return null;
    const s = JSON.parse(a.body.toString()) as EtcdStatus;
    const self = s.header?.member_id ?? null;
    const leader = s.leader && s.leader !== "0" ? s.leader : null;
    const index = Number(s.raftIndex ?? 0);
    return {
      url,
      leads: leader !== null && leader === self,
      leader,
      term: Number(s.raftTerm ?? 0),
      applied: Number(s.raftAppliedIndex ?? index),
      commit: index,
    };
  } catch {
    return null;
  }
}

/** The URL of the member that says it leads (the highest term wins), or null. */
export async function findLeader(client: HttpClient, system: System, urls: string[]): Promise<string | null> {
  const views = await Promise.all(urls.map((u) => memberView(client, system, u)));
  const leaders = views.filter((v): v is MemberView => v !== null && v.leads).sort((a, b) => b.term - a.term);
  return leaders[0]?.url ?? null;
}
