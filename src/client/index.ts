/** meshraft/client: MeshraftClient for Node, Deno and browsers (fetch only). */
export {
  MeshraftClient,
  MeshraftHttpError,
  type MeshraftClientOptions,
  type BackoffOptions,
  type GetOptions,
} from "./client.ts";
export type {
  AdminMember,
  AdminMembersBody,
  AdminTransferBody,
  StatusBody,
  StatusMember,
  WriteBody,
  ErrorBody,
  ErrorCode,
} from "../http/protocol.ts";
