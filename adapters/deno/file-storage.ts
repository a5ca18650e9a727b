/**
 * FileStorage on Deno: the storage of src/storage/file/ on `Deno.*` file calls, byte-compatible
 * with Node's (the same code writes the same files), plus a lock Deno can check.
 *
 * The LOCK file's holder is probed with `kill(pid, 0)`, which Deno allows only with `--allow-run`
 * (full subprocess rights); without it the probe proves nothing and a stale lock could never be
 * taken over. So the directory is first locked with an OS advisory lock (`flock` on
 * `LOCK.flock`, released by the kernel when the holder dies, whatever its permissions), which
 * also records the holder; a LOCK file left by a previous Deno holder is then provably stale and
 * is removed before the LOCK file is taken. A LOCK file of anyone else (a Node process) is left to
 * the probe when `--allow-run` is granted, and refused otherwise.
 *
 * Permissions: read and write on the data directory, `--allow-sys=hostname` (the LOCK file
 * records the host).
 */
import { join } from "node:path";
import { FileStorage as FileStorageCore, type FileHandle, type FileStorageOptions, type FileSystem, StorageLockedError } from "../../src/storage/file/file-storage.ts";
import { LOCK_NAME } from "../../src/storage/file/format.ts";

export { StorageCorruptionError, StorageIoError, StorageLockedError } from "../../src/storage/file/file-storage.ts";
export type { FileStorageOptions };

const FLOCK_NAME = "LOCK.flock";

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

async function writeAllAt(file: Deno.FsFile, bytes: Uint8Array, position: number): Promise<number> {
  await file.seek(position, Deno.SeekMode.Start);
  return file.write(bytes);
}

/** Positional reads and writes as seek + read/write: FileStorage never has two in flight on one file. */
const handle = (file: Deno.FsFile): FileHandle => ({
  read: async (buffer, position) => {
    await file.seek(position, Deno.SeekMode.Start);
    return (await file.read(buffer)) ?? 0;
  },
  write: (bytes, position) => writeAllAt(file, bytes, position),
  datasync: () => file.syncData(),
  sync: () => file.sync(),
  truncate: (size) => file.truncate(size),
  size: async () => (await file.stat()).size,
  close: async () => file.close(),
});

const OPEN_OPTIONS: Record<string, Deno.OpenOptions> = {
  r: { read: true },
  "r+": { read: true, write: true },
  w: { write: true, create: true, truncate: true },
  wx: { write: true, createNew: true },
};

/**
 * The OS lock on `dir` (see the top of this file): taken before the LOCK file, released after it.
 */
async function lockDirectory(dir: string, log: (line: string) => void): Promise<{ release(): Promise<void> }> {
  const flockPath = join(dir, FLOCK_NAME);
  const flock = await Deno.open(flockPath, { read: true, write: true, create: true });
  try {
    if (!(await flock.tryLock(true))) {
      const holder = await readHolder(flockPath);
      throw new StorageLockedError(dir, holder?.pid ?? 0, holder?.host ?? "this host", "a Deno process holds its advisory lock");
    }
    const previous = await readHolder(flockPath);
    const me: Holder = { pid: Deno.pid, host: Deno.hostname() };
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
    for (let done = 0; done < bytes.length; ) done += await writeAllAt(flock, bytes.subarray(done), done);
  } catch (e) {
    flock.close(); // releases the advisory lock
    throw e;
  }
  return {
    release: async () => {
      try {
        flock.close();
      } catch {
        // already closed
      }
    },
  };
}

export const denoFileSystem: FileSystem = {
  open: async (path, mode) => handle(await Deno.open(path, OPEN_OPTIONS[mode])),
  readFile: (path) => Deno.readFile(path),
  readdir: async (dir) => {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    return names;
  },
  rename: (from, to) => Deno.rename(from, to),
  unlink: (path) => Deno.remove(path),
  mkdir: (dir) => Deno.mkdir(dir, { recursive: true }),
  join: (dir, name) => join(dir, name),
  // Windows cannot open a directory; NTFS journals its metadata anyway.
  syncsDirectories: Deno.build.os !== "windows",
  pid: Deno.pid,
  hostname: () => Deno.hostname(),
  processAlive: (pid) => {
    try {
      Deno.kill(pid, 0 as unknown as Deno.Signal);
      return true;
    } catch (e) {
      // Only "no such process" (ESRCH, which Deno reports as NotFound) proves the holder gone.
      // A process of another user, or no --allow-run, proves nothing.
      return !(e instanceof Deno.errors.NotFound);
    }
  },
  lockDirectory,
};

/** Durable Raft storage in a directory of files (src/storage/file/file-storage.ts describes it). */
export class FileStorage extends FileStorageCore {
  /**
   * Opens (creating if needed) the data directory `dir`. Rejects with StorageLockedError if
   * another process holds it, StorageCorruptionError if the contents do not check out,
   * StorageIoError if the file system refuses.
   */
  static override open(dir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
    return super.open(dir, { ...options, fs: denoFileSystem }) as Promise<FileStorage>;
  }
}
