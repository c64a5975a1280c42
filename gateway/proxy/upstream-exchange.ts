/**
 * One request's exchange with its upstream: the request as the filters left it (pseudo-headers to
 * the request line, `:authority` to Host), its body straight from the client or through the request
 * body filters (the request direction's pipeline, ended by the client's trailers), the trailers
 * after it (where the upstream can send them: request-trailers.ts), and undici's
 * callbacks for the answer, handed to the flow while it still wants them. Once the flow gives the
 * answer up (a local reply replaced it) or the client went away, the exchange is aborted and its
 * late callbacks go nowhere.
 *
 * One exchange is one try at one endpoint: a retry (retry-loop.ts) is a new exchange, so each
 * try's outcome is seen on its own. A request that may be retried takes its body from a
 * ReplayBody, which outlives the tries, rather than from the client.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { HeaderMap } from '../abi/header-map.js';
import type { Endpoint } from './cluster.js';
import type { FlowDirection } from './flow-direction.js';
import { objectToPairs, removeHeader, withoutPseudo } from './headers.js';
import type { ReplayBody } from './replay-body.js';
import { upstreamTrailers } from './request-trailers.js';
import type { TrailerSource } from './upstream-queue.js';

type Controller = Dispatcher.DispatchController;
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** What the exchange hands the flow, only while the flow still wants the answer. */
export interface ExchangeOwner {
  upstreamResponse(statusCode: number, headers: UpstreamHeaders): void;
  upstreamData(chunk: Buffer): void;
  upstreamEnd(trailers: UpstreamHeaders): void;
  upstreamFailed(err: Error): void;
}

const enum State { OPEN, ABANDONED, CLOSED }

const EMPTY_BODY = Buffer.alloc(0);

export class UpstreamExchange implements Dispatcher.DispatchHandler, TrailerSource {
  private controller: Controller | null = null;
  private body: PassThrough | null = null;
  private state = State.OPEN;
  /** Request body bytes read from the client. */
  bytesIn = 0;

  /**
   * `request`: the request direction, its headers final and its body pipeline set when body
   * filters run; `replay`: where the body comes from when the request may be retried.
   */
  constructor(private readonly owner: ExchangeOwner, private readonly req: IncomingMessage, private readonly request: FlowDirection,
    readonly endpoint: Endpoint, private readonly replay: ReplayBody | null) {}

  /** Dispatches the request to the endpoint and starts moving its body. */
  send(timeoutMs: number): void {
    const d = this.request;
    const headers = d.headers!;
    const method = headers.get(':method') ?? 'GET';
    const path = headers.get(':path') ?? '/';
    const authority = headers.get(':authority');
    const flat = withoutPseudo(headers.pairs);
    if (authority) flat.push('host', authority);
    // Filters may change the body's length: let the framing be chunked.
    if (d.pipeline !== null) removeHeader(flat, 'content-length');
    let source: PassThrough | IncomingMessage | null = null;
    if (this.replay !== null) {
      source = this.body = this.replay.attach();
    } else if (d.pipeline !== null) {
      source = this.body = new PassThrough();
      this.req.on('data', (chunk: Buffer) => this.onRequestData(chunk));
      this.req.on('end', () => this.onRequestEnd());
    } else if (!d.eos) {
      // NB: paused first, so that counting does not start the stream flowing before undici
      // reads it (chunks would be lost); undici resumes it when it writes the body.
      source = this.req;
      this.req.pause();
      this.req.on('data', (chunk: Buffer) => { this.bytesIn += chunk.length; });
    }
    this.endpoint.queue.dispatch({ path, method, headers: flat, body: source, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, trailerSource: this }, this);
  }

  /** The request's trailers, once its body has ended (an HTTP/2 upstream sends them: request-trailers.ts). */
  requestTrailers(): Record<string, string | string[]> | null {
    return upstreamTrailers(this.req, this.request);
  }

  private onRequestData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.state !== State.CLOSED) this.request.pipeline?.feed(chunk, false);
  }

  private onRequestEnd(): void {
    if (this.state !== State.CLOSED) feedRequestEnd(this.req, this.request);
  }

  /** Body bytes from the request body filters, with backpressure onto the client. */
  write(data: Buffer, eos: boolean): void {
    if (this.replay !== null) {
      this.replay.write(data, eos);
      return;
    }
    const out = this.body;
    if (out === null || out.destroyed) return;
    if (data.length > 0 && !out.write(data)) {
      this.req.pause();
      out.once('drain', () => this.req.resume());
    }
    if (eos) out.end();
  }

  /** Holds the answer back (its body arrives before the response headers walk is over). */
  pause(): void {
    this.controller?.pause();
  }

  resume(): void {
    this.controller?.resume();
  }

  /** The undici exchange, for the client's backpressure; null once it ended or was dropped. */
  dispatchController(): Controller | null {
    return this.controller;
  }

  /** Ends a try that waited too long for its answer: reported to the owner as failed with `err`. */
  timeOut(err: Error): void {
    if (this.state === State.OPEN) this.controller?.abort(err);
  }

  /** The flow no longer wants the answer (a local reply replaces it, or a retry). */
  abandon(): void {
    const controller = this.controller;
    this.controller = null;
    if (this.state === State.OPEN) this.state = State.ABANDONED;
    if (controller !== null && !controller.aborted) controller.abort(new Error('upstream response no longer wanted'));
    this.body?.destroy();
    this.body = null;
  }

  /** The flow is over (the client's response ended or the client went away). */
  close(): void {
    const controller = this.controller;
    this.controller = null;
    this.state = State.CLOSED;
    if (controller !== null && !controller.aborted) controller.abort(new Error('client went away'));
    this.body?.destroy();
  }

  // ---- undici dispatch handler ---------------------------------------------------------------

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.state === State.CLOSED) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: UpstreamHeaders): void {
    if (this.state !== State.OPEN) {
      controller.abort(new Error('response no longer wanted'));
      return;
    }
    this.owner.upstreamResponse(statusCode, headers);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.state === State.OPEN) this.owner.upstreamData(chunk);
  }

  onResponseEnd(_controller: Controller, trailers: UpstreamHeaders): void {
    if (this.state !== State.OPEN) return;
    // The exchange is complete: nothing left to pause, resume or abort. (Without this, the end of
    // the flow built an Error for a no-op abort on every request: 5–10 µs of stack capture.)
    this.controller = null;
    this.owner.upstreamEnd(trailers);
  }

  onResponseError(_controller: Controller, err: Error): void {
    // NB: undici reports our own abort (abandon, close) here, synchronously: the state already says so.
    if (this.state === State.OPEN) this.owner.upstreamFailed(err);
  }
}

/** The client's body ended: its trailers, then the end of stream, through the request body filters. */
export function feedRequestEnd(req: IncomingMessage, d: FlowDirection): void {
  if (d.pipeline === null) return;
  const trailers = objectToPairs(req.trailers);
  if (trailers.length > 0) d.trailers = new HeaderMap(trailers);
  d.pipeline.feed(EMPTY_BODY, true, 0, trailers.length > 0);
}
