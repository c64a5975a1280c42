/**
 * The context classes a filter extends, shaped like the Rust SDK's traits (`Context`,
 * `RootContext`, `HttpContext`) so their documentation carries over:
 *
 * - one `RootContext` per plugin (per root id and configuration): `onVmStart`, `onConfigure`,
 *   timers, queues, and the factory of the plugin's HTTP contexts;
 * - one `HttpContext` per request: the request and response callbacks, header/body access and
 *   local responses.
 *
 * Every callback has a default that does nothing and lets traffic through, so a filter overrides
 * only what it needs. Methods act on "the current context", which the dispatcher arranges: the
 * context whose callback runs, or the one that dispatched a callout while its answer is handled.
 */
import { ALL, getBufferBytes, getPluginConfiguration, getVmConfiguration, setBufferBytes } from "./buffers";
import { grpcCall, grpcStream, grpcSend, grpcCancel, grpcClose } from "./grpc";
import { httpCall } from "./http-call";
import { proxy_done } from "./imports";
import { addHeaderMapValue, getHeaderMapPairs, getHeaderMapValue, removeHeaderMapValue, replaceHeaderMapValue, setHeaderMapPairs } from "./maps";
import { CalloutKind, trackCallout } from "./registry";
import { closeStream, continueStream, sendLocalResponse } from "./stream";
import { getCurrentTimeNanoseconds, setTickPeriodMilliseconds } from "./timers";
import { Action, BufferType, GrpcStatus, Header, MapType, Result, Status, StreamType } from "./types";

/** What root and HTTP contexts share (Rust `Context`): callouts and their answers, and `onDone`. */
export class Context {
  constructor(public readonly contextId: u32) {}

  /** Wall-clock time in ns since the epoch. */
  getCurrentTimeNanoseconds(): u64 {
    return getCurrentTimeNanoseconds();
  }

  /**
   * Sends an HTTP request to cluster `upstream` (headers must include `:method`, `:path`,
   * `:authority`). The answer arrives in this context's `onHttpCallResponse` with the returned
   * token, even when this is an HTTP context (the SDK makes it the effective context first). If
   * this context is gone by then, the answer is dropped.
   */
  dispatchHttpCall(upstream: string, headers: Header[], body: ArrayBuffer | null, trailers: Header[], timeoutMs: u32): Result<u32> {
    const r = httpCall(upstream, headers, body, trailers, timeoutMs);
    if (r.ok) trackCallout(r.value, this.contextId, CalloutKind.Http);
    return r;
  }

  /**
   * The answer to `dispatchHttpCall`: `numHeaders` 0 means the call failed (reset, refused,
   * timed out without a response). Read it with `getHttpCallResponseHeaders/Header/Body/Trailers`.
   */
  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {}

  /** Starts a unary gRPC call; the answer arrives in `onGrpcCallResponse`. */
  dispatchGrpcCall(upstream: string, service: string, method: string, initialMetadata: Header[], message: ArrayBuffer | null,
    timeoutMs: u32): Result<u32> {
    const r = grpcCall(upstream, service, method, initialMetadata, message, timeoutMs);
    if (r.ok) trackCallout(r.value, this.contextId, CalloutKind.GrpcCall);
    return r;
  }

  /**
   * The answer to `dispatchGrpcCall`: `statusCode` 0 with the message in `getGrpcReceiveBuffer`
   * (`responseSize` bytes), or the failing gRPC status (message via `getStatus()`).
   */
  onGrpcCallResponse(token: u32, statusCode: u32, responseSize: usize): void {}

  /** Opens a gRPC stream; its events arrive in the `onGrpcStream*` callbacks. */
  openGrpcStream(upstream: string, service: string, method: string, initialMetadata: Header[]): Result<u32> {
    const r = grpcStream(upstream, service, method, initialMetadata);
    if (r.ok) trackCallout(r.value, this.contextId, CalloutKind.GrpcStream);
    return r;
  }

  sendGrpcStreamMessage(token: u32, message: ArrayBuffer | null, endStream: bool = false): Status {
    return grpcSend(token, message, endStream);
  }
  cancelGrpcCall(token: u32): Status {
    return grpcCancel(token);
  }
  closeGrpcStream(token: u32): Status {
    return grpcClose(token);
  }

  onGrpcStreamInitialMetadata(token: u32, numElements: u32): void {}
  onGrpcStreamMessage(token: u32, messageSize: usize): void {}
  onGrpcStreamTrailingMetadata(token: u32, numElements: u32): void {}
  onGrpcStreamClose(token: u32, statusCode: u32): void {}

  /** A host foreign-function event for this context (arguments in buffer 8). */
  onForeignFunction(functionId: u32, argumentsSize: usize): void {}

  /**
   * The host is finishing this context. Roots may return false to finish later: call
   * `RootContext.done()` when ready. The result is ignored for HTTP contexts.
   */
  onDone(): bool {
    return true;
  }

  /** Last call for this context; it is forgotten right after. */
  onDelete(): void {}
}

/** One per plugin (Rust `RootContext`). */
export class RootContext extends Context {
  /** The plugin's root id (`plugin_root_id`), set by the SDK before any callback. */
  rootId: string = "";

  /** The VM started; its configuration (buffer 6) is readable now. false fails the plugin. */
  onVmStart(vmConfigurationSize: usize): bool {
    return true;
  }

  /**
   * The plugin is configured; its configuration (buffer 7) is readable now. Return false for a
   * configuration you cannot use, after logging why at critical level: the host refuses the
   * plugin at load (edge-gateway quotes that line in its error).
   */
  onConfigure(pluginConfigurationSize: usize): bool {
    return true;
  }

  /** The timer set with `setTickPeriodMilliseconds` fired. */
  onTick(): void {}

  /** An item was enqueued on a queue this root registered. */
  onQueueReady(queueId: u32): void {}

  /** Hosts that log root contexts call this (Envoy does not). */
  onLog(): void {}

  /** The plugin configuration bytes (only during `onConfigure`). */
  getPluginConfiguration(): ArrayBuffer | null {
    return getPluginConfiguration();
  }

  /** The VM configuration bytes (during `onVmStart`). */
  getVmConfiguration(): ArrayBuffer | null {
    return getVmConfiguration();
  }

  /** Sets this root's timer (0 stops it); `onTick` runs every `periodMs`. */
  setTickPeriodMilliseconds(periodMs: u32): Status {
    return setTickPeriodMilliseconds(periodMs);
  }

  /** After `onDone` returned false: this root has finished, the host may delete it. */
  done(): Status {
    return <Status>proxy_done();
  }

  /**
   * Creates the context for a new request of this plugin. The default lets every request through
   * untouched; override it to return your `HttpContext` subclass.
   */
  createHttpContext(contextId: u32): HttpContext {
    return new HttpContext(contextId, this);
  }
}

/** One per request (Rust `HttpContext`). */
export class HttpContext extends Context {
  constructor(contextId: u32, public readonly root: RootContext) {
    super(contextId);
  }

  // ---- callbacks ---------------------------------------------------------------------------------

  /** Request headers are here (`numHeaders` entries, pseudo-headers included). */
  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    return Action.Continue;
  }
  /** A request body chunk; `Pause` buffers it and calls again with the cumulative size. */
  onRequestBody(bodySize: usize, endOfStream: bool): Action {
    return Action.Continue;
  }
  onRequestTrailers(numTrailers: u32): Action {
    return Action.Continue;
  }
  /** Response headers are here (`:status` included). */
  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    return Action.Continue;
  }
  onResponseBody(bodySize: usize, endOfStream: bool): Action {
    return Action.Continue;
  }
  onResponseTrailers(numTrailers: u32): Action {
    return Action.Continue;
  }
  /** The request is complete (access-log phase): headers are read-only, `response.*` properties final. */
  onLog(): void {}

  // ---- request headers and trailers -----------------------------------------------------------------

  getHttpRequestHeaders(): Header[] {
    return getHeaderMapPairs(MapType.HttpRequestHeaders);
  }
  setHttpRequestHeaders(headers: Header[]): Status {
    return setHeaderMapPairs(MapType.HttpRequestHeaders, headers);
  }
  /** First value of `name`, or null. */
  getHttpRequestHeader(name: string): string | null {
    return getHeaderMapValue(MapType.HttpRequestHeaders, name);
  }
  /** Sets `name` to exactly `value`; null removes it (Rust `set_http_request_header`). */
  setHttpRequestHeader(name: string, value: string | null): Status {
    return value === null ? removeHeaderMapValue(MapType.HttpRequestHeaders, name)
      : replaceHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }
  addHttpRequestHeader(name: string, value: string): Status {
    return addHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }
  removeHttpRequestHeader(name: string): Status {
    return removeHeaderMapValue(MapType.HttpRequestHeaders, name);
  }
  getHttpRequestTrailers(): Header[] {
    return getHeaderMapPairs(MapType.HttpRequestTrailers);
  }
  setHttpRequestTrailers(trailers: Header[]): Status {
    return setHeaderMapPairs(MapType.HttpRequestTrailers, trailers);
  }
  getHttpRequestTrailer(name: string): string | null {
    return getHeaderMapValue(MapType.HttpRequestTrailers, name);
  }
  setHttpRequestTrailer(name: string, value: string | null): Status {
    return value === null ? removeHeaderMapValue(MapType.HttpRequestTrailers, name)
      : replaceHeaderMapValue(MapType.HttpRequestTrailers, name, value);
  }
  addHttpRequestTrailer(name: string, value: string): Status {
    return addHeaderMapValue(MapType.HttpRequestTrailers, name, value);
  }

  // ---- response headers and trailers ----------------------------------------------------------------

  getHttpResponseHeaders(): Header[] {
    return getHeaderMapPairs(MapType.HttpResponseHeaders);
  }
  setHttpResponseHeaders(headers: Header[]): Status {
    return setHeaderMapPairs(MapType.HttpResponseHeaders, headers);
  }
  getHttpResponseHeader(name: string): string | null {
    return getHeaderMapValue(MapType.HttpResponseHeaders, name);
  }
  setHttpResponseHeader(name: string, value: string | null): Status {
    return value === null ? removeHeaderMapValue(MapType.HttpResponseHeaders, name)
      : replaceHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }
  addHttpResponseHeader(name: string, value: string): Status {
    return addHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }
  removeHttpResponseHeader(name: string): Status {
    return removeHeaderMapValue(MapType.HttpResponseHeaders, name);
  }
  getHttpResponseTrailers(): Header[] {
    return getHeaderMapPairs(MapType.HttpResponseTrailers);
  }
  setHttpResponseTrailers(trailers: Header[]): Status {
    return setHeaderMapPairs(MapType.HttpResponseTrailers, trailers);
  }
  getHttpResponseTrailer(name: string): string | null {
    return getHeaderMapValue(MapType.HttpResponseTrailers, name);
  }
  setHttpResponseTrailer(name: string, value: string | null): Status {
    return value === null ? removeHeaderMapValue(MapType.HttpResponseTrailers, name)
      : replaceHeaderMapValue(MapType.HttpResponseTrailers, name, value);
  }
  addHttpResponseTrailer(name: string, value: string): Status {
    return addHeaderMapValue(MapType.HttpResponseTrailers, name, value);
  }

  // ---- bodies ---------------------------------------------------------------------------------------

  /** Request body bytes available now (the current chunk, or all buffered so far after `Pause`). */
  getHttpRequestBody(start: u32 = 0, maxSize: u32 = ALL): ArrayBuffer | null {
    return getBufferBytes(BufferType.HttpRequestBody, start, maxSize);
  }
  /** Splices the request body; `(0, ALL, data)` replaces it (remove `content-length` first). */
  setHttpRequestBody(start: u32, size: u32, body: ArrayBuffer | null): Status {
    return setBufferBytes(BufferType.HttpRequestBody, start, size, body);
  }
  getHttpResponseBody(start: u32 = 0, maxSize: u32 = ALL): ArrayBuffer | null {
    return getBufferBytes(BufferType.HttpResponseBody, start, maxSize);
  }
  setHttpResponseBody(start: u32, size: u32, body: ArrayBuffer | null): Status {
    return setBufferBytes(BufferType.HttpResponseBody, start, size, body);
  }

  // ---- flow control ---------------------------------------------------------------------------------

  /** Resumes a request paused by `Action.Pause` (typically from `onHttpCallResponse`). */
  resumeHttpRequest(): Status {
    return continueStream(StreamType.HttpRequest);
  }
  resumeHttpResponse(): Status {
    return continueStream(StreamType.HttpResponse);
  }
  /** Resets the stream. */
  resetHttpRequest(): Status {
    return closeStream(StreamType.HttpRequest);
  }
  resetHttpResponse(): Status {
    return closeStream(StreamType.HttpResponse);
  }

  /**
   * Answers the client directly (Rust `send_http_response`); return `Action.Pause` from the
   * callback. `details` (optional) names the reason in the access log.
   */
  sendHttpResponse(statusCode: u32, headers: Header[], body: ArrayBuffer | null, details: string = ""): Status {
    return sendLocalResponse(statusCode, body, headers, details, GrpcStatus.None);
  }

  /** `sendHttpResponse` with a UTF-8 string body. */
  sendHttpResponseString(statusCode: u32, headers: Header[], body: string, details: string = ""): Status {
    return sendLocalResponse(statusCode, String.UTF8.encode(body), headers, details, GrpcStatus.None);
  }

  /** A gRPC error reply (HTTP 200, `grpc-status`, `message` as `grpc-message`). */
  sendGrpcResponse(grpcStatus: GrpcStatus, message: string, headers: Header[] = []): Status {
    return sendLocalResponse(200, String.UTF8.encode(message), headers, "", grpcStatus);
  }
}
