/**
 * fast-check over the peer handshake: random sequences of frames (valid, wrong, replayed,
 * reordered, garbage) on real sockets to a real mesh node on 127.0.0.1. Properties: no Raft
 * message is delivered from a socket that did not complete the handshake, every such socket is
 * closed by the node, nothing throws, and a well-behaved peer still gets in afterwards. Both
 * roles: random frames to an accepting node, and random answers (forged, replayed and reflected
 * WELCOMEs among them) to a dialing node from a fake acceptor.
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
import {
  closeAll,
  fakePeer,
  meshNode,
  type MeshNode,
  nonce,
  rawDialer,
  type RawSocket,
  rawSocket,
  startInbox,
  waitFor,
} from "./mesh-fixtures.ts";
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

  it(
    "a dialing node answered with random frames (forged, replayed, reflected WELCOMEs) links only after a valid WELCOME and READY",
    async () => {
      type Token =
        | "welcome" | "welcome-replayed" | "welcome-wrong-secret" | "welcome-reflected" | "welcome-no-auth" | "welcome-other-id"
        | "welcome-other-cluster" | "hello" | "proof" | "ready" | "ping" | "pong" | "raft" | "garbage" | "text" | "huge";
      const tokens: Token[] = [
        "welcome", "welcome-replayed", "welcome-wrong-secret", "welcome-reflected", "welcome-no-auth", "welcome-other-id",
        "welcome-other-cluster", "hello", "proof", "ready", "ping", "pong", "raft", "garbage", "text", "huge",
      ];
      const key = await importSecret("s3cret");
      const wrongKey = await importSecret("not the secret");
      const theirNonce = "ef".repeat(32);
      let oldNonce = "01".repeat(32); // a nonce n1 sent in an earlier session
      const welcome = async (hello: { nonce: string }, t: Token): Promise<Uint8Array> => {
        const dialerNonce = t === "welcome-replayed" ? oldNonce : hello.nonce;
        const role = t === "welcome-reflected" ? "dialer" : "acceptor";
        const proof = await signProof(t === "welcome-wrong-secret" ? wrongKey : key, proofInput(role, "test", "n1", "n2", dialerNonce, theirNonce));
        return encodeControl(FRAME_WELCOME, {
          protocol: 1,
          cluster: t === "welcome-other-cluster" ? "other" : "test",
          from: t === "welcome-other-id" ? "n3" : "n2",
          to: "n1",
          nonce: theirNonce,
          auth: t !== "welcome-no-auth",
          proof: t === "welcome-no-auth" ? "" : proof,
        });
      };
      const frameOf = async (hello: { nonce: string }, t: Token, n: number): Promise<Uint8Array | string> => {
        if (t.startsWith("welcome")) return welcome(hello, t);
        switch (t) {
          case "hello": return encodeControl(FRAME_HELLO, { protocol: 1, cluster: "test", from: "n2", to: "n1", nonce: theirNonce, auth: true });
          case "proof": return encodeControl(FRAME_PROOF, { proof: "ab".repeat(32) });
          case "ready": return encodeControl(FRAME_READY);
          case "ping": return encodeControl(FRAME_PING);
          case "pong": return encodeControl(FRAME_PONG);
          case "raft": return encodeMessage({ type: "ReadIndex", from: "n2", to: "n1", term: 1, requestId: n });
          case "garbage": return Uint8Array.from([0x7f, n & 0xff, 3]);
          case "text": return "hello?";
          default: return new Uint8Array(5000).fill(FRAME_WELCOME);
        }
      };

      // Most scripts open with a valid WELCOME, many with READY next (some with only benign frames
      // after it), so the states after each handshake step get random frames too.
      const any = fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 4 });
      const script$ = fc.oneof(
        any,
        any.map((rest): Token[] => ["welcome", ...rest]),
        any.map((rest): Token[] => ["welcome", "ready", ...rest]),
        fc.array(fc.constantFrom<Token>("raft", "ping", "pong"), { maxLength: 3 }).map((rest): Token[] => ["welcome", "ready", ...rest]),
      );
      let script: Token[] = [];
      const sessions: { raw: RawSocket; done: Promise<void> }[] = [];
      const fake = await fakePeer((raw) => {
        const frames = script;
        const done = (async () => {
          const helloFrame = await raw.next().catch(() => null);
          if (helloFrame?.[0] !== FRAME_HELLO) return;
          const hello = parseHello(helloFrame);
          for (const [i, t] of frames.entries()) {
            if (raw.isClosed()) break;
            raw.send(await frameOf(hello, t, 1_000_000 + i));
            // After a WELCOME, wait for the node's answer as an acceptor does (a peer that runs
            // more than two frames ahead of the handshake is refused for that alone).
            if (t.startsWith("welcome")) await waitFor("PROOF", () => raw.isClosed() || raw.frames.some((f) => f[0] === FRAME_PROOF), 2_000);
          }
          oldNonce = hello.nonce;
        })().catch(() => {});
        sessions.push({ raw, done });
      });
      const dialer = await meshNode("n1", [{ id: "n2", url: fake.url }], { handshakeTimeoutMs: 300, secret: "s3cret" });
      const dialerInbox = startInbox(dialer);
      let linked = 0;
      try {
        await fc.assert(
          fc.asyncProperty(script$, async (frames) => {
            script = frames;
            const before = dialerInbox.length;
            const seen = sessions.length;
            await waitFor("the node to dial", () => sessions.length > seen, 10_000);
            const { raw, done } = sessions[seen];
            await done;
            // A link opens only after a valid WELCOME and then READY; with other frames after
            // READY it may open and close again.
            const valid = frames[0] === "welcome" && frames[1] === "ready";
            if (valid && frames.slice(2).every((t) => t === "raft" || t === "ping" || t === "pong")) {
              linked++;
              await waitFor("PROOF from the dialer", () => raw.frames.some((f) => f[0] === FRAME_PROOF));
              if (frames.includes("raft")) await waitFor("the Raft message after READY", () => dialerInbox.length > before);
              raw.ws.terminate();
            } else if (valid) {
              await waitFor("the node to close the socket", () => raw.isClosed(), 1_000).catch(() => raw.ws.terminate());
            } else {
              await waitFor("the node to close the socket", () => raw.isClosed(), 5_000);
              expect(dialerInbox.length, `delivered after ${frames.join(",")}`).toBe(before);
              if (frames[0] !== "welcome") expect(raw.frames.some((f) => f[0] === FRAME_PROOF), `PROOF after ${frames[0]}`).toBe(false);
            }
            await raw.closed;
          }),
          fuzzParams(40),
        );
        expect(linked).toBeGreaterThan(0);
        expect(dialer.logs.filter((l) => l.level === "error")).toEqual([]);
      } finally {
        await closeAll([dialer]);
        await fake.close();
      }
    },
    fuzzTimeout(40, 800),
  );
});
