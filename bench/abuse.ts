/**
 * Abuse benchmark (issue 15): does one member under abuse slow the cluster's legitimate writes?
 * Measured, not asserted.
 *
 *   npm run bench:abuse                                  # 10 s per phase, abuse the follower
 *   npm run bench:abuse -- --seconds 5 --target leader   # abuse the leader itself
 *
 * 3 meshraft processes (the real CLI, file storage, a cluster secret) on 127.0.0.1. A writer
 * sends 100-byte PUTs with 16 in flight to the leader: first alone (baseline), then while the
 * target member gets 1,000 idle TCP connections, a flood of oversized bodies (413), requests for
 * unknown routes (404), malformed HTTP, and unauthenticated `/raft` sockets that announce a 64 MiB
 * message. Reported: writes/s in both phases, their ratio, leader changes (term increase), the
 * abuse requests sent, and the target's RSS. The writer and the abusers share this process, so on
 * a small machine the ratio also measures their competition for CPU.
 */
import { connect, type Socket } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ProcessCluster } from "../test/integration/process-cluster.ts";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const seconds = Number(arg("seconds", "10"));
const targetRole = arg("target", "follower");
const IDLE_CONNECTIONS = 1_000;
const FLOODERS = 16;

async function writes(url: string, ms: number, stop: () => boolean = () => false): Promise<number> {
  const until = Date.now() + ms;
  const value = "v".repeat(100);
  let ok = 0;
  let i = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (Date.now() < until && !stop()) {
        try {
          const res = await fetch(`${url}/kv/k${i++ % 1000}`, { method: "PUT", body: value });
          await res.arrayBuffer();
          if (res.status === 200) ok++;
        } catch {
          // counted as not ok
        }
      }
    }),
  );
  return ok / (ms / 1000);
}

function openIdle(port: number): Socket {
  const s = connect(port, "127.0.0.1");
  s.on("error", () => {});
  s.resume();
  return s;
}

async function flood(url: string, port: number, until: number, counts: Record<string, number>): Promise<void> {
  const big = new Uint8Array(2 * 1024 * 1024);
  const kinds = ["oversized", "not-found", "malformed", "raft-64mib"] as const;
  await Promise.all(
    Array.from({ length: FLOODERS }, async (_, f) => {
      const kind = kinds[f % kinds.length];
      while (Date.now() < until) {
        try {
          if (kind === "oversized") await (await fetch(`${url}/kv/big`, { method: "PUT", body: big })).arrayBuffer();
          else if (kind === "not-found") await (await fetch(`${url}/nope/${Math.random()}`)).arrayBuffer();
          else {
            await new Promise<void>((resolve) => {
              const s = connect(port, "127.0.0.1");
              s.on("error", () => resolve());
              s.on("close", () => resolve());
              s.resume();
              if (kind === "malformed") s.end("GARBAGE / HTTP/9.9\r\n\0\0\0\r\n\r\n");
              else {
                s.write(
                  "GET /raft HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                );
                // A masked binary frame header announcing 64 MiB, then 64 KiB of it.
                const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x04, 0, 0, 0, 1, 2, 3, 4]);
                s.write(header);
                s.end(Buffer.alloc(64 * 1024));
              }
              setTimeout(() => {
                s.destroy();
                resolve();
              }, 2_000);
            });
          }
          counts[kind] = (counts[kind] ?? 0) + 1;
        } catch {
          counts[`${kind}-failed`] = (counts[`${kind}-failed`] ?? 0) + 1;
        }
      }
    }),
  );
}

async function main(): Promise<void> {
  const cluster = await ProcessCluster.start({ nodes: 3, secret: "abuse-bench" });
  try {
    const leader = await cluster.waitForLeader();
    const target = targetRole === "leader" ? leader : cluster.ids.find((id) => id !== leader)!;
    const leaderUrl = cluster.url(leader);
    await writes(leaderUrl, 2_000); // warm-up
    const termBefore = (await cluster.status(leader))!.term;
    const baseline = await writes(leaderUrl, seconds * 1000);

    const port = cluster.ports.get(target)!;
    const idle = Array.from({ length: IDLE_CONNECTIONS }, () => openIdle(port));
    const counts: Record<string, number> = {};
    const until = Date.now() + seconds * 1000;
    const [underAbuse] = await Promise.all([writes(leaderUrl, seconds * 1000), flood(cluster.url(target), port, until, counts)]);
    const idleStillOpen = idle.filter((s) => !s.destroyed && s.readyState === "open").length;
    for (const s of idle) s.destroy();

    const after = await cluster.status(await cluster.waitForLeader());
    const pid = cluster.procs.get(target)?.pid;
    let rssMb: number | null = null;
    try {
      const status = (await import("node:fs")).readFileSync(`/proc/${pid}/status`, "utf8");
      rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    } catch {
      // not Linux
    }
    const result = {
      seconds,
      target: `${target} (${targetRole})`,
      writesPerSecBaseline: Math.round(baseline),
      writesPerSecUnderAbuse: Math.round(underAbuse),
      ratio: Number((underAbuse / baseline).toFixed(3)),
      leaderChanges: after!.term - termBefore,
      idleConnectionsOpened: IDLE_CONNECTIONS,
      idleStillOpenAtEnd: idleStillOpen,
      abuseSent: counts,
      targetRssMb: rssMb === null ? null : Math.round(rssMb),
    };
    console.log(JSON.stringify(result, null, 2));
    const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "abuse-latest.json"), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await cluster.stop();
  }
}

await main();
