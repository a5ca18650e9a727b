/**
 * The dashboard on Deno: a member served by Deno.serve streams its status as Server-Sent Events
 * (hono's streamSSE) and serves the page; closing the stream ends the subscription.
 */
import assert from "node:assert/strict";
import { startMember } from "../../adapters/deno/index.ts";
import type { DashboardStatus } from "../../src/http/dashboard.ts";
import { harness } from "./harness.ts";
import { freshDir } from "./tmp.ts";

harness.describe("the dashboard on Deno", () => {
  harness.it("GET /dashboard/events streams status frames that say deno; GET /dashboard serves the page", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const url = `http://127.0.0.1:${port}`;
    const member = await startMember(
      {
        id: "d1",
        listen: { host: "127.0.0.1", port },
        url,
        dataDir: `${await freshDir("dashboard")}/d1`,
        peers: [],
        clusterId: "deno-dashboard",
        secret: "dashboard-secret",
        insecure: false,
        logLevel: "error",
      },
      () => {},
    );
    try {
      const res = await fetch(`${url}/dashboard/events`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      const statuses: DashboardStatus[] = [];
      // The first frame comes at once, the next after one interval (400 ms).
      while (statuses.length < 2) {
        const { done, value } = await reader.read();
        assert.equal(done, false, "the stream ended early");
        buffer += decoder.decode(value, { stream: true });
        for (let at = buffer.indexOf("\n\n"); at >= 0; at = buffer.indexOf("\n\n")) {
          const frame = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (/^event: status$/m.test(frame) && data) statuses.push(JSON.parse(data));
        }
      }
      await reader.cancel();
      const s = statuses[1];
      assert.equal(s.id, "d1");
      assert.equal(s.runtime, "deno");
      assert.equal(s.url, url);
      assert.deepEqual(s.members.map((m) => [m.id, m.role]), [["d1", "voter"]]);

      const page = await fetch(`${url}/dashboard`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /data-member/);
    } finally {
      await member.stop();
    }
  });
});
