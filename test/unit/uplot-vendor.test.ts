/**
 * The dashboard's copy of uPlot (src/http/vendor/uplot.ts, from scripts/vendor-uplot.mjs) is the
 * installed package's build: upgrading the dependency without regenerating it fails here.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DASHBOARD_HTML } from "../../src/http/dashboard-page.ts";
import { UPLOT_CSS, UPLOT_JS, UPLOT_VERSION } from "../../src/http/vendor/uplot.ts";

const pkg = join(import.meta.dirname, "../../node_modules/uplot");

describe("the vendored uPlot", () => {
  it("is node_modules/uplot's browser build and stylesheet, and the page carries both", () => {
    expect(UPLOT_VERSION).toBe(JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version);
    expect(UPLOT_JS).toBe(readFileSync(join(pkg, "dist/uPlot.iife.min.js"), "utf8"));
    expect(UPLOT_CSS).toBe(readFileSync(join(pkg, "dist/uPlot.min.css"), "utf8"));
    expect(DASHBOARD_HTML).toContain(UPLOT_JS);
    expect(DASHBOARD_HTML).toContain(UPLOT_CSS);
  });
});
