/**
 * Debian's Chromium driven by playwright-core, for every browser test (dashboard, browser
 * runtime). playwright-core never downloads a browser: it runs /usr/bin/chromium, which `npm test`
 * installs through apt when missing (test/browser/ensure-chromium.mjs).
 *
 * A page opened with `openPage` records what the tests assert on: console errors and uncaught
 * page errors, each with the URL it came from.
 */
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
