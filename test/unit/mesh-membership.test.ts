/**
 * Membership changes on the WebSocket mesh (real sockets, 127.0.0.1 only): peers added and
 * removed with setPeers, URLs that change, and members that dial in before they are listed.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Message, ReadIndexRequest } from "../../src/core/types.ts";
import {
  addressesOf,
  closeAll,
  meshCluster,
  meshNode,
  type MeshNode,
  type MeshOptions,
  rawDialer,
  sleep,
  startInbox,
  waitFor,
} from "./mesh-fixtures.ts";

const msg = (from: string, to: string, n: number): ReadIndexRequest => ({ type: "ReadIndex", from, to, term: 1, requestId: n });

const open: MeshNode[] = [];
afterEach(() => closeAll(open.splice(0)));

/** Meshes for `ids`, each listing the others, started and linked. */
async function running(ids: string[], options: MeshOptions = {}): Promise<{ nodes: MeshNode[]; inboxes: Map<string, Message[]> }> {
  const cluster = await meshCluster(ids, options);
  const nodes = [...cluster.values()];
  open.push(...nodes);
  const inboxes = new Map(nodes.map((n) => [n.id, startInbox(n)]));
  await Promise.all(nodes.map((n) => n.mesh.waitUntilConnected()));
  return { nodes, inboxes };
}

async function joiner(id: string, peers: MeshNode[], options: MeshOptions = {}): Promise<{ node: MeshNode; inbox: Message[] }> {
  const node = await meshNode(id, addressesOf(peers), options);
  open.push(node);
  return { node, inbox: startInbox(node) };
}

/** `from` sends one message to `to` and it arrives in `inbox`. */
async function delivers(from: MeshNode, to: string, inbox: Message[], n: number): Promise<void> {
  from.mesh.send(msg(from.id, to, n));
  await waitFor(`${from.id} -> ${to} #${n}`, () => inbox.some((m) => m.from === from.id && (m as ReadIndexRequest).requestId === n));
}

const logged = (node: MeshNode, pattern: RegExp): boolean => node.logs.some((l) => pattern.test(l.message));

describe("setPeers adds peers", () => {
  it("a new peer whose id sorts last is dialed by the existing members, and messages flow both ways", async () => {
    const { nodes, inboxes } = await running(["n2", "n3"]);
    const [n2, n3] = nodes;
    const { node: n4, inbox: inbox4 } = await joiner("n4", nodes);
    for (const n of nodes) n.mesh.setPeers(addressesOf([...nodes, n4]));
    await Promise.all([n4.mesh.waitUntilConnected(), n2.mesh.waitUntilConnected(), n3.mesh.waitUntilConnected()]);

    await delivers(n2, "n4", inbox4, 1);
    await delivers(n4, "n2", inboxes.get("n2")!, 2);
    await delivers(n4, "n3", inboxes.get("n3")!, 3);
    expect(n2.mesh.stats()).toMatchObject({ peersAdded: 1, peersRemoved: 0, removed: [] });
    expect(n2.mesh.stats().peers.n4).toMatchObject({ url: n4.server.url, role: "dials", state: "open", opened: 1 });
    expect(n2.mesh.stats().peers.n3).toMatchObject({ opened: 1, dials: 1 }); // untouched
  });

  it("a new peer whose id sorts first dials the existing members once they list it", async () => {
    const { nodes, inboxes } = await running(["n2", "n3"]);
    const [n2, n3] = nodes;
    const { node: n1, inbox: inbox1 } = await joiner("n1", nodes);
    // Not listed yet (and acceptUnknownPeers is off): refused, and n1 keeps redialing.
    await waitFor("a refusal", () => n2.mesh.stats().unidentified.refused >= 1);
    expect(n1.mesh.isConnected("n2")).toBe(false);

    for (const n of nodes) n.mesh.setPeers(addressesOf([...nodes, n1]));
    expect(n2.mesh.stats().peers.n1).toMatchObject({ role: "accepts", dials: 0 });
    await n1.mesh.waitUntilConnected();
    await delivers(n1, "n3", inboxes.get("n3")!, 1);
    await delivers(n3, "n1", inbox1, 2);
    await delivers(n2, "n1", inbox1, 3);
    expect(n2.mesh.stats().peers.n1).toMatchObject({ state: "open", opened: 1, dials: 0 });
  });
});

describe("setPeers removes peers", () => {
  it("closes the link with REMOVED, drops and counts later sends, and refuses the removed node's dials", async () => {
    const { nodes } = await running(["n1", "n2", "n3"]);
    const [n1, n2, n3] = nodes;
    n2.mesh.setPeers(addressesOf([n3])); // n1 dials n2

    expect(n2.mesh.isConnected("n1")).toBe(false);
    expect(n2.mesh.stats()).toMatchObject({ peersAdded: 0, peersRemoved: 1, removed: ["n1"] });
    expect(n2.mesh.stats().peers.n1).toBeUndefined();
    const dropped = n2.mesh.stats().droppedUnknownPeer;
    n2.mesh.send(msg("n2", "n1", 1));
    expect(n2.mesh.stats().droppedUnknownPeer).toBe(dropped + 1);

    await waitFor("n1 to log why", () => logged(n1, /^n2 closed the link: n1 was removed from the peers of n2 \(REMOVED\)$/));
    await waitFor("a refused redial", () => logged(n2, /^refused a link from n1: n1 was removed from the peers of n2 \(REMOVED\)$/));
    expect(n1.mesh.isConnected("n2")).toBe(false);
    expect(n2.mesh.stats().peers.n3).toMatchObject({ state: "open", opened: 1 });
    expect(n1.mesh.stats().peers.n3).toMatchObject({ state: "open", opened: 1 });

    // Listed again: accepted again.
    n2.mesh.setPeers(addressesOf([n1, n3]));
    expect(n2.mesh.stats()).toMatchObject({ peersAdded: 1, removed: [] });
    await n2.mesh.waitUntilConnected();
  });

  it("a removed node is told once: REMOVED is a warning once per peer on each side, then debug, and it redials slowly", async () => {
    const { nodes } = await running(["n1", "n2"]);
    const [n1, n2] = nodes;
    n2.mesh.setPeers([]); // n1 (the dialer) was removed from n2's configuration
    const removedWarnings = (n: MeshNode): number => n.logs.filter((l) => l.level === "warn" && l.fields.code === 4012).length;
    await waitFor("n2 to refuse a redial", () => logged(n2, /^refused a link from n1: .*\(REMOVED\)$/));
    const dialsAfterRefusal = n1.mesh.stats().peers.n2.dials;
    await sleep(1_500); // the backoff alone (at most 200 ms here) would redial about 7 more times
    expect(n1.mesh.stats().peers.n2.dials - dialsAfterRefusal).toBeLessThanOrEqual(1);
    expect(removedWarnings(n1)).toBe(1);
    expect(removedWarnings(n2)).toBeLessThanOrEqual(2); // the link it closed, and the first refused redial
    expect(n1.logs.some((l) => l.level === "warn" && /removed/.test(l.message))).toBe(true);
  });

  it("stops dialing a removed peer this node dialed", async () => {
    const { nodes } = await running(["n1", "n2"]);
    const [n1, n2] = nodes;
    n1.mesh.setPeers([]);
    await waitFor("n2 to see the link close", () => !n2.mesh.isConnected("n1"));
    await sleep(400); // two maximum backoffs: a redial would have reopened the link (n2 still lists n1)
    expect(n1.mesh.stats().peers).toEqual({});
    expect(n2.mesh.stats().peers.n1).toMatchObject({ state: "down", opened: 1 });
    expect(n1.logs.filter((l) => /^closed the link with n2: n2 was removed/.test(l.message))).toHaveLength(1);
  });
});

describe("setPeers keeps what did not change", () => {
  it("an unchanged list, in any order and with this node's own entry, reconnects nothing", async () => {
    const { nodes } = await running(["n1", "n2", "n3"]);
    const before = nodes.map((n) => n.mesh.stats());
    for (let i = 0; i < 20; i++) {
      for (const n of nodes) n.mesh.setPeers(i % 2 === 0 ? addressesOf(nodes) : addressesOf(nodes).reverse());
    }
    await sleep(200);
    nodes.forEach((n, i) => {
      const after = n.mesh.stats();
      expect(after).toMatchObject({ peersAdded: 0, peersRemoved: 0, removed: [] });
      for (const [peer, link] of Object.entries(before[i].peers)) {
        expect(after.peers[peer]).toMatchObject({ state: "open", opened: link.opened, dials: link.dials, url: link.url });
      }
      expect(n.logs.filter((l) => /closed the link|added|removed|is now at/.test(l.message))).toEqual([]);
    });
  });

  it("a dialer whose peer's URL changed closes the old link and dials the new URL", async () => {
    const { nodes } = await running(["n1", "n2"]);
    const [n1, n2] = nodes;
    // n2 again, on another port (a moved member).
    const { node: moved, inbox } = await joiner("n2", [n1]);
    n1.mesh.setPeers([{ id: "n2", url: moved.server.url }]);
    await n1.mesh.waitUntilConnected(); // the dialer is ready last: READY reached it
    expect(moved.mesh.isConnected("n1")).toBe(true);
    await delivers(n1, "n2", inbox, 1);
    expect(n1.mesh.stats().peers.n2).toMatchObject({ url: moved.server.url, state: "open", opened: 2 });
    await waitFor("the old n2 to log why", () => logged(n2, /^n1 closed the link: n2 moved to http:\/\/127\.0\.0\.1:\d+; n1 dials it there \(REPLACED\)$/));
  });
});

describe("members that dial in before they are listed (acceptUnknownPeers)", () => {
  it("accepts an unknown id as a peer without a URL; messages flow both ways; a list that omits it keeps the link", async () => {
    const { nodes, inboxes } = await running(["n2", "n3"], { secret: "s", acceptUnknownPeers: true });
    const [n2, n3] = nodes;
    const { node: n1, inbox: inbox1 } = await joiner("n1", nodes, { secret: "s" });
    await n1.mesh.waitUntilConnected();

    await delivers(n1, "n2", inboxes.get("n2")!, 1);
    await delivers(n2, "n1", inbox1, 2);
    await delivers(n3, "n1", inbox1, 3);
    expect(n2.mesh.stats()).toMatchObject({ peersAdded: 1, unidentified: { refused: 0 } });
    expect(n2.mesh.stats().peers.n1).toMatchObject({ url: null, role: "accepts", state: "open", opened: 1, messagesIn: 1, messagesOut: 1 });

    // Never listed, so not removed by a list that does not name it yet.
    n2.mesh.setPeers(addressesOf([n3]));
    n3.mesh.setPeers(addressesOf([n2]));
    await sleep(100);
    expect(n2.mesh.isConnected("n1")).toBe(true);
    // Listed now: it gets a URL and keeps its link (n1 still dials n2).
    n2.mesh.setPeers(addressesOf([n1, n3]));
    expect(n2.mesh.stats().peers.n1).toMatchObject({ url: n1.server.url, role: "accepts", state: "open", opened: 1 });

    // n3 never listed n1: when the link closes, n3 forgets it.
    await closeAll(open.splice(open.indexOf(n1), 1));
    await waitFor("n3 to forget n1", () => n3.mesh.stats().peers.n1 === undefined);
    expect(n3.mesh.stats()).toMatchObject({ peersAdded: 1, peersRemoved: 1, removed: [] });
    const dropped = n3.mesh.stats().droppedUnknownPeer;
    n3.mesh.send(msg("n3", "n1", 4));
    expect(n3.mesh.stats().droppedUnknownPeer).toBe(dropped + 1);
    await waitFor("n2 to see the link close", () => !n2.mesh.isConnected("n1"));
    expect(n2.mesh.stats().peers.n1).toMatchObject({ state: "down", url: n1.server.url }); // n2 listed it: kept
  });

  it("refuses an unknown id that does not prove the cluster secret", async () => {
    const { nodes } = await running(["n2", "n3"], { secret: "s", acceptUnknownPeers: true });
    const [n2] = nodes;
    const { node: wrong } = await joiner("n1", [n2], { secret: "not-s" });
    await waitFor("a refusal", () => n2.mesh.stats().unidentified.refused >= 1);
    expect(logged(wrong, /^refused the link to n2: n2 failed to prove the cluster secret/)).toBe(true);
    const { node: none } = await joiner("n0", [n2]);
    await waitFor("a second refusal", () => logged(n2, /^refused a link from n0: n0 has no cluster secret but this node requires one \(AUTH_FAILED\)$/));
    await sleep(100);
    expect(n2.mesh.stats()).toMatchObject({ peersAdded: 0 });
    expect(Object.keys(n2.mesh.stats().peers)).toEqual(["n3"]);
    expect(wrong.mesh.stats().peers.n2.opened).toBe(0);
    expect(none.mesh.stats().peers.n2.opened).toBe(0);
  });

  it("still refuses a dial from a listed peer that this node must dial (WRONG_DIALER)", async () => {
    const { nodes } = await running(["n1", "n2"], { acceptUnknownPeers: true });
    const n1 = nodes[0];
    await expect(rawDialer(n1, "n2")).rejects.toThrow();
    expect(logged(n1, /^refused a link from n2: n2 dialed n1, but the node whose id sorts first dials: n1 dials n2 \(WRONG_DIALER\)$/)).toBe(true);
    expect(n1.mesh.stats().peers.n2).toMatchObject({ state: "open", opened: 1 });
  });
});
