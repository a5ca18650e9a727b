/**
 * A Node member's HTTP server under slow and idle clients (issue 15), on real sockets on
 * 127.0.0.1: connections that send nothing, headers that trickle in, idle keep-alive connections
 * and connections beyond the limit are all closed by the member. The limits are short here so the
 * test is quick; the waits are generous bounds, not measurements.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseStartArgs } from "../../src/cli-args.ts";
import { type RunningMember, startMember } from "../../adapters/node/server.ts";

let node: RunningMember;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshraft-limits-"));
  const args = parseStartArgs(["--id", "n1", "--listen", "127.0.0.1:0", "--data-dir", dir]);
  node = await startMember(args, () => {}, { headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 300, maxConnections: 8 });
});
afterAll(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a TCP connection; `closed` settles when the member ends it (or after `boundMs`: "still open"). */
function open(boundMs = 8_000): { socket: Socket; received: () => string; closed: Promise<"closed" | "still open"> } {
  const socket = connect(node.port, "127.0.0.1");
  let data = "";
  socket.on("data", (d) => (data += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<"closed" | "still open">((resolve) => {
    const timer = setTimeout(() => resolve("still open"), boundMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve("closed");
    });
  });
  return { socket, received: () => data, closed };
}

describe("the Node member's HTTP server limits", () => {
  it("closes a connection that never sends a request", async () => {
    const c = open();
    expect(await c.closed).toBe("closed");
  });

  it("cuts off a client whose headers trickle in one byte at a time", async () => {
    const c = open();
    const request = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + "a".repeat(200);
    let i = 0;
    const timer = setInterval(() => {
      if (i < request.length && !c.socket.destroyed) c.socket.write(request[i++]);
    }, 20);
    const outcome = await c.closed;
    clearInterval(timer);
    expect(outcome).toBe("closed");
    expect(i).toBeLessThan(request.length); // cut off before it finished the headers
  });

  it("closes an idle keep-alive connection after its request was answered", async () => {
    const c = open();
    c.socket.write("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    expect(await c.closed).toBe("closed");
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("drops connections beyond maxConnections and serves again once they are gone", async () => {
    const held = Array.from({ length: 8 }, () => open(30_000));
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once("connect", r))));
    await new Promise((r) => setTimeout(r, 50));
    const extra = open();
    extra.socket.write("GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    expect(await extra.closed).toBe("closed");
    expect(extra.received()).toBe("");
    for (const c of held) c.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`http://127.0.0.1:${node.port}/status`)).status).toBe(200);
  });
});
