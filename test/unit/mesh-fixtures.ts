/**
 * Real meshes on 127.0.0.1 for the mesh tests: servers first (port 0), then meshes that know
 * each other's URLs, each with a log that tests can search.
 */
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { createNodeMesh, serveMesh, type MeshServer } from "../../adapters/node/mesh.ts";
import type { Message } from "../../src/core/types.ts";
import {
  encodeControl,
  FRAME_HELLO,
  FRAME_PROOF,
  FRAME_READY,
  FRAME_WELCOME,
  type Hello,
  parseHello,
} from "../../src/transport/handshake.ts";
import type { MeshLogLevel, WebSocketMesh, WebSocketMeshOptions } from "../../src/transport/mesh.ts";

export interface LogLine {
  level: MeshLogLevel;
  message: string;
  fields: Record<string, unknown>;
}

export interface MeshNode {
  id: string;
  mesh: WebSocketMesh;
  server: MeshServer;
  logs: LogLine[];
  /** Log lines at warn or error, as "level: message". */
  warnings(): string[];
}

export type MeshOptions = Partial<Omit<WebSocketMeshOptions, "id" | "peers" | "WebSocket" | "logger">>;

export const fastTimers: MeshOptions = {
  pingIntervalMs: 50,
  idleTimeoutMs: 400,
  handshakeTimeoutMs: 1000,
  backoff: { initialMs: 20, maxMs: 200 },
};

/** Servers listening on free ports, meshes attached; nothing started. */
export async function meshCluster(
  ids: string[],
  options: MeshOptions | ((id: string) => MeshOptions) = {},
  peersOf: (id: string, urls: Map<string, string>) => { id: string; url: string }[] = (id, urls) =>
    ids.filter((p) => p !== id).map((p) => ({ id: p, url: urls.get(p)! })),
): Promise<Map<string, MeshNode>> {
  const slots = new Map<string, { mesh?: WebSocketMesh }>(ids.map((id) => [id, {}]));
  const servers = new Map<string, MeshServer>();
  for (const id of ids) {
    const slot = slots.get(id)!;
    servers.set(id, await serveMesh(() => slot.mesh!.inboundHandlers()));
  }
  const urls = new Map([...servers].map(([id, s]) => [id, s.url]));
  const nodes = new Map<string, MeshNode>();
  for (const id of ids) {
    const own = typeof options === "function" ? options(id) : options;
    nodes.set(id, attach(id, servers.get(id)!, slots.get(id)!, peersOf(id, urls), own));
  }
  return nodes;
}

/**
 * One node on `port` (0: any) with known peers, e.g. a restart on the port it had; with `basePath`,
 * its URL (and socket) is under that path prefix.
 */
export async function meshNode(id: string, peers: { id: string; url: string }[], options: MeshOptions = {}, port = 0, basePath = ""): Promise<MeshNode> {
  const slot: { mesh?: WebSocketMesh } = {};
  const server = await serveMesh(() => slot.mesh!.inboundHandlers(), { port, basePath });
  return attach(id, server, slot, peers, options);
}

function attach(
  id: string,
  server: MeshServer,
  slot: { mesh?: WebSocketMesh },
  peers: { id: string; url: string }[],
  options: MeshOptions,
): MeshNode {
  const logs: LogLine[] = [];
  const mesh = createNodeMesh({
    id,
    clusterId: "test",
    peers,
    ...fastTimers,
    ...options,
    logger: (level, message, fields) => logs.push({ level, message, fields }),
  });
  slot.mesh = mesh;
  return {
    id,
    mesh,
    server,
    logs,
    warnings: () => logs.filter((l) => l.level === "warn" || l.level === "error").map((l) => `${l.level}: ${l.message}`),
  };
}

/** The peer list naming `nodes` at their servers' URLs. */
export function addressesOf(nodes: Iterable<MeshNode>): { id: string; url: string }[] {
  return [...nodes].map((n) => ({ id: n.id, url: n.server.url }));
}

/** Starts `node`'s mesh and returns the list its messages are pushed to. */
export function startInbox(node: MeshNode): Message[] {
  const inbox: Message[] = [];
  node.mesh.start((m) => inbox.push(m));
  return inbox;
}

export async function closeAll(nodes: Iterable<MeshNode>): Promise<void> {
  const list = [...nodes];
  await Promise.all(list.map((n) => n.mesh.close()));
  await Promise.all(list.map((n) => n.server.close()));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `done` every 5 ms; fails after `timeoutMs` naming `what`. */
export async function waitFor(what: string, done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-driven sockets, for peers that misbehave on purpose.
// ---------------------------------------------------------------------------------------------

export interface RawSocket {
  ws: WebSocket;
  /** Binary frames received, in order. */
  frames: Uint8Array[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  send(data: Uint8Array | string): void;
  /** The next frame not yet returned by `next`, waiting up to 2 s. */
  next(): Promise<Uint8Array>;
}

function track(ws: WebSocket): RawSocket {
  const frames: Uint8Array[] = [];
  let taken = 0;
  let closedFlag = false;
  ws.binaryType = "arraybuffer";
  ws.on("message", (data: ArrayBuffer) => frames.push(new Uint8Array(data)));
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      closedFlag = true;
      resolve({ code, reason: reason.toString() });
    }),
  );
  const opened = new Promise<void>((resolve) => (ws.readyState === WebSocket.OPEN ? resolve() : ws.once("open", () => resolve())));
  return {
    ws,
    frames,
    opened,
    closed,
    isClosed: () => closedFlag,
    send: (data) => ws.send(data),
    next: async () => {
      await waitFor("a frame", () => frames.length > taken || closedFlag, 2000);
      if (frames.length <= taken) throw new Error("the socket closed before sending another frame");
      return frames[taken++];
    },
  };
}

/** A client socket to a node's /raft, with no mesh behind it. */
export async function rawSocket(baseUrl: string): Promise<RawSocket> {
  const raw = track(new WebSocket(`${baseUrl.replace(/^http/, "ws")}/raft`));
  await raw.opened;
  return raw;
}

export const nonce = (): string => "ab".repeat(32);

/** Dials `node` as `from` and completes a handshake without a secret. */
export async function rawDialer(node: MeshNode, from: string, hello: Partial<Hello> = {}): Promise<RawSocket> {
  const raw = await rawSocket(node.server.url);
  raw.send(encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from, to: node.id, nonce: nonce(), auth: false, ...hello }));
  const welcome = await raw.next();
  if (welcome[0] !== FRAME_WELCOME) throw new Error(`expected WELCOME, got frame 0x${welcome[0]?.toString(16)}`);
  raw.send(encodeControl(FRAME_PROOF, { proof: "" }));
  const ready = await raw.next();
  if (ready[0] !== FRAME_READY) throw new Error(`expected READY, got frame 0x${ready[0]?.toString(16)}`);
  return raw;
}

export interface FakePeer {
  url: string;
  sockets: RawSocket[];
  close(): Promise<void>;
}

/**
 * A server at `<url>/raft` that is not a mesh: `onHello` gets each accepted socket and the HELLO it
 * sent (if any) and does whatever the test wants, such as nothing at all.
 */
export async function fakePeer(onSocket: (raw: RawSocket) => void): Promise<FakePeer> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const sockets: RawSocket[] = [];
  wss.on("connection", (ws) => {
    const raw = track(ws);
    sockets.push(raw);
    onSocket(raw);
  });
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A fake acceptor that answers a HELLO (without a secret) as node `id`, then runs `after`. */
export function answerAs(id: string, after: (raw: RawSocket) => void = () => {}): (raw: RawSocket) => void {
  return (raw) => {
    void (async () => {
      const hello = parseHello(await raw.next());
      raw.send(encodeControl(FRAME_WELCOME, { ...hello, from: id, to: hello.from, nonce: nonce(), proof: "" }));
      const proof = await raw.next().catch(() => null);
      if (proof?.[0] !== FRAME_PROOF) return;
      raw.send(encodeControl(FRAME_READY));
      after(raw);
    })().catch(() => {});
  };
}
