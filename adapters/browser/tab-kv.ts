/**
 * The key-value API of a tab cluster running the built-in KV state machine, as the page handle
 * `globalThis.meshraftTabs` exposes it. Every method returns a promise with the HTTP API's
 * meaning (src/http/app.ts); a failure rejects with an Error whose `code` is the HTTP API's code.
 *
 *   status()                → { ids, leader, members: [{ id, role, term, commitIndex, appliedIndex, ... }] }
 *   put(key, value)         → { index }                (PUT /kv/<key>)
 *   get(key)                → the value, or null        (GET /kv/<key>, linearizable)
 *   cas(key, expect, value) → { ok }                    (POST /kv/<key>/cas; null: absent / delete)
 *   delete(key)             → { index, existed }        (DELETE /kv/<key>)
 *
 * Writes carry an exactly-once session (client id + seq) as MeshraftClient's do: one lane per
 * write in flight, each lane a session of its own whose seq grows by one per write, so a write
 * resent after an unanswered attempt or OUTCOME_UNKNOWN is applied once. A write that may have
 * been applied and could not be confirmed within the retry budget rejects with OUTCOME_UNKNOWN.
 */
import { encodeKvCommand, type KvCommand, type KvResult, type KvStateMachine, MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../../src/kv/kv.ts";
import { MeshraftError } from "../../src/errors.ts";
import type { TabClusterStatus } from "./tab-cluster.ts";
import type { TabClusterConnection } from "./tab-worker.ts";

/** The queries a KV tab cluster's workers serve (pass as TabClusterOptions.queries). */
export const kvQueries: Record<string, (sm: KvStateMachine, arg: unknown) => unknown> = {
  get: (sm, key) => sm.get(String(key)),
};

/** The page handle (`globalThis.meshraftTabs`). */
export interface TabsKvHandle {
  status(): Promise<TabClusterStatus>;
  put(key: string, value: string): Promise<{ index: number }>;
  get(key: string): Promise<string | null>;
  cas(key: string, expect: string | null, value: string | null): Promise<{ ok: boolean }>;
  delete(key: string): Promise<{ index: number; existed: boolean }>;
}

/** A refused or failed KV call; `code` is the HTTP API's code. */
export class TabsKvError extends MeshraftError {}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function checkKey(key: unknown): string {
  if (typeof key !== "string" || key === "") throw new TabsKvError("BAD_REQUEST", "the key must be a non-empty string");
  const n = utf8.encode(key).byteLength;
  if (n > MAX_KEY_BYTES) throw new TabsKvError("KEY_TOO_LARGE", `the key is ${n} bytes; the limit is ${MAX_KEY_BYTES}`);
  return key;
}

function valueBytes(value: unknown, what: string, nullable: boolean): Uint8Array | null {
  if (value === null && nullable) return null;
  if (typeof value !== "string") throw new TabsKvError("BAD_REQUEST", `${what} must be a string${nullable ? " or null" : ""}`);
  const bytes = utf8.encode(value);
  if (bytes.byteLength > MAX_VALUE_BYTES) throw new TabsKvError("VALUE_TOO_LARGE", `${what} is ${bytes.byteLength} bytes; the limit is ${MAX_VALUE_BYTES}`);
  return bytes;
}

/** The KV handle over a connection to a TabCluster whose state machine is KvStateMachine. */
export function tabsKvHandle(connection: Pick<TabClusterConnection<KvResult>, "status" | "propose" | "read">): TabsKvHandle {
  const session = `tab-${randomHex(16)}`;
  let lanes = 0;
  const free: { client: string; seq: number }[] = [];

  async function write(cmd: KvCommand): Promise<{ index: number; result: KvResult }> {
    const lane = free.pop() ?? { client: `${session}.${lanes++}`, seq: 0 };
    lane.seq++;
    try {
      const data = encodeKvCommand({ ...cmd, client: lane.client, seq: lane.seq });
      const { index, result } = await connection.propose(data, { retrySafe: true });
      if (result.refused === "SESSION_EXPIRED") {
        throw new TabsKvError("SESSION_EXPIRED", "the cluster no longer holds this session; nothing was applied now (a resend's original may have been)");
      }
      if (result.refused === "STALE_SEQUENCE") throw new TabsKvError("STALE_SEQUENCE", "the write's seq is older than its session's last one; nothing was applied");
      return { index, result };
    } finally {
      // Even after a failure: the lane's next write has a higher seq, so a late commit of this
      // one is answered as stale instead of being applied after it.
      free.push(lane);
    }
  }

  return {
    status: () => connection.status(),
    async put(key, value) {
      const k = checkKey(key);
      const { index } = await write({ op: "put", key: k, value: valueBytes(value, "the value", false)! });
      return { index };
    },
    async get(key) {
      const value = (await connection.read("get", checkKey(key))) as Uint8Array | null;
      return value === null ? null : fromUtf8.decode(value);
    },
    async cas(key, expect, value) {
      const k = checkKey(key);
      const { result } = await write({ op: "cas", key: k, expect: valueBytes(expect, "expect", true), value: valueBytes(value, "the value", true) });
      return { ok: result.ok };
    },
    async delete(key) {
      const { index, result } = await write({ op: "delete", key: checkKey(key) });
      return { index, existed: result.existed };
    },
  };
}
