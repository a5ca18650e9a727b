import { afterEach, describe, expect, it } from "vitest";
import { BroadcastChannelTransport, channelName } from "../../adapters/browser/broadcast-transport.ts";
import { runBroadcastChannelTransportConformance } from "../../adapters/browser/conformance.ts";
import { realClock } from "../../src/clock.ts";
import type { Message, NodeId } from "../../src/core/types.ts";
import { encodeMessage } from "../../src/transport/codec.ts";

// Node's global BroadcastChannel is a real implementation (between the contexts of one process).
runBroadcastChannelTransportConformance("BroadcastChannelTransport on Node's BroadcastChannel", { describe, it });

let clusters = 0;
const freshCluster = (): string => `bc-test-${process.pid}-${++clusters}`;

describe("BroadcastChannelTransport's own behaviour", () => {
  const toClose: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const c of toClose.splice(0)) await c.close();
  });

  function member(clusterId: string, nodeId: NodeId, logged: string[] = []): { t: BroadcastChannelTransport; inbox: Message[] } {
    const t = new BroadcastChannelTransport({ clusterId, nodeId, logger: (_level, message) => logged.push(message) });
    const inbox: Message[] = [];
    t.start((m) => inbox.push(m));
    toClose.push(t);
    return { t, inbox };
  }

  const read = (from: NodeId, to: NodeId, requestId: number): Message => ({ type: "ReadIndex", from, to, term: 1, requestId });
  const settle = (ms = 100): Promise<void> => new Promise((resolve) => realClock.setTimer(ms, resolve));

  async function until(what: string, done: () => boolean): Promise<void> {
    const deadline = realClock.now() + 10_000;
    while (!done()) {
      if (realClock.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await settle(5);
    }
  }

  it("a member drops frames addressed to others without decoding them", async () => {
    const cluster = freshCluster();
    const a = member(cluster, "a");
    const b = member(cluster, "b");
    const c = member(cluster, "c");
    a.t.send(read("a", "b", 1));
    await until("the message at b", () => b.inbox.length === 1);
    await settle();
    expect(c.inbox).toEqual([]);
    expect(c.t.stats()).toMatchObject({ notAddressed: 1, received: 0, malformed: 0 });
    expect(b.t.stats()).toMatchObject({ received: 1, notAddressed: 0 });
  });

  it("clusters on one origin do not hear each other: one channel per cluster", async () => {
    const one = freshCluster();
    const two = freshCluster();
    const a1 = member(one, "a");
    member(one, "b");
    const b2 = member(two, "b");
    a1.t.send(read("a", "b", 1));
    await settle();
    expect(b2.inbox).toEqual([]);
    expect(b2.t.stats().notAddressed).toBe(0);
    expect(a1.t.channelName).toBe(channelName(one));
  });

  it("counts malformed frames and drops them, never throws, and keeps receiving", async () => {
    const cluster = freshCluster();
    const logged: string[] = [];
    const b = member(cluster, "b", logged);
    const raw = new BroadcastChannel(channelName(cluster));
    toClose.push(raw);
    const good = encodeMessage(read("a", "b", 7));
    raw.postMessage("not an envelope");
    raw.postMessage(null);
    raw.postMessage({ to: "b", from: "a", frame: Uint8Array.of(1, 2, 3) }); // does not decode
    raw.postMessage({ to: "b", from: "a", frame: "text" }); // not bytes
    raw.postMessage({ to: "b", from: "mallory", frame: good }); // header disagrees with the frame
    raw.postMessage({ to: "b", from: "a", frame: good.subarray(0, good.length - 1) }); // truncated
    raw.postMessage({ to: "b", from: "a", frame: good });
    await until("the good frame at b", () => b.inbox.length >= 1);
    await settle();
    expect(b.inbox).toEqual([read("a", "b", 7)]);
    expect(b.t.stats()).toMatchObject({ malformed: 6, received: 1 });
    expect(logged.filter((l) => l.startsWith("dropped a malformed frame"))).toHaveLength(4);
  });

  it("a handler that throws is counted and logged; later messages still arrive", async () => {
    const cluster = freshCluster();
    const a = member(cluster, "a");
    const logged: string[] = [];
    const b = new BroadcastChannelTransport({ clusterId: cluster, nodeId: "b", logger: (_level, message) => logged.push(message) });
    toClose.push(b);
    const inbox: Message[] = [];
    b.start((m) => {
      inbox.push(m);
      if (inbox.length === 1) throw new Error("boom");
    });
    a.t.send(read("a", "b", 1));
    a.t.send(read("a", "b", 2));
    await until("both messages at b", () => inbox.length === 2);
    expect(b.stats().handlerErrors).toBe(1);
    expect(logged.some((l) => l.includes("boom"))).toBe(true);
  });

  it("refuses to send what the codec refuses, or to itself, counting it, without throwing", async () => {
    const cluster = freshCluster();
    const logged: string[] = [];
    const a = member(cluster, "a", logged);
    a.t.send({ type: "NoSuchType", from: "a", to: "b" } as unknown as Message);
    a.t.send(read("a", "a", 1));
    await a.t.close();
    a.t.send(read("a", "b", 2));
    expect(a.t.stats()).toMatchObject({ droppedUnencodable: 2, droppedClosed: 1, sent: 0 });
    expect(logged).toHaveLength(2);
  });
});
