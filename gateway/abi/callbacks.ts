/**
 * The guest's callback exports (reference §4.1), looked up once per instance with their arity
 * checked, as cpp-host checks export signatures: a module whose `proxy_on_*` export has the wrong
 * parameter count is refused at load instead of misbehaving per request.
 */
import { AbiVersion } from './enums.js';
import { GatewayError } from '../errors.js';

/** A guest export as JS sees it; i32 results arrive as numbers, void as undefined. */
export type GuestFn = (...args: number[]) => number | undefined;

/** Field name → [export name(s), parameter count for 0.2.x, for 0.1.0 if different]. */
const CALLBACKS = {
  onContextCreate: [['proxy_on_context_create'], 2],
  onVmStart: [['proxy_on_vm_start'], 2],
  onValidateConfiguration: [['proxy_validate_configuration'], 2],
  onConfigure: [['proxy_on_configure'], 2],
  onTick: [['proxy_on_tick'], 1],
  onQueueReady: [['proxy_on_queue_ready'], 2],
  onForeignFunction: [['proxy_on_foreign_function'], 3],
  onNewConnection: [['proxy_on_new_connection'], 1],
  onDownstreamData: [['proxy_on_downstream_data'], 3],
  onUpstreamData: [['proxy_on_upstream_data'], 3],
  onDownstreamConnectionClose: [['proxy_on_downstream_connection_close'], 2],
  onUpstreamConnectionClose: [['proxy_on_upstream_connection_close'], 2],
  onRequestHeaders: [['proxy_on_request_headers'], 3, 2],
  onRequestBody: [['proxy_on_request_body'], 3],
  onRequestTrailers: [['proxy_on_request_trailers'], 2],
  onRequestMetadata: [['proxy_on_request_metadata'], 2],
  onResponseHeaders: [['proxy_on_response_headers'], 3, 2],
  onResponseBody: [['proxy_on_response_body'], 3],
  onResponseTrailers: [['proxy_on_response_trailers'], 2],
  onResponseMetadata: [['proxy_on_response_metadata'], 2],
  onHttpCallResponse: [['proxy_on_http_call_response'], 5],
  onGrpcReceiveInitialMetadata: [['proxy_on_grpc_receive_initial_metadata'], 3],
  onGrpcReceive: [['proxy_on_grpc_receive'], 3],
  // The AS SDK and the C++ SDK's externs header misspell this one (reference Appendix A.15).
  onGrpcReceiveTrailingMetadata: [['proxy_on_grpc_receive_trailing_metadata', 'proxy_on_grpc_trailing_metadata'], 3],
  onGrpcClose: [['proxy_on_grpc_close'], 3],
  onDone: [['proxy_on_done'], 1],
  onLog: [['proxy_on_log'], 1],
  onDelete: [['proxy_on_delete'], 1],
} as const satisfies Record<string, readonly [readonly string[], number, number?]>;

export type Callbacks = { readonly [K in keyof typeof CALLBACKS]: GuestFn | null };

function exportedFunction(exports: WebAssembly.Exports, name: string): GuestFn | null {
  const value = exports[name];
  return typeof value === 'function' ? (value as GuestFn) : null;
}

export function resolveCallbacks(exports: WebAssembly.Exports, version: AbiVersion, moduleName: string): Callbacks {
  const table: Record<string, GuestFn | null> = {};
  for (const [field, spec] of Object.entries(CALLBACKS)) {
    const [names, arity02, arity01] = spec as readonly [readonly string[], number, number?];
    const expected = version === AbiVersion.V0_1_0 && arity01 !== undefined ? arity01 : arity02;
    let fn: GuestFn | null = null;
    for (const name of names) {
      fn = exportedFunction(exports, name);
      if (fn === null) continue;
      if (fn.length !== expected) {
        throw new GatewayError('GW_ERR_ABI_EXPORT',
          `module ${moduleName}: export ${name} takes ${fn.length} parameters, ABI ${version} expects ${expected}`);
      }
      break;
    }
    table[field] = fn;
  }
  // proxy_on_foreign_function exists only from 0.2.0 on (cpp-host looks it up only then).
  if (version === AbiVersion.V0_1_0) table.onForeignFunction = null;
  return table as Callbacks;
}

/** The allocator: `proxy_on_memory_allocate` preferred over `malloc`, as the spec says (§2.3). */
export function resolveAllocator(exports: WebAssembly.Exports): GuestFn | null {
  for (const name of ['proxy_on_memory_allocate', 'malloc']) {
    const fn = exportedFunction(exports, name);
    if (fn !== null && fn.length === 1) return fn;
  }
  return null;
}

export { exportedFunction };
