/**
 * One request through the gateway, with Envoy's filter-chain semantics (design "Request flow",
 * reference §4.4, §6.6, §6.7):
 *
 *   request headers (filters in order) → request body (only through filters that export a body
 *   callback) → upstream (undici dispatch, bodies streamed) → response headers (reverse order) →
 *   response body → response trailers → on_log → on_done → on_delete for every filter.
 *
 * A Pause holds the chain at that filter until it calls proxy_continue_stream. A local reply
 * answers without (or instead of) the upstream and passes through the response phase of the
 * filters that already ran. A filter that traps costs this request per its failure policy.
 * This file orchestrates the chain; response-writer.ts writes to the client and local-reply.ts
 * builds the replies the gateway makes up.
 *
 * NB (reentrancy): guest side effects arrive after the guest call returns but while our own loop
 * is still on the stack (continue before Pause is seen, a local reply inside a headers loop).
 * `epoch` changes whenever the flow moves to another response, and loops check it after each call.
 *
 * The per-filter time (edge_gateway_filter_seconds) reads the clock once per callback boundary: in
 * a walk along the chain (a headers pass, a body chunk, the end of the stream) the first callback
 * reads it at its start, and the end of each callback is the start of the next. The little
 * bookkeeping between two callbacks counts toward the later filter; a walk with no filter to call
 * reads nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CALL_FAILED } from '../abi/context.js';
import { HeaderMap } from '../abi/header-map.js';
import { HeadersAction, Status, StreamType } from '../abi/enums.js';
import type { LocalResponse } from '../abi/ports.js';
import { BodyPipeline, type BodyOwner } from './body-pipeline.js';
import type { Endpoint } from './cluster.js';
import { FilterCalls } from './filter-calls.js';
import { FilterSlot, type SlotOwner } from './filter-slot.js';
import { NO_BODY_STATUS, objectToPairs, removeHeader, requestHeaderMap, responseHeaderMap, withoutPseudo } from './headers.js';
import { failClosedHeaders, gatewayReply, isGrpcContentType, localReplyBody, localReplyHeaders } from './local-reply.js';
import { REJECT, SKIP } from './plugin-runtime.js';
import { streamProperty } from './properties.js';
import { CLUSTER_OVERFLOW, QUEUE_TIMEOUT } from './upstream-queue.js';
import { ResponseWriter, type WriterOwner } from './response-writer.js';
import type { FlowEnv, RouteRuntime, Scheme } from './types.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

const EMPTY_BODY = Buffer.alloc(0);

const enum Phase { REQUEST, UPSTREAM, RESPONSE, DONE }

export class RequestFlow implements SlotOwner, BodyOwner, WriterOwner, Handler {
  readonly startedAt = performance.now();
  readonly startedAtMs = Date.now();
  readonly slots: FilterSlot[] = [];
  readonly requestHeaders: HeaderMap;
  requestTrailers: HeaderMap | null = null;
  responseHeaders: HeaderMap | null = null;
  responseTrailers: HeaderMap | null = null;
  filterState: Map<string, Uint8Array> | null = null;
  /** What happened, for the access log and metrics. */
  errorCode: string | null = null;
  localReplyBy: string | null = null;
  /** The details string of the filter's local reply (Envoy's response code details). */
  localReplyDetails = '';
  failedFilter: string | null = null;
  endpoint: Endpoint | null = null;
  bytesIn = 0;
  upstreamStartedAt = 0;
  upstreamHeadersAt = 0;

  private phase = Phase.REQUEST;
  private epochCounter = 0;
  private readonly calls = new FilterCalls();
  private reqPausedAt = -1;
  private hasBody: boolean;
  private reqPipeline: BodyPipeline | null = null;
  private upstreamBody: PassThrough | null = null;
  private controller: Controller | null = null;
  private respOrder: FilterSlot[] = [];
  private respPausedAt = -1;
  private respHeadersDone = false;
  private respEos = false;
  private respEnded = false;
  private respPending: Buffer[] = [];
  /** respPending holds the whole body (a local reply): its last chunk carries end of stream. */
  private respWhole = false;
  private respPipeline: BodyPipeline | null = null;
  private readonly out: ResponseWriter;
  private pauseTimer: NodeJS.Timeout | null = null;
  private upstreamTrailers: Record<string, string | string[] | undefined> | null = null;
  /** We aborted the upstream exchange ourselves: its error is not an upstream failure. */
  private upstreamAbandoned = false;
  /** Envoy's is_grpc_request, from the request as the client sent it: the form of local replies. */
  private readonly grpcRequest: boolean;

  /** `scheme` is the listener's: the transport the request came in on, not the configuration's. */
  constructor(readonly req: IncomingMessage, readonly res: ServerResponse, readonly route: RouteRuntime,
    readonly env: FlowEnv, scheme: Scheme) {
    this.requestHeaders = requestHeaderMap(req, scheme);
    this.out = new ResponseWriter(res, this);
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    this.hasBody = te !== undefined || (cl !== undefined && cl !== '0');
    this.grpcRequest = isGrpcContentType(req.headers['content-type']);
    res.on('close', () => this.finish());
  }

  /** The status sent to the client (0 when no response head went out). */
  get status(): number {
    return this.out.status;
  }

  /** Body bytes sent to the client. */
  get bytesOut(): number {
    return this.out.bytesOut;
  }

  // ---- request phase -------------------------------------------------------------------------

  run(): void {
    for (const plugin of this.route.plugins) {
      const slot = new FilterSlot(this, plugin);
      const stream = plugin.stream(slot);
      if (stream === SKIP) continue;
      if (stream === REJECT) {
        this.failClosed(plugin.name);
        return;
      }
      slot.stream = stream;
      this.slots.push(slot);
    }
    this.runRequestHeaders(0);
  }

  private runRequestHeaders(from: number): void {
    const epoch = this.beginWalk();
    for (let i = from; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (!slot.active) continue;
      slot.requestRan = true;
      const action = this.calls.headers(slot, StreamType.HTTP_REQUEST, this.requestHeaders.count, !this.hasBody);
      if (this.epochCounter !== epoch || this.phase === Phase.DONE) return;
      if (action === CALL_FAILED) {
        if (!this.failFilter(slot)) return;
      } else if (action !== HeadersAction.CONTINUE && !slot.consumeEarlyContinue(0)) {
        this.reqPausedAt = i;
        slot.hold();
        this.watchPause();
        return;
      }
    }
    this.reqPausedAt = -1;
    this.forward();
  }

  callBody(slot: FilterSlot, direction: number, size: number, eos: boolean): number {
    return this.calls.body(slot, direction, size, eos);
  }

  callTrailers(slot: FilterSlot, direction: number): number {
    return this.calls.trailers(slot, direction, (direction === 0 ? this.requestTrailers : this.responseTrailers)?.count ?? 0);
  }

  beginWalk(): number {
    this.calls.beginWalk();
    return this.epochCounter;
  }

  interrupted(epoch: number): boolean {
    return this.epochCounter !== epoch || this.phase === Phase.DONE;
  }

  /** Request headers are final: open the upstream request and start moving the body. */
  private forward(): void {
    this.phase = Phase.UPSTREAM;
    const pairs = this.requestHeaders.pairs;
    const method = this.requestHeaders.get(':method') ?? 'GET';
    const path = this.requestHeaders.get(':path') ?? '/';
    const authority = this.requestHeaders.get(':authority');
    const headers = withoutPseudo(pairs);
    if (authority) headers.push('host', authority);
    let body: PassThrough | IncomingMessage | null = null;
    if (this.hasBody) {
      if (BodyPipeline.wanted(this.slots, 0)) {
        // Filters may change the body's length: let the framing be chunked.
        removeHeader(headers, 'content-length');
        body = this.upstreamBody = new PassThrough();
        this.reqPipeline = new BodyPipeline(this, this.slots, 0, this.route.bodyLimit,
          (data, eos) => this.writeUpstream(data, eos), () => this.tooLarge(413));
        this.req.on('data', (chunk: Buffer) => this.onRequestData(chunk));
        this.req.on('end', () => this.onRequestEnd());
      } else {
        // NB: paused first, so that counting does not start the stream flowing before undici
        // reads it (chunks would be lost); undici resumes it when it writes the body.
        body = this.req;
        this.req.pause();
        this.req.on('data', (chunk: Buffer) => { this.bytesIn += chunk.length; });
      }
    }
    const endpoint = this.endpoint = this.route.cluster.pick();
    this.upstreamStartedAt = performance.now();
    endpoint.queue.dispatch({
      path, method, headers, body,
      headersTimeout: this.route.timeoutMs,
      bodyTimeout: this.route.timeoutMs,
    }, this);
  }

  private onRequestData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.phase !== Phase.UPSTREAM && this.phase !== Phase.RESPONSE) return;
    this.reqPipeline!.feed(chunk, false);
  }

  private onRequestEnd(): void {
    if (this.phase === Phase.DONE || this.reqPipeline === null) return;
    const trailers = objectToPairs(this.req.trailers);
    if (trailers.length > 0) this.requestTrailers = new HeaderMap(trailers);
    this.reqPipeline.feed(Buffer.alloc(0), true, 0, trailers.length > 0);
  }

  private writeUpstream(data: Buffer, eos: boolean): void {
    const out = this.upstreamBody;
    if (out === null || out.destroyed) return;
    if (data.length > 0 && !out.write(data)) {
      this.req.pause();
      out.once('drain', () => this.req.resume());
    }
    if (eos) out.end();
  }

  // ---- upstream (undici dispatch handler) ----------------------------------------------------

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.phase === Phase.DONE) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.phase !== Phase.UPSTREAM) {
      controller.abort(new Error('response no longer wanted'));
      return;
    }
    this.upstreamHeadersAt = performance.now();
    const noBody = NO_BODY_STATUS.has(statusCode) || this.requestHeaders.get(':method') === 'HEAD'
      || headers['content-length'] === '0';
    this.beginResponse(responseHeaderMap(statusCode, headers), ranInResponseOrder(this.slots, this.slots.length - 1, false), noBody);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.phase !== Phase.RESPONSE) return;
    if (!this.respHeadersDone) {
      this.respPending.push(chunk);
      controller.pause();
      return;
    }
    this.responseData(chunk, false);
  }

  onResponseEnd(_controller: Controller, trailers: Record<string, string | string[] | undefined>): void {
    if (this.phase !== Phase.RESPONSE) return;
    // The upstream exchange is complete: nothing left to pause, resume or abort. (Without this,
    // finish() built an Error for a no-op abort on every request: 5–10 µs of stack capture.)
    this.controller = null;
    this.upstreamTrailers = trailers;
    this.respEnded = true;
    if (this.respHeadersDone) this.endResponse();
  }

  onResponseError(_controller: Controller, err: Error): void {
    // NB: undici reports our own abort (a local reply replacing the response) here, synchronously.
    if (this.phase === Phase.DONE || this.upstreamAbandoned) return;
    const code = (err as { code?: string }).code ?? err.name;
    this.env.upstreamError(this, code);
    if (this.out.headSent) {
      this.errorCode = code;
      this.out.reset(err);
      return;
    }
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    this.errorCode = code;
    if (code === CLUSTER_OVERFLOW || code === QUEUE_TIMEOUT) {
      // Envoy's circuit-breaker answer (its UO flag), also for the queue's deadline.
      this.sendGatewayReply(503, `upstream connect error or disconnect/reset before headers. reset reason: ${code === CLUSTER_OVERFLOW ? 'overflow' : 'queue timeout'}`);
      return;
    }
    this.sendGatewayReply(timeout ? 504 : 502, timeout ? 'upstream request timeout' : 'upstream connect error or disconnect/reset before headers');
  }

  // ---- response phase ------------------------------------------------------------------------

  /** Starts the response phase for `headers` through `order` (already in response order). */
  private beginResponse(headers: HeaderMap, order: FilterSlot[], eos: boolean, body?: Uint8Array): void {
    this.epochCounter++;
    this.phase = Phase.RESPONSE;
    this.responseHeaders = headers;
    this.respOrder = order;
    this.respEos = eos;
    // A local reply is whole from the start; an upstream response ends when undici says so.
    this.respEnded = eos || body !== undefined;
    this.respHeadersDone = false;
    this.respPending = body !== undefined && body.length > 0 ? [Buffer.from(body)] : [];
    // Envoy encodes a local reply's body in one data frame with end_stream (one body callback).
    this.respWhole = this.respPending.length > 0;
    this.upstreamTrailers = null;
    this.responseTrailers = null;
    this.respPipeline = null;
    this.runResponseHeaders(0);
  }

  private runResponseHeaders(from: number): void {
    const epoch = this.beginWalk();
    const order = this.respOrder;
    for (let i = from; i < order.length; i++) {
      const slot = order[i];
      if (!slot.active) continue;
      const action = this.calls.headers(slot, StreamType.HTTP_RESPONSE, this.responseHeaders!.count, this.respEos);
      if (this.epochCounter !== epoch || this.phase === Phase.DONE) return;
      if (action === CALL_FAILED) {
        if (!this.failFilter(slot)) return;
      } else if (action !== HeadersAction.CONTINUE && !slot.consumeEarlyContinue(1)) {
        this.respPausedAt = i;
        this.watchPause();
        slot.hold();
        return;
      }
    }
    this.respPausedAt = -1;
    this.respHeadersDone = true;
    if (!this.respEos && BodyPipeline.wanted(order, 1)) {
      this.respPipeline = this.responsePipeline();
    } else {
      this.out.writeHead(false);
    }
    const pending = this.respPending;
    this.respPending = [];
    for (let k = 0; k < pending.length; k++) {
      if (this.epochCounter !== epoch) return;
      this.responseData(pending[k], this.respWhole && k === pending.length - 1);
    }
    if (this.epochCounter !== epoch || this.respWhole) return;
    if (this.respEnded) this.endResponse();
    else this.controller?.resume();
  }

  private responseData(chunk: Buffer, eos: boolean): void {
    if (this.respPipeline !== null) this.respPipeline.feed(chunk, eos);
    else this.out.write(chunk, eos);
  }

  private responsePipeline(): BodyPipeline {
    return new BodyPipeline(this, this.respOrder, 1, this.route.bodyLimit, (data, eos) => this.out.write(data, eos), () => this.tooLarge(500));
  }

  private endResponse(): void {
    const trailers = objectToPairs(this.upstreamTrailers);
    this.upstreamTrailers = null;
    if (trailers.length === 0) {
      this.responseData(Buffer.alloc(0), true);
      return;
    }
    // Trailers end the body in each filter in turn, after the data it held (Envoy's encodeTrailers).
    this.responseTrailers = new HeaderMap(trailers);
    (this.respPipeline ??= this.responsePipeline()).feed(Buffer.alloc(0), true, 0, true);
  }

  // ---- what the response writer reads -------------------------------------------------------

  responseBody(): BodyPipeline | null {
    return this.respPipeline;
  }

  upstreamController(): Controller | null {
    return this.controller;
  }

  // ---- guest requests (through FilterSlot) ---------------------------------------------------

  headerMap(type: number, write: boolean): HeaderMap | null {
    switch (type) {
      case 0: return write && this.phase !== Phase.REQUEST ? null : this.requestHeaders;
      case 1:
        // Envoy's getMap: a write in the end-of-stream body callback creates the trailers.
        if (this.requestTrailers === null && write && this.calls.eosBody === 0) this.requestTrailers = new HeaderMap();
        return this.requestTrailers;
      case 2: return write && this.out.headSent ? null : this.responseHeaders;
      default:
        if (this.responseTrailers === null && write && this.calls.eosBody === 1) this.responseTrailers = new HeaderMap();
        return this.responseTrailers;
    }
  }

  /** Whether the stream of `direction` ends with trailers now (the peer's, or a filter's). */
  hasTrailers(direction: number): boolean {
    const trailers = direction === 0 ? this.requestTrailers : this.responseTrailers;
    return trailers !== null && trailers.count > 0;
  }

  property(path: readonly string[]): Uint8Array | undefined {
    return streamProperty(this, path);
  }

  setProperty(path: readonly string[], value: Uint8Array): Status {
    (this.filterState ??= new Map()).set(path.join('\0'), value);
    return Status.OK;
  }

  onContinue(slot: FilterSlot, type: number): void {
    if (type > StreamType.HTTP_RESPONSE || this.phase === Phase.DONE) return;
    if (this.calls.running === slot) {
      slot.continueEarly(type);
      return;
    }
    this.clearPauseWatch();
    if (type === StreamType.HTTP_REQUEST) {
      if (this.phase === Phase.REQUEST && this.reqPausedAt >= 0 && this.slots[this.reqPausedAt] === slot) {
        this.reqPausedAt = -1;
        this.runRequestHeaders(this.slots.indexOf(slot) + 1);
      } else {
        this.reqPipeline?.resume(slot);
      }
    } else if (this.phase === Phase.RESPONSE) {
      if (this.respPausedAt >= 0 && this.respOrder[this.respPausedAt] === slot) {
        const next = this.respPausedAt + 1;
        this.respPausedAt = -1;
        this.runResponseHeaders(next);
      } else {
        this.respPipeline?.resume(slot);
      }
    }
  }

  onVmFailed(slot: FilterSlot): void {
    if (this.phase === Phase.DONE || !slot.active) return;
    const paused = (this.reqPausedAt >= 0 && this.slots[this.reqPausedAt] === slot)
      || (this.respPausedAt >= 0 && this.respOrder[this.respPausedAt] === slot) || slot.bodyPaused(0) || slot.bodyPaused(1);
    if (!paused || !this.failFilter(slot)) return;
    // Fail-open: the stream goes on without the filter, as if it had continued.
    this.onContinue(slot, StreamType.HTTP_REQUEST);
    this.onContinue(slot, StreamType.HTTP_RESPONSE);
  }

  onClose(slot: FilterSlot, _type: number): void {
    this.errorCode ??= 'wasm_close_stream';
    this.failedFilter ??= slot.plugin.name;
    this.abortUpstream();
    this.out.reset();
  }

  /** proxy_send_local_response, applied after the guest call (reference §6.7). */
  onLocalReply(slot: FilterSlot, reply: LocalResponse): void {
    if (this.phase === Phase.DONE) return;
    if (this.out.headSent) {
      // Too late to replace what the client already has: reset, as Envoy does.
      this.errorCode = 'local_reply_after_headers';
      this.out.reset();
      return;
    }
    this.localReplyBy = slot.plugin.name;
    this.localReplyDetails = reply.details;
    // The reply passes through the response phase of the filters that already ran: in the request
    // phase those up to this one; in the response phase those after it in response order.
    let order: FilterSlot[];
    if (this.phase === Phase.RESPONSE) {
      const at = this.respOrder.indexOf(slot);
      order = this.respOrder.slice(at + 1);
    } else {
      order = ranInResponseOrder(this.slots, this.slots.indexOf(slot), false);
    }
    this.abortUpstream();
    this.localResponse(reply, order);
  }

  /** A local reply through the response phase of `order` (Envoy's sendLocalReply). */
  private localResponse(reply: LocalResponse, order: FilterSlot[]): void {
    const body = localReplyBody(reply, this.grpcRequest);
    this.beginResponse(localReplyHeaders(reply, this.grpcRequest), order, body.length === 0, body);
  }

  /**
   * A filter that paused headers and never continues must not hold the client forever (Envoy has
   * its stream idle timeout): after the route's timeout the gateway answers 504 itself.
   */
  private watchPause(): void {
    if (this.pauseTimer !== null) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = null;
      if (this.phase === Phase.DONE || (this.reqPausedAt < 0 && this.respPausedAt < 0) || this.out.headSent) return;
      this.errorCode = 'filter_pause_timeout';
      this.reqPausedAt = -1;
      this.respPausedAt = -1;
      this.sendGatewayReply(504, 'a filter paused the stream and did not resume it');
    }, this.route.timeoutMs);
  }

  private clearPauseWatch(): void {
    if (this.pauseTimer === null) return;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
  }

  /** A reply generated by the gateway (502, 504, 413…): through the filters that ran, like Envoy's router replies. */
  private sendGatewayReply(status: number, message: string): void {
    const order = ranInResponseOrder(this.slots, this.slots.length - 1, true);
    const inResponse = this.phase === Phase.RESPONSE;
    this.abortUpstream();
    this.localResponse(gatewayReply(status, message), inResponse ? [] : order);
  }

  private tooLarge(status: 413 | 500): void {
    this.errorCode = status === 413 ? 'request_payload_too_large' : 'response_payload_too_large';
    if (this.out.headSent) {
      this.out.reset();
      return;
    }
    this.abortUpstream();
    this.localResponse(gatewayReply(status, status === 413 ? 'Payload Too Large' : 'Internal Server Error'), []);
  }

  /**
   * The client is too slow sending the request (client-timeouts.ts): 408 and close, through the
   * filters that ran (Envoy's stream timeouts), or a reset once the response began. False when
   * the flow is already over.
   */
  clientTimeout(reason: 'request_timeout' | 'request_body_timeout'): boolean {
    if (this.phase === Phase.DONE) return false;
    this.errorCode = reason;
    this.res.shouldKeepAlive = false;
    if (this.out.headSent) {
      this.abortUpstream();
      this.out.reset();
    } else {
      this.sendGatewayReply(408, 'request timeout');
    }
    return true;
  }

  // ---- failures ------------------------------------------------------------------------------

  /** A filter trapped on this stream: fail-open passes over it, anything else answers 503. */
  failFilter(slot: FilterSlot): boolean {
    this.failedFilter = slot.plugin.name;
    if (slot.plugin.config.failurePolicy === 'open') {
      slot.skipped = true;
      return true;
    }
    this.failClosed(slot.plugin.name);
    return false;
  }

  /** The host's own 503 (wasm_fail_stream): straight to the client, no response phase (Envoy). */
  private failClosed(plugin: string): void {
    this.failedFilter = plugin;
    this.errorCode = 'wasm_fail_stream';
    this.abortUpstream();
    this.epochCounter++;
    if (this.out.headSent) {
      this.out.reset();
      return;
    }
    this.phase = Phase.RESPONSE;
    this.responseHeaders = failClosedHeaders(this.grpcRequest);
    this.responseTrailers = null;
    this.respOrder = [];
    this.respPipeline = null;
    this.out.end(EMPTY_BODY);
  }

  /**
   * The response writer's last-resort guard caught something (a head or trailer Node refused):
   * it answered 502/503 or reset this request alone; here it is named in the access log and logged.
   */
  writeFailed(err: unknown): void {
    this.errorCode = 'response_write_failed';
    this.env.writeFailed(this, err);
  }

  private abortUpstream(): void {
    const controller = this.controller;
    this.controller = null;
    this.upstreamAbandoned = true;
    if (this.phase === Phase.UPSTREAM || this.phase === Phase.RESPONSE) this.phase = Phase.RESPONSE;
    if (controller !== null && !controller.aborted) controller.abort(new Error('upstream response no longer wanted'));
    this.upstreamBody?.destroy();
    this.upstreamBody = null;
    this.reqPipeline = null;
    if (!this.req.complete) this.req.resume();
  }

  // ---- end of stream -------------------------------------------------------------------------

  /** The client's response is over (sent, failed or abandoned): on_log → on_done → on_delete. */
  private finish(): void {
    if (this.phase === Phase.DONE) return;
    const completed = this.res.writableFinished;
    if (!completed) this.errorCode ??= 'downstream_remote_disconnect';
    this.phase = Phase.DONE;
    this.out.close();
    this.epochCounter++;
    this.clearPauseWatch();
    const controller = this.controller;
    this.controller = null;
    if (controller !== null && !controller.aborted) controller.abort(new Error('client went away'));
    this.upstreamBody?.destroy();
    // on_log/on_done/on_delete count toward the filter's time too (edge_gateway_filter_seconds).
    this.calls.finish(this.slots);
    this.env.done(this);
  }
}

/** The filters up to `last` whose request phase ran, in response order (`activeOnly`: not skipped since). */
function ranInResponseOrder(slots: readonly FilterSlot[], last: number, activeOnly: boolean): FilterSlot[] {
  const order: FilterSlot[] = [];
  for (let i = last; i >= 0; i--) {
    const slot = slots[i];
    if (slot.requestRan && (!activeOnly || slot.active)) order.push(slot);
  }
  return order;
}
