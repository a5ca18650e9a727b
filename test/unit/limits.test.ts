/**
 * Bounds that hold when clients send more than the cluster can take (issue 15): a member holds at
 * most `maxPendingProposals` proposals and `maxPendingReads` reads; one more is answered 503
 * OVERLOADED with Retry-After, and nothing is proposed for it. Real HTTP on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type HttpCluster, startHttpCluster } from "./http-harness.ts";

let cluster: HttpCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

/** A leader whose followers hear nothing from it, so what it appends stays pending. */
async function isolatedLeader(node: { maxPendingProposals?: number; maxPendingReads?: number }, maxConcurrentRequests?: number) {
  // checkQuorum off: the cut-off leader keeps leading (and holding work) for the whole test.
  cluster = await startHttpCluster({
    node: { ...node, checkQuorum: false, proposalTimeoutMs: 30_000, readTimeoutMs: 30_000 },
    app: maxConcurrentRequests ? { limits: { maxConcurrentRequests } } : {},
  });
  const leader = await cluster.leader();
  for (const id of cluster.members.keys()) if (id !== leader.id) cluster.network.cut(leader.id, id);
  return leader;
}

describe("bounded work per member", () => {
  it("a proposal beyond maxPendingProposals is 503 OVERLOADED with Retry-After, and nothing is proposed for it", async () => {
    const leader = await isolatedLeader({ maxPendingProposals: 2 });
    const before = leader.node.status().lastIndex;
    const held = [1, 2].map((i) => fetch(`${leader.url}/kv/k${i}`, { method: "PUT", body: "v" }).catch(() => null));
    // Both are appended before the third arrives.
    for (let i = 0; i < 500 && leader.node.status().lastIndex < before + 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(leader.node.status().lastIndex).toBe(before + 2);
    const res = await fetch(`${leader.url}/kv/k3`, { method: "PUT", body: "v" });
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("OVERLOADED");
    expect(leader.node.status().lastIndex).toBe(before + 2);
    await cluster!.close(); // ends the two held requests
    await Promise.all(held);
  });

  it("a linearizable read beyond maxPendingReads is 503 OVERLOADED with Retry-After", async () => {
    const leader = await isolatedLeader({ maxPendingReads: 1 });
    const held = fetch(`${leader.url}/kv/a`).catch(() => null);
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`${leader.url}/kv/b`);
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("OVERLOADED");
    await cluster!.close();
    await held;
  });

  it("a request beyond maxConcurrentRequests is 503 OVERLOADED with Retry-After, even a cheap one", async () => {
    const leader = await isolatedLeader({}, 2);
    const held = [1, 2].map((i) => fetch(`${leader.url}/kv/k${i}`, { method: "PUT", body: "v" }).catch(() => null));
    await new Promise((r) => setTimeout(r, 200));
    const res = await fetch(`${leader.url}/status`);
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("1");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("OVERLOADED");
    // Another member, not at its limit, serves.
    const other = [...cluster!.members.values()].find((m) => m.id !== leader.id)!;
    expect((await fetch(`${other.url}/status`)).status).toBe(200);
    await cluster!.close(); // ends the two held requests
    await Promise.all(held);
  });

  it("counts a 503 OVERLOADED answer in meshraft_http_requests_total as 503", async () => {
    const leader = await isolatedLeader({}, 2);
    const held = [1, 2].map((i) => fetch(`${leader.url}/kv/k${i}`, { method: "PUT", body: "v" }).then((r) => r.arrayBuffer()));
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${leader.url}/status`);
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    cluster!.network.heal(); // the two held writes end (committed or refused), freeing the slots
    await Promise.all(held);
    const text = await (await fetch(`${leader.url}/metrics`)).text();
    const count = (status: string): number =>
      Number(new RegExp(`^meshraft_http_requests_total\\{[^}]*route="/status"[^}]*status="${status}"[^}]*\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(count("503")).toBe(3);
    expect(count("200")).toBe(0);
  });
});
