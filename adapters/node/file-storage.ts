/**
 * FileStorage on Node: the storage of src/storage/file/ on `node:fs/promises`.
 */
import { type FileHandle as NodeFileHandle, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { errnoOf } from "../../src/storage/file/errors.ts";
import { FileStorage as FileStorageCore, type FileHandle, type FileStorageOptions, type FileSystem } from "../../src/storage/file/file-storage.ts";

export { StorageCorruptionError, StorageIoError, StorageLockedError } from "../../src/storage/file/file-storage.ts";
export type { FileStorageOptions };

const handle = (fh: NodeFileHandle): FileHandle => ({
  read: async (buffer, position) => (await fh.read(buffer, 0, buffer.length, position)).bytesRead,
  write: async (bytes, position) => (await fh.write(bytes, 0, bytes.length, position)).bytesWritten,
  datasync: () => fh.datasync(),
  sync: () => fh.sync(),
  truncate: (size) => fh.truncate(size),
  size: async () => (await fh.stat()).size,
  close: () => fh.close(),
});

export const nodeFileSystem: FileSystem = {
  open: async (path, mode) => handle(await open(path, mode)),
  readFile: async (path) => {
    const b = await readFile(path);
    // A plain Uint8Array: a Node Buffer's `slice` would share memory.
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  readdir: (dir) => readdir(dir),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true });
  },
  join: (dir, name) => join(dir, name),
  // Windows cannot open a directory; NTFS journals its metadata anyway.
  syncsDirectories: process.platform !== "win32",
  pid: process.pid,
  hostname: () => hostname(),
  processAlive: (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      // Only "no such process" proves the holder gone. EPERM is a live process of another user;
      // anything else (a runtime that refuses the call) proves nothing.
      return errnoOf(e) !== "ESRCH";
    }
  },
};

/** Durable Raft storage in a directory of files (src/storage/file/file-storage.ts describes it). */
export class FileStorage extends FileStorageCore {
  /**
   * Opens (creating if needed) the data directory `dir`, takes its lock and recovers the log.
   * Rejects with StorageLockedError if another live process holds it, StorageCorruptionError if
   * the contents do not check out, StorageIoError if the file system refuses.
   */
  static override open(dir: string, options: FileStorageOptions = {}): Promise<FileStorage> {
    return super.open(dir, { ...options, fs: nodeFileSystem }) as Promise<FileStorage>;
  }
}
