/**
 * File storage under Deno: the storage conformance suite against adapters/deno's FileStorage
 * (src/storage/file/ on Deno's file calls, behind an advisory lock), on a real directory, and the
 * lock's rules.
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { FileStorage, StorageLockedError } from "../../adapters/deno/file-storage.ts";
import { runStorageConformance } from "../../src/testing/index.ts";
import { harness } from "./harness.ts";
import { freshDir } from "./tmp.ts";

runStorageConformance(
  "FileStorage",
  async () => {
    const dir = await freshDir("conformance");
    const open = () => FileStorage.open(dir, { log: () => {} });
    return { storage: await open(), reopen: open, cleanup: () => Deno.remove(dir, { recursive: true }) };
  },
  harness,
  { manyBatches: 300 },
);

harness.describe("FileStorage's directory lock", () => {
  harness.it("a second open of the same directory is refused while the first is open, and allowed after close", async () => {
    const dir = await freshDir("lock");
    const first = await FileStorage.open(dir, { log: () => {} });
    try {
      await first.save({ hardState: { term: 1, votedFor: "n1", commit: 0 } });
      await assert.rejects(FileStorage.open(dir, { log: () => {} }), (e: unknown) => {
        assert.ok(e instanceof StorageLockedError);
        assert.equal(e.code, "STORAGE_LOCKED");
        assert.equal(e.pid, Deno.pid);
        return true;
      });
      await first.save({ hardState: { term: 2, votedFor: null, commit: 0 } });
    } finally {
      await first.close();
    }
    const second = await FileStorage.open(dir, { log: () => {} });
    assert.deepEqual((await second.load()).hardState, { term: 2, votedFor: null, commit: 0 });
    await second.close();
    await Deno.remove(dir, { recursive: true });
  });

  harness.it("a LOCK file left by a Deno holder that died is taken over, with a log line", async () => {
    const dir = await freshDir("stale");
    const dead = JSON.stringify({ pid: 999_999, host: hostname() }) + "\n";
    // What a SIGKILLed Deno holder leaves: both files name it, and nobody holds the flock.
    await Deno.writeTextFile(join(dir, "LOCK.flock"), dead);
    await Deno.writeTextFile(join(dir, "LOCK"), dead);
    const lines: string[] = [];
    const storage = await FileStorage.open(dir, { log: (l) => lines.push(l) });
    await storage.close();
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /taking over the lock of Deno process 999999, which is not running/);
    await Deno.remove(dir, { recursive: true });
  });

  harness.it("without --allow-run, a LOCK file of another kind of process is refused, not taken over", async () => {
    assert.equal((await Deno.permissions.query({ name: "run" })).state, "prompt", "the suite runs without --allow-run");
    const dir = await freshDir("foreign");
    await Deno.writeTextFile(join(dir, "LOCK"), JSON.stringify({ pid: 1, host: hostname() }) + "\n");
    await assert.rejects(FileStorage.open(dir, { log: () => {} }), (e: unknown) => {
      assert.ok(e instanceof StorageLockedError);
      assert.match(e.message, /without --allow-run Deno cannot check whether process 1 is alive/);
      return true;
    });
    assert.equal(await Deno.readTextFile(join(dir, "LOCK")), JSON.stringify({ pid: 1, host: hostname() }) + "\n", "the LOCK file is untouched");
    await Deno.remove(dir, { recursive: true });
  });
});
