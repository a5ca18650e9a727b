/**
 * How DenoKvStorage lays out Raft state in Deno KV values (see ./kv-storage.ts for the keys and
 * the commit protocol): entry headers and chunks, the meta record, and batches turned into the
 * mutations of as few commits as KV's limits allow.
 */
import type { ConfState, Entry, HardState, Index, Term } from "../../src/core/types.ts";
import { cloneConf } from "../../src/core/membership.ts";
import { checkBatch, type ChunkedSnapshotRecord } from "../../src/storage/batch.ts";
import type { SaveBatch } from "../../src/storage/storage.ts";

export type { ChunkedSnapshotRecord as SnapshotRecord } from "../../src/storage/batch.ts";

/** The root of the stored state: one key, replaced by every batch's commit. */
export interface Meta {
  version: 1;
  hardState: HardState;
  /** Stored entries are `firstIndex..lastIndex`; none when `lastIndex < firstIndex`. */
  firstIndex: Index;
  lastIndex: Index;
  snapshot: ChunkedSnapshotRecord | null;
  nextSnapshotId: number;
  /** A committed batch whose mutations may not all be applied yet. */
  redo: { id: string; parts: number } | null;
}

export type Mutation = { key: Deno.KvKey; value: Uint8Array | Meta } | { key: Deno.KvKey; value?: undefined };

/** An entry ready to store: its header key's value and its chunks. */
export interface EncodedEntry {
  index: Index;
  term: Term;
  head: Uint8Array;
  chunks: Uint8Array[];
}

export const EMPTY_META: Meta = {
  version: 1,
  hardState: { term: 0, votedFor: null, commit: 0 },
  firstIndex: 1,
  lastIndex: 0,
  snapshot: null,
  nextSnapshotId: 1,
  redo: null,
};

/** KV's hard limits (Deno 2.x, local and Deploy): 64 KiB per value, 1000 mutations and 800 KiB per commit. */
const CHUNK_BYTES = 65_536;
const COMMIT_MUTATIONS = 900;
const COMMIT_BYTES = 700 * 1024;
/** KV also caps the keys of one commit at 80 KiB in all. */
const COMMIT_KEY_BYTES = 64 * 1024;

import { ENTRY_TYPES } from "../../src/storage/batch.ts";
export { ENTRY_TYPES };
/** Header: format (1 inline, 2 chunked), type, term (f64); chunked adds the chunk count (u32). */
export const HEAD_BYTES = 10;
export const INLINE = 1;
export const CHUNKED = 2;

export function encodeEntry(e: Entry): EncodedEntry {
  const inline = HEAD_BYTES + e.data.length <= CHUNK_BYTES;
  const head = new Uint8Array(inline ? HEAD_BYTES + e.data.length : HEAD_BYTES + 4);
  const view = new DataView(head.buffer);
  head[0] = inline ? INLINE : CHUNKED;
  head[1] = ENTRY_TYPES.indexOf(e.type);
  view.setFloat64(2, e.term, true);
  const chunks = inline ? [] : chunked(e.data);
  if (inline) head.set(e.data, HEAD_BYTES);
  else view.setUint32(HEAD_BYTES, chunks.length, true);
  return { index: e.index, term: e.term, head, chunks };
}

export function chunked(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += CHUNK_BYTES) out.push(data.slice(off, off + CHUNK_BYTES));
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Approximate stored size of a mutation, for staying under KV's per-commit limit. */
function keySizeOf(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) n += typeof part === "string" ? 3 * part.length + 2 : 10;
  return n;
}

function sizeOf(m: Mutation): number {
  let n = 32 + keySizeOf(m.key);
  if (m.value instanceof Uint8Array) n += m.value.length;
  else if (m.value !== undefined) n += 2 * JSON.stringify(m.value).length + 64;
  return n;
}

/** One mutation per key, the last one, so a batch that deletes and re-sets a key keeps the set. */
export function lastWins(mutations: Mutation[]): Mutation[] {
  const last = new Map<string, number>();
  mutations.forEach((m, i) => last.set(JSON.stringify(m.key), i));
  return mutations.filter((m, i) => last.get(JSON.stringify(m.key)) === i);
}

/** Splits mutations into groups that each fit one commit, in order. */
export function groups(mutations: Mutation[]): Mutation[][] {
  const out: Mutation[][] = [];
  let current: Mutation[] = [];
  let bytes = 0;
  let keyBytes = 0;
  for (const m of mutations) {
    const size = sizeOf(m);
    const keySize = keySizeOf(m.key);
    if (current.length > 0 && (current.length >= COMMIT_MUTATIONS || bytes + size > COMMIT_BYTES || keyBytes + keySize > COMMIT_KEY_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
      keyBytes = 0;
    }
    current.push(m);
    bytes += size;
    keyBytes += keySize;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Checks a batch and copies it into the values it will store; null when it is empty. */
export function prepare(batch: SaveBatch): {
  hardState?: HardState;
  snapshot?: { index: Index; term: Term; conf: ConfState; data: Uint8Array[]; bytes: number };
  entries: EncodedEntry[];
} | null {
  const entries = batch.entries ?? [];
  if (!checkBatch(batch)) return null;
  const hs = batch.hardState;
  const snap = batch.snapshot;
  const conf = snap?.meta.conf;
  return {
    hardState: hs && { term: hs.term, votedFor: hs.votedFor, commit: hs.commit },
    snapshot: snap && conf && {
      index: snap.meta.index,
      term: snap.meta.term,
      conf: cloneConf(conf),
      data: chunked(snap.data),
      bytes: snap.data.length,
    },
    entries: entries.map(encodeEntry),
  };
}
