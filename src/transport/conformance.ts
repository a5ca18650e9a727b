import { realClock } from "../clock.ts";
import type { Entry, Message, NodeId, ReadIndexRequest } from "../core/types.ts";
import type { ConformanceHarness } from "../storage/conformance.ts";
import type { Transport } from "./transport.ts";

/**
 * The transport conformance suite: what RaftNode relies on from any Transport (see
 * ./transport.ts), run against MemoryNetwork, the WebSocket mesh on every runtime, and the browser
 * transports to come. Like the storage suite it imports no test framework: the caller passes
 * `describe` and `it`.
 *
 * The contract checked here holds on a healthy network; losing messages under faults or
 * backpressure is allowed (Raft retransmits), so the cases stay within the high-water mark.
 */

/** A fresh set of connected transports for one case. */
export interface TransportCluster {
  /** One transport per requested id, not started yet. */
  transports: Map<NodeId, Transport>;
  /**
   * Resolves once every started transport can reach every other (the mesh has its links open).
   * The suite calls it after starting them all. Omit when transports are ready at once.
   */
  ready?: () => Promise<void>;
  /** Releases what the cluster holds (servers, ports). Called once per case, after the transports were closed. */
  cleanup: () => Promise<void>;
}

export interface TransportConformanceOptions {
  /** Messages in the "many messages" case. Default 10000. */
  manyMessages?: number;
  /** Payload of the large AppendEntries, in bytes. Default 4 MiB. */
  largeBytes?: number;
  /** How long a case waits for deliveries before failing, in ms. Default 15000. */
  timeoutMs?: number;
  /** How long a case waits to be sure nothing (more) arrives, in ms. Default 200. */
  quietMs?: number;
}

export function runTransportConformance(
  name: string,
  makeCluster: (ids: NodeId[]) => Promise<TransportCluster>,
  harness: ConformanceHarness,
  options: TransportConformanceOptions = {},
): void {
  const manyMessages = options.manyMessages ?? 10_000;
  const largeBytes = options.largeBytes ?? 4 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const quietMs = options.quietMs ?? 200;
  const { describe, it } = harness;

  /** Builds, starts and (after `body`) closes a cluster; `inbox(id)` is what `id` received, in order. */
  async function withCluster(
    ids: NodeId[],
    body: (t: (id: NodeId) => Transport, inbox: (id: NodeId) => Message[], handlers: Map<NodeId, (m: Message) => void>) => Promise<void>,
  ): Promise<void> {
    const cluster = await makeCluster(ids);
    const inboxes = new Map<NodeId, Message[]>(ids.map((id) => [id, []]));
    // Cases may replace a node's handler; the default records into its inbox.
    const handlers = new Map<NodeId, (m: Message) => void>(ids.map((id) => [id, (m: Message) => inboxes.get(id)!.push(m)]));
    try {
      for (const id of ids) {
        const transport = cluster.transports.get(id);
        if (!transport) throw new Error(`makeCluster did not return a transport for ${id}`);
        transport.start((m) => handlers.get(id)!(m));
      }
      await cluster.ready?.();
      await body(
        (id) => cluster.transports.get(id)!,
        (id) => inboxes.get(id)!,
        handlers,
      );
    } finally {
      await Promise.all([...cluster.transports.values()].map((t) => t.close()));
      await cluster.cleanup();
    }
  }

  async function waitFor(what: string, done: () => boolean): Promise<void> {
    const deadline = realClock.now() + timeoutMs;
    while (!done()) {
      if (realClock.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(5);
    }
  }

  describe(`transport conformance: ${name}`, () => {
    it("delivers a message of every type intact, binary payloads byte for byte", async () => {
      await withCluster(["a", "b"], async (t, inbox) => {
        const sent = sampleMessages("a", "b");
        for (const m of sent) t("a").send(m);
        await waitFor(`${sent.length} messages at b`, () => inbox("b").length >= sent.length);
        await sleep(quietMs);
        assertMessages(inbox("b"), sent, "messages received by b");
      });
    });

    it("delivers each sender's messages in the order they were sent (per-link FIFO)", async () => {
      await withCluster(["a", "b", "c"], async (t, inbox) => {
        const n = 500;
        for (let i = 1; i <= n; i++) {
          t("a").send(numbered("a", "b", i));
          t("c").send(numbered("c", "b", i));
          t("b").send(numbered("b", "a", i));
        }
        await waitFor(`${2 * n} messages at b and ${n} at a`, () => inbox("b").length >= 2 * n && inbox("a").length >= n);
        assertSequence(inbox("b").filter((m) => m.from === "a"), n, "a -> b");
        assertSequence(inbox("b").filter((m) => m.from === "c"), n, "c -> b");
        assertSequence(inbox("a"), n, "b -> a");
      });
    });

    it("delivers every message to its addressee only, with the sender in `from`", async () => {
      const ids = ["a", "b", "c"];
      await withCluster(ids, async (t, inbox) => {
        for (const from of ids) for (const to of ids) if (from !== to) t(from).send(numbered(from, to, 1));
        await waitFor("2 messages at every node", () => ids.every((id) => inbox(id).length >= 2));
        await sleep(quietMs);
        for (const id of ids) {
          const got = inbox(id)
            .map((m) => `${m.from}->${m.to}`)
            .sort();
          const want = ids.filter((x) => x !== id).map((from) => `${from}->${id}`);
          if (got.join() !== want.join()) throw new Error(`${id} received [${got.join(", ")}], expected [${want.join(", ")}]`);
        }
      });
    });

    it("lets a handler send: 200 request/response round trips", async () => {
      await withCluster(["a", "b"], async (t, inbox, handlers) => {
        const rounds = 200;
        handlers.set("b", (m) => t("b").send(numbered("b", "a", (m as ReadIndexRequest).requestId)));
        handlers.set("a", (m) => {
          inbox("a").push(m);
          const next = (m as ReadIndexRequest).requestId + 1;
          if (next <= rounds) t("a").send(numbered("a", "b", next));
        });
        t("a").send(numbered("a", "b", 1));
        await waitFor(`${rounds} round trips`, () => inbox("a").length >= rounds);
        assertSequence(inbox("a"), rounds, "answers b -> a");
      });
    });

    it(`delivers a ${Math.round(largeBytes / 1024)} KiB AppendEntries intact`, async () => {
      await withCluster(["a", "b"], async (t, inbox) => {
        const big = new Uint8Array(largeBytes);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >>> 11)) & 0xff;
        const entries: Entry[] = [
          { index: 7, term: 3, type: "normal", data: big },
          ...Array.from({ length: 100 }, (_, i): Entry => ({ index: 8 + i, term: 3, type: "normal", data: new Uint8Array([i]) })),
        ];
        const message: Message = { type: "AppendEntries", from: "a", to: "b", term: 3, prevLogIndex: 6, prevLogTerm: 2, entries, leaderCommit: 6 };
        t("a").send(message);
        t("a").send(numbered("a", "b", 1)); // and the link still works after it
        await waitFor("the large AppendEntries and the message after it", () => inbox("b").length >= 2);
        assertMessages(inbox("b"), [message, numbered("a", "b", 1)], "messages received by b");
      });
    });

    it(`delivers ${manyMessages} messages sent at once, without loss, in order`, async () => {
      await withCluster(["a", "b"], async (t, inbox) => {
        for (let i = 1; i <= manyMessages; i++) t("a").send(numbered("a", "b", i));
        await waitFor(`${manyMessages} messages at b`, () => inbox("b").length >= manyMessages);
        await sleep(quietMs);
        assertSequence(inbox("b"), manyMessages, "a -> b");
      });
    });

    it("never throws from send: to an unknown id, to a closed peer, after its own close", async () => {
      await withCluster(["a", "b", "c"], async (t, inbox) => {
        t("a").send(numbered("a", "nobody", 1));
        await t("c").close();
        t("a").send(numbered("a", "c", 1));
        await t("b").close();
        t("b").send(numbered("b", "a", 1));
        await sleep(quietMs);
        if (inbox("a").length !== 0) throw new Error(`a received ${inbox("a").length} messages from closed transports`);
        if (inbox("c").length !== 0) throw new Error(`closed c received ${inbox("c").length} messages`);
      });
    });

    it("stops delivering to a transport once its close() resolved; the others keep talking", async () => {
      await withCluster(["a", "b", "c"], async (t, inbox) => {
        t("a").send(numbered("a", "b", 1));
        await waitFor("the first message at b", () => inbox("b").length === 1);
        await t("b").close();
        await t("b").close(); // idempotent
        const before = inbox("b").length;
        for (let i = 2; i <= 10; i++) {
          t("a").send(numbered("a", "b", i));
          t("c").send(numbered("c", "b", i));
        }
        t("a").send(numbered("a", "c", 1));
        await waitFor("a's message at c", () => inbox("c").length === 1);
        await sleep(quietMs);
        if (inbox("b").length !== before) {
          throw new Error(`b received ${inbox("b").length - before} messages after close() resolved`);
        }
      });
    });
  });
}

/** One message of every type, with edge values: empty and non-empty binary data, null and set ids, -1. */
export function sampleMessages(from: NodeId, to: NodeId): Message[] {
  const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  const conf = { voters: [from, to, "ünïcode-ñode"], learners: ["l1"], votersOutgoing: [], urls: { [from]: "http://127.0.0.1:7001", l1: "https://l1.example/p" }, promote: ["l1"] };
  const big = Number.MAX_SAFE_INTEGER;
  return [
    { type: "RequestVote", from, to, term: 5, lastLogIndex: 10, lastLogTerm: 4, preVote: true, transfer: false },
    { type: "RequestVoteResponse", from, to, term: 5, voteGranted: true, preVote: false },
    {
      type: "AppendEntries",
      from,
      to,
      term: big,
      prevLogIndex: big - 3,
      prevLogTerm: 0,
      entries: [
        { index: big - 2, term: big, type: "normal", data: bytes(300, 1) },
        { index: big - 1, term: big, type: "noop", data: new Uint8Array(0) },
        { index: big, term: big, type: "config", data: bytes(5, 250) },
      ],
      leaderCommit: 0,
    },
    { type: "AppendEntriesResponse", from, to, term: 6, success: false, matchIndex: 9, hintIndex: 3, hintTerm: 2 },
    { type: "Heartbeat", from, to, term: 6, leaderCommit: 12, readRound: 4 },
    { type: "HeartbeatResponse", from, to, term: 6, readRound: 4 },
    { type: "InstallSnapshot", from, to, term: 7, meta: { index: 100, term: 6, conf }, offset: 65536, data: bytes(4096, 3), done: true },
    { type: "InstallSnapshotResponse", from, to, term: 7, snapshotIndex: 100, nextOffset: -1, matchIndex: 0, done: false },
    { type: "TimeoutNow", from, to, term: 8 },
    { type: "ForwardProposal", from, to, term: 8, requestId: 77, entries: [{ type: "normal", data: bytes(17, 9) }, { type: "config", data: new Uint8Array(0) }] },
    { type: "ForwardProposalResponse", from, to, term: 8, requestId: 77, index: 0, entryTerm: 0, rejected: true, leaderId: null },
    { type: "ReadIndex", from, to, term: 9, requestId: 78 },
    { type: "ReadIndexResponse", from, to, term: 9, requestId: 78, index: 120, rejected: false, leaderId: from },
  ];
}

function numbered(from: NodeId, to: NodeId, n: number): ReadIndexRequest {
  return { type: "ReadIndex", from, to, term: 1, requestId: n };
}

/** `got` must be ReadIndex requests numbered 1..n, in order. */
function assertSequence(got: Message[], n: number, what: string): void {
  if (got.length !== n) throw new Error(`${what}: expected ${n} messages, received ${got.length}`);
  for (let i = 0; i < n; i++) {
    const id = (got[i] as ReadIndexRequest).requestId;
    if (id !== i + 1) throw new Error(`${what}: message #${i + 1} is number ${id} (out of order, lost or duplicated)`);
  }
}

function assertMessages(got: Message[], want: Message[], what: string): void {
  if (got.length !== want.length) throw new Error(`${what}: expected ${want.length} messages, received ${got.length}`);
  for (let i = 0; i < want.length; i++) {
    const d = firstDifference(got[i], want[i], `[${i}] ${want[i].type}`);
    if (d !== null) throw new Error(`${what}: ${d}`);
  }
}

/** "path: expected X, got Y" for the first difference, or null. Bytes compare exactly. */
function firstDifference(actual: unknown, expected: unknown, path: string): string | null {
  if (expected instanceof Uint8Array) {
    if (!(actual instanceof Uint8Array)) return `${path}: expected ${expected.byteLength} bytes, got ${show(actual)}`;
    if (actual.byteLength !== expected.byteLength) return `${path}: expected ${expected.byteLength} bytes, got ${actual.byteLength}`;
    for (let i = 0; i < expected.byteLength; i++) {
      if (actual[i] !== expected[i]) return `${path}[${i}]: expected byte ${expected[i]}, got ${actual[i]}`;
    }
    return null;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual) !== Array.isArray(expected)) {
      return `${path}: expected ${show(expected)}, got ${show(actual)}`;
    }
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of keys) {
      const d = firstDifference((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
      if (d !== null) return d;
    }
    return null;
  }
  return Object.is(actual, expected) ? null : `${path}: expected ${show(expected)}, got ${show(actual)}`;
}

function show(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object" && value !== null) return "an object";
  return JSON.stringify(value) ?? String(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realClock.setTimer(ms, resolve));
}
