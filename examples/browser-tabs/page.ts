// The page: starts this tab's Worker, installs `globalThis.meshraftTabs`, and draws the cluster.
// `?cluster=<name>&ids=a,b,c` in the page's URL picks the cluster (default demo, t1..t3).
import { installTabsHandle, type TabClusterStatus } from "../../adapters/browser/index.ts";

const worker = new Worker(`./worker.js${location.search}`, { type: "module" });
const tabs = installTabsHandle(worker);

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function render(s: TabClusterStatus & { persistent: boolean }): void {
  $("ids").textContent = s.ids.length > 0 ? s.ids.join(", ") : "none (this tab is a client)";
  $("leader").textContent = s.leader ?? "none yet";
  $("persistent").textContent = s.persistent ? "granted" : "not granted (the browser may evict this origin's data)";
  const rows = s.members.map((m) => {
    const tr = document.createElement("tr");
    if (m.id === s.leader) tr.className = "leader";
    if (s.ids.includes(m.id)) tr.classList.add("mine");
    for (const v of [m.id, m.role, m.term, m.commitIndex, m.appliedIndex, m.tab === null ? "" : m.tab === s.tab ? "this tab" : m.tab, m.error ?? ""]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.append(td);
    }
    return tr;
  });
  $("members").replaceChildren(...rows);
}

async function refresh(): Promise<void> {
  try {
    render(await tabs.status());
  } catch (e) {
    $("ids").textContent = `status failed: ${(e as Error).message}`;
  }
  setTimeout(refresh, 250);
}
void refresh();

function show(what: string, p: Promise<unknown>): void {
  const out = $("result");
  out.textContent = `${what}…`;
  p.then(
    (v) => (out.textContent = `${what}: ${JSON.stringify(v)}`),
    (e: Error & { code?: string }) => (out.textContent = `${what}: ${e.code ?? "ERROR"}: ${e.message}`),
  );
}
const key = (): string => $<HTMLInputElement>("key").value;
const value = (): string => $<HTMLInputElement>("value").value;
$("put").addEventListener("click", () => show(`put ${key()}`, tabs.put(key(), value())));
$("get").addEventListener("click", () => show(`get ${key()}`, tabs.get(key())));
$("cas").addEventListener("click", () => {
  const expect = $<HTMLInputElement>("expect").value;
  show(`cas ${key()}`, tabs.cas(key(), expect === "" ? null : expect, value()));
});
