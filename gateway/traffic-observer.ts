/**
 * What the gateway tells about its traffic: the access-log line and the request metrics of every
 * request (routed, not routed, refused before routing, refused by Node), upstream errors, and the
 * connections a listener closed at accept. The listeners and generations report here through
 * their hooks; nothing here touches a request or decides anything about it.
 */
import type { IncomingMessage } from 'node:http';
import type { GatewayMetrics } from './admin/metrics.js';
import type { Logger } from './log.js';
import type { RequestFlow } from './proxy/flow.js';
import type { RetryReason } from './proxy/retry-policy.js';

export class TrafficObserver {
  private readonly droppedConnections = new Map<string, number>();
  private droppedLoggedAt = 0;
  private readonly upstreamTimers = new Map<string, { observe(seconds: number): void }>();

  constructor(private readonly metrics: GatewayMetrics, private readonly logger: Logger) {}

  /** A routed request is over: its metrics, its filters' times and its access-log line. */
  requestDone(flow: RequestFlow): void {
    const seconds = (performance.now() - flow.startedAt) / 1000;
    const route = flow.route.name;
    this.metrics.requestDone(route, flow.status, seconds);
    // Only filters that ran: one that answered locally ends the request phase for those after it.
    for (const slot of flow.slots) if (slot.requestRan) this.metrics.filterTimer(slot.plugin.name).observe(slot.timeMs / 1000);
    if (flow.localReplyBy !== null) this.metrics.localReplies.inc({ plugin: flow.localReplyBy, status: flow.status });
    if (flow.failedFilter !== null) this.metrics.filterFailures.inc({ plugin: flow.failedFilter });
    // The access-log object is built only when it will be written (the bench runs at level error).
    if (flow.upstreamHeadersAt !== 0) this.upstreamTimer(upstreamOf(flow)).observe((flow.upstreamHeadersAt - flow.upstreamStartedAt) / 1000);
    if (!this.logger.isLevelEnabled('info')) return;
    let filtersMs = 0;
    for (const slot of flow.slots) filtersMs += slot.timeMs;
    this.logger.info({
      access: true,
      method: flow.req.method,
      path: flow.req.url,
      status: flow.status,
      route,
      client: flow.client,
      host: hostOf(flow.req),
      userAgent: flow.req.headers['user-agent'] ?? null,
      upstream: flow.endpoint?.origin ?? null,
      attempts: flow.attempts,
      durationMs: ms(seconds * 1000),
      upstreamMs: flow.upstreamHeadersAt === 0 ? null : ms(flow.upstreamHeadersAt - flow.upstreamStartedAt),
      filtersMs: ms(filtersMs),
      bytesIn: flow.bytesIn,
      bytesOut: flow.bytesOut,
      requestId: flow.requestHeaders.get('x-request-id'),
      localReplyBy: flow.localReplyBy ?? undefined,
      failedFilter: flow.failedFilter ?? undefined,
      error: flow.errorCode ?? undefined,
    }, 'request');
  }

  /** The upstream-latency series of one cluster (or function), resolved once: see GatewayMetrics.requestDone. */
  private upstreamTimer(upstream: string): { observe(seconds: number): void } {
    let timer = this.upstreamTimers.get(upstream);
    if (timer === undefined) this.upstreamTimers.set(upstream, (timer = this.metrics.upstreamLatency.labels(upstream)));
    return timer;
  }

  upstreamError(flow: RequestFlow, code: string): void {
    this.metrics.upstreamErrors.inc({ cluster: upstreamOf(flow), code });
    this.logger.warn({ route: flow.route.name, cluster: upstreamOf(flow), upstream: flow.endpoint?.origin, code, path: flow.req.url }, 'upstream error');
  }

  /** A retry of `flow` was scheduled after its try at flow.endpoint; `reason` is the retryOn condition that matched. */
  upstreamRetry(flow: RequestFlow, reason: RetryReason): void {
    this.metrics.upstreamRetries.inc({ route: flow.route.name, reason });
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ route: flow.route.name, cluster: upstreamOf(flow), upstream: flow.endpoint?.origin, reason, attempts: flow.attempts, path: flow.req.url }, 'upstream retry');
  }

  /** A retry of `flow` was refused by its cluster's retry budget: it is answered with its last try's outcome. */
  retryBudgetExhausted(flow: RequestFlow): void {
    this.metrics.retryBudgetExhausted.inc({ cluster: upstreamOf(flow) });
  }

  /** A request no route matched, answered 404 by the listener in `seconds` with `bytesOut` body bytes. */
  notFound(req: IncomingMessage, seconds: number, bytesOut: number): void {
    // The same access-log fields and metrics as a routed request; "" is the route label of no route.
    this.metrics.requestDone('', 404, seconds);
    if (!this.logger.isLevelEnabled('info')) return;
    const requestId = req.headers['x-request-id'];
    this.logger.info({
      access: true, method: req.method, path: req.url, status: 404, route: null,
      client: req.socket.remoteAddress ?? null, host: hostOf(req), userAgent: req.headers['user-agent'] ?? null, upstream: null,
      durationMs: ms(seconds * 1000), bytesIn: 0, bytesOut,
      requestId: typeof requestId === 'string' ? requestId : null, error: 'route_not_found',
    }, 'request');
  }

  /**
   * The access-log line of a request refused before routing (bad target, duplicate Host) or of
   * bytes Node refused (a parse error: `details` is its HPE_* code) or timed out. No route, no
   * upstream; `error` is the reason (the README lists them).
   */
  edgeRequest(listener: string, status: number, reason: string, method: string | null, path: string | null,
    socket: { remoteAddress?: string }, details?: string): void {
    this.metrics.requests.inc({ route: '', status: String(status) });
    if (!this.logger.isLevelEnabled('info')) return;
    this.logger.info({
      access: true, listener, method, path, status, route: null, upstream: null, durationMs: 0, bytesIn: 0, bytesOut: 0,
      requestId: null, client: socket.remoteAddress ?? null, error: reason, details,
    }, 'request');
  }

  /**
   * A connection closed at accept because the listener had maxConnections open. Counted, and
   * logged at most once a second with the count since the last line (a flood must not flood the log).
   */
  connectionDropped(listener: string): void {
    const count = (this.droppedConnections.get(listener) ?? 0) + 1;
    this.droppedConnections.set(listener, count);
    const now = Date.now();
    if (now - this.droppedLoggedAt < 1000) return;
    this.droppedLoggedAt = now;
    this.logger.warn({ listener, dropped: count }, 'connection limit reached: new connections are closed');
  }

  /**
   * A TLS handshake on `listener` failed: counted by reason, logged at debug (a scanner's
   * handshakes must not flood the log; the counter shows them).
   */
  tlsError(listener: string, err: NodeJS.ErrnoException, socket: { remoteAddress?: string }): void {
    const reason = err.code ?? 'ERR_TLS';
    this.metrics.tlsHandshakeErrors.inc({ listener, reason });
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ listener, reason, client: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
  }

  /** An HTTP/2 connection closed for resetting too many streams before their response began. */
  rapidReset(listener: string, client: string | undefined, resets: number, streams: number): void {
    this.metrics.http2RapidResets.inc({ listener });
    this.logger.warn({ listener, client, resets, streams }, 'HTTP/2 connection closed: its client reset too many streams before their response (rapid reset)');
  }

  /** Connections `listener` closed at accept since start (maxConnections). */
  connectionsDropped(listener: string): number {
    return this.droppedConnections.get(listener) ?? 0;
  }
}

/** Milliseconds to the microsecond, as the access log writes them. */
function ms(value: number): number {
  return Math.round(value * 1e3) / 1e3;
}

/**
 * The host a request asked for (`:authority` on HTTP/2), or null. The access log reads it, the
 * client address and the user agent from Node's request, as the client sent them, so a filter
 * that rewrites headers does not change what the log says about the client.
 */
function hostOf(req: IncomingMessage): string | null {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? null;
}

/** The cluster of a flow's route, or the edge function answering it (a function: label). */
function upstreamOf(flow: RequestFlow): string {
  return flow.route.cluster?.name ?? `function:${flow.route.fn ?? ''}`;
}
