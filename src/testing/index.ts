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
export { TestCluster, type TestClusterOptions, type ClusterMember, type ClusterEvent } from "./cluster.ts";
export { InvariantChecker, InvariantViolation } from "./invariants.ts";
export { simulate, FAULTS, type Fault, type SimOptions, type SimResult } from "./sim.ts";
export { runTransportConformance, type TransportCluster, type TransportConformanceOptions } from "../transport/conformance.ts";
