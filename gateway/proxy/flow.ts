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
 * This file orchestrates: one headers walk serves both directions (flow-direction.ts), body-pipeline.ts
 * walks the bodies, upstream-exchange.ts (or function-exchange.ts) answers, response-writer.ts
 * writes to the client and local-reply.ts builds the replies the gateway makes up.
 *
 * NB (reentrancy): guest side effects arrive after the guest call returns but while our own loop
 * is still on the stack (continue before Pause is seen, a local reply inside a headers loop).
 * `epoch` changes whenever the flow moves to another response, and loops check it after each call.
 *
 * The per-filter time (edge_gateway_filter_seconds) is read once per callback boundary
 * (filter-calls.ts); bookkeeping between two callbacks counts toward the later filter.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { HeaderMap } from '../abi/header-map.js';
import { Direction, Status, StreamType } from '../abi/enums.js';
import type { LocalResponse } from '../abi/ports.js';
import { BodyPipeline } from './body-pipeline.js';
import type { Endpoint } from './cluster.js';
import { FilterChain, type ChainOwner } from './filter-chain.js';
import { FilterSlot } from './filter-slot.js';
import type { FlowDirection } from './flow-direction.js';
import { requestHeaderMap, responseHeaderMap } from './headers.js';
import { endsWithHeaders } from './grpc-response.js';
import { failClosedHeaders, gatewayReply, isGrpcContentType, localReplyBody, localReplyHeaders } from './local-reply.js';
import { REJECT, SKIP } from './plugin-runtime.js';
import { hasBody } from './client-timeouts.js';
import { streamProperty } from './properties.js';
import { CLUSTER_OVERFLOW, QUEUE_TIMEOUT } from './upstream-queue.js';
import { ResponsePhase, type ResponseOwner } from './response-phase.js';
import { ResponseWriter, type WriterOwner } from './response-writer.js';
import { RetryLoop } from './retry-loop.js';
import { PER_TRY_TIMEOUT } from './retry-policy.js';
import { UpstreamExchange, type UpstreamHeaders } from './upstream-exchange.js';
import { FunctionExchange, type FunctionOwner } from './function-exchange.js';
import { GatewayError } from '../errors.js';
import type { FlowEnv, RouteRuntime, Scheme } from './types.js';

const EMPTY_BODY = Buffer.alloc(0);

const enum Phase { REQUEST, UPSTREAM, RESPONSE, DONE }

export class RequestFlow implements ChainOwner, WriterOwner, FunctionOwner, ResponseOwner {
  readonly startedAt = performance.now();
  readonly startedAtMs = Date.now();
  readonly client: string | null; // for the access log: a socket forgets its address once closed
  private readonly chain: FilterChain;
  readonly slots: FilterSlot[];
  filterState: Map<string, Uint8Array> | null = null;
  /** What happened, for the access log and metrics. */
  errorCode: string | null = null;
  localReplyBy: string | null = null;
  /** The details string of the filter's local reply (Envoy's response code details). */
  localReplyDetails = '';
  failedFilter: string | null = null;
  endpoint: Endpoint | null = null;
  upstreamStartedAt = 0;
  /** An Upgrade request's tunnel (upgrade.ts): it takes over from the upstream exchange once the request headers are final. */
  tunnel: ((flow: RequestFlow) => void) | null = null;
  upstreamHeadersAt = 0;
  /** Tries sent upstream (Envoy's UPSTREAM_REQUEST_ATTEMPT_COUNT): 0 when none was. */
  attempts = 0;
  /** The retries of a route with a retry policy (null: none, and nothing allocated for them). */
  private retries: RetryLoop | null = null;

  private phase = Phase.REQUEST;
  private readonly request: FlowDirection;
  private readonly response: FlowDirection;
  private upstream: UpstreamExchange | FunctionExchange | null = null;
  private readonly responsePhase: ResponsePhase;
  private readonly out: ResponseWriter;
  /** Envoy's is_grpc_request, from the request as the client sent it: the form of local replies. */
  private readonly grpcRequest: boolean;

  /** `scheme` is the listener's: the transport the request came in on, not the configuration's. */
  constructor(readonly req: IncomingMessage, readonly res: ServerResponse, readonly route: RouteRuntime,
    readonly env: FlowEnv, scheme: Scheme) {
    this.client = req.socket.remoteAddress ?? null;
    this.chain = new FilterChain(this, route.timeoutMs);
    this.slots = this.chain.slots;
    this.request = this.chain.request;
    this.response = this.chain.response;
    this.request.begin(requestHeaderMap(req, scheme), this.slots, !hasBody(req));
    this.out = new ResponseWriter(res, this);
    this.responsePhase = new ResponsePhase(this, this.chain, this.out, route.bodyLimit);
    this.grpcRequest = isGrpcContentType(req.headers['content-type']);
    res.on('close', () => this.finish());
  }

  get requestHeaders(): HeaderMap {
    return this.request.headers!;
  }

  get responseHeaders(): HeaderMap | null {
    return this.response.headers;
  }

  get responseTrailers(): HeaderMap | null {
    return this.response.trailers;
  }

  /** Request body bytes read from the client. */
  get bytesIn(): number {
    return this.retries?.body?.bytesIn ?? this.upstream?.bytesIn ?? 0;
  }

  /** The status sent to the client (0 when no response head went out), and its body bytes. */
  get status(): number { return this.out.status; }
  get bytesOut(): number { return this.out.bytesOut; }

  run(): void {
    for (const filter of this.route.filters) {
      const plugin = filter.plugin.runtime(filter.variant, this.req);
      if (plugin === null) continue;
      const slot = new FilterSlot(this.chain, plugin, this.slots.length);
      const stream = plugin.stream(slot);
      if (stream === SKIP) continue;
      if (stream === REJECT) {
        this.failClosed(plugin.name);
        return;
      }
      slot.stream = stream;
      this.slots.push(slot);
    }
    this.chain.walkHeaders(this.request, 0);
  }

  // ---- the chain's walks (ChainOwner) -------------------------------------------------------

  headersFinal(d: FlowDirection, epoch: number): void {
    if (d === this.request) this.forward();
    else this.responsePhase.headersFinal(epoch);
  }

  over(): boolean {
    return this.phase === Phase.DONE;
  }

  headersSent(direction: Direction): boolean {
    return direction === Direction.REQUEST ? this.phase !== Phase.REQUEST : this.out.headSent;
  }

  pauseTimedOut(): boolean {
    if (this.out.headSent) return false;
    this.errorCode = 'filter_pause_timeout';
    this.sendGatewayReply(504, 'a filter paused the stream and did not resume it');
    return true;
  }

  // ---- request → upstream → response ---------------------------------------------------------

  /** Request headers are final: open the upstream request and start moving the body. */
  private forward(): void {
    this.phase = Phase.UPSTREAM;
    if (this.tunnel !== null) return this.tunnel(this);
    const d = this.request;
    if (!d.eos && BodyPipeline.wanted(d.order, d.direction)) {
      d.pipeline = new BodyPipeline(this.chain, d.order, d.direction, this.route.bodyLimit,
        (data, eos) => this.upstream?.write(data, eos), () => this.tooLarge(413));
    }
    this.upstreamStartedAt = performance.now();
    if (this.route.fn !== null) {
      // The route's edge function answers in place of an upstream (function-exchange.ts).
      this.attempts++;
      this.upstream = FunctionExchange.open(this, this.req, d, this.env.functionTarget(this.route.fn), this.route);
      return;
    }
    if (this.route.retry !== null) this.retries = new RetryLoop(this, this.route.retry, d);
    this.attempt(this.route.cluster!.pick());
  }

  requestTooLarge(): void { this.tooLarge(413); }

  /** One try at `endpoint`: the first, or a retry (retry-loop.ts). */
  attempt(endpoint: Endpoint): void {
    this.endpoint = endpoint;
    this.attempts++;
    const upstream = new UpstreamExchange(this, this.req, this.request, endpoint, this.retries?.body ?? null);
    this.upstream = upstream;
    this.retries?.started(upstream);
    upstream.send(this.route.timeoutMs);
  }

  upstreamResponse(statusCode: number, headers: UpstreamHeaders): void {
    if (this.retries?.answered(statusCode, headers) === true) return;
    this.upstreamHeadersAt = performance.now();
    const noBody = endsWithHeaders(statusCode, this.requestHeaders.get(':method'), headers);
    this.beginResponse(responseHeaderMap(statusCode, headers), this.request.ranInResponseOrder(this.slots.length - 1, false), noBody);
  }

  upstreamData(chunk: Buffer): void {
    this.responsePhase.upstreamData(chunk);
  }

  upstreamEnd(trailers: UpstreamHeaders): void {
    this.responsePhase.upstreamEnd(trailers);
  }

  upstreamFailed(err: Error): void {
    const code = (err as { code?: string }).code ?? err.name;
    this.env.upstreamError(this, code);
    if (this.phase === Phase.UPSTREAM && this.retries?.failed(code) === true) return;
    this.errorCode = code;
    if (this.out.headSent) {
      this.out.reset(err);
      return;
    }
    // An edge function's failure: 504 over its time, 503 otherwise (errors.ts).
    if (err instanceof GatewayError) return this.sendGatewayReply(err.status, err.code === 'GW_ERR_FUNCTION_TIMEOUT' ? 'function timeout' : 'function failed');
    if (code === CLUSTER_OVERFLOW || code === QUEUE_TIMEOUT) {
      // Envoy's circuit-breaker answer (its UO flag), also for the queue's deadline.
      this.sendGatewayReply(503, `upstream connect error or disconnect/reset before headers. reset reason: ${code === CLUSTER_OVERFLOW ? 'overflow' : 'queue timeout'}`);
      return;
    }
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === PER_TRY_TIMEOUT;
    this.sendGatewayReply(timeout ? 504 : 502, timeout ? 'upstream request timeout' : 'upstream connect error or disconnect/reset before headers');
  }

  /** Starts the response phase for `headers` through `order` (already in response order). */
  private beginResponse(headers: HeaderMap, order: FilterSlot[], eos: boolean, body?: Uint8Array): void {
    this.phase = Phase.RESPONSE;
    this.responsePhase.begin(headers, order, eos, body);
  }

  responseTooLarge(): void { this.tooLarge(500); }

  holdUpstream(hold: boolean): void {
    if (hold) this.upstream?.pause();
    else this.upstream?.resume();
  }

  responseBody(): BodyPipeline | null {
    return this.response.pipeline;
  }

  upstreamController(): Dispatcher.DispatchController | null {
    return this.upstream?.dispatchController() ?? null;
  }

  // ---- guest requests (through FilterSlot) ---------------------------------------------------

  property(path: readonly string[]): Uint8Array | undefined {
    return streamProperty(this, path);
  }

  setProperty(path: readonly string[], value: Uint8Array): Status {
    (this.filterState ??= new Map()).set(path.join('\0'), value);
    return Status.OK;
  }

  onClose(slot: FilterSlot, _type: StreamType): void {
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
    const order = this.phase === Phase.RESPONSE
      ? this.response.order.slice(this.response.order.indexOf(slot) + 1)
      : this.request.ranInResponseOrder(slot.index, false);
    this.abortUpstream();
    this.localResponse(reply, order);
  }

  /** A local reply through the response phase of `order` (Envoy's sendLocalReply). */
  private localResponse(reply: LocalResponse, order: FilterSlot[]): void {
    const body = localReplyBody(reply, this.grpcRequest);
    this.beginResponse(localReplyHeaders(reply, this.grpcRequest), order, body.length === 0, body);
  }

  // ---- replies the gateway makes --------------------------------------------------------------

  /** A reply generated by the gateway (502, 504, 413…): through the filters that ran, like Envoy's router replies. */
  private sendGatewayReply(status: number, message: string): void {
    const order = this.phase === Phase.RESPONSE ? [] : this.request.ranInResponseOrder(this.slots.length - 1, true);
    this.abortUpstream();
    this.localResponse(gatewayReply(status, message), order);
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
    this.chain.epoch++;
    if (this.out.headSent) {
      this.out.reset();
      return;
    }
    this.phase = Phase.RESPONSE;
    this.response.begin(failClosedHeaders(this.grpcRequest), [], true);
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
    this.upstream?.abandon();
    this.retries?.close();
    if (this.phase === Phase.UPSTREAM) this.phase = Phase.RESPONSE;
    this.request.pipeline = null;
    if (!this.req.complete) this.req.resume();
  }

  // ---- end of stream -------------------------------------------------------------------------

  /** The tunnel's upstream answered 101 and the sockets are spliced, or it failed with `error` (upgrade.ts). */
  tunnelled(status: number, error?: string): void {
    this.out.status = status;
    this.out.headSent = true;
    if (error !== undefined) this.errorCode = error;
  }

  /** The client's response is over (sent, failed or abandoned): on_log → on_done → on_delete. */
  private finish(): void {
    if (this.phase === Phase.DONE) return;
    if (!this.res.writableFinished && this.out.status !== 101) this.errorCode ??= 'downstream_remote_disconnect';
    this.phase = Phase.DONE;
    this.out.close();
    this.chain.epoch++;
    this.chain.close();
    this.upstream?.close();
    this.retries?.close();
    // on_log/on_done/on_delete count toward the filter's time too (edge_gateway_filter_seconds).
    this.chain.calls.finish(this.slots);
    this.env.done(this);
  }
}
