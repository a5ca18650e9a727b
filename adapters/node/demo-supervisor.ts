/**
 * Node's server for the local demo's controls (src/http/demo-controls.ts): the supervisor's hono
 * app on a free port of 127.0.0.1.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { ServeDemoControls } from "../../src/http/demo-controls.ts";

export const serveDemoControls: ServeDemoControls = async (app) => {
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    s.once("error", reject);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
};
