/**
 * One process per data directory: a LOCK file created with O_EXCL holding {"pid", "host"}.
 *
 * A lock whose process is gone (killed, crashed) is stale: it is taken over with a log line. The
 * holder is alive if `kill(pid, 0)` succeeds or is refused for permission; a lock from another
 * host cannot be checked and is never taken over. Takeover renames the stale file aside first and
 * re-reads it, so two processes racing for the same stale lock cannot both win. A runtime may
 * hold an OS lock around all this (`FileSystem.lockDirectory`, ./fs.ts).
 */
import { errnoOf, StorageIoError, StorageLockedError } from "./errors.ts";
import { writeAll } from "./files.ts";
import type { FileSystem } from "./fs.ts";
import { LOCK_NAME } from "./format.ts";

export interface DirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
}

/** The lock file's holder; null if the file is gone; "garbled" if it does not parse. */
async function readHolder(fs: FileSystem, path: string): Promise<Holder | null | "garbled"> {
  let text: string;
  try {
    text = new TextDecoder().decode(await fs.readFile(path));
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return null;
    throw new StorageIoError("read lock file", path, e);
  }
  try {
    const v = JSON.parse(text) as Holder;
    if (Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.host === "string") return { pid: v.pid, host: v.host };
  } catch {
    // fall through
  }
  return "garbled";
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Takes `dir`'s lock: the runtime's OS lock if it has one, then the LOCK file. Released in the
 * opposite order.
 */
export async function lockDirectory(fs: FileSystem, dir: string, log: (line: string) => void): Promise<DirectoryLock> {
  const held = await fs.lockDirectory?.(dir, log);
  let lock: DirectoryLock;
  try {
    lock = await lockFile(fs, dir, log);
  } catch (e) {
    await held?.release();
    throw e;
  }
  if (!held) return lock;
  return {
    path: lock.path,
    release: async () => {
      try {
        await lock.release();
      } finally {
        await held.release();
      }
    },
  };
}

async function lockFile(fs: FileSystem, dir: string, log: (line: string) => void): Promise<DirectoryLock> {
  const path = fs.join(dir, LOCK_NAME);
  const host = fs.hostname();
  const mine = new TextEncoder().encode(JSON.stringify({ pid: fs.pid, host }) + "\n");
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await fs.open(path, "wx");
      try {
        await writeAll(fh, mine, 0);
      } finally {
        await fh.close();
      }
      return { path, release: () => fs.unlink(path).catch(() => undefined) };
    } catch (e) {
      if (errnoOf(e) !== "EEXIST") throw new StorageIoError("create lock file", path, e);
    }

    let holder = await readHolder(fs, path);
    if (holder === "garbled") {
      // The holder may be between creating the file and writing its pid: look again shortly.
      await sleep(100);
      holder = await readHolder(fs, path);
    }
    if (holder === null) continue; // released meanwhile
    if (holder !== "garbled") {
      if (holder.pid === fs.pid && holder.host === host) {
        throw new StorageLockedError(dir, holder.pid, host, "this process already has it open");
      }
      if (holder.host !== host) {
        throw new StorageLockedError(dir, holder.pid, holder.host, `cannot tell from ${host} whether it is alive; delete ${path} only if it is not`);
      }
      if (fs.processAlive(holder.pid)) throw new StorageLockedError(dir, holder.pid, host, "it is running");
    }

    const who = holder === "garbled" ? "an unreadable lock file" : `process ${holder.pid}, which is not running`;
    log(`meshraft file storage ${dir}: taking over the stale lock of ${who}`);
    const aside = `${path}.stale-${fs.pid}`;
    try {
      await fs.rename(path, aside);
    } catch (e) {
      if (errnoOf(e) === "ENOENT") continue; // someone else took it over first
      throw new StorageIoError("move aside stale lock file", path, e);
    }
    const moved = await readHolder(fs, aside);
    const same = holder === "garbled" ? moved === "garbled" : moved !== null && moved !== "garbled" && moved.pid === holder.pid && moved.host === holder.host;
    if (!same) {
      // Another process replaced the stale lock with its own between our read and the rename.
      await fs.rename(aside, path).catch(() => undefined);
      const pid = moved !== null && moved !== "garbled" ? moved.pid : 0;
      throw new StorageLockedError(dir, pid, host, "another process took over the stale lock at the same moment");
    }
    await fs.unlink(aside).catch(() => undefined);
  }
  throw new StorageLockedError(dir, 0, host, "the lock file kept changing while trying to take it");
}
