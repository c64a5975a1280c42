/**
 * The module's exports: the ABI 0.2.1 marker, the allocator and every `proxy_on_*` callback,
 * dispatched to the context objects by id as the Rust SDK's dispatcher does. A filter re-exports
 * this file from its entry point (`export * from "../sdk/exports";`), which is what makes these
 * functions Wasm exports.
 *
 * Ids the host never announced (or already deleted) abort with a message: a host bug, as in the
 * Rust, Go and AssemblyScript SDKs (reference §6.11).
 */
// Importing the abort handler keeps it in every module, so `--use abort=filters/sdk/abort/proxyAbort` resolves.
import { proxyAbort } from "./abort";
import { HttpContext, RootContext, Context } from "./context";
import { proxy_get_property, proxy_set_effective_context } from "./imports";
import { RET_LEN, RET_PTR, clearReturn, discardReturned, stage, staged0, staged0Len, takeString } from "./memory";
import { CalloutKind, calloutKind, calloutOwner, factoryFor, forgetCallouts, registeredRootIds, roots, streams } from "./registry";
import { Action, Status } from "./types";

export { proxy_on_memory_allocate } from "./memory";

/** ABI version marker (reference §1.1); never called. */
export function proxy_abi_version_0_2_1(): void {}

function rootOf(id: u32, callback: string): RootContext {
  if (!roots.has(id)) abort(callback + ": unknown root context " + id.toString());
  return roots.get(id);
}

function streamOf(id: u32, callback: string): HttpContext {
  if (!streams.has(id)) abort(callback + ": unknown http context " + id.toString());
  return streams.get(id);
}

function anyOf(id: u32, callback: string): Context {
  if (streams.has(id)) return streams.get(id);
  return rootOf(id, callback);
}

/** The plugin's root id: the property `plugin_root_id` ("" when the host has none). */
function pluginRootId(): string {
  stage("plugin_root_id");
  clearReturn();
  if (proxy_get_property(staged0, staged0Len, RET_PTR, RET_LEN) != Status.Ok) {
    discardReturned();
    return "";
  }
  return takeString();
}

// ---- lifecycle --------------------------------------------------------------------------------------

export function proxy_on_context_create(contextId: u32, parentId: u32): void {
  if (parentId == 0) {
    const rootId = pluginRootId();
    const factory = factoryFor(rootId);
    if (factory === null) {
      abort("no root context registered for root id \"" + rootId + "\" (registered: " + registeredRootIds() + ")");
      return;
    }
    const root = factory(contextId);
    root.rootId = rootId;
    roots.set(contextId, root);
  } else {
    const root = rootOf(parentId, "proxy_on_context_create");
    streams.set(contextId, root.createHttpContext(contextId));
  }
}

export function proxy_on_vm_start(rootId: u32, vmConfigurationSize: u32): bool {
  return rootOf(rootId, "proxy_on_vm_start").onVmStart(<usize>vmConfigurationSize);
}

export function proxy_on_configure(rootId: u32, pluginConfigurationSize: u32): bool {
  return rootOf(rootId, "proxy_on_configure").onConfigure(<usize>pluginConfigurationSize);
}

export function proxy_on_tick(rootId: u32): void {
  rootOf(rootId, "proxy_on_tick").onTick();
}

export function proxy_on_queue_ready(rootId: u32, queueId: u32): void {
  rootOf(rootId, "proxy_on_queue_ready").onQueueReady(queueId);
}

export function proxy_on_log(contextId: u32): void {
  if (streams.has(contextId)) streams.get(contextId).onLog();
  else rootOf(contextId, "proxy_on_log").onLog();
}

export function proxy_on_done(contextId: u32): bool {
  return anyOf(contextId, "proxy_on_done").onDone();
}

export function proxy_on_delete(contextId: u32): void {
  const ctx = anyOf(contextId, "proxy_on_delete");
  ctx.onDelete();
  if (!streams.delete(contextId)) roots.delete(contextId);
  forgetCallouts(contextId);
}

// ---- HTTP stream ------------------------------------------------------------------------------------

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_request_headers").onRequestHeaders(numHeaders, endOfStream != 0);
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_request_body").onRequestBody(<usize>bodySize, endOfStream != 0);
}

export function proxy_on_request_trailers(contextId: u32, numTrailers: u32): Action {
  return streamOf(contextId, "proxy_on_request_trailers").onRequestTrailers(numTrailers);
}

export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_response_headers").onResponseHeaders(numHeaders, endOfStream != 0);
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_response_body").onResponseBody(<usize>bodySize, endOfStream != 0);
}

export function proxy_on_response_trailers(contextId: u32, numTrailers: u32): Action {
  return streamOf(contextId, "proxy_on_response_trailers").onResponseTrailers(numTrailers);
}

// ---- callout answers (always addressed to the root; routed to the context that called) ---------------

/**
 * The context that dispatched `token`, made effective when it is an HTTP context, or null when it
 * is gone (or the token is unknown): the answer is then dropped.
 */
function calloutTarget(rootId: u32, token: u32, finished: bool, callback: string): Context | null {
  rootOf(rootId, callback);
  const owner = calloutOwner(token, finished);
  if (owner == 0) return null;
  if (streams.has(owner)) {
    proxy_set_effective_context(owner);
    return streams.get(owner);
  }
  return roots.has(owner) ? roots.get(owner) : null;
}

export function proxy_on_http_call_response(rootId: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  const target = calloutTarget(rootId, token, true, "proxy_on_http_call_response");
  if (target !== null) target.onHttpCallResponse(token, numHeaders, <usize>bodySize, numTrailers);
}

// Metadata events concern streams only; for a unary call the answer is its message or its close
// (the Rust SDK ignores them too).
export function proxy_on_grpc_receive_initial_metadata(rootId: u32, token: u32, numElements: u32): void {
  if (calloutKind(token) != CalloutKind.GrpcStream) return;
  const target = calloutTarget(rootId, token, false, "proxy_on_grpc_receive_initial_metadata");
  if (target !== null) target.onGrpcStreamInitialMetadata(token, numElements);
}

export function proxy_on_grpc_receive(rootId: u32, token: u32, messageSize: u32): void {
  const stream = calloutKind(token) == CalloutKind.GrpcStream;
  // A unary call's message is its answer; the close that follows is then only bookkeeping.
  const target = calloutTarget(rootId, token, !stream, "proxy_on_grpc_receive");
  if (target === null) return;
  if (stream) target.onGrpcStreamMessage(token, <usize>messageSize);
  else target.onGrpcCallResponse(token, 0, <usize>messageSize);
}

export function proxy_on_grpc_receive_trailing_metadata(rootId: u32, token: u32, numElements: u32): void {
  if (calloutKind(token) != CalloutKind.GrpcStream) return;
  const target = calloutTarget(rootId, token, false, "proxy_on_grpc_receive_trailing_metadata");
  if (target !== null) target.onGrpcStreamTrailingMetadata(token, numElements);
}

export function proxy_on_grpc_close(rootId: u32, token: u32, statusCode: u32): void {
  const stream = calloutKind(token) == CalloutKind.GrpcStream;
  const target = calloutTarget(rootId, token, true, "proxy_on_grpc_close");
  if (target === null) return;
  if (stream) target.onGrpcStreamClose(token, statusCode);
  else target.onGrpcCallResponse(token, statusCode, 0);
}

export function proxy_on_foreign_function(contextId: u32, functionId: u32, argumentsSize: u32): void {
  anyOf(contextId, "proxy_on_foreign_function").onForeignFunction(functionId, <usize>argumentsSize);
}
