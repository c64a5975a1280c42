/**
 * Context and stream control (reference §3.1, §3.7): effective context, proxy_done, continue,
 * close, local replies and the status of the last callout. Stream actions are deferred until the
 * guest call returns; `send_local_response` also forces the running callback's result to Stop.
 * A local reply whose status or headers the host could not send is refused (header-check.ts).
 */
import { GRPC_STATUS_NONE, LogLevel, MAX_STREAM_TYPE, Status, StreamType } from '../enums.js';
import { HeaderTarget, isFinalStatus, isHeaderList } from '../header-check.js';
import { readPairs, returnLatin1 } from '../returns.js';
import type { StreamContext } from '../context.js';
import { Deferred } from '../phase.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

export function streamControlHostcalls(vm: WasmVm): HostcallTable {
  const continueStream = (type: StreamType): number => {
    const ctx = vm.target();
    // Envoy: continuing a root or an unpaused stream is a silent OK; UPSTREAM cannot resume.
    if (type === StreamType.UPSTREAM) return Status.UNIMPLEMENTED;
    if (ctx !== null && ctx.kind === 'stream') vm.defer(Deferred.CONTINUE, ctx, type);
    return Status.OK;
  };

  const refuse = (ctx: StreamContext, why: string): number => {
    vm.ports.logger.log(LogLevel.WARN, `proxy_send_local_response refused in module ${vm.name}: ${why}`, ctx.root);
    return Status.BAD_ARGUMENT;
  };

  return {
    proxy_set_effective_context(contextId: number): number {
      const ctx = vm.contexts.get(contextId >>> 0);
      if (ctx === undefined || !ctx.alive) return Status.BAD_ARGUMENT;
      vm.effective = ctx;
      return Status.OK;
    },

    proxy_done(): number {
      const ctx = vm.target();
      return ctx === null ? Status.NOT_FOUND : vm.rootDone(ctx.root);
    },

    proxy_continue_stream(type: number): number {
      if (type >>> 0 > MAX_STREAM_TYPE) return Status.BAD_ARGUMENT;
      return continueStream(type as StreamType);
    },

    proxy_close_stream(type: number): number {
      if (type >>> 0 > MAX_STREAM_TYPE) return Status.BAD_ARGUMENT;
      const ctx = vm.target();
      if (ctx !== null && ctx.kind === 'stream') vm.defer(Deferred.CLOSE, ctx, type as StreamType);
      return Status.OK;
    },

    // ABI 0.1.0 spellings of continue_stream(0|1).
    proxy_continue_request: () => continueStream(StreamType.HTTP_REQUEST),
    proxy_continue_response: () => continueStream(StreamType.HTTP_RESPONSE),
    // 0.1.0: the route is re-selected from the (modified) headers; our router matches once, on the
    // headers as filters leave them, so there is no cache to clear.
    proxy_clear_route_cache: () => Status.OK,

    proxy_send_local_response(statusCode: number, detailsPtr: number, detailsLen: number, bodyPtr: number,
      bodyLen: number, headersPtr: number, headersLen: number, grpcStatus: number): number {
      const ctx = vm.target();
      const details = vm.mem.utf8(detailsPtr, detailsLen).replace(/\s/g, '_');
      const body = vm.mem.copy(bodyPtr, bodyLen);
      const headers = readPairs(vm, headersPtr, headersLen);
      if (ctx === null || ctx.kind !== 'stream') return headers === null ? Status.BAD_ARGUMENT : Status.NOT_FOUND;
      ctx.localReplyRequests++;
      // Envoy casts any status to Http::Code and lets its codec write it; Node's writer throws on
      // one it cannot send. A reply the host cannot send is refused here: BAD_ARGUMENT, and as
      // localReplySent stays false while localReplyRequests moved, the data plane counts the
      // callback as a filter failure (its failure policy answers, not a hung Pause).
      if (headers === null) return refuse(ctx, 'its headers are not a well-formed map within the pairs limits');
      // Only once per stream (Envoy guards with local_reply_sent; envoy#28826 hung clients).
      if (ctx.localReplySent) return Status.OK;
      for (let i = 0; i < headers.length; i += 2) headers[i] = headers[i].toLowerCase(); // Envoy lower-cases (§3.7)
      if (!isFinalStatus(statusCode)) return refuse(ctx, `status ${statusCode} is not a final HTTP status (200..599)`);
      if (!isHeaderList(HeaderTarget.EXTRA, headers)) return refuse(ctx, 'a header name or value the host cannot send');
      ctx.localReplySent = true;
      const grpc = grpcStatus >= 0 && grpcStatus <= 16 ? grpcStatus : GRPC_STATUS_NONE;
      vm.defer(Deferred.LOCAL_REPLY, ctx, 0, { status: statusCode, details, body, headers, grpcStatus: grpc });
      return Status.OK;
    },

    proxy_get_status(codePtr: number, msgPtrPtr: number, msgSizePtr: number): number {
      const root = vm.target()?.root;
      if (root === undefined) return Status.NOT_FOUND;
      vm.mem.setU32(codePtr, root.statusCode);
      returnLatin1(vm, msgPtrPtr, msgSizePtr, root.statusMessage);
      return Status.OK;
    },
  };
}
