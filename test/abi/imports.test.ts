/**
 * The import object (gateway/abi/imports.ts): every env name of reference §3.16, the toolchain
 * extras and all of WASI under both module names link with their real signatures, so a module
 * missing any hostcall it imports is impossible; and the phase restrictions of §2.1.1 trap
 * exactly the hostcalls cpp-host traps while the VM starts or allocates.
 */
import { describe, expect, it } from 'vitest';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import { LogLevel, Status } from '../../gateway/abi/enums.js';
import { WASI_MODULES, envFunctions } from '../../gateway/abi/imports.js';
import { WASI_FUNCTION_NAMES } from '../../gateway/abi/wasi.js';
import { GatewayError } from '../../gateway/errors.js';
import { TestStream, startVm, text } from '../helpers/host.js';
import { compileWat, guestWat } from '../helpers/wat.js';

/** Signature notation: one letter per parameter, `i` i32, `I` i64; `-> i32` unless marked void. */
interface Sig { readonly params: string; readonly void?: true }

/** Reference §3.16, written out independently of the host (every function returns an i32). */
const CHEAT_SHEET: Readonly<Record<string, Sig>> = {
  proxy_log: { params: 'iii' },
  proxy_get_log_level: { params: 'i' },
  proxy_get_current_time_nanoseconds: { params: 'i' },
  proxy_set_tick_period_milliseconds: { params: 'i' },
  proxy_get_configuration: { params: 'ii' },
  proxy_get_buffer_bytes: { params: 'iiiii' },
  proxy_get_buffer_status: { params: 'iii' },
  proxy_set_buffer_bytes: { params: 'iiiii' },
  proxy_get_header_map_pairs: { params: 'iii' },
  proxy_set_header_map_pairs: { params: 'iii' },
  proxy_get_header_map_size: { params: 'ii' },
  proxy_get_header_map_value: { params: 'iiiii' },
  proxy_add_header_map_value: { params: 'iiiii' },
  proxy_replace_header_map_value: { params: 'iiiii' },
  proxy_remove_header_map_value: { params: 'iii' },
  proxy_continue_stream: { params: 'i' },
  proxy_close_stream: { params: 'i' },
  proxy_continue_request: { params: '' },
  proxy_continue_response: { params: '' },
  proxy_clear_route_cache: { params: '' },
  proxy_send_local_response: { params: 'iiiiiiii' },
  proxy_get_status: { params: 'iii' },
  proxy_http_call: { params: 'iiiiiiiiii' },
  proxy_grpc_call: { params: 'iiiiiiiiiiii' },
  proxy_grpc_stream: { params: 'iiiiiiiii' },
  proxy_grpc_send: { params: 'iiii' },
  proxy_grpc_cancel: { params: 'i' },
  proxy_grpc_close: { params: 'i' },
  proxy_get_shared_data: { params: 'iiiii' },
  proxy_set_shared_data: { params: 'iiiii' },
  proxy_register_shared_queue: { params: 'iii' },
  proxy_resolve_shared_queue: { params: 'iiiii' },
  proxy_enqueue_shared_queue: { params: 'iii' },
  proxy_dequeue_shared_queue: { params: 'iii' },
  proxy_define_metric: { params: 'iiii' },
  proxy_increment_metric: { params: 'iI' },
  proxy_record_metric: { params: 'iI' },
  proxy_get_metric: { params: 'ii' },
  proxy_get_property: { params: 'iiii' },
  proxy_set_property: { params: 'iiii' },
  proxy_set_effective_context: { params: 'i' },
  proxy_done: { params: '' },
  proxy_call_foreign_function: { params: 'iiiiii' },
};

/** Non-Proxy-Wasm names toolchains import from `env` (§2.4, §2.5). */
const ENV_EXTRAS: Readonly<Record<string, Sig>> = {
  emscripten_notify_memory_growth: { params: 'i', void: true },
  pthread_equal: { params: 'ii' },
  abort: { params: 'iiii', void: true },
};

/** WASI preview1 (§2.4), the real signatures: path_link 7 and path_symlink 5 parameters. */
const WASI: Readonly<Record<string, Sig>> = {
  args_get: { params: 'ii' },
  args_sizes_get: { params: 'ii' },
  environ_get: { params: 'ii' },
  environ_sizes_get: { params: 'ii' },
  clock_res_get: { params: 'ii' },
  clock_time_get: { params: 'iIi' },
  fd_advise: { params: 'iIIi' },
  fd_allocate: { params: 'iII' },
  fd_close: { params: 'i' },
  fd_datasync: { params: 'i' },
  fd_fdstat_get: { params: 'ii' },
  fd_fdstat_set_flags: { params: 'ii' },
  fd_fdstat_set_rights: { params: 'iII' },
  fd_filestat_get: { params: 'ii' },
  fd_filestat_set_size: { params: 'iI' },
  fd_filestat_set_times: { params: 'iIIi' },
  fd_pread: { params: 'iiiIi' },
  fd_prestat_get: { params: 'ii' },
  fd_prestat_dir_name: { params: 'iii' },
  fd_pwrite: { params: 'iiiIi' },
  fd_read: { params: 'iiii' },
  fd_readdir: { params: 'iiiIi' },
  fd_renumber: { params: 'ii' },
  fd_seek: { params: 'iIii' },
  fd_sync: { params: 'i' },
  fd_tell: { params: 'ii' },
  fd_write: { params: 'iiii' },
  path_create_directory: { params: 'iii' },
  path_filestat_get: { params: 'iiiii' },
  path_filestat_set_times: { params: 'iiiiIIi' },
  path_link: { params: 'iiiiiii' },
  path_open: { params: 'iiiiiIIii' },
  path_readlink: { params: 'iiiiii' },
  path_remove_directory: { params: 'iii' },
  path_rename: { params: 'iiiiii' },
  path_symlink: { params: 'iiiii' },
  path_unlink_file: { params: 'iii' },
  poll_oneoff: { params: 'iiii' },
  proc_exit: { params: 'i', void: true },
  proc_raise: { params: 'i' },
  random_get: { params: 'ii' },
  sched_yield: { params: '' },
  sock_accept: { params: 'iii' },
  sock_recv: { params: 'iiiiii' },
  sock_send: { params: 'iiiii' },
  sock_shutdown: { params: 'ii' },
};

const watFuncType = ({ params, void: none }: Sig): string =>
  `${params === '' ? '' : `(param ${[...params].map((c) => (c === 'I' ? 'i64' : 'i32')).join(' ')})`}${none ? '' : ' (result i32)'}`;
const zeroArgs = ({ params }: Sig): string => [...params].map((c) => (c === 'I' ? '(i64.const 0)' : '(i32.const 0)')).join(' ');
const importLine = (module: string, name: string, sig: Sig, id = `$${module}.${name}`): string =>
  `(import "${module}" "${name}" (func ${id} ${watFuncType(sig)}))`;

interface Imported { readonly module: string; readonly name: string; readonly sig: Sig }

const EVERYTHING: readonly Imported[] = [
  ...Object.entries({ ...CHEAT_SHEET, ...ENV_EXTRAS }).map(([name, sig]) => ({ module: 'env', name, sig })),
  ...WASI_MODULES.flatMap((module) => WASI_FUNCTION_NAMES.map((name) => ({ module, name, sig: WASI[name] }))),
];

/** Calls that end the guest call by design (a trap), left out of the "never throws" sweep. */
const TRAPPING = new Set(['abort', 'proc_exit']);
const RESULTS = 4096;

/**
 * A guest importing everything; its `run` export calls each non-trapping import with all-zero
 * arguments and stores each i32 result at RESULTS + 4 * index (void imports store nothing).
 */
const everythingGuest = guestWat({
  imports: EVERYTHING.map(({ module, name, sig }) => importLine(module, name, sig)).join('\n  '),
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "run")
    ${EVERYTHING.map(({ module, name, sig }, i) => {
      if (TRAPPING.has(name)) return '';
      const call = `(call $${module}.${name} ${zeroArgs(sig)})`;
      return sig.void ? call : `(i32.store (i32.const ${RESULTS + 4 * i}) ${call})`;
    }).join('\n    ')})`,
});

const STATUSES: readonly number[] = Object.values(Status);

describe('the import object', () => {
  it('knows the real signature of every WASI function the host provides', () => {
    expect([...WASI_FUNCTION_NAMES].sort()).toEqual(Object.keys(WASI).sort());
  });

  it('exposes every env name of the §3.16 cheat-sheet and the toolchain extras through envFunctions', () => {
    const { vm } = startVm(guestWat({ body: '' }));
    const names = Object.keys(envFunctions(vm));
    for (const name of [...Object.keys(CHEAT_SHEET), ...Object.keys(ENV_EXTRAS)]) expect(names).toContain(name);
  });

  it('links and starts a module importing every §3.16 hostcall, the extras and all WASI under both module names', () => {
    const { vm } = startVm(everythingGuest, { name: 'everything.wasm' });
    expect(vm.failed).toBe(false);
    expect(WebAssembly.Module.imports(compileWat(everythingGuest))).toHaveLength(43 + 3 + 2 * 46);
  });

  it('answers every hostcall with a status, never a throw, when a stream calls it with all-zero arguments', () => {
    const { vm } = startVm(everythingGuest);
    const root = vm.createRoot({ name: 'p', rootId: '', configuration: text('') });
    const stream = vm.createStream(root, new TestStream([[':path', '/']]));
    expect(vm.call(stream, vm.instance.exports.run as () => number)).not.toBe(CALL_FAILED);
    expect(vm.failed).toBe(false);
    EVERYTHING.forEach(({ module, name, sig }, i) => {
      if (TRAPPING.has(name) || sig.void) return;
      const result = vm.mem.u32(RESULTS + 4 * i);
      if (module === 'env' && name !== 'pthread_equal') expect(STATUSES, `env.${name} returned ${result}`).toContain(result);
      else expect(result, `${module}.${name} returned ${result}`).toBeLessThan(77); // a WASI errno
    });
  });

  it('answers env.pthread_equal(a, b) with a == b', () => {
    const { vm } = startVm(guestWat({
      imports: importLine('env', 'pthread_equal', ENV_EXTRAS.pthread_equal, '$eq'),
      body: `(func (export "eq") (param i32 i32) (result i32) (call $eq (local.get 0) (local.get 1)))`,
    }));
    const eq = vm.instance.exports.eq as (a: number, b: number) => number;
    expect([eq(7, 7), eq(7, 8)]).toEqual([1, 0]);
  });
});

describe('phase restrictions (reference §2.1.1)', () => {
  const startFailure = (wat: string): GatewayError => {
    try {
      startVm(wat, { name: 'restricted.wasm' });
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      return err as GatewayError;
    }
    throw new Error('the module started');
  };

  it.each([
    'proxy_get_header_map_value', 'proxy_get_property', 'proxy_set_tick_period_milliseconds',
    'proxy_define_metric', 'proxy_set_shared_data', 'proxy_continue_stream', 'proxy_done',
  ])('fails start-up with GW_ERR_ABI_START and restricted_callback when _initialize calls %s', (name) => {
    const err = startFailure(guestWat({
      imports: importLine('env', name, CHEAT_SHEET[name], '$call'),
      body: `(func $init (export "_initialize") (drop (call $call ${zeroArgs(CHEAT_SHEET[name])})))`,
    }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toContain(`module restricted.wasm: _initialize failed: restricted_callback: ${name} is not allowed during VM start-up`);
    expect(err.message).toContain('at init');
  });

  it('fails start-up with GW_ERR_ABI_START when the start section calls a restricted hostcall', () => {
    const err = startFailure(guestWat({
      imports: importLine('env', 'proxy_get_property', CHEAT_SHEET.proxy_get_property, '$get'),
      body: `(func $ctor (drop (call $get (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))) (start $ctor)`,
    }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toContain('instantiation (start section) failed: restricted_callback: proxy_get_property');
  });

  it('logs proxy_log and WASI fd_write calls made during _initialize, with no plugin as origin', () => {
    const { vm, logger } = startVm(guestWat({
      imports: `${importLine('env', 'proxy_log', CHEAT_SHEET.proxy_log, '$log')}
      ${importLine('wasi_snapshot_preview1', 'fd_write', WASI.fd_write, '$fd_write')}`,
      body: `
      (data (i32.const 16) "starting up")
      (data (i32.const 32) "stdout line\\n")
      (func (export "_initialize")
        (i32.store (i32.const 0) (call $log (i32.const 3) (i32.const 16) (i32.const 11)))
        (i32.store (i32.const 48) (i32.const 32))
        (i32.store (i32.const 52) (i32.const 12))
        (i32.store (i32.const 4) (call $fd_write (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 56))))`,
    }));
    expect(logger.lines).toEqual([
      { level: LogLevel.WARN, message: 'starting up', origin: null },
      { level: LogLevel.INFO, message: 'stdout line', origin: null },
    ]);
    expect([vm.mem.u32(0), vm.mem.u32(4), vm.mem.u32(56)]).toEqual([Status.OK, 0, 12]);
  });

  /** A guest whose allocator first calls `hostcall`; on_request_headers needs one allocation. */
  const allocatorCalling = (imports: string, call: string): string => `(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  ${imports}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 16) ":path")
  (data (i32.const 32) "allocating")
  (func $alloc (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    ${call}
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $on_request_headers (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 0) (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 8) (i32.const 12)))
    (i32.const 0))
)`;

  it('fails the VM with GW_ERR_ABI_RESTRICTED when the allocator calls proxy_get_property', () => {
    const { vm } = startVm(allocatorCalling(
      importLine('env', 'proxy_get_property', CHEAT_SHEET.proxy_get_property, '$prop'),
      '(drop (call $prop (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))'));
    const failures: string[] = [];
    vm.onFail((f) => failures.push(f.code));
    const root = vm.createRoot({ name: 'p', rootId: '', configuration: text('') });
    const stream = vm.createStream(root, new TestStream([[':path', '/x']]));
    expect(stream.onRequestHeaders(1, true)).toBe(CALL_FAILED);
    expect(failures).toEqual(['GW_ERR_ABI_RESTRICTED']);
    expect(vm.failure!.message).toBe('restricted_callback: proxy_get_property is not allowed during memory allocation');
    expect(vm.failure!.backtrace.join('\n')).toMatch(/alloc[\s\S]*on_request_headers/);
    expect(vm.mem.u32(0)).toBe(0); // the enclosing hostcall never returned a status
  });

  it('lets the allocator call proxy_log, fd_write, clock_time_get and poll_oneoff', () => {
    const { vm, logger } = startVm(allocatorCalling(`
      ${importLine('env', 'proxy_log', CHEAT_SHEET.proxy_log, '$log')}
      ${importLine('wasi_snapshot_preview1', 'fd_write', WASI.fd_write, '$fd_write')}
      ${importLine('wasi_snapshot_preview1', 'clock_time_get', WASI.clock_time_get, '$clock')}
      ${importLine('wasi_snapshot_preview1', 'poll_oneoff', WASI.poll_oneoff, '$poll')}`, `
      (drop (call $log (i32.const 1) (i32.const 32) (i32.const 10)))
      (i32.store (i32.const 48) (i32.const 32))
      (i32.store (i32.const 52) (i32.const 10))
      (drop (call $fd_write (i32.const 2) (i32.const 48) (i32.const 1) (i32.const 56)))
      (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 64)))
      (drop (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 60)))`));
    const root = vm.createRoot({ name: 'p', rootId: 'r', configuration: text('') });
    const stream = vm.createStream(root, new TestStream([[':path', '/x']]));
    expect(stream.onRequestHeaders(1, true)).toBe(0);
    expect(vm.failed).toBe(false);
    expect(vm.mem.u32(0)).toBe(Status.OK);
    expect(vm.mem.latin1(vm.mem.u32(8), vm.mem.u32(12))).toBe('/x');
    // allocation runs in the VM context (id 0): no plugin is named as the origin
    expect(logger.lines.map((l) => [l.level, l.message, l.origin])).toEqual([
      [LogLevel.DEBUG, 'allocating', null],
      [LogLevel.ERROR, 'allocating', null],
    ]);
  });
});
