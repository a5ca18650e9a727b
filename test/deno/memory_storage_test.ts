/** The storage conformance suite, under Deno, against MemoryStorage. */
import { MemoryStorage } from "../../src/index.ts";
import { runStorageConformance } from "../../src/testing/index.ts";
import { harness } from "./harness.ts";

runStorageConformance(
  "memory (deno)",
  async () => {
    let current = new MemoryStorage();
    return { storage: current, reopen: async () => (current = current.reopen()) };
  },
  harness,
);
