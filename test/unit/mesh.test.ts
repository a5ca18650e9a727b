/**
 * The WebSocket mesh on real sockets (127.0.0.1 only): handshake and refusals, bad frames,
 * reconnects, liveness, backpressure, and a Raft cluster on top.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_URL_BYTES } from "../../src/core/member-url.ts";
import type { Message, ReadIndexRequest } from "../../src/core/types.ts";
import { WIRE_VERSION, encodeMessage } from "../../src/transport/codec.ts";
import { HANDSHAKE_CLOSE_REASON } from "../../src/transport/connection.ts";
import { CloseCode, encodeControl, FRAME_HELLO, FRAME_PING, FRAME_WELCOME, parseHello } from "../../src/transport/handshake.ts";
import { createNodeMesh } from "../../adapters/node/mesh.ts";
import {
  answerAs,
  closeAll,
  fakePeer,
  type FakePeer,
  meshCluster,
  meshNode,
  type MeshNode,
  nonce,
  rawDialer,
  rawSocket,
  sleep,
  waitFor,
} from "./mesh-fixtures.ts";

const msg = (from: string, to: string, n: number): ReadIndexRequest => ({ type: "ReadIndex", from, to, term: 1, requestId: n });

/** Everything a test started, closed after it whatever happened. */
const open: { nodes: MeshNode[]; fakes: FakePeer[] } = { nodes: [], fakes: [] };
afterEach(async () => {
  await closeAll(open.nodes.splice(0));
  await Promise.all(open.fakes.splice(0).map((f) => f.close()));
});

async function cluster(...args: Parameters<typeof meshCluster>): Promise<Map<string, MeshNode>> {
  const nodes = await meshCluster(...args);
  open.nodes.push(...nodes.values());
  return nodes;
}

async function fake(onSocket: Parameters<typeof fakePeer>[0]): Promise<FakePeer> {
  const f = await fakePeer(onSocket);
  open.fakes.push(f);
  return f;
}

/** Starts every mesh, recording what each receives. */
function startAll(nodes: Map<string, MeshNode>): Map<string, Message[]> {
  const inboxes = new Map<string, Message[]>();
  for (const [id, n] of nodes) {
    const inbox: Message[] = [];
    inboxes.set(id, inbox);
    n.mesh.start((m) => inbox.push(m));
  }
  return inboxes;
}

const logged = (node: MeshNode, pattern: RegExp): boolean => node.logs.some((l) => pattern.test(l.message));
/** What a dialer logs when `peer` refused its handshake: the generic wire reason and the close code. */
const REFUSED_BY = (peer: string, code: string): RegExp =>
  new RegExp(`^${peer} closed the link: ${HANDSHAKE_CLOSE_REASON.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(${code}\\)$`);

describe("handshake", () => {
  it("opens one link per pair, dialed by the smaller id, and carries messages both ways", async () => {
    const nodes = await cluster(["n1", "n2", "n3"], { secret: "s3cret" });
    const inbox = startAll(nodes);
    await Promise.all([...nodes.values()].map((n) => n.mesh.waitUntilConnected()));
    const [n1, n2, n3] = ["n1", "n2", "n3"].map((id) => nodes.get(id)!);

    expect(n1.mesh.stats().peers.n2).toMatchObject({ state: "open", role: "dials", opened: 1, dials: 1 });
    expect(n2.mesh.stats().peers.n1).toMatchObject({ state: "open", role: "accepts", opened: 1, dials: 0 });
    expect(n3.mesh.stats().peers.n2).toMatchObject({ state: "open", role: "accepts", opened: 1 });

    // n3 answers n1 over the link n1 dialed.
    n1.mesh.send(msg("n1", "n3", 1));
    n3.mesh.send(msg("n3", "n1", 2));
    await waitFor("both messages", () => inbox.get("n3")!.length === 1 && inbox.get("n1")!.length === 1);
    expect(inbox.get("n1")).toEqual([msg("n3", "n1", 2)]);
    for (const n of nodes.values()) expect(n.warnings()).toEqual([]);
  });

  it("without a secret links open, and each node warns once that the mesh is unauthenticated", async () => {
    const nodes = await cluster(["n1", "n2"]);
    startAll(nodes);
    await nodes.get("n1")!.mesh.waitUntilConnected();
    for (const n of nodes.values()) {
      expect(n.warnings()).toEqual([expect.stringMatching(/^warn: no cluster secret configured: the mesh is unauthenticated/)]);
    }
  });

  it("refuses a peer with another secret; both sides log why, and the link never opens", async () => {
    const nodes = await cluster(["n1", "n2"], (id) => ({ secret: id === "n1" ? "alpha" : "beta" }));
    startAll(nodes);
    const [n1, n2] = [nodes.get("n1")!, nodes.get("n2")!];
    await waitFor("two refused dials", () => n1.mesh.stats().peers.n2.refused >= 2);
    expect(logged(n1, /^refused the link to n2: n2 failed to prove the cluster secret \(the two nodes have different secrets\)/)).toBe(true);
    await waitFor("n2 to log n1's refusal", () => logged(n2, REFUSED_BY("n1", "AUTH_FAILED")));
    expect(n1.mesh.stats().peers.n2.opened).toBe(0);
    expect(n2.mesh.stats().peers.n1).toMatchObject({ opened: 0, messagesIn: 0 });
  });

  it("refuses a peer that has no secret when this node requires one", async () => {
    const nodes = await cluster(["n1", "n2"], (id) => (id === "n2" ? { secret: "only-here" } : {}));
    startAll(nodes);
    const n2 = nodes.get("n2")!;
    await waitFor("a refusal", () => n2.mesh.stats().peers.n1.refused >= 1);
    expect(logged(n2, /^refused a link from n1: n1 has no cluster secret but this node requires one \(AUTH_FAILED\)/)).toBe(true);
    await waitFor("n1 to log n2's refusal", () => logged(nodes.get("n1")!, REFUSED_BY("n2", "AUTH_FAILED")));
  });

  it("refuses a peer from another cluster", async () => {
    const nodes = await cluster(["n1", "n2"], (id) => ({ secret: "s", clusterId: id === "n2" ? "other" : "test" }));
    startAll(nodes);
    const n2 = nodes.get("n2")!;
    await waitFor("a refusal", () => n2.mesh.stats().peers.n1.refused >= 1);
    expect(logged(n2, /^refused a link from n1: n1 is in cluster "test" but this node is in cluster "other" \(CLUSTER_MISMATCH\)/)).toBe(true);
    await waitFor("n1 to log n2's refusal", () => logged(nodes.get("n1")!, REFUSED_BY("n2", "CLUSTER_MISMATCH")));
  });

  it("refuses an unknown node id", async () => {
    // n0 knows n2; n2's only peer is n1.
    const nodes = await cluster(["n0", "n2"], { secret: "s" }, (id, urls) =>
      id === "n0" ? [{ id: "n2", url: urls.get("n2")! }] : [{ id: "n1", url: "http://127.0.0.1:9" }],
    );
    startAll(nodes);
    const n2 = nodes.get("n2")!;
    await waitFor("a refusal", () => n2.mesh.stats().unidentified.refused >= 1);
    expect(logged(n2, /^refused a link from n0: unknown node id "n0": not a peer of n2 \(peers: n1\) \(UNKNOWN_NODE\)/)).toBe(true);
    await waitFor("n0 to log n2's refusal", () => logged(nodes.get("n0")!, REFUSED_BY("n2", "UNKNOWN_NODE")));
  });

  it("tells a prober that has proven nothing no cluster id, node id or peer: the details go to the local log", async () => {
    // n2 is in cluster "prod-cluster-7f3a" with peers n1 and n3 (n2 dials n3).
    const nodes = await cluster(["n1", "n2", "n3"], { clusterId: "prod-cluster-7f3a" });
    const n2 = nodes.get("n2")!;
    const hello = { protocol: 1, cluster: "prod-cluster-7f3a", from: "n1", to: "n2", nonce: nonce(), auth: false };
    const probes = [
      { hello: { ...hello, cluster: "guess" }, code: CloseCode.CLUSTER_MISMATCH, log: 'refused a link from n1: n1 is in cluster "guess" but this node is in cluster "prod-cluster-7f3a" (CLUSTER_MISMATCH)' },
      { hello: { ...hello, from: "x9" }, code: CloseCode.UNKNOWN_NODE, log: 'refused a link from x9: unknown node id "x9": not a peer of n2 (peers: n1, n3) (UNKNOWN_NODE)' },
      { hello: { ...hello, to: "n7" }, code: CloseCode.WRONG_NODE, log: 'refused a link from n1: n1 dialed node "n7" but reached "n2" (WRONG_NODE)' },
      { hello: { ...hello, from: "n3" }, code: CloseCode.WRONG_DIALER, log: "refused a link from n3: n3 dialed n2, but the node whose id sorts first dials: n2 dials n3 (WRONG_DIALER)" },
    ];
    for (const probe of probes) {
      const raw = await rawSocket(n2.server.url);
      raw.send(encodeControl(FRAME_HELLO, probe.hello));
      const closed = await raw.closed;
      expect(closed.code).toBe(probe.code);
      for (const secret of ["prod-cluster-7f3a", "n1", "n2", "n3"]) expect(closed.reason).not.toContain(secret);
      expect(raw.frames).toEqual([]);
      expect(n2.logs.filter((l) => l.message === probe.log && l.level === "warn")).toHaveLength(1);
    }
  });

  it("refuses a dial from the peer this node must dial (one link per pair)", async () => {
    const nodes = await cluster(["n2", "n3"]);
    const n2 = nodes.get("n2")!;
    const raw = await rawSocket(n2.server.url);
    raw.send(encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n3", to: "n2", nonce: nonce(), auth: false }));
    expect(await raw.closed).toEqual({ code: CloseCode.WRONG_DIALER, reason: HANDSHAKE_CLOSE_REASON });
    expect(logged(n2, /^refused a link from n3: n3 dialed n2/)).toBe(true);
  });

  it("refuses an impostor: the node that answers at the URL is not the node dialed", async () => {
    const impostor = await fake(answerAs("n3"));
    const n1 = await meshNode("n1", [{ id: "n2", url: impostor.url }]);
    open.nodes.push(n1);
    n1.mesh.start(() => {});
    await waitFor("a refusal", () => n1.mesh.stats().peers.n2.refused >= 1);
    expect(logged(n1, /^refused the link to n2: dialed n2 but the node that answered says it is "n3" \(WRONG_NODE\)/)).toBe(true);
    expect(await impostor.sockets[0].closed).toMatchObject({ code: CloseCode.WRONG_NODE });
    expect(n1.mesh.stats().peers.n2.messagesIn).toBe(0);
  });

  it("refuses a dialer that reached the wrong node (a misconfigured URL)", async () => {
    // n1 believes n2 lives at n3's address.
    const nodes = await cluster(["n1", "n3"], {}, (id, urls) =>
      id === "n1" ? [{ id: "n2", url: urls.get("n3")! }] : [{ id: "n1", url: urls.get("n1")! }],
    );
    startAll(nodes);
    const n3 = nodes.get("n3")!;
    await waitFor("a refusal", () => n3.mesh.stats().peers.n1.refused >= 1);
    expect(logged(n3, /^refused a link from n1: n1 dialed node "n2" but reached "n3" \(WRONG_NODE\)/)).toBe(true);
  });

  it("refuses a peer that speaks another protocol version", async () => {
    const nodes = await cluster(["n1", "n2"]);
    const n2 = nodes.get("n2")!;
    const raw = await rawSocket(n2.server.url);
    raw.send(encodeControl(FRAME_HELLO, { protocol: 2, cluster: "test", from: "n1", to: "n2", nonce: nonce(), auth: false }));
    expect(await raw.closed).toEqual({ code: CloseCode.PROTOCOL_VERSION, reason: HANDSHAKE_CLOSE_REASON });
    expect(logged(n2, /^refused a link from an unidentified peer: peer speaks mesh protocol 2; this node speaks 1 \(PROTOCOL_VERSION\)/)).toBe(true);
  });

  it("closes an inbound socket that does not complete the handshake in time", async () => {
    const nodes = await cluster(["n1", "n2"], { handshakeTimeoutMs: 150 });
    const n2 = nodes.get("n2")!;
    const raw = await rawSocket(n2.server.url);
    const started = Date.now();
    expect(await raw.closed).toMatchObject({ code: CloseCode.HANDSHAKE_TIMEOUT });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(logged(n2, /^refused a link from an unidentified peer: handshake not completed within 150 ms \(waiting for HELLO\)/)).toBe(true);
  });

  it("gives up on a peer that accepts the socket but never answers, and dials again", async () => {
    const silent = await fake(() => {});
    const n1 = await meshNode("n1", [{ id: "n2", url: silent.url }], { handshakeTimeoutMs: 150 });
    open.nodes.push(n1);
    n1.mesh.start(() => {});
    await waitFor("a second dial", () => silent.sockets.length >= 2);
    expect(logged(n1, /^refused the link to n2: handshake not completed within 150 ms \(waiting for WELCOME\) \(HANDSHAKE_TIMEOUT\)/)).toBe(true);
    expect(n1.mesh.stats().peers.n2.opened).toBe(0);
    expect(n1.mesh.stats().peers.n2.refused).toBeGreaterThanOrEqual(1);
  });

  it("delivers Raft frames that arrive right behind READY, in the same read", async () => {
    const eager = await fake(answerAs("n2", (raw) => {
      for (let i = 1; i <= 50; i++) raw.send(encodeMessage(msg("n2", "n1", i)));
    }));
    const n1 = await meshNode("n1", [{ id: "n2", url: eager.url }]);
    open.nodes.push(n1);
    const got: number[] = [];
    n1.mesh.start((m) => got.push((m as ReadIndexRequest).requestId));
    await waitFor("50 messages", () => got.length >= 50);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(n1.mesh.stats().peers.n2).toMatchObject({ opened: 1, malformed: 0, refused: 0 });
  });

  it("sends no Raft frame to a peer that has not proved the secret", async () => {
    const nodes = await cluster(["n1", "n2"], { secret: "s" });
    const n2 = nodes.get("n2")!;
    n2.mesh.start(() => {});
    const raw = await rawSocket(n2.server.url);
    raw.send(encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n1", to: "n2", nonce: nonce(), auth: true }));
    const welcome = await raw.next();
    expect(welcome[0]).toBe(FRAME_WELCOME);
    for (let i = 0; i < 5; i++) n2.mesh.send(msg("n2", "n1", i));
    raw.send(new Uint8Array([0x12, ...new TextEncoder().encode(JSON.stringify({ proof: "00".repeat(32) }))]));
    expect(await raw.closed).toEqual({ code: CloseCode.AUTH_FAILED, reason: HANDSHAKE_CLOSE_REASON });
    expect(logged(n2, /^refused a link from n1: n1 failed to prove the cluster secret/)).toBe(true);
    expect(raw.frames).toHaveLength(1);
    expect(n2.mesh.stats().peers.n1).toMatchObject({ droppedDisconnected: 5, messagesOut: 0, refused: 1 });
  });
});

describe("bad frames on an open link", () => {
  // n2 accepts a scripted peer n0 next to its real links to n1 and n3.
  let nodes: Map<string, MeshNode>;
  let inbox: Map<string, Message[]>;
  const maxFrameBytes = 64 * 1024;

  beforeAll(async () => {
    nodes = await meshCluster(["n1", "n2", "n3"], { codecLimits: { maxFrameBytes } }, (id, urls) => [
      ...["n1", "n2", "n3"].filter((p) => p !== id).map((p) => ({ id: p, url: urls.get(p)! })),
      ...(id === "n2" ? [{ id: "n0", url: "http://127.0.0.1:9" }] : []),
    ]);
    inbox = startAll(nodes);
    await Promise.all([...nodes.values()].map((n) => n.mesh.waitUntilConnected({ peers: ["n1", "n2", "n3"].filter((p) => p !== n.id) })));
  });
  afterAll(() => closeAll(nodes.values()));

  const garbage = new Uint8Array([WIRE_VERSION, 0xc1, 0xff, 0x00, 0x13]);
  const spoofed = encodeMessage(msg("n1", "n2", 1)); // sent by n0
  const oversized = new Uint8Array(maxFrameBytes + 1).fill(7);
  oversized[0] = WIRE_VERSION;
  const cases: { what: string; frame: Uint8Array | string; code: number; log: RegExp }[] = [
    { what: "invalid msgpack after the version byte", frame: garbage, code: CloseCode.MALFORMED_FRAME, log: /bad Raft frame: frame is not valid msgpack/ },
    { what: "a text frame", frame: "hello", code: CloseCode.MALFORMED_FRAME, log: /received a text frame; mesh frames are binary/ },
    { what: "an unknown frame type", frame: new Uint8Array([0x7f, 1, 2]), code: CloseCode.MALFORMED_FRAME, log: /received an unknown frame type 0x7f \(3 bytes\) on an open link/ },
    { what: "a message whose sender is another node", frame: spoofed, code: CloseCode.MALFORMED_FRAME, log: /a ReadIndex from "n1" to "n2" arrived on the link n0 -> n2/ },
    { what: "a HELLO on an open link", frame: encodeControl(FRAME_HELLO), code: CloseCode.MALFORMED_FRAME, log: /received HELLO \(1 bytes\) on an open link/ },
    { what: "a frame over maxFrameBytes", frame: oversized, code: CloseCode.FRAME_TOO_LARGE, log: /bad Raft frame: frame is 65537 bytes; maxFrameBytes is 65536/ },
  ];

  for (const { what, frame, code, log } of cases) {
    it(`closes the link on ${what}, logs and counts it, and the other links keep working`, async () => {
      const n2 = nodes.get("n2")!;
      const before = n2.mesh.stats().peers.n0.malformed;
      const raw = await rawDialer(n2, "n0");
      raw.send(frame);
      expect(await raw.closed).toMatchObject({ code });
      expect(n2.mesh.stats().peers.n0.malformed).toBe(before + 1);
      expect(n2.logs.some((l) => l.level === "warn" && log.test(l.message) && l.message.startsWith("closed the link with n0: "))).toBe(true);

      const n1Before = inbox.get("n1")!.length;
      const n3Before = inbox.get("n3")!.length;
      n2.mesh.send(msg("n2", "n1", 1));
      n2.mesh.send(msg("n2", "n3", 1));
      await waitFor("messages on the other links", () => inbox.get("n1")!.length > n1Before && inbox.get("n3")!.length > n3Before);
      expect(n2.mesh.stats().peers.n1).toMatchObject({ state: "open", opened: 1, malformed: 0 });
    });
  }

  it("refuses garbage sent instead of a HELLO, counted as unidentified", async () => {
    const n2 = nodes.get("n2")!;
    const before = n2.mesh.stats().unidentified.malformed;
    const raw = await rawSocket(n2.server.url);
    raw.send(new Uint8Array([0x10, 0x7b, 0xff]));
    expect(await raw.closed).toEqual({ code: CloseCode.MALFORMED_FRAME, reason: HANDSHAKE_CLOSE_REASON });
    expect(logged(n2, /^refused a link from an unidentified peer: HELLO is not UTF-8 JSON \(MALFORMED_FRAME\)$/)).toBe(true);
    expect(n2.mesh.stats().unidentified.malformed).toBe(before + 1);
  });

  it("replaces a link when the same peer completes a newer handshake", async () => {
    const n2 = nodes.get("n2")!;
    const first = await rawDialer(n2, "n0");
    const second = await rawDialer(n2, "n0");
    expect(await first.closed).toEqual({ code: CloseCode.REPLACED, reason: "replaced by a newer link from n0" });
    second.send(encodeMessage(msg("n0", "n2", 42)));
    await waitFor("the message on the newer link", () => inbox.get("n2")!.some((m) => m.from === "n0"));
    second.ws.close();
  });
});

describe("reconnects and liveness", () => {
  it("redials after the peer's server restarts on the same port", async () => {
    const nodes = await cluster(["n1", "n2"], { secret: "s" });
    const inbox = startAll(nodes);
    const [n1, n2] = [nodes.get("n1")!, nodes.get("n2")!];
    await n1.mesh.waitUntilConnected();
    const port = n2.server.port;
    await closeAll([n2]);
    open.nodes.splice(open.nodes.indexOf(n2), 1);
    await waitFor("n1 to notice", () => !n1.mesh.isConnected("n2"));
    n1.mesh.send(msg("n1", "n2", 1)); // dropped: nothing waits for the link to return

    const again = await meshNode("n2", [{ id: "n1", url: n1.server.url }], { secret: "s" }, port);
    open.nodes.push(again);
    const got: Message[] = [];
    again.mesh.start((m) => got.push(m));
    await n1.mesh.waitUntilConnected({ timeoutMs: 5000 });
    n1.mesh.send(msg("n1", "n2", 2));
    again.mesh.send(msg("n2", "n1", 3));
    await waitFor("messages both ways", () => got.length === 1 && inbox.get("n1")!.length === 1);
    expect(got).toEqual([msg("n1", "n2", 2)]);
    expect(n1.mesh.stats().peers.n2).toMatchObject({ state: "open", opened: 2, reconnects: 1, droppedDisconnected: 1 });
    expect(n1.mesh.stats().peers.n2.dials).toBeGreaterThanOrEqual(2);
  });

  it("keeps an idle link open with pings", async () => {
    const nodes = await cluster(["n1", "n2"], { pingIntervalMs: 40, idleTimeoutMs: 200 });
    startAll(nodes);
    const n1 = nodes.get("n1")!;
    await n1.mesh.waitUntilConnected();
    await sleep(800); // four idle timeouts without a single Raft message
    const stats = n1.mesh.stats().peers.n2;
    expect(stats).toMatchObject({ state: "open", opened: 1, idleTimeouts: 0, messagesIn: 0, messagesOut: 0 });
    expect(stats.framesIn).toBeGreaterThan(10);
    expect(stats.rttMs).not.toBeNull();
  });

  it("closes a link whose peer went silent after the handshake, and redials", async () => {
    // The fake peer completes the handshake and then never sends another byte: a frozen process.
    const frozen = await fake(answerAs("n2"));
    const n1 = await meshNode("n1", [{ id: "n2", url: frozen.url }], { pingIntervalMs: 40, idleTimeoutMs: 200 });
    open.nodes.push(n1);
    n1.mesh.start(() => {});
    await waitFor("the link to open", () => n1.mesh.stats().peers.n2.opened === 1);
    const opened = Date.now();
    await waitFor("an idle timeout", () => n1.mesh.stats().peers.n2.idleTimeouts === 1, 3000);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(150);
    expect(logged(n1, /^closed the link with n2: no frame from n2 for \d+ ms \(idleTimeoutMs is 200\)$/)).toBe(true);
    expect(await frozen.sockets[0].closed).toMatchObject({ code: CloseCode.IDLE_TIMEOUT });
    expect(frozen.sockets[0].frames.some((f) => f[0] === FRAME_PING)).toBe(true);
    await waitFor("a redial", () => n1.mesh.stats().peers.n2.opened === 2);
  });

  it("stops dialing and delivering once closed", async () => {
    const silent = await fake((raw) => raw.ws.close(4999, "go away"));
    const n1 = await meshNode("n1", [{ id: "n2", url: silent.url }]);
    open.nodes.push(n1);
    let delivered = 0;
    n1.mesh.start(() => delivered++);
    await waitFor("a few dials", () => n1.mesh.stats().peers.n2.dials >= 3);
    await n1.mesh.close();
    const dials = n1.mesh.stats().peers.n2.dials;
    await sleep(300);
    expect(n1.mesh.stats().peers.n2).toMatchObject({ dials, state: "closed" });
    expect(() => n1.mesh.send(msg("n1", "n2", 1))).not.toThrow();
    await expect(n1.mesh.waitUntilConnected()).rejects.toThrow("mesh n1 closed while waiting for links to n2");
    expect(delivered).toBe(0);
  });
});

describe("send", () => {
  it("drops messages beyond the high-water mark instead of queueing them", async () => {
    const nodes = await cluster(["n1", "n2"], { highWaterMarkBytes: 64 * 1024 });
    const inbox = startAll(nodes);
    const n1 = nodes.get("n1")!;
    await n1.mesh.waitUntilConnected();
    const data = new Uint8Array(1024 * 1024);
    for (let i = 1; i <= 40; i++) {
      n1.mesh.send({ type: "AppendEntries", from: "n1", to: "n2", term: 1, prevLogIndex: i - 1, prevLogTerm: 1, entries: [{ index: i, term: 1, type: "normal", data }], leaderCommit: 0 });
    }
    const { messagesOut, droppedBackpressure } = n1.mesh.stats().peers.n2;
    expect(messagesOut).toBeGreaterThanOrEqual(1);
    expect(droppedBackpressure).toBeGreaterThan(0);
    expect(messagesOut + droppedBackpressure).toBe(40);
    await waitFor("what was sent", () => inbox.get("n2")!.length === messagesOut);
    await sleep(100);
    expect(inbox.get("n2")!.length).toBe(messagesOut);
    // Once the buffer drained, sends go through again.
    n1.mesh.send(msg("n1", "n2", 1));
    await waitFor("a message after the burst", () => inbox.get("n2")!.length === messagesOut + 1);
  });

  it("drops what is sent while the link is down: nothing waits for it to come up", async () => {
    const nodes = await cluster(["n1", "n2"]);
    const n1 = nodes.get("n1")!;
    const got: Message[] = [];
    n1.mesh.start(() => {});
    n1.mesh.send(msg("n1", "n2", 1));
    n1.mesh.send(msg("n1", "n3", 1)); // not a peer
    nodes.get("n2")!.mesh.start((m) => got.push(m));
    await n1.mesh.waitUntilConnected();
    n1.mesh.send(msg("n1", "n2", 2));
    await waitFor("the message sent after the link opened", () => got.length === 1);
    await sleep(100);
    expect(got).toEqual([msg("n1", "n2", 2)]);
    expect(n1.mesh.stats()).toMatchObject({ droppedUnknownPeer: 1, peers: { n2: { droppedDisconnected: 1, messagesOut: 1 } } });
  });

  it("logs a handler that throws and keeps delivering", async () => {
    const nodes = await cluster(["n1", "n2"]);
    const n2 = nodes.get("n2")!;
    const got: number[] = [];
    nodes.get("n1")!.mesh.start(() => {});
    n2.mesh.start((m) => {
      const n = (m as ReadIndexRequest).requestId;
      if (n === 1) throw new Error("boom");
      got.push(n);
    });
    await nodes.get("n1")!.mesh.waitUntilConnected();
    nodes.get("n1")!.mesh.send(msg("n1", "n2", 1));
    nodes.get("n1")!.mesh.send(msg("n1", "n2", 2));
    await waitFor("the second message", () => got.length === 1);
    expect(n2.mesh.stats().handlerErrors).toBe(1);
    expect(n2.warnings()).toContainEqual("error: the message handler threw on a ReadIndex from n1: boom");
    expect(n2.mesh.isConnected("n1")).toBe(true);
  });

  it("never throws from send, even for a message the codec refuses", async () => {
    const nodes = await cluster(["n1", "n2"]);
    startAll(nodes);
    const n1 = nodes.get("n1")!;
    await n1.mesh.waitUntilConnected();
    const bad = { type: "ReadIndex", from: "n1", to: "n2", term: -1, requestId: 1 } as Message;
    expect(() => n1.mesh.send(bad)).not.toThrow();
    expect(n1.mesh.stats().peers.n2.droppedUnencodable).toBe(1);
    expect(n1.warnings()).toContainEqual(expect.stringMatching(/^error: cannot send a ReadIndex to n2: ReadIndex.term: expected a non-negative integer, got -1/));
  });
});

describe("options", () => {
  const base = { id: "n1", clusterId: "c", peers: [{ id: "n2", url: "http://127.0.0.1:1" }] };
  it.each([
    [{ peers: [{ id: "n2", url: "http://a" }, { id: "n2", url: "http://b" }] }, "peer n2 is listed twice"],
    [{ peers: [{ id: "n2", url: "ftp://a" }] }, 'peer URL "ftp://a" must start with http://, https://, ws:// or wss://'],
    [{ pingIntervalMs: 1000, idleTimeoutMs: 1500 }, "idleTimeoutMs (1500) must be at least twice pingIntervalMs (1000)"],
    [{ highWaterMarkBytes: 0 }, "highWaterMarkBytes must be a positive number, got 0"],
    [{ secret: "" }, "secret must not be empty"],
    [{ clusterId: "" }, "clusterId must be a non-empty string"],
  ])("rejects %o", (override, message) => {
    expect(() => createNodeMesh({ ...base, logger: () => {}, ...override })).toThrow(message);
  });

  it("refuses a peer URL longer than MAX_URL_BYTES, as every layer does, at construction and in setPeers (which then changes nothing)", () => {
    const longest = `http://a/${"p".repeat(MAX_URL_BYTES - "http://a/".length)}`;
    const tooLong = [{ id: "n3", url: `${longest}p` }];
    expect(() => createNodeMesh({ ...base, peers: tooLong, logger: () => {} })).toThrow(
      "WebSocketMesh: peer n3: the URL is 2049 bytes; member URLs are limited to 2048 bytes of UTF-8 (MAX_URL_BYTES)",
    );
    const mesh = createNodeMesh({ ...base, logger: () => {} });
    expect(() => mesh.setPeers(tooLong)).toThrow(RangeError);
    expect(Object.keys(mesh.stats().peers)).toEqual(["n2"]);
    mesh.setPeers([{ id: "n3", url: longest }]);
    expect(mesh.stats().peers.n3.url).toBe(longest);
  });

  it("turns peer base URLs into /raft socket URLs", async () => {
    const { peerSocketUrl } = await import("../../src/transport/mesh.ts");
    expect(peerSocketUrl("http://127.0.0.1:7002")).toBe("ws://127.0.0.1:7002/raft");
    expect(peerSocketUrl("https://example.com/base/")).toBe("wss://example.com/base/raft");
    expect(peerSocketUrl("WS://h:1")).toBe("ws://h:1/raft");
  });

  it("a peer entry with this node's own id is ignored", () => {
    const mesh = createNodeMesh({ ...base, peers: [...base.peers, { id: "n1", url: "http://127.0.0.1:2" }], logger: () => {} });
    expect(Object.keys(mesh.stats().peers)).toEqual(["n2"]);
  });
});

describe("frames during the handshake", () => {
  it("the HELLO a dialer sends names both nodes, the cluster, whether it holds a secret and the URL it dialed", async () => {
    const seen: Uint8Array[] = [];
    const peer = await fake((raw) => void raw.next().then((f) => seen.push(f), () => {}));
    const n1 = await meshNode("n1", [{ id: "n2", url: peer.url }], { secret: "s" });
    open.nodes.push(n1);
    n1.mesh.start(() => {});
    await waitFor("a HELLO", () => seen.length === 1);
    expect(seen[0][0]).toBe(FRAME_HELLO);
    expect(parseHello(seen[0])).toEqual({ protocol: 1, cluster: "test", from: "n1", to: "n2", nonce: expect.stringMatching(/^[0-9a-f]{64}$/), auth: true, peerUrl: peer.url });
  });
});
