/**
 * fast-check over the peer handshake: random sequences of frames (valid, wrong, replayed,
 * reordered, garbage) on real sockets to a real mesh node on 127.0.0.1. Properties: no Raft
 * message is delivered from a socket that did not complete the handshake, every such socket is
 * closed by the node, nothing throws, and a well-behaved peer still gets in afterwards.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Message, ReadIndexRequest } from "../../src/core/types.ts";
import { encodeMessage } from "../../src/transport/codec.ts";
import {
  encodeControl,
  FRAME_HELLO,
  FRAME_PING,
  FRAME_PONG,
  FRAME_PROOF,
  FRAME_READY,
  FRAME_WELCOME,
  importSecret,
  parseHello,
  proofInput,
  signProof,
} from "../../src/transport/handshake.ts";
import { closeAll, meshNode, type MeshNode, nonce, rawDialer, rawSocket, startInbox, waitFor } from "./mesh-fixtures.ts";
import { fuzzParams, fuzzTimeout } from "./fuzz-settings.ts";

let n1: MeshNode;
let inbox: Message[];
beforeAll(async () => {
  n1 = await meshNode("n1", [{ id: "n0", url: "http://127.0.0.1:9" }], { handshakeTimeoutMs: 300 });
  inbox = startInbox(n1);
});
afterAll(() => closeAll([n1]));

const raft = (n: number): ReadIndexRequest => ({ type: "ReadIndex", from: "n0", to: "n1", term: 1, requestId: n });
const hello = (fields: Record<string, unknown> = {}): Uint8Array =>
  encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n0", to: "n1", nonce: nonce(), auth: false, ...fields } as never);

const frame: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  fc.constant(hello()),
  fc.constantFrom(
    hello({ cluster: "other" }),
    hello({ to: "n2" }),
    hello({ from: "n1" }),
    hello({ from: "__proto__" }),
    hello({ protocol: 2 }),
    hello({ auth: true }),
    hello({ nonce: "zz" }),
    encodeControl(FRAME_WELCOME, { protocol: 1, cluster: "test", from: "n0", to: "n1", nonce: nonce(), auth: false, proof: "" }),
  ),
  fc.constantFrom(
    encodeControl(FRAME_PROOF, { proof: "" }),
    encodeControl(FRAME_PROOF, { proof: "ab".repeat(32) }),
    encodeControl(FRAME_READY),
    encodeControl(FRAME_PING),
    encodeControl(FRAME_PONG),
  ),
  fc.nat(1000).map((n) => encodeMessage(raft(n))),
  fc.uint8Array({ maxLength: 40 }),
  fc.tuple(fc.constantFrom(FRAME_HELLO, FRAME_PROOF, FRAME_READY), fc.uint8Array({ maxLength: 40 })).map(([t, b]) => Uint8Array.from([t, ...b])),
  fc.string({ maxLength: 10 }),
  fc.constant(new Uint8Array(5000).fill(FRAME_HELLO)),
);

describe("fuzz: peer handshake", () => {
  it(
    "random frame sequences: nothing delivered before READY, every socket ends or opens, the node keeps serving",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 6 }), async (frames) => {
          const before = inbox.length;
          const raw = await rawSocket(n1.server.url);
          for (const f of frames) if (!raw.isClosed()) raw.send(f);
          // Settles within the handshake timeout (300 ms): refused, timed out, or open.
          await waitFor("the socket closed or ready", () => raw.isClosed() || raw.frames.some((f) => f[0] === FRAME_READY), 5_000);
          const ready = raw.frames.some((f) => f[0] === FRAME_READY);
          // A frame sent before READY arrived may still be delivered once the link is ready; otherwise nothing.
          if (!ready) expect(inbox.length).toBe(before);
          raw.ws.terminate();
          await raw.closed;
        }),
        fuzzParams(60),
      );
      const peer = await rawDialer(n1, "n0");
      const before = inbox.length;
      peer.send(encodeMessage(raft(424242)));
      await waitFor("delivery on a good link", () => inbox.length > before);
      expect(inbox.at(-1)).toMatchObject({ requestId: 424242 });
      expect(n1.logs.filter((l) => l.level === "error")).toEqual([]);
    },
    fuzzTimeout(60, 400),
  );

  it(
    "with a secret, replayed and reordered proofs never open a link: no READY, nothing delivered",
    async () => {
      const secured = await meshNode("n1", [{ id: "n0", url: "http://127.0.0.1:9" }], { handshakeTimeoutMs: 300, secret: "s3cret" });
      const securedInbox = startInbox(secured);
      try {
        // One honest handshake, to capture a valid PROOF for that session (and a WELCOME).
        const honest = await rawSocket(secured.server.url);
        const myNonce = "cd".repeat(32);
        honest.send(encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n0", to: "n1", nonce: myNonce, auth: true }));
        const welcomeFrame = await honest.next();
        const welcome = parseHello(welcomeFrame, true);
        const key = await importSecret("s3cret");
        const proof = await signProof(key, proofInput("dialer", "test", "n0", "n1", myNonce, welcome.nonce));
        const validProof = encodeControl(FRAME_PROOF, { proof });
        honest.send(validProof);
        expect((await honest.next())[0]).toBe(FRAME_READY);
        honest.ws.terminate();
        await honest.closed;

        const securedFrame = fc.oneof(
          fc.constant(validProof), // replayed: right secret, another session's nonces
          fc.constant(encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n0", to: "n1", nonce: myNonce, auth: true })),
          fc.constant(hello({ auth: true })),
          fc.constant(welcomeFrame),
          frame,
        );
        await fc.assert(
          fc.asyncProperty(fc.array(securedFrame, { minLength: 1, maxLength: 6 }), async (frames) => {
            const before = securedInbox.length;
            const raw = await rawSocket(secured.server.url);
            for (const f of frames) if (!raw.isClosed()) raw.send(f);
            await waitFor("the socket closed", () => raw.isClosed(), 5_000);
            expect(raw.frames.some((f) => f[0] === FRAME_READY)).toBe(false);
            expect(securedInbox.length).toBe(before);
          }),
          fuzzParams(40),
        );
      } finally {
        await closeAll([secured]);
      }
    },
    fuzzTimeout(40, 600),
  );
});
