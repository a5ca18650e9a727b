/**
 * The file operations FileStorage is built from, each durable where it says so, on the calls of
 * a FileSystem (./fs.ts) that each runtime supplies.
 */
import type { Snapshot } from "../../core/types.ts";
import { crc32 } from "./crc32.ts";
import { errnoOf, StorageCorruptionError, StorageIoError } from "./errors.ts";
import type { FileHandle, FileSystem } from "./fs.ts";
import {
  decodeSnapshotHead,
  encodeSnapshotHead,
  FormatError,
  SNAPSHOT_HEADER_BYTES,
  type SnapshotHead,
  snapshotName,
  type SnapshotRef,
} from "./format.ts";

const SNAPSHOT_CHUNK_BYTES = 8 * 1024 * 1024;

export async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const bytesWritten = await fh.write(bytes.subarray(done), position + done);
    if (bytesWritten <= 0) throw new Error("the write made no progress");
    done += bytesWritten;
  }
}

/** A file's bytes. */
export async function readBytes(fs: FileSystem, path: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    throw new StorageIoError("read", path, e);
  }
}

/** Makes creations, renames and removals in `dir` durable. */
export async function syncDirectory(fs: FileSystem, dir: string): Promise<void> {
  if (!fs.syncsDirectories) return;
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(dir, "r");
    await fh.sync();
  } catch (e) {
    throw new StorageIoError("fsync directory", dir, e);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Replaces `dir/name` atomically and durably: temp file, fsync, rename, directory fsync. */
export async function writeFileDurably(fs: FileSystem, dir: string, name: string, bytes: Uint8Array): Promise<void> {
  await replaceDurably(fs, dir, name, "write", false, (fh) => writeAll(fh, bytes, 0));
}

/**
 * Writes `dir/name.tmp` with `fill`, fsyncs it, renames it over `dir/name` and fsyncs the
 * directory. On failure the temp file is removed and a StorageIoError names `op` and the final
 * path (or, with `reportTmp`, the temp file's).
 */
async function replaceDurably(fs: FileSystem, dir: string, name: string, op: string, reportTmp: boolean, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const final = fs.join(dir, name);
  const tmp = `${final}.tmp`;
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(tmp, "w");
    await fill(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, final);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw new StorageIoError(op, reportTmp ? tmp : final, e);
  }
  await syncDirectory(fs, dir);
}

/** Creates `path` (which must not exist) holding `bytes`, durably, directory entry included. */
export async function createFileDurably(fs: FileSystem, dir: string, path: string, bytes: Uint8Array): Promise<FileHandle> {
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(path, "wx");
    await writeAll(fh, bytes, 0);
    await fh.sync();
    await syncDirectory(fs, dir);
    return fh;
  } catch (e) {
    await fh?.close().catch(() => undefined);
    if (fh) await fs.unlink(path).catch(() => undefined);
    throw e instanceof StorageIoError ? e : new StorageIoError("create", path, e);
  }
}

/** Opens the existing file `path`, lets `change` modify it, and fsyncs it. */
async function changeDurably(fs: FileSystem, path: string, op: string, change: (fh: FileHandle) => Promise<void>): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(path, "r+");
    await change(fh);
    await fh.sync();
  } catch (e) {
    throw new StorageIoError(op, path, e);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

export function truncateDurably(fs: FileSystem, path: string, size: number): Promise<void> {
  return changeDurably(fs, path, "truncate", (fh) => fh.truncate(size));
}

/** Overwrites `bytes` at `position` in the existing file `path`. */
export function writeDurably(fs: FileSystem, path: string, bytes: Uint8Array, position: number): Promise<void> {
  return changeDurably(fs, path, "write", (fh) => writeAll(fh, bytes, position));
}

export async function unlinkOrFail(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (e) {
    if (errnoOf(e) !== "ENOENT") throw new StorageIoError("remove", path, e);
  }
}

/** Removes a file nobody needs any more; failing is harmless (the next open retries). */
export async function removeQuietly(fs: FileSystem, path: string): Promise<void> {
  await fs.unlink(path).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// Snapshot files
// ---------------------------------------------------------------------------------------------

/**
 * Writes `dir/snap-<seq>.snap`: data first, in chunks, checksummed as it goes (no second copy of
 * a large snapshot in memory, no long block of the event loop), then the header with the
 * checksum; fsync, rename into place, fsync the directory.
 */
export async function writeSnapshotFile(fs: FileSystem, dir: string, seq: number, json: Uint8Array, data: Uint8Array): Promise<void> {
  await replaceDurably(fs, dir, snapshotName(seq), "write snapshot", true, async (fh) => {
    const dataOffset = SNAPSHOT_HEADER_BYTES + json.length;
    let crc = crc32(json);
    for (let off = 0; off < data.length; off += SNAPSHOT_CHUNK_BYTES) {
      const chunk = data.subarray(off, Math.min(data.length, off + SNAPSHOT_CHUNK_BYTES));
      crc = crc32(chunk, crc);
      await writeAll(fh, chunk, dataOffset + off);
    }
    await writeAll(fh, encodeSnapshotHead(json, data.length, crc), 0);
  });
}

/** Reads and fully checks the snapshot the log refers to. The data is not copied again. */
export async function readSnapshotFile(fs: FileSystem, dir: string, ref: SnapshotRef): Promise<Snapshot> {
  const path = fs.join(dir, snapshotName(ref.seq));
  const bytes = await readBytes(fs, path);
  const head = checkedHead(path, bytes, ref, bytes.length);
  const data = bytes.subarray(head.dataOffset);
  if (crc32(data, crc32(bytes.subarray(SNAPSHOT_HEADER_BYTES, head.dataOffset))) !== head.crc) {
    throw new StorageCorruptionError(path, head.dataOffset, "snapshot checksum mismatch");
  }
  return { meta: head.meta, data };
}

/** Checks the header, meta and size of the snapshot the log refers to, without reading the data. */
export async function checkSnapshotFile(fs: FileSystem, dir: string, ref: SnapshotRef): Promise<void> {
  const path = fs.join(dir, snapshotName(ref.seq));
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(path, "r");
    const size = await fh.size();
    const fixed = new Uint8Array(SNAPSHOT_HEADER_BYTES);
    await fh.read(fixed, 0);
    const metaLength = new DataView(fixed.buffer).getUint32(4, true);
    const head = new Uint8Array(Math.min(size, SNAPSHOT_HEADER_BYTES + metaLength));
    await fh.read(head, 0);
    checkedHead(path, head, ref, size);
  } catch (e) {
    if (e instanceof StorageCorruptionError) throw e;
    if (errnoOf(e) === "ENOENT") {
      throw new StorageCorruptionError(path, 0, `the snapshot file is missing; the log refers to it (snapshot at ${ref.index}@t${ref.term})`);
    }
    throw new StorageIoError("read snapshot", path, e);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function checkedHead(path: string, bytes: Uint8Array, ref: SnapshotRef, fileSize: number): SnapshotHead {
  let head: SnapshotHead;
  try {
    head = decodeSnapshotHead(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new StorageCorruptionError(path, 0, e.message);
    throw e;
  }
  if (head.meta.index !== ref.index || head.meta.term !== ref.term) {
    throw new StorageCorruptionError(path, 0, `the file holds a snapshot at ${head.meta.index}@t${head.meta.term}, the log expects ${ref.index}@t${ref.term}`);
  }
  const expected = head.dataOffset + head.dataLength;
  if (fileSize !== expected) {
    throw new StorageCorruptionError(path, Math.min(fileSize, expected), `the file has ${fileSize} bytes, its header says ${expected}`);
  }
  return head;
}
