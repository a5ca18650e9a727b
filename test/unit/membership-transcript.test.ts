/**
 * Transcript of membership changes in src/core/membership.ts (format: test/unit/datadriven.ts).
 *
 *   conf voters=n1,n2,n3 [learners=..] [outgoing=..] [promote=..]   set the current configuration
 *   apply ITEM...      applyChanges on the current configuration; on success it becomes current
 *         ITEM: add-voter:ID, add-learner:ID, add-learner+promote:ID, remove:ID, OP:ID=URL
 *               (URL `long:N` is an http URL of N bytes, `surrogate` one with a lone surrogate)
 *   leave              leaveJoint: C(old,new) -> C(new)
 *   roundtrip          the current configuration through encodeConfEntry/decodeConfEntry
 * Each prints the resulting configuration, or the refusal: `invalid: why` / `in-progress: why`.
 */
import { join } from "node:path";
import { describe, it } from "vitest";
import { applyChanges, ConfChangeError, type ConfChangeItem, decodeConfEntry, encodeConfEntry, leaveJoint } from "../../src/core/membership.ts";
import type { ConfState } from "../../src/core/types.ts";
import { idList, keyValues, runTranscript } from "./datadriven.ts";
import { formatConf } from "./transcript-format.ts";

function url(spec: string): string {
  if (spec.startsWith("long:")) {
    const n = Number(spec.slice(5));
    return "http://h/" + "a".repeat(n - "http://h/".length);
  }
  if (spec === "surrogate") return "http://h/\ud800";
  return spec;
}

function item(a: string): ConfChangeItem {
  const colon = a.indexOf(":");
  const op = a.slice(0, colon);
  const rest = a.slice(colon + 1);
  const eq = rest.indexOf("=");
  const id = eq < 0 ? rest : rest.slice(0, eq);
  const withUrl = eq < 0 ? {} : { url: url(rest.slice(eq + 1)) };
  if (op === "add-learner+promote") return { op: "add-learner", id, promote: true, ...withUrl };
  // Unknown ops go through unchanged: refusing them is what the transcript shows.
  return { op, id, ...withUrl } as ConfChangeItem;
}

describe("membership transcript", () => {
  it("membership.txt", () => {
    let conf: ConfState = { voters: [], learners: [], votersOutgoing: [] };
    runTranscript(join(import.meta.dirname, "transcripts", "membership.txt"), ({ cmd, args }) => {
      switch (cmd) {
        case "conf": {
          const kv = keyValues(args);
          conf = { voters: idList(kv.get("voters")), learners: idList(kv.get("learners")), votersOutgoing: idList(kv.get("outgoing")) };
          if (kv.has("promote")) conf.promote = idList(kv.get("promote"));
          return formatConf(conf);
        }
        case "apply":
          try {
            conf = applyChanges(conf, args.map(item));
            return formatConf(conf);
          } catch (err) {
            if (!(err instanceof ConfChangeError)) throw err;
            return `${err.kind}: ${err.message}`;
          }
        case "leave":
          conf = leaveJoint(conf);
          return formatConf(conf);
        case "roundtrip": {
          const back = decodeConfEntry(encodeConfEntry({ conf, changes: [] })).conf;
          return formatConf(back);
        }
        default:
          throw new Error(`unknown command ${cmd}`);
      }
    });
  });
});
