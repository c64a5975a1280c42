/**
 * HTTP and gRPC callouts (reference §3.8, §3.9, §4.5). A call is owned by the root context even
 * when a stream makes it; its answer is delivered to the root with the token, on a later turn of
 * the event loop, and the SDK re-targets the stream with proxy_set_effective_context.
 */
import type { RootContext } from '../context.js';
import { Status } from '../enums.js';
import { MAX_CALLOUT_TIMEOUT_MS } from '../limits.js';
import type { GrpcCallResult, HttpCallResponse } from '../ports.js';
import type { Pairs } from '../pairs.js';
import { readPairs } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

const TOKEN_HTTP = 0;
const TOKEN_GRPC_CALL = 1;
const TOKEN_GRPC_STREAM = 2;

/** gRPC status code for "the connection broke" as Envoy reports a failed http call (§3.7). */
const BROKEN_CONNECTION = 11;

/**
 * gRPC deadlines stay unsigned, as in Envoy, whose grpc_call builds its std::chrono::milliseconds
 * from the unsigned word (a negative count is not BAD_ARGUMENT there, and the Rust SDK would panic
 * on it). Above MAX_CALLOUT_TIMEOUT_MS a Node timer would fire at once, so longer is capped.
 */
function grpcTimeout(timeoutMs: number): number {
  return Math.min(timeoutMs >>> 0, MAX_CALLOUT_TIMEOUT_MS);
}

function hasPseudo(pairs: Pairs, name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name && pairs[i + 1] !== '') return true;
  return false;
}

function deliverHttpCall(vm: WasmVm, token: number, res: HttpCallResponse | null): void {
  const call = vm.calls.get(token);
  if (call === undefined) return;
  vm.calls.delete(token);
  const root = call.root;
  if (res === null) {
    // Envoy: a reset delivers (root, token, 0, 0, 0) and get_status answers 11 "reset".
    root.statusCode = BROKEN_CONNECTION;
    root.statusMessage = 'reset';
    vm.callRoot(root, vm.callbacks.onHttpCallResponse, root.id, token, 0, 0, 0);
    return;
  }
  root.statusCode = 0;
  root.statusMessage = '';
  root.callout = res;
  try {
    vm.callRoot(root, vm.callbacks.onHttpCallResponse, root.id, token,
      res.headers.length >>> 1, res.body.length, res.trailers.length >>> 1);
  } finally {
    root.callout = null;
  }
}

/** Runs one gRPC callback on the root with `grpc` readable (maps 4/5, buffer 5) during it. */
function grpcEvent(vm: WasmVm, root: RootContext, fn: keyof WasmVm['callbacks'], token: number, n: number,
  initialMetadata: Pairs | null, message: Uint8Array | null, trailingMetadata: Pairs | null): void {
  root.grpc = { initialMetadata, message, trailingMetadata };
  try {
    vm.callRoot(root, vm.callbacks[fn], root.id, token, n);
  } finally {
    root.grpc = null;
  }
}

function grpcClose(vm: WasmVm, root: RootContext, token: number, status: number, message: string): void {
  vm.calls.delete(token);
  root.statusCode = status;
  root.statusMessage = message;
  vm.callRoot(root, vm.callbacks.onGrpcClose, root.id, token, status);
}

/**
 * A unary call ends with exactly one callback, as Envoy's GrpcCallClientHandler has only onSuccess
 * (→ on_grpc_receive) and onFailure (→ on_grpc_close). The Rust SDK forgets the token in either
 * and panics ("invalid token_id") on a second one or on metadata callbacks for a call token.
 * The metadata stays readable (maps 4/5) during on_grpc_receive.
 */
function deliverGrpcCall(vm: WasmVm, token: number, res: GrpcCallResult): void {
  const call = vm.calls.get(token);
  if (call === undefined) return;
  const root = call.root;
  if (res.status !== 0) {
    grpcClose(vm, root, token, res.status, res.statusMessage);
    return;
  }
  vm.calls.delete(token);
  const message = res.message ?? new Uint8Array(0);
  grpcEvent(vm, root, 'onGrpcReceive', token, message.length, res.initialMetadata ?? null, message, res.trailingMetadata ?? null);
}

export function calloutHostcalls(vm: WasmVm): HostcallTable {
  const live = (token: number, kind: number): boolean | null => {
    if ((token & 3) !== kind && !(kind === TOKEN_GRPC_CALL && (token & 3) === TOKEN_GRPC_STREAM)) return null;
    return vm.calls.has(token >>> 0);
  };

  return {
    proxy_http_call(upstreamPtr: number, upstreamLen: number, headersPtr: number, headersLen: number, bodyPtr: number,
      bodyLen: number, trailersPtr: number, trailersLen: number, timeoutMs: number, tokenPtr: number): number {
      const cluster = vm.mem.utf8(upstreamPtr, upstreamLen);
      const headers = readPairs(vm, headersPtr, headersLen);
      const body = vm.mem.copy(bodyPtr, bodyLen);
      const trailers = readPairs(vm, trailersPtr, trailersLen);
      vm.mem.check(tokenPtr, 4);
      // Envoy's httpCall takes the timeout as a signed int and refuses a negative one before it
      // looks at anything else: the Rust SDK's Duration::MAX arrives as -1 (as_millis() as u32).
      if ((timeoutMs | 0) < 0) return Status.BAD_ARGUMENT;
      if (headers === null || trailers === null) return Status.BAD_ARGUMENT;
      for (let i = 0; i < headers.length; i += 2) headers[i] = headers[i].toLowerCase();
      // Envoy refuses a call without these three (users hit it as "BadArgument" with no :authority).
      if (!hasPseudo(headers, ':method') || !hasPseudo(headers, ':path') || !hasPseudo(headers, ':authority')) {
        return Status.BAD_ARGUMENT;
      }
      const root = vm.target()?.root;
      const callouts = root?.callouts;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      if (callouts?.httpCall === undefined) return Status.UNIMPLEMENTED;
      // A refused call takes no token: the next call gets the one this would have had.
      // NB: this relies on the port contract that a refused call is never answered.
      const token = vm.peekToken(TOKEN_HTTP);
      const status = callouts.httpCall({ cluster, headers, body, trailers, timeoutMs, origin: root },
        (res) => vm.scheduler.defer(() => deliverHttpCall(vm, token, res)));
      if (status !== Status.OK) return status;
      vm.token(TOKEN_HTTP);
      vm.calls.set(token, { root });
      vm.mem.setU32(tokenPtr, token);
      return Status.OK;
    },

    proxy_grpc_call(upstreamPtr: number, upstreamLen: number, servicePtr: number, serviceLen: number, methodPtr: number,
      methodLen: number, mdPtr: number, mdLen: number, msgPtr: number, msgLen: number, timeoutMs: number, tokenPtr: number): number {
      const cluster = vm.mem.utf8(upstreamPtr, upstreamLen);
      const service = vm.mem.utf8(servicePtr, serviceLen);
      const method = vm.mem.utf8(methodPtr, methodLen);
      const initialMetadata = readPairs(vm, mdPtr, mdLen);
      const message = vm.mem.copy(msgPtr, msgLen);
      vm.mem.check(tokenPtr, 4);
      if (initialMetadata === null) return Status.BAD_ARGUMENT;
      const root = vm.target()?.root;
      const callouts = root?.callouts;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      if (callouts?.grpcCall === undefined) return Status.UNIMPLEMENTED;
      const token = vm.peekToken(TOKEN_GRPC_CALL);
      const handle = callouts.grpcCall({ cluster, service, method, initialMetadata, message, timeoutMs: grpcTimeout(timeoutMs), origin: root },
        (res) => vm.scheduler.defer(() => deliverGrpcCall(vm, token, res)));
      if (typeof handle === 'number') return handle;
      vm.token(TOKEN_GRPC_CALL);
      vm.calls.set(token, { root, cancel: () => handle.cancel() });
      vm.mem.setU32(tokenPtr, token);
      return Status.OK;
    },

    proxy_grpc_stream(upstreamPtr: number, upstreamLen: number, servicePtr: number, serviceLen: number,
      methodPtr: number, methodLen: number, mdPtr: number, mdLen: number, tokenPtr: number): number {
      const cluster = vm.mem.utf8(upstreamPtr, upstreamLen);
      const service = vm.mem.utf8(servicePtr, serviceLen);
      const method = vm.mem.utf8(methodPtr, methodLen);
      const initialMetadata = readPairs(vm, mdPtr, mdLen);
      vm.mem.check(tokenPtr, 4);
      if (initialMetadata === null) return Status.BAD_ARGUMENT;
      const root = vm.target()?.root;
      const callouts = root?.callouts;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      if (callouts?.grpcStream === undefined) return Status.UNIMPLEMENTED;
      const token = vm.peekToken(TOKEN_GRPC_STREAM);
      const later = (fn: () => void) => vm.scheduler.defer(() => { if (vm.calls.has(token)) fn(); });
      const handle = callouts.grpcStream({ cluster, service, method, initialMetadata, origin: root }, {
        initialMetadata: (md) => later(() => grpcEvent(vm, root, 'onGrpcReceiveInitialMetadata', token, md.length >>> 1, md, null, null)),
        message: (data) => later(() => grpcEvent(vm, root, 'onGrpcReceive', token, data.length, null, data, null)),
        trailingMetadata: (md) => later(() => grpcEvent(vm, root, 'onGrpcReceiveTrailingMetadata', token, md.length >>> 1, null, null, md)),
        close: (status, message) => later(() => grpcClose(vm, root, token, status, message)),
      });
      if (typeof handle === 'number') return handle;
      vm.token(TOKEN_GRPC_STREAM);
      vm.calls.set(token, { root, cancel: () => handle.cancel(), stream: handle });
      vm.mem.setU32(tokenPtr, token);
      return Status.OK;
    },

    proxy_grpc_send(token: number, msgPtr: number, msgLen: number, endStream: number): number {
      const message = vm.mem.copy(msgPtr, msgLen);
      if ((token & 3) !== TOKEN_GRPC_STREAM) return Status.BAD_ARGUMENT;
      const call = vm.calls.get(token >>> 0);
      if (call === undefined) return Status.NOT_FOUND;
      call.stream?.send(message, endStream !== 0);
      return Status.OK;
    },

    proxy_grpc_cancel(token: number): number {
      const known = live(token, TOKEN_GRPC_CALL);
      if (known === null) return Status.BAD_ARGUMENT;
      if (!known) return Status.NOT_FOUND;
      const call = vm.calls.get(token >>> 0)!;
      vm.calls.delete(token >>> 0);
      call.cancel?.();
      return Status.OK;
    },

    /** Half-closes a stream; for a unary call it cancels, as in Envoy. */
    proxy_grpc_close(token: number): number {
      const known = live(token, TOKEN_GRPC_CALL);
      if (known === null) return Status.BAD_ARGUMENT;
      if (!known) return Status.NOT_FOUND;
      const call = vm.calls.get(token >>> 0)!;
      if ((token & 3) === TOKEN_GRPC_STREAM) {
        call.stream?.close();
      } else {
        vm.calls.delete(token >>> 0);
        call.cancel?.();
      }
      return Status.OK;
    },
  };
}

