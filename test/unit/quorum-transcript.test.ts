/**
 * Transcript of the majority arithmetic in src/core/quorum.ts (format: test/unit/datadriven.ts).
 *
 *   committed voters=n1,n2,n3 [outgoing=n1,n4,n5] [acked=n1:5,n2:3]   (unlisted voters acked 0)
 *     -> each half's majority index and the joint commit index (`inf` for an empty half)
 *   vote voters=n1,n2,n3 [outgoing=...] [votes=n1:y,n2:n]              (unlisted: no answer yet)
 *     -> each half's result and the election's
 */
import { join } from "node:path";
import { describe, it } from "vitest";
import { committedIndex, majorityIndex, voteResult } from "../../src/core/quorum.ts";
import type { ConfState } from "../../src/core/types.ts";
import { idList, keyValues, runTranscript } from "./datadriven.ts";

function confOf(kv: Map<string, string>): ConfState {
  return { voters: idList(kv.get("voters")), votersOutgoing: idList(kv.get("outgoing")), learners: idList(kv.get("learners")) };
}

function pairs(v: string | undefined): Map<string, string> {
  return new Map(idList(v).map((p) => p.split(":") as [string, string]));
}

const show = (n: number): string => (n === Number.POSITIVE_INFINITY ? "inf" : String(n));

describe("quorum transcript", () => {
  it("quorum.txt", () => {
    runTranscript(join(import.meta.dirname, "transcripts", "quorum.txt"), ({ cmd, args }) => {
      const kv = keyValues(args);
      const conf = confOf(kv);
      if (cmd === "committed") {
        const acked = new Map([...pairs(kv.get("acked"))].map(([id, i]) => [id, Number(i)]));
        const at = (id: string): number => acked.get(id) ?? 0;
        return `incoming=${show(majorityIndex(conf.voters, at))} outgoing=${show(majorityIndex(conf.votersOutgoing, at))} committed=${show(committedIndex(conf, at))}`;
      }
      if (cmd === "vote") {
        const votes = new Map([...pairs(kv.get("votes"))].map(([id, v]) => [id, v === "y"]));
        const half = (voters: string[]): string => voteResult({ voters, votersOutgoing: [], learners: [] }, votes);
        return `incoming=${half(conf.voters)} outgoing=${half(conf.votersOutgoing)} result=${voteResult(conf, votes)}`;
      }
      throw new Error(`unknown command ${cmd}`);
    });
  });
});
