/**
 * Deno glue for the WebSocket mesh: Deno's global `WebSocket` dials, `hono/deno`'s
 * `upgradeWebSocket` (over `Deno.upgradeWebSocket`) accepts. Everything else is in
 * src/transport/mesh.ts, unchanged.
 *
 * Idle links: a socket from `Deno.upgradeWebSocket` sends a protocol ping after `idleTimeout / 2`
 * seconds without an incoming frame and closes the link (1001) if nothing arrives in the next
 * `idleTimeout / 2` (default 30 s in all). The mesh sends its own ping frame every
 * `pingIntervalMs` (default 5 s) from both ends, so a healthy link always has traffic well inside
 * that window, and a peer that stops answering is closed by the mesh's `idleTimeoutMs` (default
 * 15 s) first. `raftSocketFor` passes an `idleTimeout` that is never shorter than twice the mesh's
 * own idle timeout, so Deno's check can only act on a link the mesh has already given up on.
 */
import { upgradeWebSocket } from "hono/deno";
import type { MiddlewareHandler } from "hono";
import { meshTimings, type WebSocketConstructor, WebSocketMesh, type WebSocketMeshOptions } from "../../src/transport/mesh.ts";

export type DenoMeshOptions = Omit<WebSocketMeshOptions, "WebSocket">;

/** Deno.upgradeWebSocket's own default, in seconds. */
const DENO_DEFAULT_IDLE_S = 30;

/** A WebSocketMesh with Deno's global WebSocket (or, with TLS, DenoTls.webSocket()'s). */
export function createDenoMesh(options: DenoMeshOptions, webSocket: WebSocketConstructor = WebSocket): WebSocketMesh {
  return new WebSocketMesh({ ...options, WebSocket: webSocket });
}

/**
 * Seconds for `Deno.upgradeWebSocket`'s `idleTimeout` given the mesh's options: Deno's default
 * (30), raised to twice the mesh's idle timeout when that is longer.
 */
export function denoIdleTimeoutSeconds(options: Pick<DenoMeshOptions, "pingIntervalMs" | "idleTimeoutMs">): number {
  return Math.max(DENO_DEFAULT_IDLE_S, Math.ceil((2 * meshTimings(options).idleTimeoutMs) / 1000));
}

/**
 * The `raftSocket` option of `createApp` on Deno: a ready `/raft` handler, upgraded by `hono/deno`
 * into `mesh`, with Deno's idle timeout set from the mesh's timings as explained above
 * (`idleTimeoutSeconds` overrides it).
 */
export function raftSocketFor(mesh: WebSocketMesh, options: { idleTimeoutSeconds?: number } = {}): { upgrade: MiddlewareHandler } {
  const idleTimeout = options.idleTimeoutSeconds ?? denoIdleTimeoutSeconds(mesh.timings);
  return { upgrade: upgradeWebSocket(() => mesh.inboundHandlers(), { idleTimeout }) };
}
