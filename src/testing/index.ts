/**
 * meshraft/testing: the instruments meshraft is proven with, for your own tests too.
 */
export { VirtualClock } from "./clock.ts";
export { CoreCluster, type CoreClusterOptions } from "./core-cluster.ts";
export * from "./linearizability.ts";
export {
  runStorageConformance,
  type ConformanceHarness,
  type StorageUnderTest,
  type ConformanceOptions,
} from "../storage/conformance.ts";
