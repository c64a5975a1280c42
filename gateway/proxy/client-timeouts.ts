/**
 * Client timeouts of a listener (Envoy's request_headers_timeout, request_timeout, idle_timeout
 * and stream idle timeout; nginx's client_header_timeout, client_body_timeout, keepalive_timeout):
 *
 * - request headers: Node's `headersTimeout`, from the connection's first byte (or its accept) to
 *   the end of the headers; covers slowloris and connections that never send anything. Node
 *   answers 408 and closes. Node checks it on a timer (`connectionsCheckingInterval`, 30 s by
 *   default), so the interval is derived from the timeouts here: a quarter of the shortest,
 *   between 10 ms and 1 s;
 * - idle keep-alive: Node's `keepAliveTimeout` (Node keeps the socket one more second than it
 *   advertises in `Keep-Alive: timeout=`, against races with clients reusing it);
 * - whole request and body progress: a BodyWatch per routed request with a body. Node's own
 *   `requestTimeout` stays on a second later as the backstop for requests no flow watches.
 *   NB: `requestTimeout: 0` in Node also turns its default headers timeout off, which is how
 *   slowloris connections used to stay open for ever.
 */
import type { IncomingMessage, ServerOptions } from 'node:http';

export interface ClientLimits {
  readonly headersTimeoutMs: number;
  /** 0: no limit on the whole request. */
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** 0: no limit on a body that stops arriving. */
  readonly bodyTimeoutMs: number;
}

/** Node's whole-request timer fires this much after ours, so that a watched request gets our answer. */
const BACKSTOP_MS = 1000;

function period(limits: ClientLimits): number {
  let shortest = limits.headersTimeoutMs;
  if (limits.requestTimeoutMs > 0) shortest = Math.min(shortest, limits.requestTimeoutMs);
  if (limits.bodyTimeoutMs > 0) shortest = Math.min(shortest, limits.bodyTimeoutMs);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
}

/** The node:http server options that carry the limits. */
export function serverOptions(limits: ClientLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs === 0 ? 0 : limits.requestTimeoutMs + BACKSTOP_MS,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: period(limits),
  };
}

/**
 * Whether the request announced a body (Node has checked the framing already). An HTTP/2 request
 * has one unless its HEADERS frame ended the stream: it needs neither length nor chunking.
 */
export function hasBody(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (stream !== undefined) return stream.endAfterHeaders !== true;
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** Who answers when the client is too slow: false when it is past answering (then the socket is closed). */
export interface TimeoutTarget {
  clientTimeout(reason: 'request_timeout' | 'request_body_timeout'): boolean;
}

function tick(watch: BodyWatch): void {
  watch.check();
}

/**
 * Watches one request's body until it is complete: no body byte for `bodyTimeoutMs` while the
 * gateway is reading (`request_body_timeout`), or the whole request past `requestTimeoutMs`
 * (`request_timeout`). A body the gateway holds back itself (the cluster queue, a slow upstream
 * or filter) is not the client's stall and does not count. Checked on a timer at a quarter of the
 * timeout, so a stall is cut between 1 and 1.25 times the timeout.
 */
export class BodyWatch {
  private readonly timer: NodeJS.Timeout;
  private readonly deadline: number;
  private lastBytes: number;
  private lastProgress: number;

  constructor(private readonly req: IncomingMessage, private readonly target: TimeoutTarget | null,
    private readonly limits: ClientLimits) {
    const now = performance.now();
    this.deadline = limits.requestTimeoutMs > 0 ? now + limits.requestTimeoutMs : 0;
    this.lastBytes = req.socket.bytesRead;
    this.lastProgress = now;
    this.timer = setTimeout(tick, period(limits), this);
    this.timer.unref();
    // Cleared with the body: a pending timer would hold the whole request (its flow, filter chain,
    // HTTP/2 stream) for up to a period after it ended, which at thousands of requests a second
    // is hundreds of MB.
    req.once('end', () => this.stop());
    req.once('close', () => this.stop());
  }

  /** The body is over (complete, or the request is gone): nothing to watch. */
  stop(): void {
    clearTimeout(this.timer);
  }

  check(): void {
    const req = this.req;
    const socket = req.socket;
    if (req.complete || socket === null || socket.destroyed) return;
    const now = performance.now();
    if (this.deadline > 0 && now >= this.deadline) {
      this.fire('request_timeout');
      return;
    }
    if (this.limits.bodyTimeoutMs > 0) {
      const bytes = socket.bytesRead;
      if (bytes !== this.lastBytes || req.readableFlowing !== true || req.readableLength > 0) {
        this.lastBytes = bytes;
        this.lastProgress = now;
      } else if (now - this.lastProgress >= this.limits.bodyTimeoutMs) {
        this.fire('request_body_timeout');
        return;
      }
    }
    this.timer.refresh();
  }

  private fire(reason: 'request_timeout' | 'request_body_timeout'): void {
    if (this.target === null || !this.target.clientTimeout(reason)) this.req.socket.destroy();
  }
}
