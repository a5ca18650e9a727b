/**
 * meshraft/node: run meshraft on Node. File storage, the `ws` WebSocket for the mesh, and a
 * whole member (storage + mesh + Raft node + KV + HTTP API on one port) in one call.
 */
export { FileStorage, StorageCorruptionError, StorageIoError, StorageLockedError, type FileStorageOptions } from "./file-storage.ts";
export { createNodeMesh, nodeWebSocket, createPeerSocketServer, serveMesh, type NodeMeshOptions, type MeshServer } from "./mesh.ts";
export { startNode, stderrLogger, type RunningNode, type Logger } from "./server.ts";
export { parseStartArgs, UsageError, type StartArgs } from "./cli-args.ts";
