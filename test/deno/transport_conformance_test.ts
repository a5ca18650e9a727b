/**
 * The transport conformance suite under Deno: MemoryNetwork, and the WebSocket mesh on Deno's own
 * sockets (the global WebSocket dials, Deno.serve + Deno.upgradeWebSocket accept), 127.0.0.1 only.
 */
import { MemoryNetwork, realClock, SeededRandom, type Transport } from "../../src/index.ts";
import { runTransportConformance } from "../../src/transport/conformance.ts";
import { HANDSHAKE_CLOSE_REASON } from "../../src/transport/connection.ts";
import { type MeshLogLevel, WebSocketMesh, type WebSocketMeshOptions } from "../../src/transport/mesh.ts";
import { harness } from "./harness.ts";

runTransportConformance(
  "MemoryNetwork (deno)",
  (ids) => {
    const network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(1), faults: { minDelayMs: 0, maxDelayMs: 0 } });
    return Promise.resolve({ transports: new Map(ids.map((id) => [id, network.connect(id)])), cleanup: () => Promise.resolve() });
  },
  harness,
);

interface DenoNode {
  mesh: WebSocketMesh;
  logs: { level: MeshLogLevel; message: string }[];
  shutdown: () => Promise<void>;
}

/** One Deno.serve per id on a free port, serving /raft into that node's mesh. */
async function denoMeshes(ids: string[], options: (id: string) => Partial<WebSocketMeshOptions> = () => ({})): Promise<Map<string, DenoNode>> {
  const meshes = new Map<string, WebSocketMesh>();
  const servers = new Map<string, Deno.HttpServer<Deno.NetAddr>>();
  for (const id of ids) {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      if (new URL(request.url).pathname !== "/raft" || request.headers.get("upgrade") !== "websocket") {
        return new Response("not found", { status: 404 });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      meshes.get(id)!.acceptSocket(socket);
      return response;
    });
    servers.set(id, server);
  }
  const nodes = new Map<string, DenoNode>();
  for (const id of ids) {
    const logs: DenoNode["logs"] = [];
    const mesh = new WebSocketMesh({
      id,
      clusterId: "deno",
      peers: ids.filter((p) => p !== id).map((p) => ({ id: p, url: `http://127.0.0.1:${servers.get(p)!.addr.port}` })),
      WebSocket,
      pingIntervalMs: 100,
      idleTimeoutMs: 1000,
      backoff: { initialMs: 20, maxMs: 200 },
      logger: (level, message) => logs.push({ level, message }),
      ...options(id),
    });
    meshes.set(id, mesh);
    nodes.set(id, { mesh, logs, shutdown: () => mesh.close().then(() => servers.get(id)!.shutdown()) });
  }
  return nodes;
}

runTransportConformance(
  "WebSocketMesh on Deno (global WebSocket, Deno.serve)",
  async (ids) => {
    const nodes = await denoMeshes(ids, () => ({ secret: "deno-conformance" }));
    return {
      transports: new Map<string, Transport>([...nodes].map(([id, n]) => [id, n.mesh])),
      ready: () => Promise.all([...nodes.values()].map((n) => n.mesh.waitUntilConnected())).then(() => {}),
      cleanup: () => Promise.all([...nodes.values()].map((n) => n.shutdown())).then(() => {}),
    };
  },
  harness,
);

harness.describe("WebSocketMesh on Deno", () => {
  harness.it("refuses a peer with another secret: it logs why, the peer logs the refusal", async () => {
    const nodes = await denoMeshes(["n1", "n2"], (id) => ({ secret: id === "n1" ? "alpha" : "beta" }));
    const [n1, n2] = [nodes.get("n1")!, nodes.get("n2")!];
    try {
      n1.mesh.start(() => {});
      n2.mesh.start(() => {});
      const deadline = Date.now() + 5000;
      while (n1.mesh.stats().peers.n2.refused < 1 || !n2.logs.some((l) => l.message.startsWith("n1 closed the link"))) {
        if (Date.now() > deadline) throw new Error(`no refusal within 5 s; n1 logged ${JSON.stringify(n1.logs)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const want = "n2 failed to prove the cluster secret (the two nodes have different secrets)";
      if (!n1.logs.some((l) => l.level === "warn" && l.message === `refused the link to n2: ${want} (AUTH_FAILED)`)) {
        throw new Error(`n1 did not log the refusal: ${JSON.stringify(n1.logs)}`);
      }
      // Before the handshake completed the wire carries only the code and a generic reason.
      if (!n2.logs.some((l) => l.message === `n1 closed the link: ${HANDSHAKE_CLOSE_REASON} (AUTH_FAILED)`)) {
        throw new Error(`n2 did not log the peer's refusal: ${JSON.stringify(n2.logs)}`);
      }
      if (n1.mesh.stats().peers.n2.opened !== 0) throw new Error("the link opened");
    } finally {
      await Promise.all([n1.shutdown(), n2.shutdown()]);
    }
  });
});
