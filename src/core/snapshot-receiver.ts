import { cloneConf } from "./membership.ts";
import type { InstallSnapshot, NodeId, Snapshot, SnapshotMeta } from "./types.ts";

/**
 * What to do after a chunk: ask the leader for the bytes from `nextOffset` on (the transfer goes
 * on, resumes, or starts over at 0), or install `snapshot`, which is now complete.
 */
export type ChunkOutcome = { kind: "ask"; nextOffset: number } | { kind: "complete"; snapshot: Snapshot };

/**
 * A follower's reassembly of an InstallSnapshot transfer (§7), sent in chunks, stop-and-wait and
 * resumable by offset while the same leader sends the same snapshot. Pure data: the caller
 * (Raft.handleInstallSnapshot) decides whether the snapshot is needed at all, answers the leader
 * and installs the result.
 */
export class SnapshotReceiver {
  /** The transfer in progress, if any. */
  private incoming: { from: NodeId; meta: SnapshotMeta; chunks: Uint8Array[]; received: number } | null = null;

  /** Drop the transfer in progress (the snapshot is not needed). */
  reset(): void {
    this.incoming = null;
  }

  /**
   * Take chunk `m`. A chunk from another leader, or of another snapshot, starts a new transfer
   * if it is the first one and otherwise asks for the start; a chunk at the wrong offset asks
   * for the right one.
   */
  receive(m: InstallSnapshot): ChunkOutcome {
    const meta = m.meta;
    let inc = this.incoming;
    if (!inc || inc.from !== m.from || inc.meta.index !== meta.index || inc.meta.term !== meta.term) {
      if (m.offset !== 0) return { kind: "ask", nextOffset: 0 }; // start over from the beginning
      inc = this.incoming = { from: m.from, meta, chunks: [], received: 0 };
    }
    if (m.offset !== inc.received) return { kind: "ask", nextOffset: inc.received }; // resume where we are
    if (m.data.byteLength > 0) {
      inc.chunks.push(m.data);
      inc.received += m.data.byteLength;
    }
    if (!m.done) return { kind: "ask", nextOffset: inc.received };
    this.incoming = null;
    const data = new Uint8Array(inc.received);
    let at = 0;
    for (const chunk of inc.chunks) {
      data.set(chunk, at);
      at += chunk.byteLength;
    }
    return { kind: "complete", snapshot: { meta: { index: meta.index, term: meta.term, conf: cloneConf(meta.conf) }, data } };
  }
}
