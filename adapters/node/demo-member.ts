/**
 * A member process of the local demo (`meshraft demo`): the supervisor passes the URL of its
 * controls in MESHRAFT_DEMO_CONTROL (the dashboard offers them) and asks, over the IPC channel,
 * that the mesh refuse or admit again a peer (a cut link, healed). See adapters/node/demo-supervisor.ts.
 */
import { setDemoControlUrl } from "../../src/http/dashboard.ts";
import type { WebSocketMesh } from "../../src/transport/mesh.ts";

/** Does nothing outside a demo (no MESHRAFT_DEMO_CONTROL, no IPC channel). */
export function attachDemoMember(mesh: WebSocketMesh, env: NodeJS.ProcessEnv = process.env): void {
  const control = env.MESHRAFT_DEMO_CONTROL;
  if (!control || !process.send) return;
  setDemoControlUrl(control);
  process.on("message", (m: unknown) => {
    const msg = m as { type?: unknown; peer?: unknown; refused?: unknown };
    if (msg?.type === "refuse" && typeof msg.peer === "string") mesh.refusePeer(msg.peer, msg.refused === true);
  });
  // The channel must not keep the process alive on its own.
  process.channel?.unref();
}
