/**
 * The client side of one request: the response head (status and framing), the body chunks with
 * backpressure onto the upstream, the trailers, the end, and the bytes sent. It writes whatever the
 * filters left in the flow's response headers and trailers; which response that is, and when it
 * goes out, is the flow's business.
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { HeaderMap } from '../abi/header-map.js';
import { NO_BODY_STATUS, removeHeader, withoutPseudo } from './headers.js';

/** What the writer reads from the flow at the moment it writes. */
export interface WriterOwner {
  /** The response head as the filters left it. */
  readonly responseHeaders: HeaderMap | null;
  readonly responseTrailers: HeaderMap | null;
  /** The response's body filters, when any run (null: none): the framing of the head depends on them. */
  responseBody(): { readonly edited: boolean } | null;
  /** The upstream exchange, to hold back while the client drains; null once it ended or was dropped. */
  upstreamController(): Dispatcher.DispatchController | null;
}

export class ResponseWriter {
  /** The head went out: the response headers are final, and a new response can only reset. */
  headSent = false;
  /** The status sent; 0 while no head went out. */
  status = 0;
  /** Body bytes written to the client (response.size, the access log). */
  bytesOut = 0;
  /** The exchange is over: late chunks (a held body, an upstream straggler) go nowhere. */
  private closed = false;

  constructor(private readonly res: ServerResponse, private readonly owner: WriterOwner) {}

  /** Sends the response head with the filtered headers. `exactLength` when the body is known whole. */
  writeHead(chunked: boolean, exactLength?: number): void {
    if (this.headSent) return;
    this.headSent = true;
    const headers = this.owner.responseHeaders!;
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

  /** A body chunk for the client, the last one with `eos`; the head goes first if it has not. */
  write(data: Buffer, eos: boolean): void {
    if (this.closed) return;
    if (!this.headSent) {
      // With body filters the head waits for the first bytes out: a body known whole gets its exact
      // content-length, an edited streamed body goes chunked, an untouched one keeps the
      // upstream's framing. Trailers need chunked framing.
      const trailers = eos && this.hasTrailers();
      const body = this.owner.responseBody();
      if (body === null) this.writeHead(trailers);
      else if (eos) this.writeHead(trailers, trailers ? undefined : data.length);
      else this.writeHead(body.edited);
    }
    if (data.length > 0) {
      this.bytesOut += data.length;
      if (!this.res.write(data) && !eos) this.holdUpstream();
    }
    if (eos) {
      if (this.hasTrailers() && this.res.chunkedEncoding) this.res.addTrailers(trailerEntries(this.owner.responseTrailers!));
      this.res.end();
    }
  }

  /** A whole response at once: the head with the body's exact length, then the body (fail-closed). */
  end(body: Buffer): void {
    // NB: writeHead sends the head at once; its content-length must be the body's already.
    this.writeHead(false, body.length);
    this.bytesOut += body.length;
    this.res.end(body);
  }

  /** Resets the client's stream (too late to answer properly, or a filter closed it), as Envoy does. */
  reset(err?: Error): void {
    this.res.destroy(err);
  }

  /** The exchange is over (sent, failed or abandoned). */
  close(): void {
    this.closed = true;
    // status stays 0 when no response head went out (client gone first), as Envoy logs it.
    if (this.status === 0 && this.res.headersSent) this.status = this.res.statusCode;
  }

  private hasTrailers(): boolean {
    const trailers = this.owner.responseTrailers;
    return trailers !== null && trailers.count > 0;
  }

  /** The client's socket is full: pause the upstream until it drains (when there is one to pause). */
  private holdUpstream(): void {
    const controller = this.owner.upstreamController();
    if (controller === null) return;
    controller.pause();
    this.res.once('drain', () => this.owner.upstreamController()?.resume());
  }
}

/** Trailers as the [name, value] entries `addTrailers` takes. */
function trailerEntries(trailers: HeaderMap): [string, string][] {
  const flat = withoutPseudo(trailers.pairs);
  const entries: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) entries.push([flat[i], flat[i + 1]]);
  return entries;
}
