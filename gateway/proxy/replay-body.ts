/**
 * The request body of a request that may be retried, kept to be sent again (Envoy's router
 * buffers the request body for its retries, below the filter chain). What is kept is what the
 * upstream was sent: the client's bytes, or what the request body filters passed on when some
 * run, so a retry sends the same bytes and calls no filter again. At most `limit` bytes: a body
 * announced larger, or one that grows past it while a try is in flight, is no longer kept and
 * the request is no longer retriable.
 *
 * Each try gets a stream of its own (attach): what was sent so far, then the rest as it arrives.
 * The client is paused while the current try's stream is full.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FlowDirection } from './flow-direction.js';
import { feedRequestEnd } from './upstream-exchange.js';

const EMPTY_BODY = Buffer.alloc(0);

/** Who hears that the whole body went to the upstream (per-try timeouts start then). */
export interface ReplayOwner {
  bodyEnded(): void;
}

export class ReplayBody {
  /** Request body bytes read from the client. */
  bytesIn = 0;
  /** The whole body was passed on. */
  ended = false;
  /** What the upstream was sent, in order; null once over the limit (or closed). */
  private chunks: Buffer[] | null = [];
  private size = 0;
  /** The current try's body stream. */
  private out: PassThrough | null = null;
  /** The stream whose 'drain' the client waits for. */
  private held: PassThrough | null = null;
  private listening = false;
  private closed = false;
  /** Request body filters run: the client's bytes go through them, and their output comes to write(). */
  private readonly filtered: boolean;

  constructor(private readonly owner: ReplayOwner, private readonly req: IncomingMessage,
    private readonly request: FlowDirection, private readonly limit: number) {
    this.filtered = request.pipeline !== null;
    if (Number(req.headers['content-length']) > limit) this.chunks = null;
  }

  /** Whether another try can be sent the whole body. */
  get replayable(): boolean {
    return this.chunks !== null;
  }

  /** A new try's body: what the upstream was sent so far, then the rest as it comes. */
  attach(): PassThrough {
    const out = this.out = new PassThrough();
    let full = false;
    const chunks = this.chunks;
    if (chunks !== null) for (let i = 0; i < chunks.length; i++) full = !out.write(chunks[i]) || full;
    if (this.ended) out.end();
    if (full) {
      this.hold(out);
    } else if (this.held !== null) {
      // The client waited for a try that is gone.
      this.held = null;
      this.req.resume();
    }
    if (!this.listening) this.listen();
    return out;
  }

  /** Body bytes on their way upstream: the client's, or the request body filters' output. */
  write(data: Buffer, eos: boolean): void {
    if (this.closed) return;
    if (data.length > 0 && this.chunks !== null) {
      this.size += data.length;
      if (this.size > this.limit) this.chunks = null;
      else this.chunks.push(data);
    }
    const out = this.out;
    if (out !== null && !out.destroyed) {
      if (data.length > 0 && !out.write(data) && this.held !== out) this.hold(out);
      if (eos) out.end();
    }
    if (eos) {
      this.ended = true;
      this.owner.bodyEnded();
    }
  }

  /** No try will be sent again: what is kept goes (the body still flows to the current try). */
  forget(): void {
    this.chunks = null;
  }

  /** The request needs no more of its body (answered, or the client left). */
  close(): void {
    this.closed = true;
    this.chunks = null;
    this.out?.destroy();
    this.out = null;
  }

  private listen(): void {
    this.listening = true;
    const req = this.req;
    const d = this.request;
    req.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      if (this.closed) return;
      if (this.filtered) d.pipeline?.feed(chunk, false);
      else this.write(chunk, false);
    });
    req.on('end', () => {
      if (this.closed) return;
      if (this.filtered) feedRequestEnd(req, d);
      else this.write(EMPTY_BODY, true);
    });
  }

  private hold(out: PassThrough): void {
    this.held = out;
    this.req.pause();
    out.once('drain', () => {
      if (this.held !== out) return;
      this.held = null;
      this.req.resume();
    });
  }
}
