import { MeshraftError } from "../../errors.ts";

/**
 * The data directory holds something FileStorage did not write, or lost something it did: a bad
 * checksum in a record that may have been acknowledged, a missing segment or snapshot, a gap in
 * the indexes. Only a torn write at the very end of the log is cut off (it was never
 * acknowledged; ./format.ts states how it is told from damage), with a warning;
 * anything else could be acknowledged data, so the node refuses to start rather than forget it.
 */
export class StorageCorruptionError extends MeshraftError {
  /** The damaged (or referring) file. */
  readonly file: string;
  /** Byte offset in `file` where the damage starts (0 for whole-file problems). */
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(
      "STORAGE_CORRUPT",
      `corrupt storage in ${file} at byte offset ${offset}: ${reason}. ` +
        `Refusing to continue, since acknowledged data may be lost: restore the directory from a backup, ` +
        `or retire this node and add a fresh member in its place (a node that forgets its log or vote can break Raft's safety)`,
    );
    this.file = file;
    this.offset = offset;
  }
}

/** The operating system refused a read, write or sync (a full disk, a permission, an IO error). */
export class StorageIoError extends MeshraftError {
  /** The system error code ("ENOSPC", "EACCES", "EIO", ...), or "UNKNOWN". */
  readonly errno: string;
  readonly path: string;
  constructor(op: string, path: string, cause: unknown) {
    const errno = errnoOf(cause);
    const hint = HINTS[errno] ? ` (${HINTS[errno]})` : "";
    const detail = cause instanceof Error ? cause.message : String(cause);
    super("STORAGE_IO", `could not ${op} ${path}: ${errno}${hint}: ${detail}`);
    this.errno = errno;
    this.path = path;
    this.cause = cause;
  }
}

/** Another live process (or another FileStorage in this one) has the directory open. */
export class StorageLockedError extends MeshraftError {
  readonly dir: string;
  /** The pid recorded in the lock file. */
  readonly pid: number;
  constructor(dir: string, pid: number, host: string, why: string) {
    super(
      "STORAGE_LOCKED",
      `${dir} is in use by process ${pid} on ${host} (${why}); two processes must never share a node's data directory`,
    );
    this.dir = dir;
    this.pid = pid;
  }
}

const HINTS: Record<string, string> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exhausted",
  EFBIG: "the file size limit was reached",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the file system is read-only",
  EIO: "the device reported an IO error",
};

export function errnoOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "UNKNOWN";
}
