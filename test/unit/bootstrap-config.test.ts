/**
 * The configuration a node is first started with is stored with its first write (a configuration
 * record: a snapshot at index 0 without data), so a restart never rebuilds the voter set from its
 * `members` (the CLI's --peer flags). Members that contradict the record are refused with
 * BootstrapConflictError; members naming only the node itself mean "use what is stored".
 * Real file storage in temporary directories; the nodes talk over a MemoryNetwork on the real clock.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileStorage } from "../../adapters/node/file-storage.ts";
import { realClock } from "../../src/clock.ts";
import { SeededRandom } from "../../src/core/random.ts";
import { BootstrapConflictError } from "../../src/errors.ts";
import { encodeKvCommand, KvStateMachine, type KvResult } from "../../src/kv/kv.ts";
import { RaftNode, type Member } from "../../src/node.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";
import { waitFor } from "./http-harness.ts";

const url = (id: string): string => `http://127.0.0.1:1${id.slice(1).padStart(4, "0")}`;
const members = (...ids: string[]): Member[] => ids.map((id) => ({ id, url: url(id) }));
const put = (key: string): Uint8Array => encodeKvCommand({ op: "put", key, value: new TextEncoder().encode("v") });

let root: string;
let network: MemoryNetwork;
const running: RaftNode<KvResult>[] = [];

function setup(): void {
  root = mkdtempSync(join(tmpdir(), "meshraft-bootstrap-"));
  network = new MemoryNetwork({ clock: realClock, random: new SeededRandom(3) });
}

afterEach(async () => {
  for (const n of running.splice(0)) await n.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A RaftNode on `id`'s data directory; `start()` it to open it (or see it refuse). */
async function node(id: string, opts: { members: Member[]; join?: boolean }): Promise<RaftNode<KvResult>> {
  const storage = await FileStorage.open(join(root, id));
  const n = new RaftNode<KvResult>({
    id,
    members: opts.members,
    join: opts.join,
    storage,
    transport: network.connect(id),
    stateMachine: new KvStateMachine(),
    clock: realClock,
    tickMs: 10,
    electionTimeoutMs: 150,
    heartbeatIntervalMs: 30,
    // No snapshot: the record is the only stored configuration besides the log.
    snapshotEveryEntries: 0,
  });
  running.push(n);
  return n;
}

/** Starts a node; a refused start closes its storage (as the CLI's exit would). */
async function start(id: string, opts: { members: Member[]; join?: boolean }): Promise<RaftNode<KvResult>> {
  const n = await node(id, opts);
  try {
    await n.start();
  } catch (err) {
    running.splice(running.indexOf(n), 1);
    await n.stop();
    throw err;
  }
  return n;
}

async function stopAll(): Promise<void> {
  for (const n of running.splice(0)) await n.stop();
}

async function leaderOf(nodes: RaftNode<KvResult>[]): Promise<RaftNode<KvResult>> {
  let leader: RaftNode<KvResult> | undefined;
  await waitFor(() => (leader = nodes.find((n) => n.isLeader && n.status().commitIndex >= n.status().lastIndex)) !== undefined, "a leader", 5_000);
  return leader!;
}

describe("the bootstrap configuration is stored on first start", () => {
  it("a restart with other members is refused with BOOTSTRAP_CONFLICT; the same members, or none but itself, start from the stored voters", async () => {
    setup();
    const all = members("n1", "n2", "n3");
    const first = await Promise.all(["n1", "n2", "n3"].map((id) => start(id, { members: all })));
    const leader = await leaderOf(first);
    await leader.propose(put("a"));
    await stopAll();

    for (const other of [members("n1", "n2"), members("n1", "n2", "n3", "n4"), members("n1", "n2", "n4"), [...members("n1", "n2"), { id: "n3", url: "http://127.0.0.1:9" }]]) {
      const err = await start("n1", { members: other }).then(() => null, (e: unknown) => e);
      expect(err, JSON.stringify(other)).toBeInstanceOf(BootstrapConflictError);
      expect((err as BootstrapConflictError).code).toBe("BOOTSTRAP_CONFLICT");
      expect((err as Error).message).toContain(`voters n1=${url("n1")}, n2=${url("n2")}, n3=${url("n3")}`);
      expect((err as BootstrapConflictError).stored.voters).toEqual(["n1", "n2", "n3"]);
    }

    // The same members start it; so do none but itself ("use what is stored"), for every node.
    const same = await start("n1", { members: all });
    expect(same.membership().voters).toEqual(["n1", "n2", "n3"]);
    const bare = await Promise.all(["n2", "n3"].map((id) => start(id, { members: members(id) })));
    for (const n of bare) expect(n.membership().voters).toEqual(["n1", "n2", "n3"]);
    const again = await leaderOf([same, ...bare]);
    const done = await again.propose(put("b"));
    expect(done.index).toBeGreaterThan(2);
  });

  it("a node that stored nothing yet (it never voted, campaigned or appended) may start with other members", async () => {
    setup();
    // Alone, n1 only pre-votes, which stores nothing.
    const lonely = await start("n1", { members: members("n1", "n2", "n3") });
    await new Promise((r) => setTimeout(r, 400));
    expect(lonely.status().term).toBe(0);
    await stopAll();
    const single = await start("n1", { members: members("n1") });
    await waitFor(() => single.isLeader, "n1 leads alone");
    await single.propose(put("a"));
    await stopAll();
    const err = await start("n1", { members: members("n1", "n2", "n3") }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BootstrapConflictError);
  });

  it("a member that joined stores an empty record: --join or no members restart it, bootstrap members are refused", async () => {
    setup();
    const all = members("n1", "n2", "n3");
    const first = await Promise.all(["n1", "n2", "n3"].map((id) => start(id, { members: all })));
    const n4 = await start("n4", { members: [], join: true });
    const leader = await leaderOf(first);
    await leader.addLearner("n4", url("n4"));
    await leader.propose(put("a"));
    await waitFor(() => n4.status().appliedIndex >= leader.status().commitIndex, "n4 caught up");
    await stopAll();

    const err = await start("n4", { members: members("n1", "n2", "n3", "n4") }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(BootstrapConflictError);
    expect((err as Error).message).toContain("voters none (it joined an existing cluster)");
    expect((err as Error).message).toContain("or with --join");

    const joined = await start("n4", { members: [], join: true });
    expect(joined.membership()).toMatchObject({ voters: ["n1", "n2", "n3"], learners: ["n4"] });
    await stopAll();
    const bare = await start("n4", { members: members("n4") });
    expect(bare.membership()).toMatchObject({ voters: ["n1", "n2", "n3"], learners: ["n4"] });
  });
});
