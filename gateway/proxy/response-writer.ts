/**
 * The client side of one request: the response head (status and framing), the body chunks with
 * backpressure onto the upstream, the trailers, the end, and the bytes sent. It writes whatever the
 * filters left in the flow's response headers and trailers; which response that is, and when it
 * goes out, is the flow's business.
 *
 * Last-resort guard: what guests write is checked where it enters (abi/header-check.ts), but
 * anything Node's writer still throws on stays with this request. Before the head went out the
 * client gets an empty 502 (the answer came from the upstream) or 503 (a filter made it); after,
 * the stream is reset. The owner logs it. Nothing escapes into the HTTP server's event handlers,
 * where an exception would end the process and every connection on it.
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
  /** The filter whose local reply this is (null: the upstream's answer or the gateway's own). */
  readonly localReplyBy: string | null;
  /** The response's body filters, when any run (null: none): the framing of the head depends on them. */
  responseBody(): { readonly edited: boolean } | null;
  /** The upstream exchange, to hold back while the client drains; null once it ended or was dropped. */
  upstreamController(): Dispatcher.DispatchController | null;
  /** The guard caught `err` and answered or reset: name it in the access log and log it. */
  writeFailed(err: unknown): void;
}

const FALLBACK_HEAD = ['content-length', '0'];

export class ResponseWriter {
  /** The head went out: the response headers are final, and a new response can only reset. */
  headSent = false;
  /** The status sent; 0 while no head went out. */
  status = 0;
  /** Body bytes written to the client (response.size, the access log). */
  bytesOut = 0;
  /** The exchange is over: late chunks (a held body, an upstream straggler) go nowhere. */
  private closed = false;

  /** The response is an HTTP/2 stream's (Node's compatibility API): trailers need no chunked framing. */
  private readonly http2: boolean;

  constructor(private readonly res: ServerResponse, private readonly owner: WriterOwner) {
    this.http2 = (res as { stream?: unknown }).stream !== undefined;
  }

  /**
   * Sends the response head with the filtered headers. `exactLength` when the body is known whole;
   * `last` when nothing follows the head (no body, no trailers).
   */
  writeHead(chunked: boolean, exactLength?: number, last = false): void {
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
    try {
      if (last && this.http2) this.endWithHead(status, flat);
      else this.res.writeHead(status, flat);
    } catch (err) {
      this.failed(err);
    }
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
      // A filter that added trailers at the end of the stream passes the data on first.
      else this.writeHead(body.edited || this.hasTrailers());
      if (this.closed) return;
    }
    try {
      if (data.length > 0) {
        this.bytesOut += data.length;
        if (!this.res.write(data) && !eos) this.holdUpstream();
      }
      if (eos) {
        // Trailers go out over HTTP/2, and over HTTP/1.1 only with chunked framing (as Envoy's HTTP/1 codec: dropped otherwise).
        if (this.hasTrailers() && (this.res.chunkedEncoding || this.http2)) {
          const entries = trailerEntries(this.owner.responseTrailers!);
          // NB: HTTP/2's addTrailers takes an object only (an array's indexes would become names).
          this.res.addTrailers(this.http2 ? trailerObject(entries) : entries);
        }
        this.closed = true;
        this.res.end();
      }
    } catch (err) {
      this.failed(err);
    }
  }

  /** A whole response at once: the head with the body's exact length, then the body (fail-closed). */
  end(body: Buffer): void {
    if (this.closed) return;
    // NB: writeHead sends the head at once; its content-length must be the body's already.
    this.writeHead(false, body.length, body.length === 0);
    if (this.closed) return;
    this.closed = true;
    this.bytesOut += body.length;
    try {
      this.res.end(body);
    } catch (err) {
      this.failed(err);
    }
  }

  /** Resets the client's stream (too late to answer properly, or a filter closed it), as Envoy does. */
  reset(err?: Error): void {
    this.closed = true;
    this.res.destroy(err);
  }

  /** The exchange is over (sent, failed or abandoned). */
  close(): void {
    this.closed = true;
    // status stays 0 when no response head went out (client gone first), as Envoy logs it.
    if (this.status === 0 && this.res.headersSent) this.status = this.res.statusCode;
  }

  /**
   * Something Node's writer threw: an empty 502/503 when no head went out yet, else a reset; the
   * writer takes nothing more for this exchange.
   */
  private failed(err: unknown): void {
    const first = !this.closed;
    this.closed = true;
    if (first) this.owner.writeFailed(err);
    if (this.res.headersSent || this.res.destroyed) {
      this.res.destroy();
      return;
    }
    const status = this.owner.localReplyBy !== null ? 503 : 502;
    try {
      // NB: Node validates the status and every header before it stores the head, so a refused
      // writeHead leaves nothing behind and this one starts clean.
      this.res.writeHead(status, FALLBACK_HEAD);
      this.status = status;
      this.res.end();
    } catch {
      this.res.destroy();
    }
  }

  /**
   * HTTP/2, nothing after the head: one HEADERS frame with END_STREAM, not HEADERS then an empty
   * DATA frame (writeHead sends the head at once). A gRPC trailers-only answer must be one: gRPC
   * clients read a status from the headers only when they end the stream.
   */
  private endWithHead(status: number, flat: string[]): void {
    const fields = trailerObject(pairEntries(flat));
    this.res.statusCode = status;
    for (const name in fields) this.res.setHeader(name, fields[name]);
    this.closed = true;
    this.res.end();
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

/** Entries as an object, repeated names as arrays. */
function trailerObject(entries: readonly [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of entries) {
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return out;
}

/** Trailers as the [name, value] entries `addTrailers` takes. */
function trailerEntries(trailers: HeaderMap): [string, string][] {
  return pairEntries(withoutPseudo(trailers.pairs));
}

/** Flat [name, value, …] as entries. */
function pairEntries(flat: readonly string[]): [string, string][] {
  const entries: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) entries.push([flat[i], flat[i + 1]]);
  return entries;
}
