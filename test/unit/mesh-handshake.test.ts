/** The mesh's control frames, proofs and backoff, without sockets. */
import { describe, expect, it } from "vitest";
import { NODE_ID_RULE } from "../../src/core/node-id.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { backoffDelay } from "../../src/transport/backoff.ts";
import {
  CloseCode,
  closeCodeName,
  encodeControl,
  FRAME_HELLO,
  FRAME_PROOF,
  FRAME_WELCOME,
  frameName,
  HandshakeError,
  importSecret,
  newNonce,
  parseHello,
  parseProof,
  proofInput,
  signProof,
  verifyProof,
} from "../../src/transport/handshake.ts";

const hello = { protocol: 1, cluster: "c", from: "n1", to: "n2", nonce: "0f".repeat(32), auth: true };
const raw = (tag: number, body: string): Uint8Array => new Uint8Array([tag, ...new TextEncoder().encode(body)]);
const refusal = (fn: () => unknown): { closeCode: number; message: string } => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HandshakeError);
    return { closeCode: (e as HandshakeError).closeCode, message: (e as Error).message };
  }
  throw new Error("expected a HandshakeError");
};

describe("control frames", () => {
  it("a HELLO is its tag byte and UTF-8 JSON, and parses back", () => {
    const frame = encodeControl(FRAME_HELLO, hello);
    expect(frame[0]).toBe(0x10);
    expect(JSON.parse(new TextDecoder().decode(frame.subarray(1)))).toEqual(hello);
    expect(parseHello(frame)).toEqual(hello);
    const welcome = { ...hello, proof: "" };
    expect(parseHello(encodeControl(FRAME_WELCOME, welcome), true)).toEqual(welcome);
    expect(parseProof(encodeControl(FRAME_PROOF, { proof: "ab".repeat(32) }))).toEqual({ proof: "ab".repeat(32) });
  });

  it("checks the protocol version before anything else", () => {
    expect(refusal(() => parseHello(raw(FRAME_HELLO, JSON.stringify({ protocol: 2 }))))).toEqual({
      closeCode: CloseCode.PROTOCOL_VERSION,
      message: "peer speaks mesh protocol 2; this node speaks 1",
    });
    expect(refusal(() => parseHello(raw(FRAME_HELLO, "{}"))).closeCode).toBe(CloseCode.PROTOCOL_VERSION);
  });

  it.each([
    ["not JSON", raw(FRAME_HELLO, "{nope"), "HELLO is not UTF-8 JSON"],
    ["invalid UTF-8", new Uint8Array([FRAME_HELLO, 0xff, 0xfe]), "HELLO is not UTF-8 JSON"],
    ["a JSON array", raw(FRAME_HELLO, "[1]"), "HELLO is not a JSON object"],
    ["a short nonce", encodeControl(FRAME_HELLO, { ...hello, nonce: "ab" }), "HELLO.nonce must be 64 lowercase hex digits"],
    ["an empty id", encodeControl(FRAME_HELLO, { ...hello, from: "" }), `HELLO.from: member id "" is not ${NODE_ID_RULE}`],
    ["a numeric cluster", raw(FRAME_HELLO, JSON.stringify({ ...hello, cluster: 7 })), "HELLO.cluster must be a string of 1..256 characters"],
    ["auth as a string", raw(FRAME_HELLO, JSON.stringify({ ...hello, auth: "yes" })), "HELLO.auth must be a boolean"],
  ])("refuses a HELLO with %s as MALFORMED_FRAME", (_what, frame, message) => {
    expect(refusal(() => parseHello(frame))).toEqual({ closeCode: CloseCode.MALFORMED_FRAME, message });
  });

  it("refuses a WELCOME or PROOF whose proof is not 64 hex digits or empty", () => {
    expect(refusal(() => parseHello(encodeControl(FRAME_WELCOME, { ...hello, proof: "XYZ" }), true)).message).toBe(
      'WELCOME.proof must be 64 lowercase hex digits or ""',
    );
    expect(refusal(() => parseProof(raw(FRAME_PROOF, "{}"))).message).toBe('PROOF.proof must be 64 lowercase hex digits or ""');
  });

  it("names frames and close codes for log lines", () => {
    expect([frameName(undefined), frameName(1), frameName(0x10), frameName(0x21), frameName(0xee)]).toEqual([
      "an empty frame",
      "a Raft message",
      "HELLO",
      "PONG",
      "an unknown frame type 0xee",
    ]);
    expect([closeCodeName(4004), closeCodeName(1000), closeCodeName(1006)]).toEqual(["AUTH_FAILED", "SHUTDOWN", "1006"]);
  });
});

describe("proofs", () => {
  const input = (role: "dialer" | "acceptor", overrides: Partial<Record<"cluster" | "a" | "b" | "na" | "nb", string>> = {}) =>
    proofInput(role, overrides.cluster ?? "c", overrides.a ?? "n1", overrides.b ?? "n2", overrides.na ?? "01".repeat(32), overrides.nb ?? "02".repeat(32));

  it("a proof verifies only under the same secret, role, cluster, ids and nonces", async () => {
    const key = await importSecret("s3cret");
    const proof = await signProof(key, input("acceptor"));
    expect(proof).toMatch(/^[0-9a-f]{64}$/);
    expect(await verifyProof(key, input("acceptor"), proof)).toBe(true);
    expect(await verifyProof(await importSecret("other"), input("acceptor"), proof)).toBe(false);
    expect(await verifyProof(key, input("dialer"), proof)).toBe(false);
    for (const change of [{ cluster: "d" }, { a: "n3" }, { b: "n3" }, { na: "03".repeat(32) }, { nb: "03".repeat(32) }]) {
      expect(await verifyProof(key, input("acceptor", change), proof)).toBe(false);
    }
    expect(await verifyProof(key, input("acceptor"), "")).toBe(false);
  });

  it("nonces are 32 fresh random bytes", () => {
    const a = newNonce();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(newNonce()).not.toBe(a);
  });
});

describe("backoff", () => {
  it("doubles from initialMs up to maxMs, with the delay in the upper half of each ceiling", () => {
    const random = new SeededRandom(3);
    const options = { initialMs: 50, maxMs: 2000 };
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(2000, 50 * 2 ** attempt);
      for (let i = 0; i < 20; i++) {
        const delay = backoffDelay(attempt, options, random);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it("jitters: peers that lost a link together do not redial in lockstep", () => {
    const random = new SeededRandom(9);
    const delays = new Set(Array.from({ length: 10 }, () => Math.round(backoffDelay(3, { initialMs: 50, maxMs: 2000 }, random))));
    expect(delays.size).toBeGreaterThan(5);
  });
});
