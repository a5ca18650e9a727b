/**
 * `npm run example:tabs`: bundles the tab cluster example (page and Worker, with esbuild; nothing
 * from a CDN) and serves it on http://127.0.0.1 (Web Locks need a secure context; 127.0.0.1 is
 * one). Open the printed URL in several tabs of one browser.
 *
 *   npm run example:tabs [-- --port 8080]
 */
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleBrowser } from "../../scripts/bundle-browser.ts";
import { serveStatic, type StaticServer } from "../../scripts/static-server.ts";

const here = dirname(fileURLToPath(import.meta.url));

/** Bundles page.js and worker.js next to a copy of index.html in `outDir` (default: a new temp dir). */
export async function buildTabsExample(outDir: string = mkdtempSync(join(tmpdir(), "meshraft-tabs-"))): Promise<string> {
  await Promise.all([bundleBrowser(join(here, "page.ts"), join(outDir, "page.js")), bundleBrowser(join(here, "worker.ts"), join(outDir, "worker.js"))]);
  copyFileSync(join(here, "index.html"), join(outDir, "index.html"));
  return outDir;
}

/** Builds the example and serves it; the URL is the page's. */
export async function serveTabsExample(options: { port?: number } = {}): Promise<StaticServer> {
  return serveStatic(await buildTabsExample(), options);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--port");
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("usage: npm run example:tabs [-- --port N]");
    process.exit(2);
  }
  const server = await serveTabsExample({ port });
  console.log(`meshraft tab cluster example: ${server.url}`);
  console.log("Open it in several tabs of one browser; Ctrl-C stops the server.");
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
