import { describe, expect, it } from "vitest";
import type { Message } from "../../src/core/types.ts";
import { realClock } from "../../src/clock.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { runTransportConformance } from "../../src/transport/conformance.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { closeAll, meshCluster } from "./mesh-fixtures.ts";

runTransportConformance(
  "MemoryNetwork",
  async (ids) => {
    const network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(1), faults: { minDelayMs: 0, maxDelayMs: 0 } });
    return { transports: new Map(ids.map((id) => [id, network.connect(id)])), cleanup: async () => {} };
  },
  { describe, it },
);

runTransportConformance(
  "WebSocketMesh on Node (ws, @hono/node-server, 127.0.0.1)",
  async (ids) => {
    const nodes = await meshCluster(ids, { secret: "conformance" });
    const transports = new Map<string, Transport>([...nodes].map(([id, n]) => [id, n.mesh]));
    return {
      transports,
      ready: () => Promise.all([...nodes.values()].map((n) => n.mesh.waitUntilConnected())).then(() => {}),
      cleanup: () => closeAll(nodes.values()),
    };
  },
  { describe, it },
);

/**
 * The suite must fail transports that break the contract. Each case wraps MemoryNetwork with one
 * bug a transport could plausibly have, runs every conformance case against it, and expects at
 * least one to fail.
 */
describe("the transport conformance suite catches broken transports", () => {
  type Wrap = (inner: Transport, id: string) => Transport;
  const passthrough: Wrap = (inner) => inner;
  const sizeOf = (m: Message): number =>
    m.type === "AppendEntries" ? m.entries.reduce((n, e) => n + e.data.byteLength, 0) : 0;
  let sent = 0;

  const bugs: Record<string, { filter?: (m: Message) => Message | null; wrap?: Wrap }> = {
    "one message in 1000 is lost": { filter: (m) => (++sent % 1000 === 0 ? null : m) },
    "binary data is corrupted": {
      filter: (m) =>
        m.type === "AppendEntries" && m.entries.length > 0
          ? { ...m, entries: m.entries.map((e) => ({ ...e, data: e.data.map((b, i) => (i === 3 ? b ^ 1 : b)) })) }
          : m,
    },
    "frames over 1 MiB are dropped": { filter: (m) => (sizeOf(m) > 1024 * 1024 ? null : m) },
    "the sender is misreported": { filter: (m) => ({ ...m, from: "x" }) },
    "a flag is lost on the way": { filter: (m) => (m.type === "RequestVote" ? { ...m, preVote: false } : m) },
    "send throws for an unknown id": {
      wrap: (inner) => ({
        start: (h) => inner.start(h),
        close: () => inner.close(),
        send: (m) => {
          if (!["a", "b", "c"].includes(m.to)) throw new Error(`no route to ${m.to}`);
          inner.send(m);
        },
      }),
    },
    "messages are reordered in pairs": {
      wrap: (inner) => {
        let held: Message | null = null;
        return {
          start: (h) =>
            inner.start((m) => {
              if (held === null) held = m;
              else {
                h(m);
                h(held);
                held = null;
              }
            }),
          send: (m) => inner.send(m),
          close: () => inner.close(),
        };
      },
    },
    "close() does not stop delivery": {
      wrap: (inner, id) => {
        let handler: ((m: Message) => void) | null = null;
        return {
          start: (h) => {
            handler = h;
            inner.start(h);
          },
          send: (m) => inner.send(m),
          close: async () => {
            const keep = handler!;
            await inner.close();
            network!.connect(id).start(keep);
          },
        };
      },
    },
  };
  let network: MemoryNetwork | null = null;

  for (const [bug, { filter, wrap = passthrough }] of Object.entries(bugs)) {
    it(`fails a transport where ${bug}`, async () => {
      sent = 0;
      const cases: { name: string; fn: () => Promise<void> }[] = [];
      runTransportConformance(
        bug,
        async (ids) => {
          network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(1), faults: { minDelayMs: 0, maxDelayMs: 0 }, filter });
          return { transports: new Map(ids.map((id) => [id, wrap(network!.connect(id), id)])), cleanup: async () => {} };
        },
        { describe: (_name, fn) => fn(), it: (name, fn) => void cases.push({ name, fn }) },
        { timeoutMs: 500, manyMessages: 2000, quietMs: 50 },
      );
      const failures: string[] = [];
      for (const c of cases) {
        try {
          await c.fn();
        } catch (e) {
          failures.push(`${c.name}: ${(e as Error).message}`);
        }
      }
      expect(failures.length, `no conformance case failed for "${bug}"`).toBeGreaterThan(0);
    });
  }
});
