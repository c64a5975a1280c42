/**
 * Admission of forwarded requests to an endpoint's pool, with a bounded wait (Envoy's circuit
 * breakers `max_pending_requests`, plus a queue timeout Envoy does not have).
 *
 * undici's Pool queues every request it cannot place on a connection, without a bound and
 * without a deadline: 130 slow uploads on a 128-connection pool left every later request to that
 * cluster waiting for ever. So the gateway keeps the count itself: an endpoint takes at most
 * `capacity` requests in flight (its connections, times the streams of an HTTP/2 connection); the
 * rest wait here in FIFO order, at most `maxPendingRequests` per cluster, each for at most
 * `queueTimeoutMs`. Over the bound a request fails at once with `cluster_overflow`, past the
 * deadline with `queue_timeout`; the flow answers both with a 503.
 *
 * Each request is wrapped once in an UpstreamRequest, which is the undici handler (it forwards
 * every callback to the flow and frees the slot at the end) and the controller the flow holds
 * from the start (so a client that leaves while its request waits takes it out of the queue).
 * Callouts (callouts.ts) use the pools directly and are not counted.
 *
 * The same wrapper reports each answer of the endpoint to its outlier detection (`outcomes`): the
 * status once the response starts, or the error undici ends the request with, unless the gateway
 * aborted it itself or the client went away: one call per try, nothing allocated. Every try of a
 * retried request is its own dispatch here, so each is counted.
 */
import type { Dispatcher } from 'undici';
import type { Duplex } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

/** Where an endpoint's answers go (outlier detection, endpoint-health.ts). */
export interface UpstreamOutcomes {
  /** The endpoint answered with `status`. */
  observe(status: number): void;
  /** A request to the endpoint failed with undici's error `code`. */
  observeFailure(code: string): void;
}

/** Where a forwarded request's trailers come from: read once, when its body has ended. */
export interface TrailerSource {
  /** The trailers to send after the body; null: none. */
  requestTrailers(): Record<string, string | string[]> | null;
}

/** undici's dispatch options and the request's trailers (sent over HTTP/2, h2-upstream.ts; undici cannot send them). */
export interface ForwardOptions extends Dispatcher.DispatchOptions {
  readonly trailerSource?: TrailerSource;
}

/** What an endpoint's forwarded requests go to: its undici Pool, or its HTTP/2 upstream (h2-upstream.ts). */
export interface Forwarder {
  dispatch(opts: ForwardOptions, handler: Handler): boolean;
}

export const CLUSTER_OVERFLOW = 'cluster_overflow';
export const QUEUE_TIMEOUT = 'queue_timeout';

class QueueError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'QueueError';
  }
}

// One instance each: these are answers, not bugs, and a stack per refused request would cost.
const OVERFLOW_ERROR = new QueueError(CLUSTER_OVERFLOW, 'the cluster has maxPendingRequests requests waiting for a connection');
const TIMEOUT_ERROR = new QueueError(QUEUE_TIMEOUT, 'the request waited queueTimeoutMs for a connection');
const NO_CONTEXT = Object.freeze({});

/** The cluster-wide part: the bound on waiting requests and what was refused. */
export class ClusterAdmission {
  /** Requests waiting in the queues of all endpoints of the cluster. */
  pending = 0;
  overflows = 0;
  timeouts = 0;

  constructor(readonly maxPending: number, readonly queueTimeoutMs: number) {}
}

/** Created, not yet admitted (the flow may still abort it from onRequestStart). */
const NEW = 0;
const QUEUED = 1;
const ACTIVE = 2;
const DONE = 3;

/** One forwarded request: the undici handler around the flow, and the controller the flow sees. */
class UpstreamRequest implements Handler, Controller {
  state = NEW;
  deadline = 0;
  private upstream: Controller | null = null;
  private abortReason: Error | null = null;

  constructor(readonly queue: EndpointQueue, readonly opts: ForwardOptions, readonly handler: Handler) {}

  // ---- the controller the flow holds -------------------------------------------------------

  get aborted(): boolean {
    return this.abortReason !== null || (this.upstream?.aborted ?? false);
  }

  get paused(): boolean {
    return this.upstream?.paused ?? false;
  }

  get reason(): Error | null {
    return this.abortReason ?? this.upstream?.reason ?? null;
  }

  abort(reason: Error): void {
    if (this.abortReason !== null) return;
    this.abortReason = reason;
    if (this.state === QUEUED || this.state === NEW) {
      if (this.state === QUEUED) this.queue.admission.pending--;
      this.state = DONE;
      this.handler.onResponseError?.(this, reason);
    } else if (this.upstream !== null) {
      this.upstream.abort(reason);
    }
    // ACTIVE before undici started it: aborted in onRequestStart.
  }

  pause(): void {
    this.upstream?.pause();
  }

  resume(): void {
    this.upstream?.resume();
  }

  // ---- the handler undici calls --------------------------------------------------------------

  onRequestStart(controller: Controller): void {
    this.upstream = controller;
    if (this.abortReason !== null) controller.abort(this.abortReason);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.upstream = controller;
    this.queue.outcomes?.observe(statusCode);
    this.handler.onRequestUpgrade?.(this, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.upstream = controller;
    this.queue.outcomes?.observe(statusCode);
    this.handler.onResponseStart?.(this, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    this.handler.onResponseData?.(this, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: IncomingHttpHeaders): void {
    try {
      this.handler.onResponseEnd?.(this, trailers);
    } finally {
      this.queue.release(this);
    }
  }

  onResponseError(_controller: Controller, err: Error): void {
    // Errors with no code are the gateway's own aborts (a local reply, a client that left, even in
    // the middle of its upload: the response's close comes before the request body's error); a
    // coded abort (a retry's per-try timeout) is the endpoint's.
    const code = (err as { code?: string }).code;
    if (code !== undefined) this.queue.outcomes?.observeFailure(code);
    try {
      this.handler.onResponseError?.(this, err);
    } finally {
      this.queue.release(this);
    }
  }

  /** Refused or expired while waiting: the flow answers 503. */
  fail(err: QueueError): void {
    this.state = DONE;
    this.handler.onResponseError?.(this, err);
  }
}

function expire(queue: EndpointQueue): void {
  queue.expire();
}

/** The admission of one endpoint: requests in flight, and the FIFO of those waiting. */
export class EndpointQueue {
  active = 0;
  private waiting: UpstreamRequest[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  /** `outcomes`: the endpoint's outlier detection, or null when the cluster has none. */
  constructor(readonly pool: Forwarder, readonly capacity: number, readonly admission: ClusterAdmission,
    readonly outcomes: UpstreamOutcomes | null = null) {}

  /** Whether a request would start at once. */
  get free(): boolean {
    return this.active < this.capacity;
  }

  /** Forwards `opts` with `handler` now, after a wait, or fails it (503 in the flow). */
  dispatch(opts: ForwardOptions, handler: Handler): void {
    const request = new UpstreamRequest(this, opts, handler);
    handler.onRequestStart?.(request, NO_CONTEXT);
    if (request.aborted) return;
    if (this.active < this.capacity) {
      this.start(request);
      return;
    }
    const admission = this.admission;
    if (admission.pending >= admission.maxPending) {
      admission.overflows++;
      request.fail(OVERFLOW_ERROR);
      return;
    }
    admission.pending++;
    request.state = QUEUED;
    request.deadline = performance.now() + admission.queueTimeoutMs;
    this.waiting.push(request);
    if (this.timer === null) this.arm(admission.queueTimeoutMs);
  }

  /** A request in flight ended: the next one waiting takes its place. */
  release(request: UpstreamRequest): void {
    if (request.state !== ACTIVE) return;
    request.state = DONE;
    this.active--;
    while (this.active < this.capacity && this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.waiting[this.head++] = undefined as unknown as UpstreamRequest;
      if (next.state !== QUEUED) continue;
      this.admission.pending--;
      this.start(next);
    }
    this.compact();
  }

  /** Fails every waiting request past its deadline (they are in deadline order). */
  expire(): void {
    this.timer = null;
    const now = performance.now();
    while (this.head < this.waiting.length) {
      const request = this.waiting[this.head];
      if (request.state === QUEUED && request.deadline > now) break;
      this.waiting[this.head++] = undefined as unknown as UpstreamRequest;
      if (request.state !== QUEUED) continue;
      this.admission.pending--;
      this.admission.timeouts++;
      request.fail(TIMEOUT_ERROR);
    }
    this.compact();
    if (this.head < this.waiting.length) this.arm(Math.max(1, this.waiting[this.head].deadline - now));
  }

  private start(request: UpstreamRequest): void {
    request.state = ACTIVE;
    this.active++;
    try {
      this.pool.dispatch(request.opts, request);
    } catch (err) {
      request.onResponseError(request, err as Error);
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(expire, ms, this);
    this.timer.unref();
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}
