/**
 * A member's address is the one it announces itself (`--url`, or http://<listen>), sent in the
 * mesh handshake. A `--peer ID=URL` that contradicts it is reported in the log of both members,
 * and clients are redirected to the announced URL, not to the wrong one (issue 11, bug 2).
 */
import { afterEach, describe, expect, it } from "vitest";
import { freePorts, ProcessCluster, sleep } from "./process-cluster.ts";

let cluster: ProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster?.tail(40)}`);
    await sleep(100);
  }
}

describe("member addresses", () => {
  it("a --peer URL that contradicts the member's own is reported on both sides, and redirects use the announced URL", async () => {
    cluster = await ProcessCluster.start({ nodes: 3, later: ["n2"] });
    const c = cluster;
    // n2 has n1 at a port nothing listens on; n1 dials n2 (the dial rule), so the link still forms.
    const [wrongPort] = await freePorts(1);
    const wrongUrl = `http://127.0.0.1:${wrongPort}`;
    c.spawn("n2", c.startArgs("n2").map((a) => (a === `n1=${c.url("n1")}` ? `n1=${wrongUrl}` : a)));
    await c.waitForLeader(20_000);

    const n1Url = c.url("n1");
    await until("n2 warns that n1 announces another URL", 20_000, async () =>
      c.logs.get("n2")!.some((l) => / warn /.test(l) && l.includes(n1Url) && l.includes(wrongUrl)),
    );
    await until("n1 warns that n2 has it at a wrong URL", 20_000, async () =>
      c.logs.get("n1")!.some((l) => / warn /.test(l) && l.includes(n1Url) && l.includes(wrongUrl)),
    );

    // Leadership on n1: n2 must redirect clients to n1's real URL.
    await until("n1 leads", 30_000, async () => {
      const s = await c.status("n1");
      if (s?.leader === "n1") return true;
      if (s?.leader) await fetch(`${c.url(s.leader)}/admin/transfer-leader`, { method: "POST", body: JSON.stringify({ to: "n1" }) }).catch(() => null);
      await sleep(300);
      return false;
    });
    const res = await until("n2 redirects to the leader", 20_000, async () => {
      const r = await fetch(`${c.url("n2")}/kv/x`, { method: "PUT", body: "1", redirect: "manual" });
      return r.status === 307 && r.headers.get("x-meshraft-leader") === "n1" ? r : null;
    });
    expect(res.headers.get("location")).toBe(`${n1Url}/kv/x`);
    const status = (await (await fetch(`${c.url("n2")}/status`)).json()) as { members: { id: string; url: string }[] };
    expect(status.members.find((m) => m.id === "n1")!.url).toBe(n1Url);
  }, 120_000);
});
