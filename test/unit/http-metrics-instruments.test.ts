/**
 * The series /metrics gains from NodeInstruments (src/http/metrics-instruments.ts): storage save
 * and apply durations, etcd's proposal series, per-peer link series; a real
 * RaftNode over memory storage and the memory network, its metrics rendered as a scrape would.
 */
import { afterEach, describe, expect, it } from "vitest";
import { realClock } from "../../src/clock.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { createHttpMetrics } from "../../src/http/metrics.ts";
import { NodeInstruments } from "../../src/http/metrics-instruments.ts";
import { encodeKvCommand, KvStateMachine, type KvResult } from "../../src/kv/kv.ts";
import { RaftNode } from "../../src/node.ts";
import { MemoryStorage } from "../../src/storage/memory.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The value of the sample `name{labels}` (labels as rendered, "" for none), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let node: RaftNode<KvResult> | null = null;
afterEach(async () => {
  await node?.stop();
  node = null;
});

describe("NodeInstruments on a one-member node", () => {
  it("measures saves and applies, and renders etcd's proposal series", async () => {
    const instruments = new NodeInstruments();
    const kv = new KvStateMachine();
    const network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(7) });
    node = new RaftNode<KvResult>({
      id: "n1",
      members: [{ id: "n1", url: "http://n1" }],
      storage: instruments.storage(new MemoryStorage()),
      transport: instruments.transport(network.connect("n1")),
      stateMachine: instruments.stateMachine(kv),
      clock: realClock,
      tickMs: 10,
      electionTimeoutMs: 100,
      heartbeatIntervalMs: 30,
    });
    const links = { n2: { state: "open" as const, messagesIn: 3, messagesOut: 4, bytesIn: 30, bytesOut: 40, droppedDisconnected: 1, droppedBackpressure: 2, droppedUnencodable: 0 } };
    const metrics = createHttpMetrics(node, kv, () => links, instruments);
    await node.start();
    for (let i = 0; i < 200 && !node.isLeader; i++) await sleep(20);
    expect(node.isLeader).toBe(true);
    for (let i = 0; i < 5; i++) await node.propose(encodeKvCommand({ op: "put", key: `k${i}`, value: new TextEncoder().encode("v") }));

    const text = metrics.registry.render();
    const s = node.status();
    expect(sample(text, "meshraft_storage_save_duration_seconds_count")).toBeGreaterThanOrEqual(5);
    expect(sample(text, "meshraft_apply_duration_seconds_count")).toBe(5);
    expect(sample(text, "meshraft_proposals_committed_total")).toBe(s.commitIndex);
    expect(sample(text, "meshraft_proposals_applied_total")).toBe(s.appliedIndex);
    expect(sample(text, "meshraft_proposals_pending")).toBe(0);
    expect(sample(text, "meshraft_proposals_failed_total")).toBe(0);
    expect(sample(text, "meshraft_snapshots_received_total")).toBe(0);
    expect(text).toContain("# TYPE meshraft_proposals_committed_total counter");
    expect(sample(text, 'meshraft_peer_link_up{peer="n2"}')).toBe(1);
    expect(sample(text, 'meshraft_peer_sent_bytes_total{peer="n2"}')).toBe(40);
    expect(sample(text, 'meshraft_peer_dropped_messages_total{peer="n2",reason="backpressure"}')).toBe(2);

    // A write that did not succeed counts as failed.
    metrics.proposals.inc({ op: "put", outcome: "not_leader" });
    expect(sample(metrics.registry.render(), "meshraft_proposals_failed_total")).toBe(1);
  });
});
