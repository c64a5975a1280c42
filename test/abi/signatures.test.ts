/**
 * The signature table (gateway/abi/signatures.ts): it names exactly what buildImports links, no
 * more and no less, and the well-known functions have the types of reference §3.16 and WASI
 * preview1, written out here independently of the table.
 */
import { describe, expect, it } from 'vitest';
import { buildImports } from '../../gateway/abi/imports.js';
import {
  CAPABILITY_NAMES, HOST_SIGNATURES, INSTRUMENTATION_MODULE, NON_CAPABILITY_NAMES, formatFuncType,
} from '../../gateway/abi/signatures.js';
import { startVm } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const typeOf = (module: string, name: string): string[] => HOST_SIGNATURES[module][name].map(formatFuncType);

describe('the host signature table', () => {
  it('names exactly the functions buildImports links, per import module, in both directions', () => {
    const { vm } = startVm(guestWat({ body: '' }));
    const linked = buildImports(vm);
    // The instrumentation's own module is added by the module layer, not by this table.
    const linkedModules = Object.keys(linked).filter((m) => m !== INSTRUMENTATION_MODULE).sort();
    expect(Object.keys(HOST_SIGNATURES).sort()).toEqual(linkedModules);
    for (const module of linkedModules) {
      expect(Object.keys(HOST_SIGNATURES[module]).sort(), module).toEqual(Object.keys(linked[module]).sort());
    }
  });

  it.each([
    ['env', 'proxy_log', '(i32, i32, i32) -> i32'],
    ['env', 'proxy_http_call', `(${Array(10).fill('i32').join(', ')}) -> i32`],
    ['env', 'proxy_grpc_call', `(${Array(12).fill('i32').join(', ')}) -> i32`],
    ['env', 'proxy_grpc_stream', `(${Array(9).fill('i32').join(', ')}) -> i32`],
    ['env', 'proxy_send_local_response', `(${Array(8).fill('i32').join(', ')}) -> i32`],
    ['env', 'proxy_increment_metric', '(i32, i64) -> i32'],
    ['env', 'proxy_record_metric', '(i32, i64) -> i32'],
    ['env', 'proxy_get_log_level', '(i32) -> i32'],
    ['env', 'proxy_done', '() -> i32'],
    ['env', 'emscripten_notify_memory_growth', '(i32) -> ()'],
    ['env', 'abort', '(i32, i32, i32, i32) -> ()'],
    ['wasi_snapshot_preview1', 'fd_write', '(i32, i32, i32, i32) -> i32'],
    ['wasi_snapshot_preview1', 'clock_time_get', '(i32, i64, i32) -> i32'],
    ['wasi_snapshot_preview1', 'fd_seek', '(i32, i64, i32, i32) -> i32'],
    ['wasi_snapshot_preview1', 'path_open', '(i32, i32, i32, i32, i32, i64, i64, i32, i32) -> i32'],
    ['wasi_snapshot_preview1', 'path_link', `(${Array(7).fill('i32').join(', ')}) -> i32`],
    ['wasi_snapshot_preview1', 'proc_exit', '(i32) -> ()'],
    ['wasi_unstable', 'proc_exit', '(i32) -> ()'],
    ['wasi_unstable', 'sched_yield', '() -> i32'],
  ])('gives %s.%s the type %s', (module, name, type) => {
    expect(typeOf(module, name)[0]).toBe(type);
  });

  it('accepts the 0.1.0 stream calls both as the SDKs import them (-> i32) and as the 0.1.0 spec text gives them (no result)', () => {
    for (const name of ['proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache']) {
      expect(typeOf('env', name)).toEqual(['() -> i32', '() -> ()']);
    }
  });

  it('has one signature for every other function', () => {
    const multi = Object.entries(HOST_SIGNATURES).flatMap(([m, t]) => Object.keys(t).filter((n) => t[n].length !== 1).map((n) => `${m}.${n}`));
    expect(multi.sort()).toEqual(['env.proxy_clear_route_cache', 'env.proxy_continue_request', 'env.proxy_continue_response']);
  });

  it('serves the same WASI functions under wasi_snapshot_preview1 and wasi_unstable', () => {
    expect(HOST_SIGNATURES.wasi_unstable).toEqual(HOST_SIGNATURES.wasi_snapshot_preview1);
    expect(Object.keys(HOST_SIGNATURES.wasi_unstable)).toHaveLength(46);
  });

  it('counts every proxy_* and WASI name as a capability and the toolchain extras as none', () => {
    expect(CAPABILITY_NAMES.size).toBe(43 + 46);
    expect([...NON_CAPABILITY_NAMES].sort()).toEqual(['abort', 'emscripten_notify_memory_growth', 'pthread_equal']);
    for (const name of NON_CAPABILITY_NAMES) expect(CAPABILITY_NAMES.has(name)).toBe(false);
  });
});
