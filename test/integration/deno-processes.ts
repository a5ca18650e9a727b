/**
 * The former mixed-runtime harness, kept for bench/deno-vs-node.ts: every member process is now
 * a `ProcessCluster` member (see process-cluster.ts); new code should use that directly.
 */
import { ProcessCluster, type MemberSpec } from "./process-cluster.ts";

export { denoBin, type MemberSpec, type Runtime } from "./process-cluster.ts";

export const RuntimeCluster = {
  /** Starts the members, except those in `later` (start them with `spawn`). */
  start: (members: Record<string, MemberSpec>, later: string[] = []): Promise<ProcessCluster> => ProcessCluster.start({ members, later }),
};
