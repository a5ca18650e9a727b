/** The storage conformance suite, under Deno, against MemoryStorage. */
import { MemoryStorage } from "../../src/index.ts";
import { runStorageConformance } from "../../src/testing/index.ts";
import { harness } from "./harness.ts";

runStorageConformance(
  "memory (deno)",
  () => {
    let current = new MemoryStorage();
    const reopen = () => Promise.resolve((current = current.reopen()));
    return Promise.resolve({ storage: current, reopen });
  },
  harness,
);
