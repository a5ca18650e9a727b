import type { Entry, EntryType, Index, Term } from "../core/types.ts";

const TYPES: EntryType[] = ["normal", "noop", "config"];
const TYPE_CODE: Record<EntryType, number> = { normal: 0, noop: 1, config: 2 };
const CHUNK_BYTES = 1 << 20;

/**
 * A contiguous run of log entries kept compactly: entry data is copied into large shared chunks
 * and the metadata lives in typed arrays, so a stored entry costs its data plus ~20 bytes instead
 * of two heap objects (~340 bytes for a 64-byte entry). `read` rebuilds `Entry` objects (copies).
 *
 * Invariant: entry `first + k` sits at position `head + k`, for 0 <= k < count; its data is
 * chunks[chunkIds[p]].subarray(offsets[p], offsets[p] + lengths[p]). Chunks are filled in index
 * order, so truncating a suffix rewinds the write position and dropping a prefix frees whole
 * chunks.
 */
export class EntryArena {
  private first: Index = 1;
  private head = 0;
  private count = 0;
  private terms = new Float64Array(256);
  private types = new Uint8Array(256);
  private chunkIds = new Uint32Array(256);
  private offsets = new Uint32Array(256);
  private lengths = new Uint32Array(256);
  private readonly chunks = new Map<number, Uint8Array>();
  private chunk = 0;
  private used = CHUNK_BYTES; // forces a new chunk on the first append
  private nextChunk = 0;

  get length(): number {
    return this.count;
  }

  firstIndex(): Index {
    return this.first;
  }

  /** Index of the last entry, or first - 1 when empty. */
  lastIndex(): Index {
    return this.first + this.count - 1;
  }

  termAt(index: Index): Term | undefined {
    const k = index - this.first;
    if (k < 0 || k >= this.count) return undefined;
    return this.terms[this.head + k];
  }

  /** Remove entries >= index (a no-op if there are none). */
  truncateFrom(index: Index): void {
    const keep = Math.max(0, Math.min(this.count, index - this.first));
    if (keep === this.count) return;
    this.count = keep;
    if (keep === 0) {
      this.resetChunks();
      return;
    }
    const p = this.head + keep - 1;
    this.chunk = this.chunkIds[p];
    this.used = this.offsets[p] + this.lengths[p];
    for (const id of [...this.chunks.keys()]) if (id > this.chunk) this.chunks.delete(id);
    this.nextChunk = this.chunk + 1;
  }

  /** Append a copy of `e`, which must be at lastIndex() + 1 (or anywhere when empty). */
  append(e: Entry): void {
    if (this.count === 0) {
      this.first = e.index;
      this.head = 0;
    } else if (e.index !== this.lastIndex() + 1) {
      throw new Error(`arena append of ${e.index} after ${this.lastIndex()}`);
    }
    if (this.head + this.count === this.terms.length) this.grow();
    const n = e.data.byteLength;
    if (this.used + n > CHUNK_BYTES || !this.chunks.has(this.chunk)) {
      this.chunk = this.nextChunk++;
      this.chunks.set(this.chunk, new Uint8Array(Math.max(CHUNK_BYTES, n)));
      this.used = 0;
    }
    const p = this.head + this.count;
    this.chunks.get(this.chunk)!.set(e.data, this.used);
    this.terms[p] = e.term;
    this.types[p] = TYPE_CODE[e.type];
    this.chunkIds[p] = this.chunk;
    this.offsets[p] = this.used;
    this.lengths[p] = n;
    this.used += n;
    this.count++;
  }

  /** Drop entries <= upTo. */
  dropThrough(upTo: Index): void {
    const drop = Math.max(0, Math.min(this.count, upTo - this.first + 1));
    if (drop === 0) return;
    if (drop === this.count) {
      this.first += drop;
      this.count = 0;
      this.head = 0;
      this.resetChunks();
      return;
    }
    this.head += drop;
    this.first += drop;
    this.count -= drop;
    const lowest = this.chunkIds[this.head];
    for (const id of [...this.chunks.keys()]) if (id < lowest) this.chunks.delete(id);
  }

  /** Copies of the entries in [lo, hi]. */
  read(lo: Index = this.first, hi: Index = this.lastIndex()): Entry[] {
    const out: Entry[] = [];
    for (let index = Math.max(lo, this.first); index <= Math.min(hi, this.lastIndex()); index++) {
      const p = this.head + index - this.first;
      const chunk = this.chunks.get(this.chunkIds[p])!;
      const off = this.offsets[p];
      out.push({
        index,
        term: this.terms[p],
        type: TYPES[this.types[p]],
        data: chunk.slice(off, off + this.lengths[p]),
      });
    }
    return out;
  }

  private resetChunks(): void {
    this.chunks.clear();
    this.used = CHUNK_BYTES;
  }

  /** Make room at the end: reclaim the dropped prefix, or double the arrays. */
  private grow(): void {
    const size = this.head > this.terms.length / 2 ? this.terms.length : this.terms.length * 2;
    const move = <T extends Float64Array | Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a.subarray(this.head, this.head + this.count));
      return b;
    };
    this.terms = move(this.terms, (n) => new Float64Array(n));
    this.types = move(this.types, (n) => new Uint8Array(n));
    this.chunkIds = move(this.chunkIds, (n) => new Uint32Array(n));
    this.offsets = move(this.offsets, (n) => new Uint32Array(n));
    this.lengths = move(this.lengths, (n) => new Uint32Array(n));
    this.head = 0;
  }
}
