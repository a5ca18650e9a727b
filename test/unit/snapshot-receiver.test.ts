/**
 * A follower's reassembly of chunked InstallSnapshot transfers (src/core/snapshot-receiver.ts):
 * in order, resumable by offset, started over for another leader or another snapshot.
 */
import { describe, expect, it } from "vitest";
import { SnapshotReceiver } from "../../src/core/snapshot-receiver.ts";
import type { InstallSnapshot, SnapshotMeta } from "../../src/core/types.ts";

const meta = (index: number, term = 1): SnapshotMeta => ({ index, term, conf: { voters: ["n1", "n2"], learners: [], votersOutgoing: [] } });

function chunk(from: string, m: SnapshotMeta, offset: number, data: number[], done: boolean): InstallSnapshot {
  return { type: "InstallSnapshot", from, to: "n2", term: m.term, meta: m, offset, data: Uint8Array.from(data), done };
}

describe("SnapshotReceiver", () => {
  it("joins chunks in order into the snapshot, with a copy of its configuration", () => {
    const r = new SnapshotReceiver();
    const m = meta(10);
    expect(r.receive(chunk("n1", m, 0, [1, 2], false))).toEqual({ kind: "ask", nextOffset: 2 });
    expect(r.receive(chunk("n1", m, 2, [3], false))).toEqual({ kind: "ask", nextOffset: 3 });
    const out = r.receive(chunk("n1", m, 3, [4, 5], true));
    expect(out.kind).toBe("complete");
    if (out.kind !== "complete") return;
    expect([...out.snapshot.data]).toEqual([1, 2, 3, 4, 5]);
    expect(out.snapshot.meta).toEqual(m);
    expect(out.snapshot.meta.conf).not.toBe(m.conf);
    // The transfer is over: a late copy of a middle chunk asks for the start.
    expect(r.receive(chunk("n1", m, 2, [3], false))).toEqual({ kind: "ask", nextOffset: 0 });
  });

  it("answers a chunk at an unexpected offset (a lost or repeated one) with the offset it needs", () => {
    const r = new SnapshotReceiver();
    const m = meta(10);
    r.receive(chunk("n1", m, 0, [1, 2], false));
    expect(r.receive(chunk("n1", m, 4, [5], false))).toEqual({ kind: "ask", nextOffset: 2 }); // one was lost
    expect(r.receive(chunk("n1", m, 0, [1, 2], false))).toEqual({ kind: "ask", nextOffset: 2 }); // a repeat
    const out = r.receive(chunk("n1", m, 2, [3], true));
    expect(out.kind === "complete" && [...out.snapshot.data]).toEqual([1, 2, 3]);
  });

  it("starts over for another leader or another snapshot, and asks for the start of an unknown transfer", () => {
    const r = new SnapshotReceiver();
    expect(r.receive(chunk("n1", meta(10), 3, [9], false))).toEqual({ kind: "ask", nextOffset: 0 });
    r.receive(chunk("n1", meta(10), 0, [1, 2], false));
    expect(r.receive(chunk("n3", meta(10, 2), 2, [3], false))).toEqual({ kind: "ask", nextOffset: 0 });
    expect(r.receive(chunk("n3", meta(12, 2), 0, [7], false))).toEqual({ kind: "ask", nextOffset: 1 });
    // n1's transfer is gone: its next chunk does not continue it.
    expect(r.receive(chunk("n1", meta(10), 2, [3], true))).toEqual({ kind: "ask", nextOffset: 0 });
    r.reset();
    expect(r.receive(chunk("n3", meta(12, 2), 1, [8], true))).toEqual({ kind: "ask", nextOffset: 0 });
    const out = r.receive(chunk("n3", meta(12, 2), 0, [], true));
    expect(out.kind === "complete" && out.snapshot.data.byteLength).toBe(0);
  });
});
