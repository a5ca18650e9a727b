/**
 * What a tab-cluster test file needs from beforeAll to afterAll: the tab pages bundled and served
 * from 127.0.0.1, Chromium on a temporary profile directory (IndexedDB on disk, as a user's), and
 * a record of the pages' console errors and uncaught exceptions.
 */
import { afterAll, beforeAll } from "vitest";
import { ChromiumProfile, type PageProblem } from "./chromium.ts";
import { servePages, type ServedPages } from "./serve.ts";
import { TAB_PAGES } from "./tabs.ts";

export interface TabRig {
  served: ServedPages;
  profile: ChromiumProfile;
  problems: PageProblem[];
}

/** Registers the hooks; the rig's fields are set once beforeAll ran. */
export function tabRig(): TabRig {
  const rig = { problems: [] as PageProblem[] } as TabRig;
  beforeAll(async () => {
    rig.served = await servePages(TAB_PAGES);
    rig.profile = await ChromiumProfile.open();
  }, 120_000);
  afterAll(async () => {
    await rig.profile?.close();
    await rig.served?.close();
  });
  return rig;
}
