/**
 * WebSocketMesh.refusePeer, the local demo's "cut link" (real sockets, 127.0.0.1 only): a cut
 * closes the link and keeps it down both ways, whoever dials; a heal opens it again at once.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Message, ReadIndexRequest } from "../../src/core/types.ts";
import { closeAll, fastTimers, meshCluster, type MeshNode, sleep, startInbox, waitFor } from "./mesh-fixtures.ts";

const msg = (from: string, to: string, n: number): ReadIndexRequest => ({ type: "ReadIndex", from, to, term: 1, requestId: n });

const open: MeshNode[] = [];
afterEach(() => closeAll(open.splice(0)));

describe("refusePeer", () => {
  it("cuts the link between two members until healed; the third keeps its links", async () => {
    const cluster = await meshCluster(["n1", "n2", "n3"], fastTimers);
    const [n1, n2, n3] = ["n1", "n2", "n3"].map((id) => cluster.get(id)!);
    open.push(n1, n2, n3);
    const inboxes = new Map<string, Message[]>([n1, n2, n3].map((n) => [n.id, startInbox(n)]));
    await n1.mesh.waitUntilConnected();
    await n2.mesh.waitUntilConnected();

    // n1 dials n2 (its id sorts first): cutting on both ends, as the demo does.
    n1.mesh.refusePeer("n2", true);
    n2.mesh.refusePeer("n1", true);
    await waitFor("the link closed on both ends", () => !n1.mesh.isConnected("n2") && !n2.mesh.isConnected("n1"));
    // Well past the reconnect backoff: it stays down, and what is sent across is dropped.
    await sleep(500);
    expect(n1.mesh.stats().peers.n2.state).not.toBe("open");
    expect(n2.mesh.linkStats().n1.state).not.toBe("open");
    n1.mesh.send(msg("n1", "n2", 1));
    n2.mesh.send(msg("n2", "n1", 2));
    n1.mesh.send(msg("n1", "n3", 3));
    await waitFor("n3 hears n1", () => inboxes.get("n3")!.length === 1);
    await sleep(100);
    expect(inboxes.get("n2")).toEqual([]);
    expect(inboxes.get("n1")).toEqual([]);
    expect(n1.mesh.stats().peers.n2.droppedDisconnected).toBeGreaterThanOrEqual(1);

    n1.mesh.refusePeer("n2", false);
    n2.mesh.refusePeer("n1", false);
    await n1.mesh.waitUntilConnected({ peers: ["n2"], timeoutMs: 5_000 });
    n1.mesh.send(msg("n1", "n2", 4));
    await waitFor("n2 hears n1 again", () => inboxes.get("n2")!.length === 1);
    expect(inboxes.get("n2")).toEqual([msg("n1", "n2", 4)]);
  });

  it("refuses the peer's HELLO when only the accepting end cut the link", async () => {
    const cluster = await meshCluster(["n1", "n2"], fastTimers);
    const [n1, n2] = ["n1", "n2"].map((id) => cluster.get(id)!);
    open.push(n1, n2);
    startInbox(n1);
    startInbox(n2);
    await n1.mesh.waitUntilConnected();
    n2.mesh.refusePeer("n1", true); // n2 accepts; n1 keeps dialing
    await waitFor("the link closed", () => !n1.mesh.isConnected("n2"));
    await sleep(500);
    expect(n1.mesh.isConnected("n2")).toBe(false);
    expect(n1.mesh.stats().peers.n2.dials).toBeGreaterThan(1);
    n2.mesh.refusePeer("n1", false);
    await n1.mesh.waitUntilConnected({ peers: ["n2"], timeoutMs: 10_000 });
  });
});
