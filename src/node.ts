/** RaftNode lives in src/node/ (one concept per module); this path keeps existing imports working. */
export * from "./node/index.ts";
