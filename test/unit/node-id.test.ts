import { describe, expect, it } from "vitest";
import { applyChanges, ConfChangeError } from "../../src/core/membership.ts";
import { InvalidNodeIdError, nodeIdProblem, validateNodeId } from "../../src/core/node-id.ts";
import { logText } from "../../src/log-text.ts";

describe("the member id rule", () => {
  it("accepts 1-64 characters of A-Z a-z 0-9 . _ -", () => {
    for (const id of ["n1", "a", "node-7.eu_west", "x".repeat(64), "..a", "_proto_"]) expect(validateNodeId(id)).toBe(id);
  });

  it("refuses everything else with a typed error naming the id", () => {
    const bad: unknown[] = ["", ".", "..", "x".repeat(65), "a b", "a\nb", "é", "a/b", 7, null, undefined];
    // Names every plain object has: as keys of configuration maps they would hit the prototype.
    bad.push("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "__defineGetter__");
    for (const id of bad) {
      expect(nodeIdProblem(id), String(id)).not.toBeNull();
      expect(() => validateNodeId(id)).toThrow(InvalidNodeIdError);
    }
    expect(() => validateNodeId("__proto__")).toThrow(expect.objectContaining({ code: "INVALID_NODE_ID", message: expect.stringContaining('"__proto__"') }));
  });

  it("a membership change naming such an id is invalid", () => {
    const conf = { voters: ["n1"], learners: [], votersOutgoing: [] };
    for (const id of ["__proto__", "constructor", "n 2"]) {
      expect(() => applyChanges(conf, [{ op: "add-learner", id, url: "http://127.0.0.1:9" }])).toThrow(ConfChangeError);
    }
  });
});

describe("logText", () => {
  it("escapes every control character, so text from the wire stays on one log line", () => {
    expect(logText("a\nb\r\tc\u0000\u001b[2K\u007f\u0085\u2028d")).toBe("a\\nb\\r\\tc\\u0000\\u001b[2K\\u007f\\u0085\\u2028d");
    expect(logText("plain text: ünïcode 🦀 \\ stays")).toBe("plain text: ünïcode 🦀 \\ stays");
  });
});
