/**
 * meshraft/deno: run meshraft on Deno and Deno Deploy. Deno's global WebSocket for the mesh, a
 * whole member served by `Deno.serve` (the same hono app as on Node), file storage, and Deno KV
 * storage with a node identity lease. The same names as meshraft/node: `startMember`,
 * `createMember`, `createMesh`, `FileStorage`, `Logger`.
 */
export { createDenoMesh, createDenoMesh as createMesh, denoIdleTimeoutSeconds, raftSocketFor, type DenoMeshOptions } from "./mesh.ts";
export { FileStorage, StorageCorruptionError, StorageIoError, StorageLockedError, type FileStorageOptions } from "./file-storage.ts";
export { DenoKvStorage, KvStorageCorruptionError, LeaseLostError, NodeIdentityLeasedError, type DenoKvStorageOptions } from "./kv-storage.ts";
export { createMember, startMember, stderrLogger, type AssembledMember, type DenoMemberArgs, type DenoStartArgs, type Logger, type RunningMember } from "./server.ts";
export type { MemberArgs } from "../../src/runtime/member.ts";
export { parseDenoStartArgs } from "./cli.ts";
export { parseStartArgs, UsageError, type StartArgs } from "../../src/cli-args.ts";
export { DenoTls, TlsConfigError, type TlsFiles } from "./tls.ts";
