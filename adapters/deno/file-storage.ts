/**
 * File storage on Deno: adapters/node/file-storage.ts as it is, plus a lock Deno can check.
 *
 * FileStorage's `node:fs` calls do the same system calls under Deno 2.9 as under Node (traced:
 * pwrite, fdatasync per batch, fsync + rename + directory fsync for snapshots and checkpoints,
 * O_EXCL creation, ftruncate of a torn tail), and its files are byte-compatible across the two
 * runtimes. One thing differs: its directory lock decides whether the process named in a LOCK
 * file is alive with `process.kill(pid, 0)`, which Deno allows only with `--allow-run` (full
 * subprocess rights). Without it, the call fails and the lock would be taken over as stale even
 * while its holder runs. So on Deno the directory is first locked with an OS advisory lock
 * (`flock` on `LOCK.flock`, released by the kernel when the holder dies, whatever its
 * permissions), which also records the holder; a LOCK file left by a previous Deno holder is then
 * provably stale and is removed before FileStorage takes the directory. A LOCK file of anyone else
 * (a Node process) is left to FileStorage's own check when `--allow-run` is granted, and refused
 * otherwise.
 *
 * Permissions: read and write on the data directory, `--allow-sys=hostname` (FileStorage records
 * the host in its lock).
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { FileStorage, type FileStorageOptions, StorageLockedError } from "../node/file-storage.ts";
import type { SaveBatch, Storage, StoredState } from "../../src/storage/storage.ts";
import type { Index } from "../../src/core/types.ts";

export { FileStorage, type FileStorageOptions, StorageLockedError };

const FLOCK_NAME = "LOCK.flock";
/** FileStorage's lock file (adapters/node/file-storage-format.ts). */
const LOCK_NAME = "LOCK";

interface Holder {
  pid: number;
  host: string;
}

async function readHolder(path: string): Promise<Holder | null> {
  try {
    const v = JSON.parse(await Deno.readTextFile(path)) as Holder;
    return Number.isSafeInteger(v.pid) && typeof v.host === "string" ? { pid: v.pid, host: v.host } : null;
  } catch {
    return null;
  }
}

const same = (a: Holder | null, b: Holder | null): boolean => a !== null && b !== null && a.pid === b.pid && a.host === b.host;

/** A FileStorage whose directory is also held by an advisory lock for as long as it is open. */
export class DenoFileStorage implements Storage {
  readonly dir: string;
  readonly #inner: FileStorage;
  readonly #flock: Deno.FsFile;

  private constructor(dir: string, inner: FileStorage, flock: Deno.FsFile) {
    this.dir = dir;
    this.#inner = inner;
    this.#flock = flock;
  }

  /**
   * Opens (creating if needed) the data directory `dir`. Rejects with StorageLockedError if
   * another process holds it, and otherwise as `FileStorage.open` does.
   */
  static async open(dir: string, options: FileStorageOptions = {}): Promise<DenoFileStorage> {
    const log = options.log ?? ((line: string) => console.warn(line));
    await Deno.mkdir(dir, { recursive: true });
    const flockPath = join(dir, FLOCK_NAME);
    const flock = await Deno.open(flockPath, { read: true, write: true, create: true });
    try {
      if (!(await flock.tryLock(true))) {
        const holder = await readHolder(flockPath);
        throw new StorageLockedError(dir, holder?.pid ?? 0, holder?.host ?? "this host", "a Deno process holds its advisory lock");
      }
      const previous = await readHolder(flockPath);
      const me: Holder = { pid: Deno.pid, host: hostname() };
      const lockPath = join(dir, LOCK_NAME);
      const stale = await readHolder(lockPath);
      if (stale !== null && same(stale, previous)) {
        // Written by the Deno process that held the flock before us: it has exited or died.
        log(`meshraft file storage ${dir}: taking over the lock of Deno process ${stale.pid}, which is not running`);
        await Deno.remove(lockPath).catch(() => undefined);
      } else if (stale !== null && (await Deno.permissions.query({ name: "run" })).state !== "granted") {
        throw new StorageLockedError(
          dir,
          stale.pid,
          stale.host,
          `its lock file was not left by a Deno process, and without --allow-run Deno cannot check whether process ${stale.pid} is alive; ` +
            `stop that process, or delete ${lockPath} if it is not running`,
        );
      }
      await flock.truncate(0);
      const bytes = new TextEncoder().encode(JSON.stringify(me) + "\n");
      for (let done = 0; done < bytes.length; ) done += await flock.write(bytes.subarray(done));
      return new DenoFileStorage(dir, await FileStorage.open(dir, options), flock);
    } catch (e) {
      flock.close(); // releases the advisory lock
      throw e;
    }
  }

  load(): Promise<StoredState> {
    return this.#inner.load();
  }

  save(batch: SaveBatch): Promise<void> {
    return this.#inner.save(batch);
  }

  compact(upTo: Index): Promise<void> {
    return this.#inner.compact(upTo);
  }

  /** Closes the storage, then gives up the advisory lock. */
  async close(): Promise<void> {
    try {
      await this.#inner.close();
    } finally {
      try {
        this.#flock.close();
      } catch {
        // already closed
      }
    }
  }
}
