/**
 * Debian's Chromium driven by playwright-core, for every browser test (dashboard, browser
 * runtime). playwright-core never downloads a browser: it runs /usr/bin/chromium, which `npm test`
 * installs through apt when missing (test/browser/ensure-chromium.mjs).
 *
 * A page opened with `openPage` records what the tests assert on: console errors and uncaught
 * page errors, each with the URL it came from.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";
// @ts-expect-error: a plain .mjs module shared with test/run.mjs, without type declarations.
import { chromiumPath, ensureChromium } from "./ensure-chromium.mjs";

export const CHROMIUM_ARGS: string[] = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/** Launches Chromium (installing it first when `npm test` may). Close it with `browser.close()`. */
export async function launchChromium(): Promise<Browser> {
  await ensureChromium({ log: () => {} });
  return chromium.launch({ executablePath: chromiumPath as string, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * Launches Chromium on the profile directory `userDataDir` (created if missing): what it stores
 * there (IndexedDB, ...) is there again when it is launched once more on the same directory.
 * Close it with `context.close()`.
 */
export async function launchChromiumProfile(userDataDir: string): Promise<BrowserContext> {
  await ensureChromium({ log: () => {} });
  return chromium.launchPersistentContext(userDataDir, { executablePath: chromiumPath as string, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * Chromium on a temporary profile directory, as a user's browser: IndexedDB on disk (an
 * incognito context keeps it in memory). `restart()` closes the browser and starts it again on
 * the same directory; `close()` closes it and removes the directory.
 */
export class ChromiumProfile {
  readonly dir: string;
  context: BrowserContext;

  private constructor(dir: string, context: BrowserContext) {
    this.dir = dir;
    this.context = context;
  }

  static async open(): Promise<ChromiumProfile> {
    const dir = mkdtempSync(join(tmpdir(), "meshraft-profile-"));
    try {
      return new ChromiumProfile(dir, await launchChromiumProfile(dir));
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async restart(): Promise<BrowserContext> {
    await this.context.close();
    this.context = await launchChromiumProfile(this.dir);
    return this.context;
  }

  async close(): Promise<void> {
    try {
      await this.context.close();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

export interface PageProblem {
  kind: "console" | "pageerror";
  text: string;
  /** The resource or script the message is about, when Chromium says. */
  url: string;
}

export interface RecordedPage {
  page: Page;
  /** Console errors and uncaught exceptions, in order. */
  problems: PageProblem[];
}

export async function openPage(browser: Browser): Promise<RecordedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  return { page, problems: recordProblems(page) };
}

/** Records `page`'s console errors and uncaught exceptions into the array it returns. */
export function recordProblems(page: Page, problems: PageProblem[] = []): PageProblem[] {
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") problems.push({ kind: "console", text: m.text(), url: m.location().url });
  });
  page.on("pageerror", (e: Error) => problems.push({ kind: "pageerror", text: `${e.name}: ${e.message}`, url: "" }));
  return problems;
}
