/**
 * The exact function type of every import the host links (imports.ts `buildImports`): all
 * `env.proxy_*` hostcalls of ABI 0.1.0, 0.2.0 and 0.2.1 (reference §3.16), the toolchain extras
 * (§2.4, §2.5) and the 46 WASI preview1 functions (§2.4, the preview1 witx lowered to core types),
 * the same under `wasi_snapshot_preview1` and `wasi_unstable`. V8 in Envoy refuses a module whose
 * import type differs from the host's; a JS host function links whatever the import says, so
 * import-check.ts compares against this table before instantiation.
 */
import { SANDBOX_MODULE } from './sandbox.js';
import type { FuncType, ValType } from './wasm-types.js';

/** `i` is an i32, `I` an i64; results default to one i32 (every hostcall and WASI errno). */
function sig(params: string, results = 'i'): FuncType {
  const types = (s: string): ValType[] => [...s].map((c) => (c === 'I' ? 'i64' : 'i32'));
  return Object.freeze({ params: Object.freeze(types(params)), results: Object.freeze(types(results)) });
}

const VOID = '';

/** Accepted types per name; the first is the real one, any further one an accepted variant. */
export type SignatureTable = Readonly<Record<string, readonly FuncType[]>>;

const one = (params: string, results?: string): readonly FuncType[] => Object.freeze([sig(params, results)]);

/**
 * The three 0.1.0-only stream calls are `() -> i32` in the SDKs and cpp-host, but the 0.1.0 spec
 * text gives them no result (Appendix A.10); a module written from the spec imports `() -> ()`,
 * which the host function serves just as well, so both forms link.
 */
const legacyStreamCall = Object.freeze([sig(''), sig('', VOID)]);

/** Proxy-Wasm hostcalls in module `env`, every ABI version (one table: §1.3 "register every name"). */
const PROXY: SignatureTable = {
  proxy_log: one('iii'),
  proxy_get_log_level: one('i'), // 0.2.1
  proxy_get_current_time_nanoseconds: one('i'),
  proxy_set_tick_period_milliseconds: one('i'),
  proxy_get_configuration: one('ii'), // 0.1.0
  proxy_get_buffer_bytes: one('iiiii'),
  proxy_get_buffer_status: one('iii'),
  proxy_set_buffer_bytes: one('iiiii'),
  proxy_get_header_map_pairs: one('iii'),
  proxy_set_header_map_pairs: one('iii'),
  proxy_get_header_map_size: one('ii'),
  proxy_get_header_map_value: one('iiiii'),
  proxy_add_header_map_value: one('iiiii'),
  proxy_replace_header_map_value: one('iiiii'),
  proxy_remove_header_map_value: one('iii'),
  proxy_continue_stream: one('i'), // 0.2.x
  proxy_close_stream: one('i'), // 0.2.x
  proxy_continue_request: legacyStreamCall, // 0.1.0
  proxy_continue_response: legacyStreamCall, // 0.1.0
  proxy_clear_route_cache: legacyStreamCall, // 0.1.0
  proxy_send_local_response: one('iiiiiiii'),
  proxy_get_status: one('iii'),
  proxy_http_call: one('iiiiiiiiii'),
  proxy_grpc_call: one('iiiiiiiiiiii'),
  proxy_grpc_stream: one('iiiiiiiii'),
  proxy_grpc_send: one('iiii'),
  proxy_grpc_cancel: one('i'),
  proxy_grpc_close: one('i'),
  proxy_get_shared_data: one('iiiii'),
  proxy_set_shared_data: one('iiiii'),
  proxy_register_shared_queue: one('iii'),
  proxy_resolve_shared_queue: one('iiiii'),
  proxy_enqueue_shared_queue: one('iii'),
  proxy_dequeue_shared_queue: one('iii'),
  proxy_define_metric: one('iiii'),
  proxy_increment_metric: one('iI'),
  proxy_record_metric: one('iI'),
  proxy_get_metric: one('ii'),
  proxy_get_property: one('iiii'),
  proxy_set_property: one('iiii'),
  proxy_set_effective_context: one('i'),
  proxy_done: one(''),
  proxy_call_foreign_function: one('iiiiii'),
};

/**
 * Non-Proxy-Wasm names toolchains import from `env`. They grant nothing (a no-op, a comparison,
 * a trap), so they are not capabilities: cpp-host registers the first two outside its
 * capability filter, and `abort` only ends the guest call.
 */
const EXTRAS: SignatureTable = {
  emscripten_notify_memory_growth: one('i', VOID),
  pthread_equal: one('ii'),
  abort: one('iiii', VOID),
};

/** WASI preview1, lowered: handles, sizes and pointers are i32; filesize, timestamp, rights, dircookie i64. */
const WASI: SignatureTable = {
  args_get: one('ii'),
  args_sizes_get: one('ii'),
  environ_get: one('ii'),
  environ_sizes_get: one('ii'),
  clock_res_get: one('ii'),
  clock_time_get: one('iIi'),
  fd_advise: one('iIIi'),
  fd_allocate: one('iII'),
  fd_close: one('i'),
  fd_datasync: one('i'),
  fd_fdstat_get: one('ii'),
  fd_fdstat_set_flags: one('ii'),
  fd_fdstat_set_rights: one('iII'),
  fd_filestat_get: one('ii'),
  fd_filestat_set_size: one('iI'),
  fd_filestat_set_times: one('iIIi'),
  fd_pread: one('iiiIi'),
  fd_prestat_get: one('ii'),
  fd_prestat_dir_name: one('iii'),
  fd_pwrite: one('iiiIi'),
  fd_read: one('iiii'),
  fd_readdir: one('iiiIi'),
  fd_renumber: one('ii'),
  fd_seek: one('iIii'),
  fd_sync: one('i'),
  fd_tell: one('ii'),
  fd_write: one('iiii'),
  path_create_directory: one('iii'),
  path_filestat_get: one('iiiii'),
  path_filestat_set_times: one('iiiiIIi'),
  // The real preview1 arities (7 and 5); cpp-host declares 6 and 4 (§2.4).
  path_link: one('iiiiiii'),
  path_open: one('iiiiiIIii'),
  path_readlink: one('iiiiii'),
  path_remove_directory: one('iii'),
  path_rename: one('iiiiii'),
  path_symlink: one('iiiii'),
  path_unlink_file: one('iii'),
  poll_oneoff: one('iiii'),
  proc_exit: one('i', VOID),
  proc_raise: one('i'),
  random_get: one('ii'),
  sched_yield: one(''),
  sock_accept: one('iii'),
  sock_recv: one('iiiiii'),
  sock_send: one('iiiii'),
  sock_shutdown: one('ii'),
};

/** What the host links, per import module. */
export const HOST_SIGNATURES: Readonly<Record<string, SignatureTable>> = Object.freeze({
  env: Object.freeze({ ...PROXY, ...EXTRAS }),
  wasi_snapshot_preview1: Object.freeze(WASI),
  wasi_unstable: Object.freeze(WASI),
});

/**
 * The names `allowedHostcalls` restricts (Envoy's capability names): every proxy_* hostcall and
 * every WASI function, by bare name whatever module imports it.
 */
export const CAPABILITY_NAMES: ReadonlySet<string> = new Set([...Object.keys(PROXY), ...Object.keys(WASI)]);

/** Extras every module may import whatever `allowedHostcalls` says. */
export const NON_CAPABILITY_NAMES: ReadonlySet<string> = new Set(Object.keys(EXTRAS));

/**
 * The import module the load-time instrumentation (CPU budget) adds for its own host check. It is
 * added after the check runs on the module's original imports, so a module that imports from it
 * itself is refused: it could otherwise call the budget check or shadow it.
 */
export const INSTRUMENTATION_MODULE = SANDBOX_MODULE;

/** `(i32, i64) -> i32`, `() -> ()`, `(i32) -> (i32, i32)`: the form used in link errors. */
export function formatFuncType(type: FuncType): string {
  const results = type.results.length === 1 ? type.results[0] : `(${type.results.join(', ')})`;
  return `(${type.params.join(', ')}) -> ${results}`;
}

export function sameFuncType(a: FuncType, b: FuncType): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length
    && a.params.every((t, i) => t === b.params[i]) && a.results.every((t, i) => t === b.results[i]);
}
