/**
 * One meshraft member on Deno: src/runtime/member.ts with Deno's parts — storage (files, or Deno
 * KV), Deno's WebSocket for the mesh, `Deno.serve` on one port (the peer socket is `/raft` on the
 * same port), the same hono app as on Node.
 */
import type { Message } from "../../src/core/types.ts";
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
import type { Transport } from "../../src/transport/transport.ts";
import { FileStorage } from "./file-storage.ts";
import { DenoKvStorage } from "./kv-storage.ts";
import { createDenoMesh, raftSocketFor } from "./mesh.ts";
import { DenoTls } from "./tls.ts";
import { expiryWarning } from "../../src/tls.ts";

export { stderrLogger, type AssembledMember, type Logger, type RunningMember };

/** What `startMember` takes on Deno: the `meshraft start` arguments, plus where Deno KV storage lives. */
export interface DenoStartArgs extends MemberArgs {
  /**
   * Store the node's state in Deno KV instead of files under `dataDir`: a path for
   * `Deno.openKv`, or an open `Deno.Kv` (on Deno Deploy, `await Deno.openKv()`).
   */
  kv?: string | Deno.Kv;
  /** Lease time of the node identity in Deno KV, in ms. Default 10000. */
  kvLeaseMs?: number;
}

/**
 * A transport that sends nothing while the node's Deno KV lease is not valid: an instance past
 * its lease may have been replaced, and must not answer from memory (see ./kv-lease.ts).
 */
function fenced(transport: Transport, storage: DenoKvStorage): Transport {
  return {
    start: (handler: (message: Message) => void) => transport.start(handler),
    send: (message: Message) => {
      if (storage.leaseValid()) transport.send(message);
    },
    close: () => transport.close(),
    setPeers: (peers) => transport.setPeers?.(peers),
    announcedUrl: transport.announcedUrl && ((id) => transport.announcedUrl!(id)),
    linked: transport.linked && ((id) => transport.linked!(id)),
  };
}

/** What `createMember` takes: a member that does not listen by itself (Deno Deploy serves its app). */
export type DenoMemberArgs = CreateMemberArgs<DenoStartArgs>;

/**
 * Deno's parts of a member. With `tls` (./tls.ts): Deno.serve serves https/wss with its
 * certificate, and peers are dialed (and joined) through a client that trusts --tls-ca.
 */
const denoRuntime = (tls: DenoTls | null, log: Logger): ServingRuntime<DenoStartArgs> => ({
  openStorage: async (args, log, fail) => {
    if (args.kv === undefined) return { storage: await FileStorage.open(args.dataDir, { log: (line) => log("warn", line) }), where: args.dataDir };
    // `--kv ./data/n3.kv` creates ./data, as `--data-dir` creates its directory.
    const kvDir = typeof args.kv === "string" ? /^(.*)[\\/][^\\/]+$/.exec(args.kv)?.[1] : undefined;
    if (kvDir) await Deno.mkdir(kvDir, { recursive: true });
    const onLeaseLost = (error: Error): void => {
      log("error", error.message);
      fail(error);
    };
    const storage = await DenoKvStorage.open(args.kv, { nodeId: args.id, leaseTtlMs: args.kvLeaseMs, onLeaseLost });
    return { storage, where: typeof args.kv === "string" ? `deno kv ${args.kv}` : "deno kv", fence: (mesh) => fenced(mesh, storage) };
  },
  createMesh: (options) => createDenoMesh(options, tls?.webSocket()),
  raftSocket: (mesh) => raftSocketFor(mesh),
  tlsStatus: tls ? () => tls.expiry() : undefined,
  fetch: tls?.fetch,
  // startMember hands Deno.serve's handler info over as `env` (Deploy: pass it to app.fetch too).
  remoteAddress: (c) => (c.env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname,
  serve: async (listen, fetch) => {
    // cert and key: Deno.serve's TLS options (not in deno.d.ts's slice).
    const options = { hostname: listen.host, port: listen.port, onListen: () => {}, ...tls?.serveOptions() } as Deno.ServeOptions;
    const server = Deno.serve(options, (request, info) => fetch(request, info));
    const expiry = tls?.expiry();
    if (expiry?.expiresSoon) log("warn", expiryWarning(tls!.material.subject, expiry), { notAfter: expiry.notAfter });
    return { port: server.addr.port, closeBeforeNode: false, close: () => server.shutdown() };
  },
});

/** The member's TLS from `args.tls` (files read and checked now), or null without. */
function memberTls(args: DenoMemberArgs): DenoTls | null {
  return args.tls ? new DenoTls(args.tls) : null;
}

/**
 * Opens the storage (Deno KV when `args.kv` is set, else files in `args.dataDir`; this takes the
 * node's lease or directory lock), and builds the mesh, the Raft node and the HTTP app, for an
 * application that serves `app` itself (Deno Deploy). Nothing listens yet.
 */
export function createMember(args: DenoMemberArgs, log: Logger = stderrLogger(args.id, args.logLevel)): Promise<AssembledMember> {
  return createRuntimeMember(denoRuntime(memberTls(args), log), args, log);
}

/** A whole member on `args.listen`: `createMember` served by `Deno.serve`, started. */
export function startMember(args: DenoStartArgs, log: Logger = stderrLogger(args.id, args.logLevel)): Promise<RunningMember> {
  return startRuntimeMember(denoRuntime(memberTls(args), log), args, log);
}
