/**
 * Forwarded requests to one endpoint of an `http2: true` cluster, over node:http2: h2c with prior
 * knowledge for an `http://` endpoint, TLS with ALPN `h2` for an `https://` one. It takes the
 * place of the endpoint's undici Pool behind its admission queue (upstream-queue.ts) and speaks the
 * same dispatch protocol (undici's handler and controller), so the queue, the exchange, retries and
 * outlier detection see no difference. The cluster keeps its undici Pool (allowH2) for callouts.
 *
 * Why not undici's HTTP/2 (allowH2, or its h2c client): it cannot send request trailers
 * (client-h2.js: "TODO: add support for sending trailers"), and gRPC clients and filters send them.
 * Here the request is opened with waitForTrailers, and when its body has ended the trailers are read
 * from the forward options' `trailerSource` (as the request filters left them) and sent; none: the
 * stream ends with an empty DATA frame, as Node does for empty trailers.
 *
 * Connections: at most `connections` sessions, each taking up to `streamsPerConnection` streams
 * (nghttp2 queues what the peer's SETTINGS_MAX_CONCURRENT_STREAMS does not admit yet); a new
 * session opens only when every open one is full. A session that gets GOAWAY takes no new stream,
 * one idle for `idleTimeoutMs` closes. Failures carry undici's codes where the flow and the retry
 * policy read them: UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT, and the
 * socket's own (ECONNREFUSED) for a connection that could not be made.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { isGrpcContentType } from './local-reply.js';
import type { ForwardOptions } from './upstream-queue.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

export interface H2UpstreamOptions {
  readonly connections: number;
  readonly streamsPerConnection: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2), and Host, which becomes :authority. */
const NOT_SENT = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The error to report: Node wraps a connection failure in its stream's cancel error (cause ECONNREFUSED…). */
function reported(err: Error): Error {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error && (cause as { code?: string }).code !== undefined ? cause : err;
}

/** One session and the streams it carries. */
interface Connection {
  readonly session: ClientHttp2Session;
  streams: number;
  usable: boolean;
}

export class H2Upstream {
  private readonly connections: Connection[] = [];
  private closed = false;

  constructor(readonly origin: URL, private readonly options: H2UpstreamOptions) {}

  /** Sends one request; its outcome goes to `handler` (undici's dispatch protocol). */
  dispatch(opts: ForwardOptions, handler: Handler): boolean {
    const exchange = new H2Exchange(opts, handler, this.origin);
    if (this.closed) {
      exchange.fail(codedError('UND_ERR_CLOSED', 'the upstream is closed'));
      return false;
    }
    exchange.start(this.connection());
    return true;
  }

  /** Closes every session once its streams are done. */
  async close(): Promise<void> {
    this.closed = true;
    // NB: close(callback) of a session already closing never calls the callback; 'close' always comes.
    await Promise.all(this.connections.map(({ session }) => new Promise<void>((resolve) => {
      if (session.destroyed) return resolve();
      session.once('close', resolve);
      session.close();
    })));
  }

  /** Cuts every session and what is in flight on it. */
  destroy(): void {
    this.closed = true;
    for (const c of this.connections) c.session.destroy();
  }

  /** The least loaded session, or a new one when every session is full and there is room for one more. */
  private connection(): Connection {
    let best: Connection | null = null;
    for (const c of this.connections) {
      if (c.usable && !c.session.closed && !c.session.destroyed && (best === null || c.streams < best.streams)) best = c;
    }
    if (best !== null && (best.streams < this.options.streamsPerConnection || this.connections.length >= this.options.connections)) return best;
    return this.open();
  }

  private open(): Connection {
    const session = connect(this.origin, { settings: { enablePush: false } });
    const connection: Connection = { session, streams: 0, usable: true };
    this.connections.push(connection);
    const drop = (): void => {
      connection.usable = false;
      const i = this.connections.indexOf(connection);
      if (i >= 0) this.connections.splice(i, 1);
    };
    const timer = setTimeout(() => {
      // The pending streams fail with it (their error's cause).
      session.destroy(codedError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
    timer.unref();
    session.once('connect', () => clearTimeout(timer));
    // The streams report the failure; the session's own error event needs a listener not to throw.
    session.on('error', drop);
    session.once('goaway', () => { connection.usable = false; });
    session.once('close', () => {
      clearTimeout(timer);
      drop();
    });
    session.setTimeout(this.options.idleTimeoutMs, () => {
      if (connection.streams === 0) session.close();
    });
    session.unref();
    return connection;
  }
}

/** One request on one stream: the controller the handler holds. */
class H2Exchange implements Controller {
  paused = false;
  private abortReason: Error | null = null;
  /** The handler has its outcome (the end or an error): nothing more goes to it. */
  private settled = false;
  private responded = false;
  private stream: ClientHttp2Stream | null = null;
  private body: Readable | null = null;
  private trailers: IncomingHttpHeaders | null = null;

  constructor(private readonly opts: ForwardOptions, private readonly handler: Handler, private readonly origin: URL) {}

  get aborted(): boolean {
    return this.abortReason !== null;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  abort(reason: Error): void {
    if (this.settled) return;
    this.abortReason = reason;
    this.stream?.close(constants.NGHTTP2_CANCEL);
    this.fail(reason);
  }

  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.paused = false;
    this.stream?.resume();
  }

  /** The handler's outcome is this error (once). */
  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.detachBody();
    this.handler.onResponseError?.(this, err);
  }

  start(connection: Connection): void {
    this.handler.onRequestStart?.(this, {});
    if (this.settled) return;
    const opts = this.opts;
    const body = opts.body ?? null;
    const endStream = body === null;
    let stream: ClientHttp2Stream;
    try {
      stream = connection.session.request(this.requestHeaders(), { endStream, waitForTrailers: !endStream });
    } catch (err) {
      this.fail(reported(err as Error));
      return;
    }
    this.stream = stream;
    connection.streams++;
    stream.once('close', () => {
      connection.streams--;
      this.detachBody();
      // A reset with no error event (RST_STREAM NO_ERROR before the end) still ends the request.
      if (!this.settled) this.fail(codedError('UND_ERR_SOCKET', `upstream stream closed before the response ended (code ${stream.rstCode ?? 0})`));
    });
    stream.on('error', (err) => this.fail(reported(err)));
    stream.on('response', (headers) => this.onResponse(headers));
    stream.on('data', (chunk: Buffer) => {
      if (!this.settled) this.handler.onResponseData?.(this, chunk);
    });
    stream.once('trailers', (trailers) => { this.trailers = trailers; });
    stream.once('end', () => this.onEnd());
    stream.on('wantTrailers', () => this.sendTrailers(stream));
    // Until the response headers, then between body chunks (undici's headersTimeout and bodyTimeout).
    stream.setTimeout(opts.headersTimeout ?? 0);
    stream.on('timeout', () => this.timedOut());
    if (this.paused) stream.pause();
    if (!endStream) this.writeBody(stream, body);
  }

  private requestHeaders(): OutgoingHttpHeaders {
    const opts = this.opts;
    const out: OutgoingHttpHeaders = {
      ':method': opts.method, ':path': opts.path, ':scheme': this.origin.protocol === 'https:' ? 'https' : 'http', ':authority': this.origin.host,
    };
    const flat = Array.isArray(opts.headers) ? opts.headers as string[] : [];
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i].toLowerCase();
      const value = flat[i + 1];
      if (name === 'host') out[':authority'] = value;
      if (NOT_SENT.has(name)) continue;
      const had = out[name];
      out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [String(had), value];
    }
    // gRPC over HTTP/2 requires it (hop-by-hop, so the filters never see the client's).
    if (isGrpcContentType(out['content-type'] as string | undefined)) out.te = 'trailers';
    return out;
  }

  private writeBody(stream: ClientHttp2Stream, body: NonNullable<ForwardOptions['body']>): void {
    if (typeof body === 'string' || body instanceof Uint8Array) {
      stream.end(body);
      return;
    }
    const source = body as Readable;
    this.body = source;
    source.on('data', (chunk: Buffer) => {
      if (this.body === source && !stream.write(chunk)) source.pause();
    });
    stream.on('drain', () => {
      if (this.body === source) source.resume();
    });
    source.once('end', () => {
      if (this.body === source) stream.end();
    });
    source.once('error', (err: Error) => {
      if (this.body === source) this.abort(err);
    });
    // NB: the exchange paused a client request until the upstream reads it.
    source.resume();
  }

  /** Stops sending the request body (the exchange is over, or its stream is): what still comes is dropped. */
  private detachBody(): void {
    const source = this.body;
    this.body = null;
    // NB: one held back for the stream's sake would hold the client's upload (and its connection) for ever.
    if (source !== null && source.isPaused()) source.resume();
  }

  /** The body ended: the request's trailers, as the filters left them, end the stream (none: an empty DATA frame). */
  private sendTrailers(stream: ClientHttp2Stream): void {
    try {
      stream.sendTrailers(this.opts.trailerSource?.requestTrailers() ?? {});
    } catch (err) {
      this.abort(err as Error);
    }
  }

  private onResponse(headers: IncomingHttpHeaders): void {
    if (this.settled) return;
    this.responded = true;
    this.stream!.setTimeout(this.opts.bodyTimeout ?? 0);
    const fields: Record<string, string | string[]> = {};
    for (const name in headers) {
      const value = headers[name];
      if (name.charCodeAt(0) !== 58 /* : */ && value !== undefined) fields[name] = value;
    }
    this.handler.onResponseStart?.(this, Number(headers[':status']), fields, '');
  }

  private onEnd(): void {
    if (this.settled) return;
    if (!this.responded) {
      this.fail(codedError('UND_ERR_SOCKET', 'upstream stream ended without a response'));
      return;
    }
    this.settled = true;
    this.detachBody();
    // The answer is complete before the request (RFC 9113 §8.1): stop sending it, without error.
    const stream = this.stream!;
    if (!stream.writableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
    const trailers: Record<string, string | string[]> = {};
    for (const name in this.trailers) {
      const value = this.trailers[name];
      if (value !== undefined) trailers[name] = value;
    }
    this.handler.onResponseEnd?.(this, trailers);
  }

  private timedOut(): void {
    this.abort(this.responded
      ? codedError('UND_ERR_BODY_TIMEOUT', 'upstream body timeout')
      : codedError('UND_ERR_HEADERS_TIMEOUT', 'upstream headers timeout'));
  }
}
