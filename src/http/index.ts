/**
 * meshraft/http: the HTTP app every runtime serves (client API with leader redirects, /status,
 * /metrics, the /raft peer socket) and the protocol it speaks.
 */
export { createApp, type AppOptions, type HttpLimits, type HttpLogger, type RaftSocketOptions } from "./app.ts";
export { ApiError } from "./errors.ts";
export { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";
export * from "./protocol.ts";
export { createMember, lineLogger, stderrLogger, type Member, type MemberOptions, type Logger, type MemberLogger, type LogLevel } from "../member.ts";
