// The page handle `installTabsHandle` puts on the global object, typed for the browser tests'
// page.evaluate callbacks (adapters/browser/tab-page.ts leaves the global scope alone).
import type { TabsPageHandle } from "../../adapters/browser/tab-page.ts";

declare global {
  var meshraftTabs: TabsPageHandle | undefined;
}
