/**
 * Pages for the browser-runtime tests: each script bundled by scripts/bundle-browser.ts (esbuild,
 * nothing from a CDN), with an HTML shell, served by scripts/static-server.ts from
 * http://127.0.0.1 (a secure context: Web Locks and Storage Buckets exist only there). Close with
 * `close()`; the bundle directory goes with it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleBrowser } from "../../scripts/bundle-browser.ts";
import { serveStatic } from "../../scripts/static-server.ts";

const here = fileURLToPath(new URL(".", import.meta.url));

export interface ServedPages {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The URL of the page whose script is `pages/<name>.ts`, with `query` in its search. */
  url(name: string, query?: Record<string, string>): string;
  /** The directory served (bundles and shells). */
  dir: string;
  close(): Promise<void>;
}

/** The HTML shell of a page that runs the module `script`. */
export function shell(title: string, script: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,"></head><body><script type="module" src="${script}"></script></body></html>`;
}

/**
 * Bundles test/browser/pages/<name>.ts for every name and serves each as /<name>.html; `extra`
 * writes more files into the served directory before it is served.
 */
export async function servePages(names: string[], extra?: (dir: string) => Promise<void>): Promise<ServedPages> {
  const dir = mkdtempSync(join(tmpdir(), "meshraft-pages-"));
  try {
    for (const n of names) {
      await bundleBrowser(join(here, "pages", `${n}.ts`), join(dir, `${n}.js`));
      writeFileSync(join(dir, `${n}.html`), shell(n, `/${n}.js`));
    }
    await extra?.(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const server = await serveStatic(dir);
  const origin = server.url.replace(/\/$/, "");
  return {
    origin,
    dir,
    url: (name, query = {}) => `${origin}/${name}.html${Object.keys(query).length > 0 ? `?${new URLSearchParams(query)}` : ""}`,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
