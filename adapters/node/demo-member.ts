/**
 * A member process of the local demo (`meshraft demo`): the supervisor passes the URL of its
 * controls in MESHRAFT_DEMO_CONTROL (the dashboard offers them) and the peers it has cut this
 * member from in MESHRAFT_DEMO_REFUSE, and asks over the IPC channel that the mesh refuse or admit
 * again a peer (a cut link, healed). See src/http/demo-controls.ts.
 */
import { setDemoControlUrl } from "../../src/http/dashboard.ts";
import type { WebSocketMesh } from "../../src/transport/mesh.ts";

/** Does nothing outside a demo (no MESHRAFT_DEMO_CONTROL, no IPC channel). Returns `mesh`. */
export function attachDemoMember(mesh: WebSocketMesh, env: NodeJS.ProcessEnv = process.env): WebSocketMesh {
  const control = env.MESHRAFT_DEMO_CONTROL;
  if (!control || !process.send) return mesh;
  setDemoControlUrl(control);
  for (const peer of (env.MESHRAFT_DEMO_REFUSE ?? "").split(",")) if (peer !== "") mesh.refusePeer(peer, true);
  process.on("message", (m: unknown) => {
    const msg = m as { type?: unknown; peer?: unknown; refused?: unknown };
    if (msg?.type === "refuse" && typeof msg.peer === "string") mesh.refusePeer(msg.peer, msg.refused === true);
  });
  // The channel must not keep the process alive on its own.
  process.channel?.unref();
  return mesh;
}
