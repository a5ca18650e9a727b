/**
 * Real HTTP on 127.0.0.1 in front of real RaftNodes: each node's app (src/http/app.ts) is served by
 * @hono/node-server on an ephemeral port; the nodes talk over a MemoryNetwork on the real clock.
 *
 * The servers listen first (port 0) and serve 503 until their node exists, because the members'
 * URLs must be known before the RaftNodes are built.
 */
import { serve, type ServerType } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { WebSocketServer } from "ws";
import { realClock } from "../../src/clock.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { createApp, type AppOptions } from "../../src/http/index.ts";
import { NodeInstruments } from "../../src/http/metrics-instruments.ts";
import { KvStateMachine, type KvResult, type KvStateMachineOptions } from "../../src/kv/kv.ts";
import { RaftNode, type RaftNodeOptions } from "../../src/node.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";

export interface HttpMember {
  id: string;
  url: string;
  server: ServerType;
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  /** The server is closed (a crashed process). */
  down: boolean;
}

export interface HttpClusterOptions {
  ids?: string[];
  /** Nodes to start (default all). */
  start?: string[];
  app?: Partial<AppOptions>;
  node?: Partial<RaftNodeOptions<KvResult>>;
  kv?: KvStateMachineOptions;
  /** Attach a ws server for `GET /raft` upgrades. */
  websocket?: WebSocketServer;
  /**
   * Extra nodes that start with `join: true` (no configuration, no campaigning), each behind its
   * own server, until a membership change adds them. They are members of the harness, not of Raft.
   */
  spares?: string[];
  /** Each member's NodeInstruments (as src/member.ts wires them): they time its storage saves. */
  instruments?: boolean;
}

export class HttpCluster {
  readonly members: Map<string, HttpMember> = new Map();
  readonly network: MemoryNetwork = new MemoryNetwork({ clock: realClock, random: new SeededRandom(7) });

  get urls(): string[] {
    return [...this.members.values()].map((m) => m.url);
  }

  member(id: string): HttpMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  url(id: string): string {
    return this.member(id).url;
  }

  /** The leader most live nodes agree on, waiting up to `ms` for one. */
  async leader(ms = 5_000): Promise<HttpMember> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const live = [...this.members.values()].filter((m) => !m.node.stopped);
      for (const m of live) {
        const s = m.node.status();
        if (s.role !== "leader") continue;
        const agree = live.filter((o) => o.node.status().leaderId === m.id && o.node.status().term === s.term).length;
        // A fresh leader has committed its no-op once its commit index reaches its term's first entry.
        if (agree > this.members.size / 2 && s.commitIndex >= s.lastIndex) return m;
      }
      await sleep(10);
    }
    throw new Error(`no leader within ${ms} ms: ${this.describe()}`);
  }

  /** A live non-leader. */
  async follower(): Promise<HttpMember> {
    const leader = await this.leader();
    const f = [...this.members.values()].find((m) => m.id !== leader.id && !m.node.stopped);
    if (!f) throw new Error("no live follower");
    return f;
  }

  /** Until every live node has applied at least `index`. */
  async applied(index: number, ms = 5_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const live = [...this.members.values()].filter((m) => !m.node.stopped);
      if (live.every((m) => m.node.status().appliedIndex >= index)) return;
      if (Date.now() > until) throw new Error(`not applied up to ${index} within ${ms} ms: ${this.describe()}`);
      await sleep(10);
    }
  }

  /** Stop the node and close its server, as a crashed process. */
  async crash(id: string): Promise<void> {
    const m = this.member(id);
    await closeServer(m.server);
    m.down = true;
    await m.node.stop();
  }

  describe(): string {
    return [...this.members.values()]
      .map((m) => {
        const s = m.node.status();
        return `${m.id}:${m.node.stopped ? "stopped" : s.role} t${s.term} L=${s.leaderId ?? "-"} c${s.commitIndex} a${s.appliedIndex}`;
      })
      .join("  ");
  }

  async close(): Promise<void> {
    for (const m of this.members.values()) {
      if (!m.down) await closeServer(m.server);
      m.down = true;
      await m.node.stop();
    }
  }
}

export async function startHttpCluster(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  const voters = options.ids ?? ["n1", "n2", "n3"];
  const spares = options.spares ?? [];
  const ids = [...voters, ...spares];
  const cluster = new HttpCluster();
  // `env` carries the Node request and response, which upgradeWebSocket needs.
  type Fetch = (req: Request, env: unknown) => Response | Promise<Response>;
  const servers: { id: string; server: ServerType; url: string; setApp: (f: Fetch) => void }[] = [];
  for (const id of ids) {
    let handler: Fetch = () => new Response("starting", { status: 503 });
    const { server, port } = await new Promise<{ server: ServerType; port: number }>((resolve) => {
      const s: ServerType = serve(
        {
          fetch: (req: Request, env: unknown) => handler(req, env),
          port: 0,
          hostname: "127.0.0.1",
          ...(options.websocket ? { websocket: { server: options.websocket } } : {}),
        },
        (info: AddressInfo) => resolve({ server: s, port: info.port }),
      );
    });
    servers.push({ id, server, url: `http://127.0.0.1:${port}`, setApp: (f) => (handler = f) });
  }
  const members = servers.filter((s) => voters.includes(s.id)).map((s) => ({ id: s.id, url: s.url }));
  for (const s of servers) {
    const kv = new KvStateMachine(options.kv);
    const spare = spares.includes(s.id);
    const instruments = options.instruments ? new NodeInstruments() : undefined;
    const node = new RaftNode<KvResult>({
      id: s.id,
      members: spare ? [] : members,
      join: spare,
      storage: instruments ? instruments.storage(new MemoryStorage()) : new MemoryStorage(),
      transport: cluster.network.connect(s.id),
      stateMachine: kv,
      clock: realClock,
      tickMs: 10,
      electionTimeoutMs: 150,
      heartbeatIntervalMs: 30,
      ...options.node,
    });
    const app = createApp({ node, kv, selfUrl: s.url, ...(instruments ? { instruments } : {}), ...options.app });
    s.setApp((req, env) => app.fetch(req, env));
    cluster.members.set(s.id, { id: s.id, url: s.url, server: s.server, node, kv, down: false });
  }
  const toStart = options.start ?? ids;
  for (const id of toStart) await cluster.member(id).node.start();
  return cluster;
}

export async function closeServer(server: ServerType): Promise<void> {
  const s = server as Server;
  await new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}

/** Polls `condition` every 10 ms until it holds; throws after `ms` with `what` and `detail()`. */
export async function waitFor(condition: () => boolean, what: string, ms = 5_000, detail: () => string = () => ""): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms ${detail()}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Each non-comment line of a Prometheus text exposition: `name{labels} value`. */
export const PROMETHEUS_LINE: RegExp =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})? (?:[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$/;
