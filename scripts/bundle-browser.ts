/**
 * The browser build: one ES module bundling an entry point with everything it imports (src/,
 * adapters/browser/, idb-keyval, @msgpack/msgpack), for pages and dedicated Workers. esbuild is a
 * devDependency; nothing is loaded from a CDN, so the bundle works offline.
 *
 *   npx tsx scripts/bundle-browser.ts <entry.ts> <outfile.js>
 */
import { build, type Plugin } from "esbuild";

export interface BundleOptions {
  /** Minify (default false: readable in devtools). */
  minify?: boolean;
  /** Inline source map (default true). */
  sourcemap?: boolean;
  /** Compile-time constants, as esbuild's `define` (values are JavaScript expressions). */
  define?: Record<string, string>;
  /** Import specifiers resolved to files instead (exactly these specifiers): `{ "meshraft/browser": "/abs/adapters/browser/index.ts" }`. */
  alias?: Record<string, string>;
}

function aliasPlugin(alias: Record<string, string>): Plugin {
  const names = Object.keys(alias).map((k) => k.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"));
  return {
    name: "meshraft-alias",
    setup(b) {
      b.onResolve({ filter: new RegExp(`^(?:${names.join("|")})$`) }, (args) => ({ path: alias[args.path] }));
    },
  };
}

/**
 * Bundles `entry` (TypeScript or JavaScript) into the ES module `outfile`. Rejects with esbuild's
 * error (file, line and message of each problem) when the entry does not build.
 */
export async function bundleBrowser(entry: string, outfile: string, options: BundleOptions = {}): Promise<{ outfile: string; bytes: number }> {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: options.minify ?? false,
    sourcemap: options.sourcemap === false ? false : "inline",
    define: options.define,
    plugins: options.alias ? [aliasPlugin(options.alias)] : [],
    metafile: true,
    logLevel: "silent",
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  return { outfile, bytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [entry, outfile] = process.argv.slice(2);
  if (!entry || !outfile) {
    console.error("usage: tsx scripts/bundle-browser.ts <entry.ts> <outfile.js>");
    process.exit(2);
  }
  const { bytes } = await bundleBrowser(entry, outfile);
  console.log(`${outfile}: ${bytes} bytes`);
}
