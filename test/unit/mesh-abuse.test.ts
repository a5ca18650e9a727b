/**
 * What an unauthenticated host that reaches `/raft` can make a member do, on real sockets on
 * 127.0.0.1 (findings of an adversarial probe, issue 15): it cannot make the member buffer more
 * than a handshake frame, hold a file descriptor after a close it ignores, forge log lines, or get
 * an answer for an id that is not a member id or that is the member's own.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { AppendEntries } from "../../src/core/types.ts";
import { lineLogger } from "../../src/member.ts";
import { encodeMessage } from "../../src/transport/codec.ts";
import { CLOSE_TIMEOUT_MS } from "../../src/transport/connection.ts";
import { CloseCode, encodeControl, FRAME_HELLO, MAX_CONTROL_FRAME_BYTES } from "../../src/transport/handshake.ts";
import { closeAll, meshNode, type MeshNode, nonce, rawDialer, rawSocket, startInbox, waitFor } from "./mesh-fixtures.ts";

const MESSAGE_TOO_BIG = 1009;
const nodes: MeshNode[] = [];
afterEach(async () => {
  await closeAll(nodes.splice(0));
});

async function node(id: string, options: Parameters<typeof meshNode>[2] = {}): Promise<MeshNode> {
  // n0 sorts first, so n0 dials and `id` accepts; the URL is never dialed.
  const n = await meshNode(id, [{ id: "n0", url: "http://127.0.0.1:9" }], options);
  nodes.push(n);
  return n;
}

const hello = (from: string, to: string, cluster = "test"): Uint8Array<ArrayBuffer> =>
  encodeControl(FRAME_HELLO, { protocol: 1, cluster, from, to, nonce: nonce(), auth: false });

describe("before the handshake", () => {
  it("a message larger than a handshake frame is refused by the socket itself (1009), before it is buffered", async () => {
    const n1 = await node("n1");
    const raw = await rawSocket(n1.server.url);
    const big = new Uint8Array(8 * 1024 * 1024);
    big[0] = FRAME_HELLO;
    raw.send(big);
    expect((await raw.closed).code).toBe(MESSAGE_TOO_BIG);
  });

  it("a handshake-sized frame still reaches the handshake (and is refused there for what it says)", async () => {
    const n1 = await node("n1");
    const raw = await rawSocket(n1.server.url);
    const frame = new Uint8Array(MAX_CONTROL_FRAME_BYTES);
    frame[0] = FRAME_HELLO;
    raw.send(frame);
    expect((await raw.closed).code).toBe(CloseCode.MALFORMED_FRAME);
  });

  it("once the peer passed the handshake, frames up to maxFrameBytes pass again", async () => {
    const n1 = await node("n1");
    const inbox = startInbox(n1);
    const raw = await rawDialer(n1, "n0");
    const message: AppendEntries = {
      type: "AppendEntries",
      from: "n0",
      to: "n1",
      term: 1,
      prevLogIndex: 0,
      prevLogTerm: 0,
      leaderCommit: 0,
      entries: [{ index: 1, term: 1, type: "normal", data: new Uint8Array(1024 * 1024).fill(3) }],
    };
    raw.send(encodeMessage(message));
    await waitFor("the 1 MiB AppendEntries", () => inbox.length === 1);
    expect(inbox[0]).toMatchObject({ type: "AppendEntries", from: "n0" });
    expect(raw.isClosed()).toBe(false);
  });

  it(`drops a socket that ignores the close frame ${CLOSE_TIMEOUT_MS} ms after closing it`, async () => {
    const n1 = await node("n1", { handshakeTimeoutMs: 200 });
    const { port } = new URL(n1.server.url);
    // A bare TCP client: it upgrades, then never reads a frame nor answers the close.
    const socket: Socket = connect(Number(port), "127.0.0.1");
    const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    socket.resume(); // read (and discard) what arrives, so the end of the stream is seen
    socket.write(
      "GET /raft HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    // ws would wait 30 s for the answer to its close frame; the mesh drops the socket long before.
    const outcome = await Promise.race([ended.then(() => "dropped"), new Promise((r) => setTimeout(() => r("still open"), 15_000))]);
    socket.destroy();
    expect(outcome).toBe("dropped");
    expect(n1.logs.some((l) => /handshake not completed within 200 ms/.test(l.message))).toBe(true);
  }, 20_000);
});

describe("unauthenticated sockets", () => {
  it("beyond maxUnauthenticatedSockets still in their handshake, one more is closed at once (1013); a peer gets in once one left", async () => {
    const n1 = await node("n1", { maxUnauthenticatedSockets: 2, handshakeTimeoutMs: 10_000 });
    const idle = [await rawSocket(n1.server.url), await rawSocket(n1.server.url)];
    await new Promise((r) => setTimeout(r, 100));
    const third = await rawSocket(n1.server.url);
    expect((await third.closed).code).toBe(1013);
    expect(n1.mesh.stats().unidentified.refused).toBe(1);
    idle[0].ws.close();
    await idle[0].closed;
    await new Promise((r) => setTimeout(r, 100));
    const peer = await rawDialer(n1, "n0");
    expect(peer.isClosed()).toBe(false);
    idle[1].ws.close();
  });
});

describe("ids and log lines from the wire", () => {
  it.each(["__proto__", "constructor", "toString", "n\n2026-12-07T00:00:00.000Z error n1 forged", "", "."])(
    "refuses a HELLO from id %j without answering it",
    async (from) => {
      const n1 = await node("n1", { acceptUnknownPeers: true });
      const raw = await rawSocket(n1.server.url);
      raw.send(hello(from, "n1"));
      expect((await raw.closed).code).toBe(CloseCode.MALFORMED_FRAME);
      expect(raw.frames).toEqual([]);
      expect(Object.keys(n1.mesh.stats().peers)).toEqual(["n0"]);
    },
  );

  it("refuses a HELLO from a member to itself without answering it", async () => {
    const n1 = await node("n1", { acceptUnknownPeers: true });
    const raw = await rawSocket(n1.server.url);
    raw.send(hello("n1", "n1"));
    expect((await raw.closed).code).toBe(CloseCode.WRONG_NODE);
    expect(raw.frames).toEqual([]);
    expect(n1.logs.some((l) => /a HELLO from "n1" to itself/.test(l.message))).toBe(true);
  });

  it("a newline in a HELLO cannot forge a log line: every event is one line, control characters escaped", async () => {
    const lines: string[] = [];
    const log = lineLogger("n1", "debug", (line) => lines.push(line));
    const n1 = await node("n1");
    // The fixture logs into n1.logs; the member's line logger is what writes them out.
    const forged = "x\n2026-12-07T00:00:00.000Z error n1 leader elected\u001b[2K";
    const raw = await rawSocket(n1.server.url);
    raw.send(hello("n0", "n1", forged));
    await raw.closed;
    await waitFor("the refusal logged", () => n1.logs.some((l) => l.level === "warn"));
    for (const l of n1.logs) log(l.level, l.message, l.fields);
    expect(lines.length).toBe(n1.logs.length);
    const refusal = lines.find((l) => l.includes("is in cluster"))!;
    expect(refusal).toContain('cluster "x\\n2026-12-07T00:00:00.000Z error n1 leader elected\\u001b[2K"');
    for (const line of lines) expect(line).not.toMatch(/[\n\r\u001b]/);
  });
});
