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
 *
 * NB (reentrancy): guest side effects arrive after the guest call returns but while our own loop
 * is still on the stack (continue before Pause is seen, a local reply inside a headers loop).
 * `epoch` changes whenever the flow moves to another response, and loops check it after each call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CALL_FAILED } from '../abi/context.js';
import { HeaderMap } from '../abi/header-map.js';
import { BodyAction, HeadersAction, Status, StreamType } from '../abi/enums.js';
import type { LocalResponse } from '../abi/ports.js';
import { BodyPipeline, type BodyOwner } from './body-pipeline.js';
import type { Endpoint } from './cluster.js';
import { FilterSlot, type SlotOwner } from './filter-slot.js';
import { objectToPairs, requestHeaderMap, responseHeaderMap, withoutPseudo } from './headers.js';
import { REJECT, SKIP } from './plugin-runtime.js';
import { streamProperty } from './properties.js';
import type { FlowEnv, RouteRuntime } from './types.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

const enum Phase { REQUEST, UPSTREAM, RESPONSE, DONE }

/** Statuses whose responses carry no body (RFC 9110). */
const NO_BODY_STATUS = new Set([204, 304]);

export class RequestFlow implements SlotOwner, BodyOwner, Handler {
  readonly startedAt = performance.now();
  readonly startedAtMs = Date.now();
  readonly slots: FilterSlot[] = [];
  readonly requestHeaders: HeaderMap;
  requestTrailers: HeaderMap | null = null;
  responseHeaders: HeaderMap | null = null;
  responseTrailers: HeaderMap | null = null;
  filterState: Map<string, Uint8Array> | null = null;
  /** What happened, for the access log and metrics. */
  status = 0;
  errorCode: string | null = null;
  localReplyBy: string | null = null;
  /** The details string of the filter's local reply (Envoy's response code details). */
  localReplyDetails = '';
  failedFilter: string | null = null;
  endpoint: Endpoint | null = null;
  bytesIn = 0;
  bytesOut = 0;
  upstreamStartedAt = 0;
  upstreamHeadersAt = 0;

  private phase = Phase.REQUEST;
  private epochCounter = 0;
  private running: FilterSlot | null = null;
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
  private headSent = false;
  private pauseTimer: NodeJS.Timeout | null = null;
  private upstreamTrailers: Record<string, string | string[] | undefined> | null = null;
  /** We aborted the upstream exchange ourselves: its error is not an upstream failure. */
  private upstreamAbandoned = false;

  constructor(readonly req: IncomingMessage, readonly res: ServerResponse, readonly route: RouteRuntime,
    readonly env: FlowEnv) {
    this.requestHeaders = requestHeaderMap(req, env.scheme);
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    this.hasBody = te !== undefined || (cl !== undefined && cl !== '0');
    res.on('close', () => this.finish());
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
    const epoch = this.epochCounter;
    for (let i = from; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (!slot.active) continue;
      slot.requestRan = true;
      const action = this.callHeaders(slot, StreamType.HTTP_REQUEST, this.requestHeaders.count, !this.hasBody);
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

  private callHeaders(slot: FilterSlot, type: number, count: number, eos: boolean): number {
    const t0 = performance.now();
    this.running = slot;
    const stream = slot.stream!;
    const replied = stream.localReplySent;
    const requests = stream.localReplyRequests;
    const action = type === StreamType.HTTP_REQUEST ? stream.onRequestHeaders(count, eos) : stream.onResponseHeaders(count, eos);
    this.running = null;
    slot.timeMs += performance.now() - t0;
    // A second local reply from a stream is ignored (only the first is sent), and so is the Stop the
    // ABI forces for it: nothing would ever resume the stream and the client would hang.
    return replied && stream.localReplyRequests !== requests && action !== CALL_FAILED ? HeadersAction.CONTINUE : action;
  }

  callBody(slot: FilterSlot, direction: number, size: number, eos: boolean): number {
    const t0 = performance.now();
    this.running = slot;
    const stream = slot.stream!;
    const replied = stream.localReplySent;
    const requests = stream.localReplyRequests;
    const action = direction === 0 ? stream.onRequestBody(size, eos) : stream.onResponseBody(size, eos);
    this.running = null;
    slot.timeMs += performance.now() - t0;
    return replied && stream.localReplyRequests !== requests && action !== CALL_FAILED ? BodyAction.CONTINUE : action;
  }

  callTrailers(slot: FilterSlot, direction: number): number {
    const t0 = performance.now();
    this.running = slot;
    const stream = slot.stream!;
    const action = direction === 0 ? stream.onRequestTrailers(this.requestTrailers?.count ?? 0)
      : stream.onResponseTrailers(this.responseTrailers?.count ?? 0);
    this.running = null;
    slot.timeMs += performance.now() - t0;
    return action;
  }

  epoch(): number {
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
    endpoint.pool.dispatch({
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
    const order: FilterSlot[] = [];
    for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i].requestRan) order.push(this.slots[i]);
    this.beginResponse(responseHeaderMap(statusCode, headers), order, noBody);
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
    if (this.headSent) {
      this.errorCode = code;
      this.res.destroy(err);
      return;
    }
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    this.errorCode = code;
    this.gatewayReply(timeout ? 504 : 502, timeout ? 'upstream request timeout' : 'upstream connect error or disconnect/reset before headers');
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
    this.respPipeline = null;
    this.runResponseHeaders(0);
  }

  private runResponseHeaders(from: number): void {
    const epoch = this.epochCounter;
    const order = this.respOrder;
    for (let i = from; i < order.length; i++) {
      const slot = order[i];
      if (!slot.active) continue;
      const action = this.callHeaders(slot, StreamType.HTTP_RESPONSE, this.responseHeaders!.count, this.respEos);
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
      this.writeHead(false);
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
    else this.writeClient(chunk, eos);
  }

  private responsePipeline(): BodyPipeline {
    return new BodyPipeline(this, this.respOrder, 1, this.route.bodyLimit, (data, eos) => this.writeClient(data, eos), () => this.tooLarge(500));
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

  /** Sends the response head with the filtered headers. `exactLength` when the body is known whole. */
  private writeHead(chunked: boolean, exactLength?: number): void {
    if (this.headSent) return;
    this.headSent = true;
    const headers = this.responseHeaders!;
    const status = Number(headers.get(':status')) || 502;
    const flat = withoutPseudo(headers.pairs);
    if (exactLength !== undefined) {
      removeHeader(flat, 'content-length');
      if (!NO_BODY_STATUS.has(status)) flat.push('content-length', String(exactLength));
    } else if (chunked) {
      removeHeader(flat, 'content-length');
    }
    this.status = status;
    this.res.writeHead(status, flat);
  }

  private writeClient(data: Buffer, eos: boolean): void {
    if (this.phase === Phase.DONE) return;
    if (!this.headSent) {
      // With body filters the head waits for the first bytes out: a body known whole gets its exact
      // content-length, an edited streamed body goes chunked, an untouched one keeps the
      // upstream's framing. Trailers need chunked framing.
      const trailers = eos && this.responseTrailers !== null && this.responseTrailers.count > 0;
      if (this.respPipeline === null) this.writeHead(trailers);
      else if (eos) this.writeHead(trailers, trailers ? undefined : data.length);
      else this.writeHead(this.respPipeline.edited);
    }
    if (data.length > 0) {
      this.bytesOut += data.length;
      if (!this.res.write(data) && this.controller !== null && !eos) {
        this.controller.pause();
        this.res.once('drain', () => this.controller?.resume());
      }
    }
    if (eos) {
      if (this.responseTrailers !== null && this.responseTrailers.count > 0 && this.res.chunkedEncoding) {
        this.res.addTrailers(withoutPseudo(this.responseTrailers.pairs).reduce<[string, string][]>((acc, v, i, a) => {
          if (i % 2 === 0) acc.push([v, a[i + 1]]);
          return acc;
        }, []));
      }
      this.res.end();
    }
  }

  // ---- guest requests (through FilterSlot) ---------------------------------------------------

  headerMap(type: number, write: boolean): HeaderMap | null {
    switch (type) {
      case 0: return write && this.phase !== Phase.REQUEST ? null : this.requestHeaders;
      case 1: return this.requestTrailers;
      case 2: return write && this.headSent ? null : this.responseHeaders;
      default: return this.responseTrailers;
    }
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
    if (this.running === slot) {
      slot.earlyContinue[type] = true;
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
      || (this.respPausedAt >= 0 && this.respOrder[this.respPausedAt] === slot) || slot.bodyPaused[0] || slot.bodyPaused[1];
    if (!paused || !this.failFilter(slot)) return;
    // Fail-open: the stream goes on without the filter, as if it had continued.
    this.onContinue(slot, StreamType.HTTP_REQUEST);
    this.onContinue(slot, StreamType.HTTP_RESPONSE);
  }

  onClose(slot: FilterSlot, _type: number): void {
    this.errorCode ??= 'wasm_close_stream';
    this.failedFilter ??= slot.plugin.name;
    this.abortUpstream();
    this.res.destroy();
  }

  /** proxy_send_local_response, applied after the guest call (reference §6.7). */
  onLocalReply(slot: FilterSlot, reply: LocalResponse): void {
    if (this.phase === Phase.DONE) return;
    if (this.headSent) {
      // Too late to replace what the client already has: reset, as Envoy does.
      this.errorCode = 'local_reply_after_headers';
      this.res.destroy();
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
      order = [];
      for (let i = this.slots.indexOf(slot); i >= 0; i--) if (this.slots[i].requestRan) order.push(this.slots[i]);
    }
    this.abortUpstream();
    this.localResponse(reply, order);
  }

  private localResponse(reply: LocalResponse, order: FilterSlot[]): void {
    const pairs = [':status', String(reply.grpcStatus >= 0 ? 200 : reply.status)];
    let body: Uint8Array = reply.body;
    if (reply.grpcStatus >= 0) {
      // A gRPC local reply is trailers-only: status and message in the headers, no body.
      pairs.push('content-type', 'application/grpc', 'grpc-status', String(reply.grpcStatus));
      if (body.length > 0) pairs.push('grpc-message', encodeURIComponent(Buffer.from(body).toString('utf8')));
      body = new Uint8Array(0);
    } else {
      if (body.length > 0 && !reply.headers.some((v, i) => i % 2 === 0 && v === 'content-type')) pairs.push('content-type', 'text/plain');
      // Envoy's local replies carry their length (filters see it in on_response_headers).
      if (!NO_BODY_STATUS.has(reply.status) && !reply.headers.some((v, i) => i % 2 === 0 && v === 'content-length')) {
        pairs.push('content-length', String(body.length));
      }
    }
    const headers = new HeaderMap(pairs);
    for (let i = 0; i < reply.headers.length; i += 2) headers.add(reply.headers[i], reply.headers[i + 1]);
    this.beginResponse(headers, order, body.length === 0, body);
  }

  /**
   * A filter that paused headers and never continues must not hold the client forever (Envoy has
   * its stream idle timeout): after the route's timeout the gateway answers 504 itself.
   */
  private watchPause(): void {
    if (this.pauseTimer !== null) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = null;
      if (this.phase === Phase.DONE || (this.reqPausedAt < 0 && this.respPausedAt < 0) || this.headSent) return;
      this.errorCode = 'filter_pause_timeout';
      this.reqPausedAt = -1;
      this.respPausedAt = -1;
      this.gatewayReply(504, 'a filter paused the stream and did not resume it');
    }, this.route.timeoutMs);
  }

  private clearPauseWatch(): void {
    if (this.pauseTimer === null) return;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
  }

  /** A reply generated by the gateway (502, 504, 413…): through the filters that ran, like Envoy's router replies. */
  private gatewayReply(status: number, message: string): void {
    const order: FilterSlot[] = [];
    for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i].requestRan && this.slots[i].active) order.push(this.slots[i]);
    const inResponse = this.phase === Phase.RESPONSE;
    this.abortUpstream();
    this.localResponse({ status, details: '', body: Buffer.from(`${message}\n`), headers: [], grpcStatus: -1 },
      inResponse ? [] : order);
  }

  private tooLarge(status: 413 | 500): void {
    this.errorCode = status === 413 ? 'request_payload_too_large' : 'response_payload_too_large';
    if (this.headSent) {
      this.res.destroy();
      return;
    }
    this.abortUpstream();
    this.localResponse({ status, details: '', body: Buffer.from(status === 413 ? 'Payload Too Large\n' : 'Internal Server Error\n'),
      headers: [], grpcStatus: -1 }, []);
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
    if (this.headSent) {
      this.res.destroy();
      return;
    }
    this.phase = Phase.RESPONSE;
    this.responseHeaders = new HeaderMap([':status', '503', 'content-type', 'text/plain']);
    this.respOrder = [];
    this.respPipeline = null;
    const body = Buffer.from(`filter ${plugin} failed\n`);
    // NB: writeHead sends the head at once; its content-length must be the body's already.
    this.writeHead(false, body.length);
    this.bytesOut += body.length;
    this.res.end(body);
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
    this.epochCounter++;
    this.clearPauseWatch();
    const controller = this.controller;
    this.controller = null;
    if (controller !== null && !controller.aborted) controller.abort(new Error('client went away'));
    this.upstreamBody?.destroy();
    // status stays 0 when no response head went out (client gone first), as Envoy logs it.
    if (this.status === 0 && this.res.headersSent) this.status = this.res.statusCode;
    // on_log/on_done/on_delete count toward the filter's time too (edge_gateway_filter_seconds).
    // Envoy logs every filter of the stream before it destroys any of them.
    for (const slot of this.slots) {
      const t0 = performance.now();
      slot.stream?.log();
      slot.timeMs += performance.now() - t0;
    }
    for (const slot of this.slots) {
      slot.release();
      const t0 = performance.now();
      slot.stream?.destroy();
      slot.timeMs += performance.now() - t0;
    }
    this.env.done(this);
  }
}

function removeHeader(flat: string[], name: string): void {
  for (let i = flat.length - 2; i >= 0; i -= 2) if (flat[i] === name) flat.splice(i, 2);
}
