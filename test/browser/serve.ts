/**
 * Pages for the browser-runtime tests: their scripts bundled with esbuild (nothing from a CDN),
 * served with an HTML shell each from http://127.0.0.1 (a secure context: Web Locks and Storage
 * Buckets exist only there). Close the server with `close()`; the bundle directory goes with it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));

export interface ServedPages {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The URL of the page whose script is `pages/<name>.ts`, with `query` in its search. */
  url(name: string, query?: Record<string, string>): string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json" };

/** Bundles test/browser/pages/<name>.ts for every name and serves each as /<name>.html. */
export async function servePages(names: string[]): Promise<ServedPages> {
  const dir = mkdtempSync(join(tmpdir(), "meshraft-pages-"));
  await build({
    entryPoints: names.map((n) => join(here, "pages", `${n}.ts`)),
    outdir: dir,
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    sourcemap: "inline",
    logLevel: "error",
  });
  for (const n of names) {
    writeFileSync(join(dir, `${n}.html`), `<!doctype html><html><head><meta charset="utf-8"><title>${n}</title><link rel="icon" href="data:,"></head><body><script type="module" src="/${n}.js"></script></body></html>`);
  }
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^\/+/, "");
    const type = TYPES[extname(path)];
    if (type === undefined || path !== basename(path)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = readFileSync(join(dir, path));
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (name, query = {}) => `${origin}/${name}.html${Object.keys(query).length > 0 ? `?${new URLSearchParams(query)}` : ""}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
