import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LogLevel } from '../../gateway/abi/enums.js';
import { GuestMemory } from '../../gateway/abi/memory.js';
import { HOST_SIGNATURES, formatFuncType, sameFuncType } from '../../gateway/abi/signatures.js';
import { ProcExit } from '../../gateway/abi/trap.js';
import {
  WASI_ALLOWED_DURING_ALLOC,
  WASI_ALLOWED_DURING_START,
  WASI_FUNCTION_NAMES,
  type WasiHost,
  wasiFunctions,
} from '../../gateway/abi/wasi.js';
import type { FuncType, ValType } from '../../gateway/abi/wasm-types.js';
import type { GatewayError } from '../../gateway/errors.js';
import { readImports } from '../../gateway/modules/wasm/imports.js';
import { startVm } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/**
 * The preview1 signatures, written out independently of the implementation: `i` is an i32 param,
 * `I` an i64. Every function returns an i32 errno except proc_exit.
 */
const SIGNATURES: Record<string, string> = {
  args_get: 'ii', args_sizes_get: 'ii', environ_get: 'ii', environ_sizes_get: 'ii',
  clock_res_get: 'ii', clock_time_get: 'iIi',
  fd_advise: 'iIIi', fd_allocate: 'iII', fd_close: 'i', fd_datasync: 'i', fd_fdstat_get: 'ii',
  fd_fdstat_set_flags: 'ii', fd_fdstat_set_rights: 'iII', fd_filestat_get: 'ii', fd_filestat_set_size: 'iI',
  fd_filestat_set_times: 'iIIi', fd_pread: 'iiiIi', fd_prestat_get: 'ii', fd_prestat_dir_name: 'iii',
  fd_pwrite: 'iiiIi', fd_read: 'iiii', fd_readdir: 'iiiIi', fd_renumber: 'ii', fd_seek: 'iIii', fd_sync: 'i',
  fd_tell: 'ii', fd_write: 'iiii',
  path_create_directory: 'iii', path_filestat_get: 'iiiii', path_filestat_set_times: 'iiiiIIi',
  path_link: 'iiiiiii', path_open: 'iiiiiIIii', path_readlink: 'iiiiii', path_remove_directory: 'iii',
  path_rename: 'iiiiii', path_symlink: 'iiiii', path_unlink_file: 'iii',
  poll_oneoff: 'iiii', proc_exit: 'i', proc_raise: 'i', random_get: 'ii', sched_yield: '',
  sock_accept: 'iii', sock_recv: 'iiiiii', sock_send: 'iiiii', sock_shutdown: 'ii',
};

const valTypes = (sig: string): ValType[] => [...sig].map((c) => (c === 'I' ? 'i64' : 'i32'));

const watParams = (sig: string): string => (sig === '' ? '' : `(param ${valTypes(sig).join(' ')})`);
const watType = (sig: string, name: string): string => `${watParams(sig)} ${name === 'proc_exit' ? '' : '(result i32)'}`;

/** The preview1 type of `name` from the independent table above. */
const realType = (name: string, sig: string): FuncType => ({ params: valTypes(sig), results: name === 'proc_exit' ? [] : ['i32'] });

const WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'] as const;

/** A Proxy-Wasm guest importing every WASI function under both module names, typed by `typeOf`. */
const wasiGuest = (typeOf: (name: string, sig: string) => string): string => guestWat({
  imports: Object.entries(SIGNATURES).flatMap(([name, sig]) =>
    WASI_MODULES.map((mod) => `(import "${mod}" "${name}" (func ${typeOf(name, sig)}))`)).join('\n'),
  body: '',
});

let compile: (wat: string) => WebAssembly.Module;
beforeAll(async () => {
  const wabt = await (await import('wabt')).default();
  compile = (wat) => new WebAssembly.Module(wabt.parseWat('guest.wat', wat).toBinary({}).buffer as Uint8Array<ArrayBuffer>);
});

const WALL_NS = 1_700_000_000_123_456_789n;
const MONOTONIC_NS = 0x0102_0304_0506_0708n;
const POISON = 0xaa;

let memory: WebAssembly.Memory;
let logs: [LogLevel, string][];
let env: string[];
let host: WasiHost;
let fns: ReturnType<typeof wasiFunctions>;

function makeHost(mem: GuestMemory): WasiHost {
  return {
    mem,
    environment: () => env,
    log: (level, message) => logs.push([level, message]),
    wallNs: () => WALL_NS,
    monotonicNs: () => MONOTONIC_NS,
  };
}

beforeEach(() => {
  memory = new WebAssembly.Memory({ initial: 1 });
  new Uint8Array(memory.buffer).fill(POISON);
  const mem = new GuestMemory();
  mem.attach(memory);
  logs = [];
  env = [];
  host = makeHost(mem);
  fns = wasiFunctions(host);
});

const PAGE = 65536;
const bytesAt = (ptr: number, len: number): number[] => [...new Uint8Array(memory.buffer, ptr, len)];
const u32At = (ptr: number): number => new DataView(memory.buffer).getUint32(ptr, true);
const u64At = (ptr: number): bigint => new DataView(memory.buffer).getBigUint64(ptr, true);
const poison = (len: number): number[] => new Array(len).fill(POISON);
function put(ptr: number, text: string): void {
  new Uint8Array(memory.buffer).set(Buffer.from(text, 'utf8'), ptr);
}
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
function putIovecs(ptr: number, iovecs: [number, number][]): void {
  const view = new DataView(memory.buffer);
  iovecs.forEach(([buf, len], i) => {
    view.setUint32(ptr + 8 * i, buf, true);
    view.setUint32(ptr + 8 * i + 4, len, true);
  });
}

describe('the WASI function set', () => {
  it('has the 45 preview1 functions cpp-host registers plus proc_raise, each under its import name', () => {
    expect(WASI_FUNCTION_NAMES.length).toBe(46);
    expect([...WASI_FUNCTION_NAMES].sort()).toEqual(Object.keys(SIGNATURES).sort());
    expect(Object.keys(fns).sort()).toEqual(Object.keys(SIGNATURES).sort());
  });

  it('declares for each of them, under both module names, exactly the preview1 params and results', () => {
    const expected = Object.fromEntries(Object.entries(SIGNATURES).map(([name, sig]) => [name, [realType(name, sig)]]));
    for (const module of WASI_MODULES) {
      expect(HOST_SIGNATURES[module], module).toEqual(expected);
    }
  });

  it('links a guest importing all 46 under both module names with the real types, checked from its typed import section', () => {
    const wat = wasiGuest((name, sig) => watType(sig, name));
    const imports = readImports(watToBytes(wat));
    expect(imports).toHaveLength(92);
    expect(imports.every((imp) => sameFuncType(imp.type!, realType(imp.name, SIGNATURES[imp.name])))).toBe(true);
    expect(startVm(wat, { imports }).vm.failed).toBe(false);
  });

  it.each([
    ['a parameter', (name: string, sig: string) => watType(sig.includes('I') ? sig.replace('I', 'i') : `${sig}i`, name)],
    ['the result', (name: string, sig: string) => `${watParams(sig)} ${name === 'proc_exit' ? '(result i32)' : ''}`],
  ])('refuses each of the 92 imports when %s differs from preview1, naming expected and got', (_, wrongType) => {
    const wat = wasiGuest(wrongType);
    const imports = readImports(watToBytes(wat));
    let message = '';
    try {
      startVm(wat, { imports });
    } catch (err) {
      expect((err as GatewayError).code).toBe('GW_ERR_ABI_LINK');
      message = (err as GatewayError).message;
    }
    const refused = message.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('wasi_'));
    expect(refused).toEqual(imports.map((imp) =>
      `${imp.module}.${imp.name}: expected ${formatFuncType(realType(imp.name, SIGNATURES[imp.name]))}, got ${formatFuncType(imp.type!)}`));
    expect(refused).toHaveLength(92);
  });

  it('answers every function called from a guest with i64 arguments as BigInt, without throwing', () => {
    const names = Object.keys(SIGNATURES).filter((name) => name !== 'proc_exit');
    const imports = names.map((name) => `(import "wasi_snapshot_preview1" "${name}" (func $${name} ${watType(SIGNATURES[name], name)}))`);
    const callers = names.map((name) => {
      const args = [...SIGNATURES[name]].map((c) => (c === 'I' ? '(i64.const -1)' : '(i32.const 0)')).join(' ');
      return `(func (export "${name}") (result i32) (call $${name} ${args}))`;
    });
    const module = compile(`(module ${imports.join('\n')} (memory (export "memory") 1) ${callers.join('\n')})`);
    const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: fns });
    host.mem.attach(instance.exports.memory as WebAssembly.Memory);
    for (const name of names) {
      expect(typeof (instance.exports[name] as () => number)(), name).toBe('number');
    }
  });

  it('allows during start the functions of reference 2.1.1, which exclude proc_exit', () => {
    for (const name of ['fd_write', 'args_sizes_get', 'args_get', 'environ_sizes_get', 'environ_get', 'clock_time_get',
      'clock_res_get', 'random_get', 'poll_oneoff', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_prestat_get',
      'fd_seek', 'path_open', 'path_link', 'sock_recv']) {
      expect(WASI_ALLOWED_DURING_START.has(name), name).toBe(true);
    }
    expect(WASI_ALLOWED_DURING_START.has('proc_exit')).toBe(false);
    expect(WASI_ALLOWED_DURING_START.has('sched_yield')).toBe(true);
    expect(WASI_ALLOWED_DURING_START.size).toBe(44);
  });

  it('allows during allocation only fd_write, clock_time_get and poll_oneoff', () => {
    expect([...WASI_ALLOWED_DURING_ALLOC].sort()).toEqual(['clock_time_get', 'fd_write', 'poll_oneoff']);
  });
});

describe('fd_write', () => {
  it('logs what a guest writes to stdout at INFO, iovecs concatenated and one trailing newline dropped', () => {
    const module = compile(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hello ")
      (data (i32.const 32) "world\\n")
      (data (i32.const 64) "\\10\\00\\00\\00\\06\\00\\00\\00\\20\\00\\00\\00\\06\\00\\00\\00")
      (func (export "run") (result i32) (call $fd_write (i32.const 1) (i32.const 64) (i32.const 2) (i32.const 100))))`);
    const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: fns });
    const guestMemory = instance.exports.memory as WebAssembly.Memory;
    host.mem.attach(guestMemory);
    expect((instance.exports.run as () => number)()).toBe(0);
    expect(logs).toEqual([[LogLevel.INFO, 'hello world']]);
    expect(new DataView(guestMemory.buffer).getUint32(100, true)).toBe(12);
  });

  it('logs stderr at ERROR and drops only one of several trailing newlines', () => {
    put(16, 'oops\n\n');
    putIovecs(64, [[16, 6]]);
    expect(fns.fd_write(2, 64, 1, 100)).toBe(0);
    expect(logs).toEqual([[LogLevel.ERROR, 'oops\n']]);
    expect(bytesAt(100, 5)).toEqual([6, 0, 0, 0, POISON]);
  });

  it('decodes UTF-8 and logs an empty line for a lone newline', () => {
    put(16, 'héllo');
    put(32, '\n');
    putIovecs(64, [[16, 6], [32, 1]]);
    expect(fns.fd_write(1, 64, 1, 100)).toBe(0);
    expect(fns.fd_write(1, 72, 1, 100)).toBe(0);
    expect(logs).toEqual([[LogLevel.INFO, 'héllo'], [LogLevel.INFO, '']]);
  });

  it('skips empty iovecs, whatever their pointer, and logs nothing for an empty write', () => {
    putIovecs(64, [[0xffff_ff00, 0], [0, 0]]);
    expect(fns.fd_write(1, 64, 2, 100)).toBe(0);
    expect(fns.fd_write(1, 64, 0, 104)).toBe(0);
    expect(logs).toEqual([]);
    expect(bytesAt(100, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('returns BADF (8) for any fd but 1 and 2, before looking at memory', () => {
    for (const fd of [0, 3, -1]) expect(fns.fd_write(fd, 0xffff_fff0, 1, 0xffff_fff0)).toBe(8);
    expect(logs).toEqual([]);
  });

  it('returns FAULT (21) for an iovec array, buffer or nwritten pointer outside memory', () => {
    putIovecs(64, [[16, 4]]);
    expect(fns.fd_write(1, PAGE - 4, 1, 100)).toBe(21);
    putIovecs(72, [[PAGE - 2, 4]]);
    expect(fns.fd_write(1, 72, 1, 100)).toBe(21);
    expect(fns.fd_write(1, 64, 1, PAGE - 2)).toBe(21);
    expect(bytesAt(100, 4)).toEqual(poison(4));
  });

  it('returns FAULT (21) for an iovec array whose end wraps past 2^32 back into memory', () => {
    putIovecs(0, [[16, 4]]);
    expect(fns.fd_write(1, 0xffff_fff8, 2, 100)).toBe(21);
    expect(logs).toEqual([]);
  });

  it('counts every byte but logs at most 64 KiB of a write that repeats one buffer', () => {
    put(16, 'x'.repeat(40_000));
    putIovecs(64_000, [[16, 40_000], [16, 40_000]]);
    expect(fns.fd_write(1, 64_000, 2, 100)).toBe(0);
    expect(u32At(100)).toBe(80_000);
    expect(logs[0][1]).toBe('x'.repeat(64 * 1024));
  });
});

describe('the other fd_* functions', () => {
  it('fd_pwrite logs stdout like fd_write, ignoring the offset, and returns BADF for other fds', () => {
    put(16, 'at offset\n');
    putIovecs(64, [[16, 10]]);
    expect(fns.fd_pwrite(1, 64, 1, 123n, 100)).toBe(0);
    expect(u32At(100)).toBe(10);
    expect(fns.fd_pwrite(5, 64, 1, 0n, 100)).toBe(8);
    expect(logs).toEqual([[LogLevel.INFO, 'at offset']]);
  });

  it('fd_fdstat_get writes the 24-byte stdio fdstat with rights_base FD_WRITE for fds 1 and 2', () => {
    for (const fd of [1, 2]) {
      expect(fns.fd_fdstat_get(fd, 200)).toBe(0);
      expect(bytesAt(200, 25)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, POISON]);
    }
  });

  it('fd_fdstat_get returns BADF for other fds and FAULT for a bad pointer, writing nothing', () => {
    expect(fns.fd_fdstat_get(0, 200)).toBe(8);
    expect(fns.fd_fdstat_get(3, 200)).toBe(8);
    expect(fns.fd_fdstat_get(1, PAGE - 23)).toBe(21);
    expect(bytesAt(200, 24)).toEqual(poison(24));
    expect(bytesAt(PAGE - 23, 23)).toEqual(poison(23));
  });

  it('fd_seek and fd_close log an error and report success, as cpp-host does', () => {
    expect(fns.fd_seek(3, -1n, 0, 100)).toBe(0);
    expect(fns.fd_close(3)).toBe(0);
    expect(logs).toEqual([[LogLevel.ERROR, 'wasi_unstable fd_seek'], [LogLevel.ERROR, 'wasi_unstable fd_close']]);
    expect(bytesAt(100, 8)).toEqual(poison(8));
  });

  it('fd_tell writes offset 0 for stdio and returns BADF otherwise', () => {
    expect(fns.fd_tell(2, 100)).toBe(0);
    expect(bytesAt(100, 9)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, POISON]);
    expect(fns.fd_tell(4, 200)).toBe(8);
    expect(bytesAt(200, 8)).toEqual(poison(8));
    expect(fns.fd_tell(1, PAGE - 4)).toBe(21);
  });

  it('fd_readdir writes bufused 0 and returns 20, the value cpp-host returns', () => {
    expect(fns.fd_readdir(3, 16, 64, 0n, 100)).toBe(20);
    expect(bytesAt(100, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(bytesAt(16, 64)).toEqual(poison(64));
  });

  it('answers success for stdio and BADF otherwise from the sync, size, times, rights and allocate stubs', () => {
    const calls: [string, (fd: number) => unknown][] = [
      ['fd_datasync', (fd) => fns.fd_datasync(fd)],
      ['fd_sync', (fd) => fns.fd_sync(fd)],
      ['fd_filestat_set_size', (fd) => fns.fd_filestat_set_size(fd, 10n)],
      ['fd_filestat_set_times', (fd) => fns.fd_filestat_set_times(fd, 1n, 2n, 0)],
      ['fd_fdstat_set_rights', (fd) => fns.fd_fdstat_set_rights(fd, 64n, 0n)],
      ['fd_allocate', (fd) => fns.fd_allocate(fd, 0n, 100n)],
    ];
    for (const [name, call] of calls) {
      expect([call(1), call(2), call(0), call(3)], name).toEqual([0, 0, 8, 8]);
    }
  });

  it('returns the fixed codes of the remaining fd stubs', () => {
    expect(fns.fd_read(0, 64, 1, 100)).toBe(52);
    expect(fns.fd_pread(3, 64, 1, 0n, 100)).toBe(52);
    expect(fns.fd_fdstat_set_flags(1, 0)).toBe(52);
    expect(fns.fd_prestat_dir_name(3, 16, 8)).toBe(52);
    expect(fns.fd_prestat_get(3, 100)).toBe(8);
    expect(fns.fd_filestat_get(1, 100)).toBe(8);
    expect(fns.fd_advise(3, 0n, 0n, 0)).toBe(0);
    expect(fns.fd_renumber(1, 5)).toBe(58);
    expect(fns.fd_renumber(4, 5)).toBe(8);
    expect(bytesAt(0, 256)).toEqual(poison(256));
  });
});

describe('path_* and sock_*', () => {
  it('path_open returns NOENT (44) and the other path functions NOTSUP (58), with the real arities', () => {
    expect(fns.path_open(3, 0, 16, 4, 0, 0n, 0n, 0, 100)).toBe(44);
    expect(fns.path_create_directory(3, 16, 4)).toBe(58);
    expect(fns.path_remove_directory(3, 16, 4)).toBe(58);
    expect(fns.path_unlink_file(3, 16, 4)).toBe(58);
    expect(fns.path_rename(3, 16, 4, 3, 32, 4)).toBe(58);
    expect(fns.path_filestat_get(3, 0, 16, 4, 100)).toBe(58);
    expect(fns.path_filestat_set_times(3, 0, 16, 4, 1n, 2n, 0)).toBe(58);
    expect(fns.path_link(3, 0, 16, 4, 3, 32, 4)).toBe(58);
    expect(fns.path_symlink(16, 4, 3, 32, 4)).toBe(58);
    expect(bytesAt(0, 256)).toEqual(poison(256));
  });

  it('path_readlink writes bufused 0 before returning NOTSUP', () => {
    expect(fns.path_readlink(3, 16, 4, 32, 8, 100)).toBe(58);
    expect(bytesAt(100, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(fns.path_readlink(3, 16, 4, 32, 8, PAGE)).toBe(21);
  });

  it('sock_* zero their outputs (u32 lengths and fd, u16 roflags) and return NOTSUP', () => {
    expect(fns.sock_accept(3, 0, 100)).toBe(58);
    expect(bytesAt(100, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(fns.sock_recv(3, 16, 1, 0, 200, 210)).toBe(58);
    expect(bytesAt(200, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(bytesAt(210, 3)).toEqual([0, 0, POISON]);
    expect(fns.sock_send(3, 16, 1, 0, 300)).toBe(58);
    expect(bytesAt(300, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(fns.sock_shutdown(3, 2)).toBe(58);
    expect(fns.sock_accept(3, 0, PAGE - 1)).toBe(21);
  });
});

describe('environment and arguments', () => {
  it('environ_sizes_get counts the plugin environment entries and their bytes with NULs', () => {
    env = ['A=1', 'KEY=välue'];
    expect(fns.environ_sizes_get(100, 104)).toBe(0);
    expect([u32At(100), u32At(104)]).toEqual([2, 4 + 11]);
  });

  it('environ_get writes one pointer per entry, then the NUL-terminated entries back to back', () => {
    env = ['A=1', 'KEY=value'];
    expect(fns.environ_get(100, 200)).toBe(0);
    expect(bytesAt(100, 9)).toEqual([200, 0, 0, 0, 204, 0, 0, 0, POISON]);
    expect(bytesAt(200, 15)).toEqual([...Buffer.from('A=1\0KEY=value\0'), POISON]);
  });

  it('serves an empty environment as zero entries and writes nothing from environ_get', () => {
    expect(fns.environ_sizes_get(100, 104)).toBe(0);
    expect([u32At(100), u32At(104)]).toEqual([0, 0]);
    expect(fns.environ_get(200, 300)).toBe(0);
    expect(bytesAt(200, 8)).toEqual(poison(8));
  });

  it('environ_get returns FAULT and writes nothing when either region is outside memory', () => {
    env = ['A=1'];
    expect(fns.environ_get(100, PAGE - 3)).toBe(21);
    expect(fns.environ_get(PAGE - 2, 200)).toBe(21);
    expect(bytesAt(100, 4)).toEqual(poison(4));
    expect(bytesAt(200, 4)).toEqual(poison(4));
  });

  it('args_sizes_get writes 0 and 0, and args_get writes nothing', () => {
    expect(fns.args_sizes_get(100, 104)).toBe(0);
    expect(bytesAt(100, 9)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, POISON]);
    expect(fns.args_get(200, 300)).toBe(0);
    expect(bytesAt(200, 4)).toEqual(poison(4));
    expect(fns.args_sizes_get(PAGE - 2, 104)).toBe(21);
  });
});

describe('clocks, randomness and scheduling', () => {
  it('clock_time_get writes wall-clock ns for id 0 and monotonic ns for id 1, as u64 little-endian', () => {
    expect(fns.clock_time_get(0, 1000n, 100)).toBe(0);
    expect(u64At(100)).toBe(WALL_NS);
    expect(fns.clock_time_get(1, 0n, 200)).toBe(0);
    expect(bytesAt(200, 9)).toEqual([8, 7, 6, 5, 4, 3, 2, 1, POISON]);
  });

  it('clock_time_get returns NOTSUP for other clocks and FAULT for a bad pointer', () => {
    expect(fns.clock_time_get(2, 0n, 100)).toBe(58);
    expect(fns.clock_time_get(3, 0n, 100)).toBe(58);
    expect(bytesAt(100, 8)).toEqual(poison(8));
    expect(fns.clock_time_get(0, 0n, PAGE - 7)).toBe(21);
  });

  it('clock_res_get reports 1 ns for ids 0 and 1 and NOTSUP otherwise', () => {
    expect(fns.clock_res_get(0, 100)).toBe(0);
    expect(fns.clock_res_get(1, 200)).toBe(0);
    expect([u64At(100), u64At(200)]).toEqual([1n, 1n]);
    expect(fns.clock_res_get(2, 300)).toBe(58);
    expect(bytesAt(300, 8)).toEqual(poison(8));
  });

  it('random_get fills exactly the requested bytes with random data', () => {
    expect(fns.random_get(256, 32)).toBe(0);
    expect(bytesAt(256, 32)).not.toEqual(poison(32));
    expect(bytesAt(252, 4)).toEqual(poison(4));
    expect(bytesAt(288, 4)).toEqual(poison(4));
    expect(fns.random_get(0, 65536)).toBe(0);
  });

  it('random_get returns INVAL (28) above 64 KiB, 0 for zero bytes at any pointer, FAULT out of bounds', () => {
    expect(fns.random_get(0, 65537)).toBe(28);
    expect(fns.random_get(-1, 0)).toBe(0);
    expect(fns.random_get(PAGE - 8, 16)).toBe(21);
    expect(bytesAt(PAGE - 8, 8)).toEqual(poison(8));
  });

  it('sched_yield returns 0 and poll_oneoff writes nevents 0 and returns 0 without waiting', () => {
    expect(fns.sched_yield()).toBe(0);
    expect(fns.poll_oneoff(16, 64, 1, 100)).toBe(0);
    expect(bytesAt(100, 5)).toEqual([0, 0, 0, 0, POISON]);
    expect(fns.poll_oneoff(16, 64, 1, PAGE)).toBe(21);
  });
});

describe('memory faults and proc_exit', () => {
  it('returns FAULT rather than throwing when no memory is attached yet', () => {
    const detached = wasiFunctions(makeHost(new GuestMemory()));
    expect(detached.clock_time_get(0, 0n, 0)).toBe(21);
    expect(detached.fd_write(1, 0, 1, 0)).toBe(21);
  });

  it('writes into grown memory, not a stale view of the old buffer', () => {
    memory.grow(1);
    expect(fns.clock_time_get(0, 0n, PAGE + 8)).toBe(0);
    expect(u64At(PAGE + 8)).toBe(WALL_NS);
  });

  it('proc_exit throws ProcExit carrying the exit code as a u32', () => {
    expect(thrownBy(() => fns.proc_exit(3))).toEqual(new ProcExit(3));
    expect((thrownBy(() => fns.proc_exit(-1)) as ProcExit).code).toBe(0xffff_ffff);
  });

  it('proc_exit called by a guest unwinds the exported call with ProcExit', () => {
    const module = compile(`(module
      (import "wasi_unstable" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (func (export "run") (call $proc_exit (i32.const 7)) unreachable))`);
    const instance = new WebAssembly.Instance(module, { wasi_unstable: fns });
    const thrown = thrownBy(instance.exports.run as () => void);
    expect(thrown).toBeInstanceOf(ProcExit);
    expect((thrown as ProcExit).code).toBe(7);
  });
});
