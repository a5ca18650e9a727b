/**
 * The file system FileStorage runs on: the few calls it makes, each as small as the runtimes
 * allow, so the storage core (./file-storage.ts, recovery, the lock) is written once and every
 * runtime supplies only this object — adapters/node on `node:fs/promises`, adapters/deno on
 * Deno's own file calls. A call that fails rejects with the runtime's error, which carries the system error
 * code ("ENOENT", "EEXIST", ...) as `code`; FileStorage wraps it in a StorageIoError.
 */

/** An open file. Reads and writes are positional; FileStorage never has two in flight on one. */
export interface FileHandle {
  /** Reads into `buffer` from `position`; resolves to the bytes read (fewer at the end of the file). */
  read(buffer: Uint8Array, position: number): Promise<number>;
  /** Writes (part of) `bytes` at `position`; resolves to the bytes written. */
  write(bytes: Uint8Array, position: number): Promise<number>;
  /** fdatasync: the data reaches the disk (and the size, if it changed). */
  datasync(): Promise<void>;
  /** fsync: data and metadata. On a directory handle, its entries (creations, renames, removals). */
  sync(): Promise<void>;
  truncate(size: number): Promise<void>;
  /** The file's size in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

/**
 * "r": read an existing file (or a directory, to sync it); "r+": read and write an existing file;
 * "w": create or truncate, write; "wx": create a file that must not exist (O_EXCL), write.
 */
export type OpenMode = "r" | "r+" | "w" | "wx";

/** A lock held besides FileStorage's LOCK file, released after it (see `FileSystem.lockDirectory`). */
export interface HeldLock {
  release(): Promise<void>;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** A whole file's bytes, as a Uint8Array that shares memory with nothing else. */
  readFile(path: string): Promise<Uint8Array>;
  /** The names (not paths) in a directory. */
  readdir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates `dir` and its parents; an existing directory is fine. */
  mkdir(dir: string): Promise<void>;
  /** `dir` and a file name joined with the platform's separator. */
  join(dir: string, name: string): string;
  /** False where directories cannot be opened to sync them (Windows, whose NTFS journals metadata). */
  readonly syncsDirectories: boolean;

  /** This process's id and host, recorded in the LOCK file. */
  readonly pid: number;
  hostname(): string;
  /**
   * Whether process `pid` on this host may be alive: false only when the runtime proves it gone
   * (ESRCH). A process of another user, or a runtime not allowed to ask, counts as alive: taking
   * over a live holder's lock would let two processes write one log.
   */
  processAlive(pid: number): boolean;
  /**
   * Optional: takes an OS lock on `dir` before FileStorage takes its LOCK file, and may clear a
   * LOCK file that lock proves stale (Deno's flock, whose holder need not be probed). Rejects with
   * StorageLockedError when another process holds it.
   */
  lockDirectory?(dir: string, log: (line: string) => void): Promise<HeldLock>;
}
