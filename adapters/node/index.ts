/**
 * meshraft/node: run meshraft on Node. File storage, the `ws` WebSocket for the mesh, and a
 * whole member (storage + mesh + Raft node + KV + HTTP API on one port) in one call. The same
 * names as meshraft/deno: `startMember`, `createMember`, `createMesh`, `FileStorage`, `Logger`.
 */
export { FileStorage, StorageCorruptionError, StorageIoError, StorageLockedError, type FileStorageOptions } from "./file-storage.ts";
export { createNodeMesh, createNodeMesh as createMesh, nodeWebSocket, createPeerSocketServer, serveMesh, type NodeMeshOptions, type MeshServer } from "./mesh.ts";
export { createMember, startMember, stderrLogger, type AssembledMember, type Logger, type MemberArgs, type RunningMember } from "./server.ts";
export { parseStartArgs, UsageError, type StartArgs } from "../../src/cli-args.ts";
export { NodeTls, TlsConfigError, type TlsFiles } from "./tls.ts";
