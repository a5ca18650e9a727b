export * from "./kv.ts";
