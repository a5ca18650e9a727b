import { SeededRandom } from "../core/random.ts";
import { type ConfChangeItem, decodeConfEntry, isJoint, isMember } from "../core/membership.ts";
import type { ConfState, Message, NodeId } from "../core/types.ts";
import { NotLeaderError, OutcomeUnknownError } from "../errors.ts";
import { encodeKvCommand, type KvCommand, type KvResult } from "../kv/kv.ts";
import { type ClusterMember, TestCluster, type TestClusterOptions } from "./cluster.ts";
import { InvariantChecker, InvariantViolation } from "./invariants.ts";
import { checkLinearizable, type KvOperation } from "./linearizability.ts";

/**
 * The deterministic simulator: real nodes (core + driver + KV) on a seeded virtual network and
 * virtual clock, a nemesis injecting faults, concurrent clients, and Raft's invariants checked
 * after every event. The same seed gives the same run, event for event: `traceHash` proves it.
 *
 * A run has two phases:
 *   1. chaos (`durationMs`): faults and client operations;
 *   2. calm (at most `calmMs`): faults stop, everything heals and restarts; a leader must be
 *      elected, every client operation must finish, and all nodes must converge (liveness).
 * Then the client history is checked for linearizability.
 */

export const FAULTS = ["drop", "duplicate", "delay", "reorder", "partition", "crash", "pause", "membership"] as const;
export type Fault = (typeof FAULTS)[number];

export interface SimOptions {
  seed: number;
  /** Cluster size. Default 3. */
  nodes?: number;
  /**
   * Nodes outside the configuration at start, for membership changes to add. Default 2 when
   * the "membership" fault is on, else 0.
   */
  spares?: number;
  /** How linearizable reads are confirmed: "read-index" (default) or the leader's "lease". */
  readMode?: "read-index" | "lease";
  /** Which faults the nemesis may inject. Default: all. */
  faults?: readonly Fault[];
  /** Virtual ms of chaos. Default 3000. */
  durationMs?: number;
  /** Virtual ms allowed for recovery after chaos. Default 10000. */
  calmMs?: number;
  /** Concurrent clients. Default 3. */
  clients?: number;
  /** Keys the clients share. Default 3 (few keys: more contention, sharper checks). */
  keys?: number;
  /** Receive every trace line as it happens. */
  onTrace?: (line: string) => void;
  /** Also trace every message sent and every commit index advance (for replaying one seed). */
  verbose?: boolean;
  /** Overrides for the cluster (mutation tests plug in broken parts here). */
  cluster?: Partial<TestClusterOptions>;
  /** Check invariants after every event (default) or only every N events. */
  checkEvery?: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  /** Which property failed and how, when !ok. */
  failure?: string;
  /** FNV-1a hash of the full trace: equal for two runs of one seed. */
  traceHash: string;
  /** The last trace lines (all of them if the run was short). */
  traceTail: string[];
  virtualMs: number;
  events: number;
  operations: { ok: number; unknown: number; failed: number };
  /** The client history the linearizability checker read (times in virtual ms); the replay page draws it. */
  history: KvOperation[];
  leaders: number;
  crashes: number;
}

class Trace {
  private hash = 0x811c9dc5;
  readonly tail: string[] = [];
  constructor(
    private readonly now: () => number,
    private readonly sink?: (line: string) => void,
  ) {}
  add(text: string): void {
    const line = `${this.now().toFixed(3).padStart(10)} ${text}`;
    for (let i = 0; i < line.length; i++) {
      this.hash ^= line.charCodeAt(i);
      this.hash = Math.imul(this.hash, 0x01000193) >>> 0;
    }
    this.tail.push(line);
    if (this.tail.length > 400) this.tail.splice(0, 200);
    this.sink?.(line);
  }
  digest(): string {
    return this.hash.toString(16).padStart(8, "0");
  }
}

const dec = new TextDecoder();

export async function simulate(opts: SimOptions): Promise<SimResult> {
  const rng = new SeededRandom(opts.seed);
  const faults = new Set<Fault>(opts.faults ?? FAULTS);
  const durationMs = opts.durationMs ?? 3_000;
  const calmMs = opts.calmMs ?? 10_000;
  const nClients = opts.clients ?? 3;
  const nKeys = opts.keys ?? 3;
  const checkEvery = opts.checkEvery ?? 1;

  let trace: Trace | null = null;
  const userFilter = opts.cluster?.filter;
  // The removed-members trap (see below), while it is set: the leader it waits on, the other
  // voters its change removes, and the index of C(new) once the leader sent it.
  let trap: { leader: NodeId; removed: NodeId[]; index: number } | null = null;
  let springTrap: (() => void) | null = null;
  const trapFilter = (m: Message): Message | null => {
    const t = trap;
    if (t === null) return m;
    if (m.type === "AppendEntries" && m.from === t.leader) {
      const cNew = m.entries.find((e) => e.type === "config" && !isJoint(decodeConfEntry(e.data).conf));
      if (!cNew) return m;
      if (!t.removed.includes(m.to)) return null; // C(new) reaches only members it removes
      t.index = cNew.index;
      return m;
    }
    if (m.type === "AppendEntriesResponse" && m.to === t.leader && t.removed.includes(m.from) && t.index > 0 && m.success && m.matchIndex >= t.index) {
      springTrap?.(); // a removed member holds C(new): the leader never hears it
      return null;
    }
    return m;
  };
  const pickFrom = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length)];
  // Snapshots every few entries, small margins and tiny chunks: InstallSnapshot runs all the time.
  const snapshotOptions = {
    snapshotEveryEntries: pickFrom([0, 5, 17, 60]),
    snapshotMarginEntries: pickFrom([0, 3, 20]),
    snapshotChunkBytes: pickFrom([16, 200, 1 << 20]),
  };
  const cluster = new TestCluster({
    nodes: opts.nodes ?? 3,
    spares: opts.spares ?? (faults.has("membership") ? 2 : 0),
    seed: rng.int(0, 2 ** 31),
    diskLatencyMs: rng.int(1, 4),
    ...opts.cluster,
    nodeOptions: { ...snapshotOptions, readMode: opts.readMode, ...opts.cluster?.nodeOptions },
    filter: (sent) => {
      const m = trapFilter(sent);
      if (m === null) return null;
      if (opts.verbose) trace?.add(`  ${describeMessage(m)}`);
      return userFilter ? userFilter(m) : m;
    },
  });
  trace = new Trace(() => cluster.clock.now(), opts.onTrace);
  const checker = new InvariantChecker(cluster);
  let failure: string | null = null;
  let leaders = 0;
  let crashes = 0;
  let events = 0;

  cluster.on((e) => {
    switch (e.type) {
      case "role":
        if (e.role === "leader") leaders++;
        trace.add(`${e.id} ${e.role} term ${e.term}${e.leaderId && e.role !== "leader" ? ` leader ${e.leaderId}` : ""}`);
        break;
      case "applied":
      case "snapshot-taken":
        break;
      case "snapshot-restored":
        trace.add(`${e.id} restored snapshot at ${e.index}`);
        break;
      case "membership":
        if (opts.verbose) trace.add(`${e.id} conf ${describeConf(e.conf)}`);
        break;
      case "partition":
        trace.add(`nemesis partition ${e.groups.map((g) => g.join(",")).join(" | ")}`);
        break;
      case "node-error":
        failure ??= `node ${e.id} failed: ${e.error instanceof Error ? e.error.message : String(e.error)}`;
        trace.add(`${e.id} FAILED ${failure}`);
        break;
      default:
        trace.add(`nemesis ${e.type}${"id" in e ? ` ${e.id}` : ""}`);
    }
  });

  const commits = new Map<NodeId, number>();
  const afterEvent = (): void => {
    events++;
    if (opts.verbose) {
      for (const id of cluster.ids) {
        const m = cluster.members.get(id);
        if (!m?.up) continue;
        const c = m.node.status().commitIndex;
        if (c !== (commits.get(id) ?? 0)) trace.add(`${id} commit ${c}`);
        commits.set(id, c);
      }
    }
    if (failure || events % checkEvery !== 0) return;
    try {
      checker.check();
    } catch (err) {
      if (err instanceof InvariantViolation) {
        failure = err.message;
        trace.add(`VIOLATION ${err.message}`);
      } else throw err;
    }
  };

  await cluster.start();
  const ids = cluster.ids;

  // --- nemesis --------------------------------------------------------------------------------
  let chaos = true;
  const nemesisRng = new SeededRandom(rng.int(0, 2 ** 31));
  const pick = <T>(xs: readonly T[]): T => xs[nemesisRng.int(0, xs.length)];
  const actions: (() => void)[] = [];
  if (faults.has("partition")) {
    actions.push(() => {
      const shuffled = shuffle(ids, nemesisRng);
      const k = nemesisRng.int(1, Math.ceil(ids.length / 2)); // minority size
      cluster.partition(shuffled.slice(0, k), shuffled.slice(k));
    });
    actions.push(() => {
      const l = cluster.leader();
      if (l) cluster.partition([l], ids.filter((i) => i !== l));
    });
    actions.push(() => {
      // A bridge: two halves that only one node connects.
      const s = shuffle(ids, nemesisRng);
      const bridge = s[0];
      const half = Math.floor((s.length - 1) / 2);
      const a = s.slice(1, 1 + half);
      const b = s.slice(1 + half);
      cluster.heal();
      for (const x of a) for (const y of b) {
        cluster.cut(x, y);
        cluster.cut(y, x);
      }
      trace.add(`nemesis bridge ${bridge} between ${a.join(",")} and ${b.join(",")}`);
    });
    if (ids.length >= 5) {
      actions.push(() => {
        // Majorities ring: each node hears only its two neighbours (itself + 2 = a majority of 5).
        const s = shuffle(ids, nemesisRng);
        cluster.heal();
        for (let i = 0; i < s.length; i++) {
          for (let j = 0; j < s.length; j++) {
            const d = Math.min((i - j + s.length) % s.length, (j - i + s.length) % s.length);
            if (d > 1) cluster.cut(s[i], s[j]);
          }
        }
        trace.add(`nemesis ring ${s.join(",")}`);
      });
    }
    actions.push(() => cluster.heal());
    actions.push(() => cluster.heal());
  }
  if (faults.has("crash")) {
    const crash = (): void => {
      const up = ids.filter((i) => cluster.member(i).up);
      if (up.length === 0) return;
      const victim = nemesisRng.chance(0.5) ? (cluster.leader() ?? pick(up)) : pick(up);
      crashes++;
      cluster.crash(victim);
      const downFor = nemesisRng.int(10, 600);
      cluster.clock.setTimer(downFor, () => {
        if (!cluster.member(victim).up) void cluster.restart(victim);
      });
    };
    actions.push(crash, crash);
  }
  if (faults.has("pause")) {
    actions.push(() => {
      const up = ids.filter((i) => cluster.member(i).up && !cluster.member(i).paused);
      if (up.length === 0) return;
      const victim = nemesisRng.chance(0.5) ? (cluster.leader() ?? pick(up)) : pick(up);
      cluster.pause(victim);
      cluster.clock.setTimer(nemesisRng.int(20, 800), () => cluster.resume(victim));
    });
  }
  /** Propose `changes` at `leader` and trace what became of them; `onFailed` if they did not take effect. */
  const proposeChange = (label: string, leader: NodeId, changes: ConfChangeItem[], onFailed?: () => void): void => {
    const what = changes.map((c) => `${c.op} ${c.id}`).join(", ");
    cluster
      .node(leader)
      .changeMembership(changes)
      .then(
        (r) => trace?.add(`membership ${what}: done at ${r.index}: ${describeConf(r.conf)}`),
        (err) => {
          onFailed?.();
          trace?.add(`membership ${what}: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    trace?.add(`nemesis ${label} ${what} at ${leader}`);
  };
  if (faults.has("membership")) {
    // A random change at the leader: add (as learner to promote, or straight as voter), promote,
    // remove a voter or learner (the leader itself included), or add one and remove one at once.
    const change = (): void => {
      const l = cluster.leader();
      if (!l) return;
      const conf = cluster.node(l).membership();
      const voters = conf.voters;
      const outside = ids.filter((i) => !isMember(conf, i));
      const options: ConfChangeItem[][] = [];
      if (outside.length > 0) {
        const n = pick(outside);
        options.push([{ op: "add-learner", id: n, promote: true }], [{ op: "add-voter", id: n }], [{ op: "add-learner", id: n }]);
        if (voters.length > 1) options.push([{ op: "add-voter", id: n }, { op: "remove", id: pick(voters) }]);
      }
      if (outside.length >= 2 && voters.length >= 2) {
        // Replace two voters at once: the old and new majorities can be disjoint, which only
        // joint consensus makes safe.
        const [a, b] = shuffle(outside, nemesisRng);
        const [x, y] = shuffle(voters, nemesisRng);
        const swap: ConfChangeItem[] = [{ op: "add-voter", id: a }, { op: "add-voter", id: b }, { op: "remove", id: x }, { op: "remove", id: y }];
        options.push(swap, swap);
      }
      if (conf.learners.length > 0) {
        const n = pick(conf.learners);
        options.push([{ op: "add-voter", id: n }], [{ op: "remove", id: n }]);
      }
      if (voters.length > 2) options.push([{ op: "remove", id: pick(voters) }]);
      if (options.length === 0) return;
      proposeChange("membership", l, pick(options));
    };
    actions.push(change, change);
  }
  const netFaults = ["drop", "duplicate", "delay", "reorder"].filter((f) => faults.has(f as Fault));
  if (netFaults.length > 0) {
    actions.push(() => {
      const f = {
        dropRate: faults.has("drop") ? pick([0, 0, 0.05, 0.2, 0.5]) : 0,
        duplicateRate: faults.has("duplicate") ? pick([0, 0.05, 0.2]) : 0,
        minDelayMs: 1,
        maxDelayMs: faults.has("delay") ? pick([2, 10, 30, 80]) : 2,
        longDelayRate: faults.has("reorder") ? pick([0, 0, 0.02, 0.1]) : 0,
        longDelayMs: pick([300, 1000, 2000]),
      };
      cluster.network.setFaults(f);
      trace.add(
        `nemesis network drop ${f.dropRate} dup ${f.duplicateRate} delay ${f.minDelayMs}-${f.maxDelayMs} long ${f.longDelayRate}x${f.longDelayMs}`,
      );
    });
  }
  // The removed-members trap (issue 16; seed 204081 found it by chance), set on purpose in a
  // quarter of the seeds: the leader starts a change that removes itself and another voter; it
  // leaves joint consensus, the entry C(new) reaches only the other removed voter, and the leader
  // is cut off as that voter acknowledges it. That voter may now be alone with the longest log;
  // the voters still in joint consensus also need the old majority, so only it can win, though
  // C(new) excludes it. The nemesis then holds still a while for the elections to play out. The
  // trap has its own random source, so seeds without it run as they did before it existed.
  let nemesisHoldUntil = 0;
  const trapRng = new SeededRandom((opts.seed ^ 0x1616_1616) >>> 0);
  if (faults.has("membership") && durationMs >= 1500 && trapRng.chance(0.25)) {
    const setTrap = (attempts: number): void => {
      if (!chaos || attempts === 0) return;
      const retry = (): void => void cluster.clock.setTimer(100, () => setTrap(attempts - 1));
      const l = cluster.stableLeader();
      if (!l) return retry();
      const conf = cluster.node(l).membership();
      const live = (i: NodeId): boolean => cluster.member(i).up && !cluster.member(i).paused;
      // The other voter to remove must be there to receive C(new).
      const others = conf.voters.filter((i) => i !== l && live(i) && cluster.node(i).status().leaderId === l);
      const candidates = shuffle(ids.filter((i) => live(i) && (!isMember(conf, i) || conf.learners.includes(i))), trapRng).slice(0, 2);
      if (isJoint(conf) || others.length === 0 || conf.voters.length - 2 + candidates.length === 0) return retry();
      const x = others[trapRng.int(0, others.length)];
      const changes: ConfChangeItem[] = [...candidates.map((id): ConfChangeItem => ({ op: "add-voter", id })), { op: "remove", id: l }, { op: "remove", id: x }];
      const t = (trap = { leader: l, removed: [x], index: 0 });
      springTrap = () => {
        trap = null;
        springTrap = null;
        nemesisHoldUntil = cluster.clock.now() + trapRng.int(300, 1000);
        trace?.add(`nemesis trap sprung: C(new) at ${t.index} reached only ${x}; ${l} cut off`);
        cluster.clock.setTimer(0, () => cluster.partition([l], ids.filter((i) => i !== l)));
      };
      nemesisHoldUntil = cluster.clock.now() + 1500; // no other fault while the trap is being set
      cluster.clock.setTimer(1500, () => {
        if (trap === t) {
          trap = null;
          trace?.add(`nemesis trap at ${l} not sprung`);
        }
      });
      proposeChange("trap membership", l, changes, () => {
        if (trap !== t) return;
        trap = null;
        nemesisHoldUntil = 0;
      });
    };
    cluster.clock.setTimer(trapRng.int(200, durationMs - 1000), () => setTrap(10));
  }

  const nemesis = (): void => {
    if (!chaos || actions.length === 0) return;
    if (cluster.clock.now() >= nemesisHoldUntil) pick(actions)();
    cluster.clock.setTimer(nemesisRng.int(50, 400), nemesis);
  };
  cluster.clock.setTimer(nemesisRng.int(100, 300), nemesis);

  // --- clients -------------------------------------------------------------------------------
  const history = new SimHistory(() => cluster.clock.now());
  let inFlight = 0;
  const clientRng = new SeededRandom(rng.int(0, 2 ** 31));
  const sleep = (ms: number): Promise<void> => new Promise((r) => cluster.clock.setTimer(ms, r));

  const client = async (c: number): Promise<void> => {
    const cid = `c${c}`;
    const session = new ClientSession(cid);
    let guess: NodeId = ids[c % ids.length];
    while (chaos) {
      await sleep(clientRng.int(0, 30));
      if (!chaos) break;
      const key = `k${clientRng.int(0, nKeys)}`;
      const kind = clientRng.next();
      const target = cluster.member(guess);
      const call = cluster.clock.now();
      inFlight++;
      try {
        if (kind < 0.4) {
          // Linearizable read.
          await history.read(cid, key, call, target);
        } else {
          const w = session.next();
          const value = new TextEncoder().encode(w.value);
          let cmd: KvCommand;
          let input: KvOperation["input"];
          if (kind < 0.75) {
            cmd = { op: "put", key, value, client: w.client, seq: w.seq };
            input = { op: "put", key, value: w.value };
          } else if (kind < 0.85) {
            cmd = { op: "delete", key, client: w.client, seq: w.seq };
            input = { op: "delete", key };
          } else {
            // Compare-and-set against a recently written value (or absence).
            const kv = target.kv.get(key);
            const expect = clientRng.chance(0.7) && kv ? dec.decode(kv) : null;
            cmd = { op: "cas", key, expect: expect === null ? null : new TextEncoder().encode(expect), value, client: w.client, seq: w.seq };
            input = { op: "cas", key, expect, value: w.value };
          }
          await history.write(cid, session, input, call, () => target.node.propose(encodeKvCommand(cmd)));
        }
      } catch (err) {
        history.counts.failed++;
        if (err instanceof NotLeaderError && err.leaderId) guess = err.leaderId;
        else guess = ids[clientRng.int(0, ids.length)];
      } finally {
        inFlight--;
      }
    }
  };
  // Split-brain probers: while two live nodes believe they lead (a deposed leader has not
  // noticed yet), one client writes at the leader of the highest term and another reads at the
  // leader of the lowest term. A read the deposed leader answers without a quorum (an expired
  // lease) returns a value older than an acknowledged write, and the history is not
  // linearizable. Outside such windows they stay idle, so the histories stay small.
  const probe = async (cid: string, write: boolean): Promise<void> => {
    const session = new ClientSession(cid);
    while (chaos) {
      await sleep(clientRng.int(1, 6));
      if (!chaos) break;
      const leaders = cluster.leaders().sort((a, b) => cluster.node(a).status().term - cluster.node(b).status().term);
      if (leaders.length < 2) continue;
      const key = `k${clientRng.int(0, nKeys)}`;
      const member = cluster.member(write ? leaders[leaders.length - 1] : leaders[0]);
      const call = cluster.clock.now();
      inFlight++;
      try {
        if (write) {
          const w = session.next();
          const cmd: KvCommand = { op: "put", key, value: new TextEncoder().encode(w.value), client: w.client, seq: w.seq };
          await history.write(cid, session, { op: "put", key, value: w.value }, call, () => member.node.propose(encodeKvCommand(cmd)));
        } else {
          await history.read(cid, key, call, member);
        }
      } catch {
        history.counts.failed++;
      } finally {
        inFlight--;
      }
    }
  };
  const clients = [...Array.from({ length: nClients }, (_, i) => client(i)), probe("split-w", true), probe("split-r", false)];

  // --- run -----------------------------------------------------------------------------------
  await cluster.runUntil(() => failure !== null, durationMs, afterEvent);
  if (!failure) {
    chaos = false;
    trace.add("calm: heal, restart, resume");
    cluster.heal();
    cluster.network.setFaults({ dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 2, longDelayRate: 0 });
    for (const id of ids) {
      const m = cluster.member(id);
      if (!m.up) await cluster.restart(id);
      else if (m.paused) cluster.resume(id);
    }
    const calmStart = cluster.clock.now();
    const settled = await cluster.runUntil(
      () => failure !== null || (inFlight === 0 && cluster.stableLeader() !== null),
      calmMs,
      afterEvent,
    );
    if (!failure && !settled) {
      failure = `liveness: ${inFlight} client operations still pending or no stable leader ${calmMs} ms after faults stopped (${cluster.describe()})`;
    }
    if (!failure) {
      // A final write must commit and every node must converge on the same state.
      const leader = cluster.stableLeader()!;
      let done = false;
      cluster
        .node(leader)
        .propose(encodeKvCommand({ op: "put", key: "final", value: new Uint8Array([1]) }))
        .then(
          () => (done = true),
          () => (done = true),
        );
      const converged = await cluster.runUntil(() => {
        if (failure || !done) return failure !== null;
        const target = cluster.node(leader).status().appliedIndex;
        return cluster.currentMembers().every((id) => cluster.node(id).status().appliedIndex >= target);
      }, calmMs - (cluster.clock.now() - calmStart), afterEvent);
      if (!failure && !converged) failure = `liveness: nodes did not converge after faults stopped (${cluster.describe()})`;
      if (!failure) {
        const members = cluster.currentMembers();
        const snaps = members.map((id) => cluster.member(id).kv.snapshot());
        for (let i = 1; i < snaps.length; i++) {
          if (!sameState(snaps[0], snaps[i])) failure = `state machine safety: ${members[0]} and ${members[i]} converged to different states`;
        }
      }
    }
  }
  chaos = false;
  await cluster.stop();
  void Promise.all(clients);

  if (!failure) {
    const lin = checkLinearizable(history.operations, { timeoutMs: 20_000 });
    if (lin.ok === false) failure = `linearizability: key ${lin.key}: ${lin.reason}`;
    else if (lin.ok === "unknown") trace.add(`linearizability check timed out on key ${lin.key}`);
  }
  if (failure) trace.add(`FAILED ${failure}`);
  return {
    seed: opts.seed,
    ok: failure === null,
    failure: failure ?? undefined,
    traceHash: trace.digest(),
    traceTail: trace.tail.slice(-120),
    virtualMs: cluster.clock.now(),
    events,
    operations: history.counts,
    history: history.operations,
    leaders,
    crashes,
  };
}

/**
 * A simulated client's exactly-once session (KvSession): writes numbered from 1, and a new session
 * (`${cid}.1`, `${cid}.2`, ..., seq from 1 again) whenever the state machine refuses a write. A
 * refusal means the table does not hold the session as the client has it: SESSION_EXPIRED after a
 * first write whose fate is unknown and that was never applied left no session, STALE_SEQUENCE
 * after it was forgotten and restarted. Each write's value, `${session}.${seq}`, is unique in the run.
 */
export class ClientSession {
  /** The session id the next write carries. */
  client: string;
  private seq = 0;
  private renewals = 0;
  constructor(private readonly cid: string) {
    this.client = cid;
  }
  next(): { client: string; seq: number; value: string } {
    this.seq++;
    return { client: this.client, seq: this.seq, value: `${this.client}.${this.seq}` };
  }
  renew(): void {
    this.client = `${this.cid}.${++this.renewals}`;
    this.seq = 0;
  }
}

/**
 * The client history the linearizability checker reads, recorded the one way for every client
 * (the random clients and the split-brain probers alike): an operation is in it only as the
 * cluster answered it.
 */
export class SimHistory {
  readonly operations: KvOperation[] = [];
  /** `failed`: operations that were refused or failed before anything was proposed or read. */
  readonly counts = { ok: 0, unknown: 0, failed: 0 };
  constructor(private readonly now: () => number) {}

  /** A linearizable read of `key` at `member`, recorded with the value its state machine then holds. */
  async read(client: string, key: string, call: number, member: Pick<ClusterMember, "node" | "kv">): Promise<void> {
    await member.node.read();
    const v = member.kv.get(key);
    this.operations.push({ client, input: { op: "get", key }, call, return: this.now(), output: { value: v ? dec.decode(v) : null } });
    this.counts.ok++;
  }

  /**
   * Proposes one write of `session` and records what the state machine made of it: done (a CAS
   * with its verdict), outcome unknown (return +Infinity), or, when the session refused it, nothing:
   * a refused write changed nothing, so it is no operation of the history, and the session is renewed
   * for the next write. Errors other than OutcomeUnknownError propagate, unrecorded.
   */
  async write(client: string, session: ClientSession, input: KvOperation["input"], call: number, propose: () => Promise<{ result: unknown }>): Promise<void> {
    let r: KvResult;
    try {
      r = (await propose()).result as KvResult;
    } catch (err) {
      if (!(err instanceof OutcomeUnknownError)) throw err;
      this.operations.push({ client, input, call, return: Number.POSITIVE_INFINITY, unknown: true });
      this.counts.unknown++;
      return;
    }
    if (r.refused) {
      session.renew();
      this.counts.failed++;
      return;
    }
    this.operations.push({ client, input, call, return: this.now(), output: input.op === "cas" ? { ok: r.ok } : {} });
    this.counts.ok++;
  }
}

function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "RequestVote":
      return `${head}${m.preVote ? " pre" : ""} last ${m.lastLogIndex}/${m.lastLogTerm}`;
    case "RequestVoteResponse":
      return `${head}${m.preVote ? " pre" : ""} ${m.voteGranted ? "granted" : "rejected"}`;
    case "AppendEntries":
      return `${head} prev ${m.prevLogIndex}/${m.prevLogTerm} entries ${m.entries.length} commit ${m.leaderCommit}`;
    case "AppendEntriesResponse":
      return `${head} ${m.success ? `ok match ${m.matchIndex}` : `reject ${m.matchIndex} hint ${m.hintIndex}/${m.hintTerm}`}`;
    case "Heartbeat":
      return `${head} commit ${m.leaderCommit}${m.readRound ? ` read ${m.readRound}` : ""}`;
    case "HeartbeatResponse":
      return `${head}${m.readRound ? ` read ${m.readRound}` : ""}`;
    default:
      return head;
  }
}

function describeConf(c: ConfState): string {
  const parts = [`voters ${c.voters.join(",")}`];
  if (c.votersOutgoing.length > 0) parts.push(`outgoing ${c.votersOutgoing.join(",")}`);
  if (c.learners.length > 0) parts.push(`learners ${c.learners.join(",")}${c.promote?.length ? ` (promote ${c.promote.join(",")})` : ""}`);
  return parts.join("; ");
}

function shuffle<T>(xs: readonly T[], rng: SeededRandom): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function sameState(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
