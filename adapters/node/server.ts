/**
 * One meshraft member on Node: src/runtime/member.ts with Node's parts — file storage, the `ws`
 * mesh, @hono/node-server on one port (the peer socket is `/raft` on the same port).
 */
import type { IncomingMessage } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { serve, upgradeWebSocket } from "@hono/node-server";
import { MeshraftError } from "../../src/errors.ts";
import { type Logger, stderrLogger } from "../../src/member.ts";
import {
  type AssembledMember,
  type CreateMemberArgs,
  createRuntimeMember,
  type MemberArgs,
  type RunningMember,
  type ServingRuntime,
  startRuntimeMember,
} from "../../src/runtime/member.ts";
import { FileStorage } from "./file-storage.ts";
import { nodeEventLoopDelay } from "./event-loop-delay.ts";
import { attachDemoMember } from "./demo-member.ts";
import { createNodeMesh, createPeerSocketServer } from "./mesh.ts";
import { keepTlsServer, NodeTls, requireClientCertificate } from "./tls.ts";
import { portHolder } from "./port-holder.ts";

export { stderrLogger, type AssembledMember, type Logger, type MemberArgs, type RunningMember };

/** The --listen address is taken; names the process holding it when the system says. */
export class PortInUseError extends MeshraftError {
  constructor(host: string, port: number) {
    const holder = portHolder(port);
    const who = holder ? ` by process ${holder.pid}${holder.command ? ` (${holder.command})` : ""}` : "";
    super("PORT_IN_USE", `${host}:${port} is already in use${who}; choose another --listen port or stop that process`);
  }
}

/**
 * What a slow or abusive client may hold of a Node member's HTTP server. A connection that has
 * not sent its request headers within `headersTimeoutMs` (an idle connection that never sends a
 * request included) or its whole request within `requestTimeoutMs` is closed (408), an idle
 * keep-alive connection after `keepAliveTimeoutMs`; beyond `maxConnections` open connections (peer
 * sockets included) new ones are dropped at once.
 */
export interface HttpServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

export const DEFAULT_HTTP_SERVER_LIMITS: Readonly<HttpServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 2_048,
});

/** node:http options for `limits`; `maxConnections` is set on the server once it exists. */
function serverOptions(limits: HttpServerLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // node:http checks those timeouts this often (default 30 s, which would stretch them).
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  };
}

/**
 * Node's parts of a member; `httpLimits` bound what a slow or abusive client may hold. With `tls`
 * (adapters/node/tls.ts) it serves https/wss, dials peers trusting the CA, and with mutual TLS
 * checks /raft sockets' client certificates.
 */
function nodeRuntime(httpLimits: Partial<HttpServerLimits> = {}, tls: NodeTls | null = null, log: Logger = () => {}): ServingRuntime {
  const limits: HttpServerLimits = { ...DEFAULT_HTTP_SERVER_LIMITS, ...httpLimits };
  const wss = createPeerSocketServer();
  let releaseTls = (): void => {};
  return {
    openStorage: async (args, log) => ({
      storage: await FileStorage.open(args.dataDir, { log: (line) => log("warn", line) }),
      where: args.dataDir,
    }),
    // Under `meshraft demo` the supervisor may cut the mesh's links (adapters/node/demo-member.ts).
    createMesh: (options) => attachDemoMember(createNodeMesh(options, tls)),
    raftSocket: (mesh) => {
      const upgrade = upgradeWebSocket(() => mesh.inboundHandlers());
      return { upgrade: tls?.files.requireClientCert ? requireClientCertificate(upgrade, tls, log) : upgrade };
    },
    tlsStatus: tls ? () => tls.expiry() : undefined,
    fetch: tls?.fetch,
    // @hono/node-server hands the Node request over as `env.incoming`.
    remoteAddress: (c) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket.remoteAddress,
    eventLoopDelay: () => nodeEventLoopDelay(),
    serve: async (listen, fetch) => {
      const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
        const https = tls?.serving ? { createServer: createHttpsServer, serverOptions: { ...serverOptions(limits), ...tls.serverOptions() } } : null;
        const s = serve(
          { fetch, hostname: listen.host, port: listen.port, websocket: { server: wss }, serverOptions: serverOptions(limits), ...https },
          () => resolve(s),
        );
        s.maxConnections = limits.maxConnections;
        s.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "EADDRINUSE" ? new PortInUseError(listen.host, listen.port) : err));
      });
      if (tls?.serving) releaseTls = keepTlsServer(server as HttpsServer, tls, log);
      return {
        port: (server.address() as AddressInfo).port,
        closeBeforeNode: true,
        close: () =>
          new Promise<void>((done) => {
            releaseTls();
            for (const client of wss.clients) client.terminate();
            server.close(() => done());
            // Idle keep-alive connections would hold close() open; upgraded sockets were ended above.
            (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      };
    },
  };
}

/**
 * Opens the file storage in `args.dataDir` (taking its lock) and builds the mesh, the Raft node
 * and the HTTP app, for an application that serves `app` itself (with @hono/node-server's `serve`
 * and `websocket: { server: createPeerSocketServer() }`, so that `/raft` upgrades). Nothing
 * listens yet.
 */
export function createMember(args: CreateMemberArgs, log: Logger = stderrLogger(args.id, args.logLevel)): Promise<AssembledMember> {
  return createRuntimeMember(nodeRuntime({}, memberTls(args), log), args, log);
}

/** A whole member on `args.listen` (one port for the API and the peer socket), started. */
export function startMember(
  args: MemberArgs,
  log: Logger = stderrLogger(args.id, args.logLevel),
  httpLimits: Partial<HttpServerLimits> = {},
): Promise<RunningMember> {
  return startRuntimeMember(nodeRuntime(httpLimits, memberTls(args), log), args, log);
}

/** The member's TLS from `args.tls` (files read and checked now), or null without. */
function memberTls(args: CreateMemberArgs): NodeTls | null {
  return args.tls ? new NodeTls(args.tls) : null;
}
