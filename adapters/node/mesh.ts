/**
 * Node glue for the WebSocket mesh: `ws` supplies the WebSocket, everything else is in
 * src/transport/mesh.ts. The HTTP app mounts the peer socket itself:
 *
 *   const wss = createPeerSocketServer();
 *   app.get("/raft", upgradeWebSocket(() => mesh.inboundHandlers()));
 *   serve({ fetch: app.fetch, websocket: { server: wss } });
 *
 * `serveMesh` does exactly that for a mesh alone (tests, embedding without the HTTP API).
 */
import type { AddressInfo } from "node:net";
import { serve, upgradeWebSocket } from "@hono/node-server";
import { Hono } from "hono";
import WebSocket, { WebSocketServer } from "ws";
import { DEFAULT_CODEC_LIMITS } from "../../src/transport/codec.ts";
import type { NodeTls } from "./tls.ts";
import { MAX_CONTROL_FRAME_BYTES } from "../../src/transport/handshake.ts";
import {
  type MeshInboundHandlers,
  type SocketControl,
  type WebSocketConstructor,
  WebSocketMesh,
  type WebSocketMeshOptions,
} from "../../src/transport/mesh.ts";

export type NodeMeshOptions = Omit<WebSocketMeshOptions, "WebSocket">;

/**
 * `ws`'s WebSocket as a WHATWG constructor that refuses messages larger than `maxPayloadBytes`
 * before buffering them, and offers no compression (Raft frames are mostly incompressible).
 */
export function nodeWebSocket(maxPayloadBytes: number = DEFAULT_CODEC_LIMITS.maxFrameBytes): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { maxPayload: maxPayloadBytes, perMessageDeflate: false });
    }
  };
}

type WsReceiver = { _maxPayload?: unknown };
/** Each capped socket's own limit (its `maxPayload`), restored by `liftHandshakeCap`. */
const ownLimits = new WeakMap<object, number>();

/**
 * `ws` has no public setter for a socket's message size limit; its receiver reads `_maxPayload`
 * at every frame header (ws 8; test/unit/mesh-abuse.test.ts fails if that stops working).
 */
function receiverOf(socket: unknown): WsReceiver | null {
  const receiver = (socket as { _receiver?: WsReceiver | null } | null)?._receiver;
  return receiver && typeof receiver._maxPayload === "number" ? receiver : null;
}

function capForHandshake(socket: unknown, bytes: number): void {
  const receiver = receiverOf(socket);
  if (receiver === null) return;
  if (!ownLimits.has(socket as object)) ownLimits.set(socket as object, receiver._maxPayload as number);
  receiver._maxPayload = bytes;
}

/** The mesh's hold on `ws` sockets: the handshake-time message cap, and dropping a socket. */
export const wsSocketControl: SocketControl = {
  capForHandshake,
  liftHandshakeCap: (socket) => {
    const receiver = receiverOf(socket);
    const own = ownLimits.get(socket as object);
    if (receiver !== null && own !== undefined) receiver._maxPayload = own;
  },
  terminate: (socket) => (socket as { terminate?: () => void } | null)?.terminate?.(),
};

/**
 * A WebSocketMesh with `ws` as its WebSocket. Its sockets accept only handshake-sized messages
 * until the peer proved itself, then up to `codecLimits.maxFrameBytes`.
 */
export function createNodeMesh(options: NodeMeshOptions, tls: NodeTls | null = null): WebSocketMesh {
  const maxPayload = options.codecLimits?.maxFrameBytes ?? DEFAULT_CODEC_LIMITS.maxFrameBytes;
  // With TLS: wss:// peers verified against --tls-ca (and the client certificate presented).
  const WebSocket = tls ? tls.webSocket({ maxPayload, perMessageDeflate: false }) : nodeWebSocket(maxPayload);
  return new WebSocketMesh({ ...options, WebSocket, socketControl: wsSocketControl });
}

/**
 * The `ws` server that @hono/node-server upgrades `/raft` into (`noServer`). Each socket starts
 * capped at the handshake's frame size (set before `ws` parses a byte of it); a mesh from
 * `createNodeMesh` lifts the cap to `maxPayloadBytes` once the peer passed the handshake.
 */
export function createPeerSocketServer(maxPayloadBytes: number = DEFAULT_CODEC_LIMITS.maxFrameBytes): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxPayloadBytes });
  wss.on("connection", (ws) => capForHandshake(ws, MAX_CONTROL_FRAME_BYTES));
  return wss;
}

export interface MeshServer {
  port: number;
  /** `http://<hostname>:<port><basePath>`, the URL peers list for this node. */
  url: string;
  /** Stops listening and ends the sockets still open. */
  close(): Promise<void>;
}

/**
 * Serves only `<basePath>/raft` on `hostname:port` (port 0 picks a free one; `basePath` is "" or
 * starts with "/", for a member reached under a path prefix). `handlers` is called per
 * connection, so a server can be started before the mesh it serves exists.
 */
export function serveMesh(
  handlers: () => MeshInboundHandlers,
  options: { hostname?: string; port?: number; maxPayloadBytes?: number; basePath?: string } = {},
): Promise<MeshServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const basePath = options.basePath ?? "";
  const wss = createPeerSocketServer(options.maxPayloadBytes);
  const app = new Hono();
  app.get(`${basePath}/raft`, upgradeWebSocket(() => handlers()));
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port: options.port ?? 0, websocket: { server: wss } }, (info) => {
      const port = (info as AddressInfo).port;
      resolve({
        port,
        url: `http://${hostname}:${port}${basePath}`,
        close: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.terminate();
            server.close(() => done());
          }),
      });
    });
    server.once("error", reject);
  });
}
