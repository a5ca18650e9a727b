/** The `meshraft start` arguments live in src/cli-args.ts (runtime-neutral, shared with Deno); this path stays for existing imports. */
export * from "../../src/cli-args.ts";
