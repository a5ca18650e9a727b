/**
 * DenoKvStorage under Deno: the storage conformance suite on an in-memory KV and on a SQLite
 * file, and the node identity lease: a second instance is refused, a vanished holder is replaced
 * after its lease runs out, and the replaced one is fenced off.
 */
import assert from "node:assert/strict";
import { DenoKvStorage, LeaseLostError, NodeIdentityLeasedError } from "../../adapters/deno/kv-storage.ts";
import type { Entry } from "../../src/index.ts";
import { runStorageConformance } from "../../src/testing/index.ts";
import { harness } from "./harness.ts";
import { freshDir } from "./tmp.ts";

runStorageConformance(
  "DenoKvStorage (:memory:)",
  async () => {
    const kv = await Deno.openKv(":memory:");
    const open = () => DenoKvStorage.open(kv, { nodeId: "n1" });
    return { storage: await open(), reopen: open, cleanup: () => Promise.resolve(kv.close()) };
  },
  harness,
);

runStorageConformance(
  "DenoKvStorage (SQLite file)",
  async () => {
    const dir = await freshDir("kv");
    const path = `${dir}/db.sqlite`;
    const open = () => DenoKvStorage.open(path, { nodeId: "n1", prefix: ["app", "raft"] });
    return { storage: await open(), reopen: open, cleanup: () => Deno.remove(dir, { recursive: true }) };
  },
  harness,
  { manyBatches: 300 },
);

const utf8 = new TextEncoder();
const entry = (index: number, term: number, data: Uint8Array = utf8.encode(`e${index}`)): Entry => ({ index, term, type: "normal", data });

/** A clock the test moves by hand (wall-clock ms). */
function manualClock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

harness.describe("DenoKvStorage's node identity lease", () => {
  harness.it("a second instance claiming the same node id is refused, and the first keeps writing", async () => {
    const kv = await Deno.openKv(":memory:");
    const first = await DenoKvStorage.open(kv, { nodeId: "n1", where: "first" });
    try {
      await first.save({ hardState: { term: 1, votedFor: "n1", commit: 0 }, entries: [entry(1, 1)] });
      await assert.rejects(DenoKvStorage.open(kv, { nodeId: "n1", where: "second" }), (e: unknown) => {
        assert.ok(e instanceof NodeIdentityLeasedError);
        assert.equal(e.code, "NODE_ID_LEASED");
        assert.equal(e.holder, first.instanceId);
        assert.match(e.message, /node id n1 is held by another instance .*on first/);
        return true;
      });
      await first.save({ entries: [entry(2, 1)] });
      // Another node id in the same database is independent.
      const other = await DenoKvStorage.open(kv, { nodeId: "n2" });
      assert.deepEqual((await other.load()).entries, []);
      await other.close();
      assert.deepEqual((await first.load()).entries.map((e) => e.index), [1, 2]);
    } finally {
      await first.close();
    }
    const next = await DenoKvStorage.open(kv, { nodeId: "n1" }); // close() released the lease
    assert.deepEqual((await next.load()).entries.map((e) => e.index), [1, 2]);
    await next.close();
    kv.close();
  });

  harness.it("a holder that vanished is replaced once its lease ran out; its writes are then refused (fencing)", async () => {
    const kv = await Deno.openKv(":memory:");
    const clock = manualClock();
    const lost: LeaseLostError[] = [];
    const old = await DenoKvStorage.open(kv, { nodeId: "n1", leaseTtlMs: 60_000, now: clock.now, onLeaseLost: (e) => lost.push(e) });
    await old.save({ hardState: { term: 3, votedFor: "n2", commit: 1 }, entries: [entry(1, 3)] });

    clock.advance(59_000);
    await assert.rejects(DenoKvStorage.open(kv, { nodeId: "n1", now: clock.now }), NodeIdentityLeasedError);
    assert.equal(old.leaseValid(), true);
    clock.advance(2_000); // the old holder neither renewed nor closed: as if paused or cut off
    assert.equal(old.leaseValid(), false, "a holder past its lease must not act on its memory");
    const successor = await DenoKvStorage.open(kv, { nodeId: "n1", leaseTtlMs: 60_000, now: clock.now });
    try {
      // The old holder wakes up and tries to write a vote and an entry: refused, nothing changes.
      await assert.rejects(old.save({ hardState: { term: 4, votedFor: "n1", commit: 1 }, entries: [entry(2, 4)] }), (e: unknown) => {
        assert.ok(e instanceof LeaseLostError);
        assert.equal(e.code, "LEASE_LOST");
        assert.match(e.message, /it is now held by instance/);
        return true;
      });
      assert.equal(lost.length, 1);
      await assert.rejects(old.compact(0), LeaseLostError);
      const state = await successor.load();
      assert.deepEqual(state.hardState, { term: 3, votedFor: "n2", commit: 1 });
      assert.deepEqual(state.entries.map((e) => `${e.index}@t${e.term}`), ["1@t3"]);
      await successor.save({ entries: [entry(2, 3)] });
    } finally {
      await old.close();
      await successor.close();
      kv.close();
    }
  });

  harness.it("a holder paused past its lease, with no successor, renews and goes on", async () => {
    const kv = await Deno.openKv(":memory:");
    const clock = manualClock();
    const storage = await DenoKvStorage.open(kv, { nodeId: "n1", leaseTtlMs: 1_000, now: clock.now });
    try {
      clock.advance(5_000);
      assert.equal(storage.leaseValid(), false);
      await storage.save({ entries: [entry(1, 1)] }); // renews first: nobody took the lease meanwhile
      assert.equal(storage.leaseValid(), true);
    } finally {
      await storage.close();
      kv.close();
    }
  });
});

type CommitOutcome = Deno.KvCommitResult | Deno.KvCommitError;

/** The real `kv`, with every `atomic().commit()` going through `commit(real)` (fault injection). */
function faultyKv(kv: Deno.Kv, commit: (real: () => Promise<CommitOutcome>) => Promise<CommitOutcome>): Deno.Kv {
  const wrapOp = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
    const proxy: Deno.AtomicOperation = new Proxy(op, {
      get(target, prop) {
        if (prop === "commit") return () => commit(() => target.commit());
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? (...args: unknown[]) => (v.apply(target, args) === target ? proxy : v.apply(target, args)) : v;
      },
    });
    return proxy;
  };
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") return () => wrapOp(target.atomic());
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** A Deno.Kv whose commits fail ("the process died") once `budget.left` reaches 0. */
function crashingKv(kv: Deno.Kv, budget: { left: number }): Deno.Kv {
  return faultyKv(kv, (real) => (budget.left-- <= 0 ? Promise.reject(new Error("crashed")) : real()));
}

/** A Deno.Kv whose next commit, once `fault.armed`, is applied by KV but answered by an error. */
function answerLosingKv(kv: Deno.Kv, fault: { armed: boolean; lost: number }): Deno.Kv {
  return faultyKv(kv, async (real) => {
    const outcome = await real();
    if (!fault.armed) return outcome;
    fault.armed = false;
    fault.lost++;
    throw new TypeError(`error sending request: connection reset (the commit ${outcome.ok ? "was applied" : "failed its check"})`);
  });
}

harness.describe("DenoKvStorage's lease when KV applies a renewal but its answer is lost", () => {
  const leaseOf = (kv: Deno.Kv) => kv.get<{ owner: string; expiresAt: number }>(["meshraft", "n1", "lease"]);

  harness.it("the holder finds its own lease, adopts its versionstamp and keeps writing", async () => {
    const kv = await Deno.openKv(":memory:");
    const clock = manualClock();
    const fault = { armed: false, lost: 0 };
    const lost: LeaseLostError[] = [];
    const storage = await DenoKvStorage.open(answerLosingKv(kv, fault), { nodeId: "n1", leaseTtlMs: 60_000, now: clock.now, onLeaseLost: (e) => lost.push(e) });
    try {
      await storage.save({ hardState: { term: 1, votedFor: "n1", commit: 0 }, entries: [entry(1, 1)] });
      const before = await leaseOf(kv);
      clock.advance(25_000); // past a third of the TTL: the next write renews first
      fault.armed = true;
      await storage.save({ entries: [entry(2, 1)] });
      assert.equal(fault.lost, 1, "the renewal's answer was lost");
      const after = await leaseOf(kv);
      assert.equal(after.value?.owner, storage.instanceId);
      assert.equal(after.value?.expiresAt, before.value!.expiresAt + 25_000, "KV applied the renewal");
      assert.deepEqual(lost, []);
      assert.equal(storage.leaseValid(), true);
      await storage.save({ entries: [entry(3, 1)] });
      assert.deepEqual((await storage.load()).entries.map((e) => e.index), [1, 2, 3]);
    } finally {
      await storage.close();
    }
    const next = await DenoKvStorage.open(kv, { nodeId: "n1", now: clock.now }); // released: no wait for the TTL
    assert.deepEqual((await next.load()).entries.map((e) => e.index), [1, 2, 3]);
    await next.close();
    kv.close();
  });

  harness.it("a holder that stops right after such a renewal still releases the lease, so a restart need not wait", async () => {
    const kv = await Deno.openKv(":memory:");
    const clock = manualClock();
    const fault = { armed: false, lost: 0 };
    // The renewal timer runs every 100 ms of real time; the manual clock says when a renewal is due.
    const storage = await DenoKvStorage.open(answerLosingKv(kv, fault), { nodeId: "n1", leaseTtlMs: 300, now: clock.now });
    await storage.save({ entries: [entry(1, 1)] });
    clock.advance(150);
    fault.armed = true;
    for (let waited = 0; fault.lost === 0; waited += 10) {
      assert.ok(waited < 5_000, "the renewal timer did not renew within 5 s");
      await new Promise((r) => setTimeout(r, 10));
    }
    await storage.close();
    assert.equal((await leaseOf(kv)).value, null, "close() deleted the lease");
    const next = await DenoKvStorage.open(kv, { nodeId: "n1", now: clock.now });
    assert.deepEqual((await next.load()).entries.map((e) => e.index), [1]);
    await next.close();
    kv.close();
  });
});

harness.describe("DenoKvStorage batches beyond one commit (redo record)", () => {
  harness.it("a batch cut off after any of its commits is, after reopening, all there or not at all", async () => {
    const MiB = 1024 * 1024;
    const big = (seed: number) => Uint8Array.from({ length: MiB + 3 }, (_, i) => (i * seed) & 0xff);
    const before = [entry(1, 1), entry(2, 1, big(3)), entry(3, 1)];
    // Overwrites 2..3 with a new term, adds 1,500 small entries and a 1 MiB one: many commits.
    const batch = { hardState: { term: 2, votedFor: "n2", commit: 1 }, entries: [entry(2, 2, big(5)), ...Array.from({ length: 1500 }, (_, i) => entry(3 + i, 2))] };
    const describe = (s: { hardState: { term: number }; entries: Entry[] }) => `term ${s.hardState.term}, ${s.entries.length} entries, last ${s.entries.at(-1)?.index}@t${s.entries.at(-1)?.term}`;
    let outcomes = { none: 0, all: 0 };
    for (let crashAfter = 0; ; crashAfter++) {
      const kv = await Deno.openKv(":memory:");
      const setup = await DenoKvStorage.open(kv, { nodeId: "n1" });
      await setup.save({ hardState: { term: 1, votedFor: "n1", commit: 1 }, entries: before });
      await setup.close();

      const budget = { left: Number.POSITIVE_INFINITY };
      const doomed = await DenoKvStorage.open(crashingKv(kv, budget), { nodeId: "n1", leaseTtlMs: 100 });
      budget.left = crashAfter;
      const saved = await doomed.save(batch).then(() => true, () => false);
      await doomed.close(); // its release fails too: the lease stays until it runs out
      await new Promise((r) => setTimeout(r, 110));

      const reopened = await DenoKvStorage.open(kv, { nodeId: "n1" });
      const state = await reopened.load();
      await reopened.close();
      kv.close();
      const none = state.hardState.term === 1 && state.entries.length === 3 && state.entries[1].data.length === MiB + 3 && state.entries[1].data[7] === ((7 * 3) & 0xff);
      const all = state.hardState.term === 2 && state.entries.length === 1502 && state.entries[1].term === 2 && state.entries[1].data[7] === ((7 * 5) & 0xff) &&
        state.entries.every((e, i) => e.index === i + 1);
      assert.ok(none || all, `cut off after ${crashAfter} commits: a mixed state (${describe(state)})`);
      if (saved) {
        assert.ok(all, `the save resolved but reopening shows ${describe(state)}`);
        break;
      }
      outcomes = { none: outcomes.none + (none ? 1 : 0), all: outcomes.all + (all ? 1 : 0) };
      assert.ok(crashAfter < 50, "the batch never completed");
    }
    assert.ok(outcomes.none >= 2 && outcomes.all >= 2, `crashes fell on both sides of the commit point: ${JSON.stringify(outcomes)}`);
  });
});
