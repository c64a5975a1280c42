/**
 * WASI preview1 for Proxy-Wasm guests (reference §2.4): every function an SDK's standard library
 * may import, under both `wasi_snapshot_preview1` and `wasi_unstable`. stdout/stderr become log
 * lines, time and randomness are real, the environment is the plugin's own, and there is no
 * filesystem or network: those calls are stubs returning what cpp-host returns, so a module that
 * runs in Envoy links and behaves the same here.
 */
import { randomFillSync } from 'node:crypto';
import { LogLevel } from './enums.js';
import { MAX_LOG_MESSAGE_BYTES, MAX_RANDOM_GET_BYTES } from './limits.js';
import { type GuestMemory, MemoryFault } from './memory.js';
import { ProcExit } from './trap.js';

/** What the WASI functions need from the VM that hosts them. */
export interface WasiHost {
  /** The guest's linear memory; every pointer argument is checked against it. */
  readonly mem: GuestMemory;
  /** The plugin's configured environment, as "KEY=VALUE" strings. */
  environment(): readonly string[];
  /** Logs a line written by the guest to stdout (INFO) or stderr (ERROR). */
  log(level: LogLevel, message: string): void;
  /** Nanoseconds since the Unix epoch (`clock_time_get` id 0). */
  wallNs(): bigint;
  /** Nanoseconds from an arbitrary fixed origin, never decreasing (`clock_time_get` id 1). */
  monotonicNs(): bigint;
}

/** WASI errno values (reference §2.4). */
const Errno = {
  SUCCESS: 0,
  BADF: 8,
  EXIST: 20,
  FAULT: 21,
  INVAL: 28,
  NOENT: 44,
  NOSYS: 52,
  NOTSUP: 58,
} as const;
const { SUCCESS, BADF, NOSYS, NOTSUP } = Errno;

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

/** `fdstat` for stdout/stderr: filetype, flags and padding 0, rights_base = FD_WRITE (64), inheriting 0. */
const STDIO_FDSTAT = new Uint8Array(24);
STDIO_FDSTAT[8] = 64;

/** `roflags` is a u16: zero exactly two bytes, not a word. */
const ROFLAGS_ZERO = new Uint8Array(2);

const isStdio = (fd: number): boolean => fd === 1 || fd === 2;
const stdioOnly = (fd: number): number => (isStdio(fd) ? SUCCESS : BADF);

type WasiFn = (h: WasiHost, ...args: any[]) => number | void;

/**
 * Every function, keyed by its import name, with its preview1 signature: `number` is an i32,
 * `bigint` an i64. Parameters a stub ignores are kept so the table reads as the signature list.
 */
const WASI = {
  args_get: (h, argv: number, argvBuf: number) => SUCCESS,
  args_sizes_get: (h, argcPtr: number, bufSizePtr: number) => {
    h.mem.setU32(argcPtr, 0);
    h.mem.setU32(bufSizePtr, 0);
    return SUCCESS;
  },
  environ_get: (h, environPtrs: number, environBuf: number) => environGet(h, environPtrs, environBuf),
  environ_sizes_get: (h, countPtr: number, bufSizePtr: number) => {
    const entries = encodeEnvironment(h);
    h.mem.setU32(countPtr, entries.length);
    h.mem.setU32(bufSizePtr, entries.reduce((sum, e) => sum + e.length, 0));
    return SUCCESS;
  },

  clock_res_get: (h, id: number, resPtr: number) => {
    if (id !== CLOCK_REALTIME && id !== CLOCK_MONOTONIC) return NOTSUP;
    h.mem.setU64(resPtr, 1n);
    return SUCCESS;
  },
  clock_time_get: (h, id: number, precision: bigint, timePtr: number) => {
    if (id !== CLOCK_REALTIME && id !== CLOCK_MONOTONIC) return NOTSUP;
    h.mem.setU64(timePtr, id === CLOCK_REALTIME ? h.wallNs() : h.monotonicNs());
    return SUCCESS;
  },

  fd_advise: (h, fd: number, offset: bigint, len: bigint, advice: number) => SUCCESS,
  fd_allocate: (h, fd: number, offset: bigint, len: bigint) => stdioOnly(fd),
  // cpp-host logs fd_close and fd_seek as errors but reports success (§2.4).
  fd_close: (h, fd: number) => {
    h.log(LogLevel.ERROR, 'wasi_unstable fd_close');
    return SUCCESS;
  },
  fd_datasync: (h, fd: number) => stdioOnly(fd),
  fd_fdstat_get: (h, fd: number, statPtr: number) => {
    if (!isStdio(fd)) return BADF;
    h.mem.write(statPtr, STDIO_FDSTAT);
    return SUCCESS;
  },
  fd_fdstat_set_flags: (h, fd: number, flags: number) => NOSYS,
  fd_fdstat_set_rights: (h, fd: number, rightsBase: bigint, rightsInheriting: bigint) => stdioOnly(fd),
  fd_filestat_get: (h, fd: number, bufPtr: number) => BADF,
  fd_filestat_set_size: (h, fd: number, size: bigint) => stdioOnly(fd),
  fd_filestat_set_times: (h, fd: number, atim: bigint, mtim: bigint, fstFlags: number) => stdioOnly(fd),
  fd_pread: (h, fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number) => NOSYS,
  // BADF tells libc there are no preopened directories, which ends its probing loop.
  fd_prestat_get: (h, fd: number, bufPtr: number) => BADF,
  fd_prestat_dir_name: (h, fd: number, pathPtr: number, pathLen: number) => NOSYS,
  fd_pwrite: (h, fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number) =>
    writeStdio(h, fd, iovs, iovsLen, nwrittenPtr),
  fd_read: (h, fd: number, iovs: number, iovsLen: number, nreadPtr: number) => NOSYS,
  // cpp-host answers 20 (EXIST in WASI numbering; its comment says ENOTDIR). Matched as is.
  fd_readdir: (h, fd: number, buf: number, bufLen: number, cookie: bigint, bufUsedPtr: number) => {
    h.mem.setU32(bufUsedPtr, 0);
    return Errno.EXIST;
  },
  // §2.4 allows 8 or 58: stdio exists but cannot be renumbered; any other fd does not exist.
  fd_renumber: (h, fd: number, to: number) => (isStdio(fd) ? NOTSUP : BADF),
  fd_seek: (h, fd: number, offset: bigint, whence: number, newOffsetPtr: number) => {
    h.log(LogLevel.ERROR, 'wasi_unstable fd_seek');
    return SUCCESS;
  },
  fd_sync: (h, fd: number) => stdioOnly(fd),
  fd_tell: (h, fd: number, offsetPtr: number) => {
    if (!isStdio(fd)) return BADF;
    h.mem.setU64(offsetPtr, 0n);
    return SUCCESS;
  },
  fd_write: (h, fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) =>
    writeStdio(h, fd, iovs, iovsLen, nwrittenPtr),

  path_create_directory: (h, fd: number, path: number, pathLen: number) => NOTSUP,
  path_filestat_get: (h, fd: number, flags: number, path: number, pathLen: number, bufPtr: number) => NOTSUP,
  path_filestat_set_times: (
    h, fd: number, flags: number, path: number, pathLen: number, atim: bigint, mtim: bigint, fstFlags: number,
  ) => NOTSUP,
  // The real preview1 signatures (7 and 5 params); cpp-host declares 6 and 4 and so rejects
  // modules that import them correctly.
  path_link: (
    h, oldFd: number, oldFlags: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number,
  ) => NOTSUP,
  path_open: (
    h, fd: number, dirFlags: number, path: number, pathLen: number, oFlags: number,
    rightsBase: bigint, rightsInheriting: bigint, fdFlags: number, fdPtr: number,
  ) => Errno.NOENT,
  path_readlink: (
    h, fd: number, path: number, pathLen: number, buf: number, bufLen: number, bufUsedPtr: number,
  ) => {
    h.mem.setU32(bufUsedPtr, 0);
    return NOTSUP;
  },
  path_remove_directory: (h, fd: number, path: number, pathLen: number) => NOTSUP,
  path_rename: (
    h, fd: number, oldPath: number, oldLen: number, newFd: number, newPath: number, newLen: number,
  ) => NOTSUP,
  path_symlink: (h, oldPath: number, oldLen: number, fd: number, newPath: number, newLen: number) => NOTSUP,
  path_unlink_file: (h, fd: number, path: number, pathLen: number) => NOTSUP,

  // Go's runtime sleeps through poll_oneoff and throws on any non-zero result; nothing waits here.
  poll_oneoff: (h, subscriptions: number, events: number, nsubscriptions: number, neventsPtr: number) => {
    h.mem.setU32(neventsPtr, 0);
    return SUCCESS;
  },
  // Unwinds the guest call; the VM treats it as a trap and fails (cpp-host's Envoy returns instead,
  // but the guest then usually hits `unreachable`).
  proc_exit: (h, code: number): void => {
    throw new ProcExit(code >>> 0);
  },
  // Not in cpp-host's 45, but in preview1: provided so a module importing it still links.
  proc_raise: (h, signal: number) => NOSYS,
  random_get: (h, buf: number, len: number) => {
    len >>>= 0;
    if (len > MAX_RANDOM_GET_BYTES) return Errno.INVAL;
    if (len === 0) return SUCCESS;
    h.mem.check(buf, len);
    randomFillSync(h.mem.current(), buf >>> 0, len);
    return SUCCESS;
  },
  sched_yield: (h) => SUCCESS,

  sock_accept: (h, fd: number, flags: number, fdPtr: number) => {
    h.mem.setU32(fdPtr, 0);
    return NOTSUP;
  },
  sock_recv: (
    h, fd: number, riData: number, riDataLen: number, riFlags: number, roDataLenPtr: number, roFlagsPtr: number,
  ) => {
    h.mem.setU32(roDataLenPtr, 0);
    h.mem.write(roFlagsPtr, ROFLAGS_ZERO);
    return NOTSUP;
  },
  sock_send: (h, fd: number, siData: number, siDataLen: number, siFlags: number, soDataLenPtr: number) => {
    h.mem.setU32(soDataLenPtr, 0);
    return NOTSUP;
  },
  sock_shutdown: (h, fd: number, how: number) => NOTSUP,
} satisfies Record<string, WasiFn>;

/** The names of the 46 preview1 functions: cpp-host's 45 plus proc_raise. */
export const WASI_FUNCTION_NAMES: readonly string[] = Object.freeze(Object.keys(WASI));

/**
 * The names allowed while the VM is starting (reference 2.1.1): cpp-host's explicit list plus
 * every fd_*, path_* and sock_* stub, and sched_yield (a yielding GC must not trap at start).
 * proc_exit is not on it.
 */
export const WASI_ALLOWED_DURING_START: ReadonlySet<string> = new Set([
  'fd_write', 'args_sizes_get', 'args_get', 'environ_sizes_get', 'environ_get', 'clock_time_get',
  'clock_res_get', 'random_get', 'poll_oneoff', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'sched_yield',
  ...WASI_FUNCTION_NAMES.filter((name) => /^(fd|path|sock)_/.test(name)),
]);

/** The names allowed while the host runs the guest allocator (2.1.1); Go's GC may sleep via poll_oneoff. */
export const WASI_ALLOWED_DURING_ALLOC: ReadonlySet<string> = new Set(['fd_write', 'clock_time_get', 'poll_oneoff']);

/** All WASI preview1 functions, keyed by name, with their real signatures. */
export function wasiFunctions(host: WasiHost): Record<string, (...args: any[]) => number | void> {
  const fns: Record<string, (...args: any[]) => number | void> = {};
  for (const [name, fn] of Object.entries(WASI) as [string, WasiFn][]) {
    fns[name] = (...args) => {
      try {
        return fn(host, ...args);
      } catch (err) {
        // A bad guest pointer is the guest's error, reported as EFAULT like cpp-host; anything
        // else (ProcExit, host failures) must unwind.
        if (err instanceof MemoryFault) return Errno.FAULT;
        throw err;
      }
    };
  }
  return fns;
}

/** fd_write/fd_pwrite: stdout → INFO, stderr → ERROR, as one line through the proxy_log path. */
function writeStdio(h: WasiHost, fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
  if (!isStdio(fd)) return BADF;
  const { bytes, written } = gatherIovecs(h.mem, iovs, iovsLen);
  if (written > 0) {
    // cpp-host drops exactly one trailing newline, and only when it has the whole write.
    const end = bytes.length === written && bytes[written - 1] === 0x0a ? written - 1 : bytes.length;
    h.log(fd === 1 ? LogLevel.INFO : LogLevel.ERROR, bytes.toString('utf8', 0, end));
  }
  h.mem.setU32(nwrittenPtr, written);
  return SUCCESS;
}

/**
 * Concatenates `iovsLen` iovecs ({u32 buf, u32 len}), checking every one. `written` counts all
 * bytes; `bytes` keeps at most MAX_LOG_MESSAGE_BYTES, where the log path would cut anyway, so
 * iovecs that repeat one large buffer cannot make the host allocate gigabytes.
 */
function gatherIovecs(mem: GuestMemory, iovs: number, iovsLen: number): { bytes: Buffer; written: number } {
  const base = iovs >>> 0;
  const count = iovsLen >>> 0;
  // NB: checked as a whole first, so `base + 8 * i` below cannot wrap past 2^32 into valid memory.
  if (base + count * 8 > mem.size) throw new MemoryFault(base, count * 8, mem.size);
  const parts: Uint8Array[] = [];
  let written = 0;
  let kept = 0;
  for (let i = 0; i < count; i++) {
    const buf = mem.u32(base + 8 * i);
    const len = mem.u32(base + 8 * i + 4);
    if (len === 0) continue; // cpp-host never looks at the pointer of an empty iovec
    mem.check(buf, len);
    written += len;
    const keep = Math.min(len, MAX_LOG_MESSAGE_BYTES - kept);
    if (keep > 0) {
      parts.push(mem.copy(buf, keep));
      kept += keep;
    }
  }
  return { bytes: Buffer.concat(parts, kept), written };
}

/** The plugin's environment as `KEY=VALUE\0` entries, UTF-8. */
function encodeEnvironment(h: WasiHost): Buffer[] {
  return h.environment().map((entry) => Buffer.from(`${entry}\0`, 'utf8'));
}

/** environ_get: one u32 pointer per entry at `environPtrs`, the entries themselves at `environBuf`. */
function environGet(h: WasiHost, environPtrs: number, environBuf: number): number {
  const entries = encodeEnvironment(h);
  const total = entries.reduce((sum, e) => sum + e.length, 0);
  // Both regions are checked before anything is written, so a fault leaves memory untouched.
  h.mem.check(environPtrs, entries.length * 4);
  h.mem.check(environBuf, total);
  let at = environBuf >>> 0;
  entries.forEach((entry, i) => {
    h.mem.setU32((environPtrs >>> 0) + 4 * i, at);
    h.mem.write(at, entry);
    at += entry.length;
  });
  return SUCCESS;
}
