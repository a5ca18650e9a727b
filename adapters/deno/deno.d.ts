/**
 * The slice of the `Deno` namespace that adapters/deno and examples/deno-deploy use, declared by
 * hand so that plain `tsc` (with Node's types) checks and builds them, as hono does for its Deno
 * adapter. Deno itself never reads this file: `deno check` uses Deno's own declarations
 * (deno.json's "lib"), so a mistake here shows up as a difference between the two checks.
 * Signatures follow Deno 2.9's lib.deno.ns.d.ts and lib.deno.unstable.d.ts, reduced.
 */

interface ImportMeta {
  /** Whether this module is the program's entry point. */
  main: boolean;
}

declare namespace Deno {
  const pid: number;
  const build: { readonly os: string };
  const args: string[];
  function exit(code?: number): never;
  function execPath(): string;
  function hostname(): string;
  function addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  function unrefTimer(id: number | ReturnType<typeof setTimeout>): void;

  const env: {
    get(key: string): string | undefined;
  };

  type PermissionState = "granted" | "denied" | "prompt";
  type PermissionDescriptor =
    | { name: "run"; command?: string }
    | { name: "read" | "write"; path?: string }
    | { name: "net"; host?: string }
    | { name: "env"; variable?: string }
    | { name: "sys"; kind?: "hostname" | "osRelease" | "loadavg" | "networkInterfaces" | "systemMemoryInfo" | "uid" | "gid" };
  interface PermissionStatus {
    readonly state: PermissionState;
  }
  const permissions: {
    query(descriptor: PermissionDescriptor): Promise<PermissionStatus>;
    querySync(descriptor: PermissionDescriptor): PermissionStatus;
  };

  type Signal = "SIGTERM" | "SIGKILL" | "SIGINT";
  /** Deno 2.9 also takes signal 0 (existence check) at run time, though its types do not say so. */
  function kill(pid: number, signo?: Signal): void;

  namespace errors {
    class NotFound extends Error {}
  }

  // --- files ---------------------------------------------------------------------------------
  interface OpenOptions {
    read?: boolean;
    write?: boolean;
    create?: boolean;
    truncate?: boolean;
    createNew?: boolean;
  }
  enum SeekMode {
    Start = 0,
    Current = 1,
    End = 2,
  }
  interface FileInfo {
    size: number;
  }
  interface FsFile {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
    seek(offset: number | bigint, whence: SeekMode): Promise<number>;
    syncData(): Promise<void>;
    sync(): Promise<void>;
    stat(): Promise<FileInfo>;
    truncate(len?: number): Promise<void>;
    tryLock(exclusive?: boolean): Promise<boolean>;
    close(): void;
  }
  interface DirEntry {
    name: string;
  }
  function open(path: string, options?: OpenOptions): Promise<FsFile>;
  function mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  function readFile(path: string): Promise<Uint8Array<ArrayBuffer>>;
  function readDir(path: string): AsyncIterable<DirEntry>;
  function rename(oldpath: string, newpath: string): Promise<void>;
  function readTextFile(path: string): Promise<string>;
  function readTextFileSync(path: string): string;
  function remove(path: string, options?: { recursive?: boolean }): Promise<void>;

  // --- subprocesses (the demo) ----------------------------------------------------------------
  interface CommandOptions {
    args?: string[];
    stdin?: "piped" | "inherit" | "null";
    stdout?: "piped" | "inherit" | "null";
    stderr?: "piped" | "inherit" | "null";
  }
  interface CommandStatus {
    success: boolean;
    code: number;
    signal: string | null;
  }
  interface ChildProcess {
    readonly pid: number;
    readonly stderr: ReadableStream<Uint8Array<ArrayBuffer>>;
    readonly status: Promise<CommandStatus>;
    kill(signo?: Signal): void;
  }
  class Command {
    constructor(command: string | URL, options?: CommandOptions);
    spawn(): ChildProcess;
  }

  // --- HTTP server and WebSockets -------------------------------------------------------------
  interface NetAddr {
    transport: "tcp" | "udp";
    hostname: string;
    port: number;
  }
  interface ServeOptions {
    hostname?: string;
    port?: number;
    onListen?: (localAddr: NetAddr) => void;
  }
  interface HttpServer<A = NetAddr> {
    readonly addr: A;
    readonly finished: Promise<void>;
    shutdown(): Promise<void>;
  }
  interface ServeHandlerInfo {
    remoteAddr: NetAddr;
  }
  type ServeHandler = (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>;
  function serve(options: ServeOptions, handler: ServeHandler): HttpServer<NetAddr>;
  function serve(handler: ServeHandler): HttpServer<NetAddr>;
  interface UpgradeWebSocketOptions {
    protocol?: string;
    /** Seconds; a ping goes out after half of it without traffic, the link closes after the rest. */
    idleTimeout?: number;
  }

  // --- Deno KV (unstable: --unstable-kv or deno.json "unstable": ["kv"]) -----------------------
  type KvKeyPart = Uint8Array | string | number | bigint | boolean | symbol;
  type KvKey = readonly KvKeyPart[];
  interface KvEntry<T> {
    key: KvKey;
    value: T;
    versionstamp: string;
  }
  type KvEntryMaybe<T> = KvEntry<T> | { key: KvKey; value: null; versionstamp: null };
  interface AtomicCheck {
    key: KvKey;
    versionstamp: string | null;
  }
  interface KvCommitResult {
    ok: true;
    versionstamp: string;
  }
  interface KvCommitError {
    ok: false;
  }
  class AtomicOperation {
    check(...checks: AtomicCheck[]): this;
    set(key: KvKey, value: unknown, options?: { expireIn?: number }): this;
    delete(key: KvKey): this;
    commit(): Promise<KvCommitResult | KvCommitError>;
  }
  type KvListSelector = { prefix: KvKey } | { prefix: KvKey; start: KvKey } | { prefix: KvKey; end: KvKey } | { start: KvKey; end: KvKey };
  interface KvListOptions {
    limit?: number;
    batchSize?: number;
    reverse?: boolean;
  }
  interface KvListIterator<T> extends AsyncIterableIterator<KvEntry<T>> {}
  class Kv {
    get<T = unknown>(key: KvKey): Promise<KvEntryMaybe<T>>;
    set(key: KvKey, value: unknown): Promise<KvCommitResult>;
    list<T = unknown>(selector: KvListSelector, options?: KvListOptions): KvListIterator<T>;
    atomic(): AtomicOperation;
    close(): void;
  }
  function openKv(path?: string): Promise<Kv>;
}
