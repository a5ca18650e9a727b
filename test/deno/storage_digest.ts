/**
 * A digest of a loaded storage state, computed the same way under Node and Deno (plain
 * ECMAScript + crypto.subtle), so a test can compare what each runtime recovers from one
 * directory without shipping megabytes between processes.
 */
import type { StoredState } from "../../src/storage/storage.ts";

export interface StateDigest {
  /** e.g. "hard state {...}, snapshot 12@t3, entries 5..40". */
  summary: string;
  sha256: string;
}

export async function digestState(s: StoredState): Promise<StateDigest> {
  const parts: Uint8Array[] = [new TextEncoder().encode(JSON.stringify({ hs: s.hardState, snap: s.snapshot?.meta ?? null }))];
  if (s.snapshot) parts.push(s.snapshot.data);
  for (const e of s.entries) parts.push(new TextEncoder().encode(`|${e.index}:${e.term}:${e.type}:${e.data.length}|`), e.data);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  const e = s.entries;
  const span = e.length > 0 ? `${e[0].index}..${e[e.length - 1].index}` : "none";
  const snap = s.snapshot ? `${s.snapshot.meta.index}@t${s.snapshot.meta.term}` : "none";
  return { summary: `hard state ${JSON.stringify(s.hardState)}, snapshot ${snap}, entries ${span}`, sha256: Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("") };
}
