/**
 * meshraft: Raft consensus with one core for Node, Deno and browsers.
 *
 * This entry point is runtime-agnostic. Runtime glue lives in meshraft/node, meshraft/deno and
 * meshraft/browser; test tools in meshraft/testing.
 */
export type * from "./core/types.ts";
export { Raft, type RaftConfig, type RaftInitialState, type ProposeResult, type ReadResult, type ConfChangeResult } from "./core/raft.ts";
export { ConfChangeError, type ConfChangeItem, type ConfEntry, decodeConfEntry, encodeConfEntry } from "./core/membership.ts";
export { MAX_URL_BYTES, memberUrlProblem, type UrlProblem } from "./core/member-url.ts";
export { SeededRandom, type Random } from "./core/random.ts";
export { RaftNode, validateRaftNodeOptions, type RaftNodeOptions, type NodeStatus, type ProposeOutcome, type RaftNodeEvent, type Member, type MembershipChange } from "./node.ts";
export { realClock, type Clock } from "./clock.ts";
export {
  MeshraftError,
  BootstrapConflictError,
  NotLeaderError,
  OutcomeUnknownError,
  ProposalDroppedError,
  ReadTimeoutError,
  NodeStoppedError,
  ConfChangeInProgressError,
  InvalidConfChangeError,
  LearnerBehindError,
  TransferFailedError,
} from "./errors.ts";
export type { StateMachine } from "./statemachine.ts";
export type { Storage, StoredState, SaveBatch } from "./storage/storage.ts";
export { MemoryStorage, StorageError, type MemoryStorageOptions } from "./storage/memory.ts";
export type { Transport, PeerAddress } from "./transport/transport.ts";
export { MemoryNetwork, type MemoryNetworkOptions, type NetworkFaults, type NetworkStats } from "./transport/memory.ts";
export {
  WebSocketMesh,
  peerSocketUrl,
  CloseCode,
  type WebSocketMeshOptions,
  type MeshStats,
  type PeerLinkStats,
  type MeshInboundHandlers,
  type WebSocketConstructor,
  type WebSocketLike,
  type MeshLogger,
} from "./transport/mesh.ts";
export { Codec, CodecError, encodeMessage, decodeMessage, DEFAULT_CODEC_LIMITS, WIRE_VERSION, type CodecLimits } from "./transport/codec.ts";
export * from "./kv/index.ts";
