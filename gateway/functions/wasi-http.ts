/**
 * wasi:http 0.2 types and outgoing-handler for the function instances of one worker thread, as
 * jco's bindings call them (see wasi-io.ts for the conventions). The incoming request and every
 * body arrive whole; the response goes to the host as it is written: its head when the guest sets
 * the response-outparam, each write as a chunk, the end with the trailers.
 *
 * Everything a guest hands over is checked where it enters: fields in wasi-fields.ts, a status
 * must be 100-599, a path or authority must hold no whitespace or control characters, bodies stay
 * under the body limit. A bad value gets the WIT's own error, never an exception into the gateway.
 *
 * Outgoing requests: the authority names a cluster of the gateway (`http://backend/path`), the
 * same rule as proxy_http_call; one that `allowedHosts` does not list is refused with
 * `HTTP-request-denied` before anything leaves the worker.
 */
import { BufferSource, InputStream, OutputStream, Pollable, readyPollable, type Blocker, type ByteSink, type IoError } from './wasi-io.js';
import type { CallAnswer, WireRequest } from './messages.js';
import {
  BAD_VALUE, Fields, entriesOf, flatOf, methodName, methodOf, refused, schemeName, schemeOf, type Variant,
} from './wasi-fields.js';

/** An outgoing request in flight: `answer` is set when the main thread answers. */
export interface PendingCall {
  answer: CallAnswer | null;
}

/** What the interfaces need from the worker around them. */
export interface HttpHost {
  readonly blocker: Blocker;
  readonly bodyLimit: number;
  readonly allowedHosts: ReadonlySet<string>;
  respond(status: number, headers: string[]): void;
  data(chunk: Uint8Array): void;
  end(trailers: string[] | null): void;
  fail(message: string): void;
  fetch(request: WireRequest, timeoutMs: number | null): PendingCall;
}

/** Envoy's defaults for a response head (max_response_headers_count, max_response_headers_kb). */
export const MAX_RESPONSE_HEADERS = 100;
export const MAX_RESPONSE_HEAD_BYTES = 60 * 1024;

/** A body's byte budget: writes past `limit` bytes fail. */
class Budget {
  used = 0;
  constructor(readonly limit: number) {}
  take(n: number): void {
    if (this.used + n > this.limit) throw new Error(`body over the limit of ${this.limit} bytes`);
    this.used += n;
  }
}

export interface HttpInterfaces {
  readonly types: Record<string, unknown>;
  readonly outgoingHandler: Record<string, unknown>;
  /** The resources of one incoming request, to hand the guest's incoming-handler. */
  incoming(request: WireRequest): { request: unknown; outparam: { used: boolean } };
}

export function httpInterfaces(host: HttpHost): HttpInterfaces {
  const { blocker } = host;

  class FutureTrailers {
    private taken = false;
    subscribe(): Pollable {
      return readyPollable(blocker);
    }
    get(): unknown {
      if (this.taken) return { tag: 'err', val: undefined };
      this.taken = true;
      return { tag: 'ok', val: { tag: 'ok', val: undefined } };
    }
  }

  /** A body that arrived whole: the incoming request's, or an outgoing request's answer. */
  class IncomingBody {
    private streamed = false;
    constructor(private readonly bytes: Uint8Array) {}
    stream(): InputStream {
      if (this.streamed) throw refused(undefined);
      this.streamed = true;
      return new InputStream(new BufferSource(this.bytes), blocker);
    }
    static finish(_body: IncomingBody): FutureTrailers {
      return new FutureTrailers();
    }
  }

  class IncomingRequest {
    private consumed = false;
    constructor(private readonly request: WireRequest) {}
    method(): Variant {
      return methodOf(this.request.method);
    }
    pathWithQuery(): string | undefined {
      return this.request.pathWithQuery;
    }
    scheme(): Variant | undefined {
      return schemeOf(this.request.scheme);
    }
    authority(): string | undefined {
      return this.request.authority;
    }
    headers(): Fields {
      return Fields.frozen(entriesOf(this.request.headers));
    }
    consume(): IncomingBody {
      if (this.consumed) throw refused(undefined);
      this.consumed = true;
      return new IncomingBody(this.request.body);
    }
  }

  /**
   * An outgoing body: the function's response body (its bytes go to the host as they are written,
   * once the head went out) or an outgoing request's (kept until the request is sent).
   */
  class OutgoingBody {
    private stream: OutputStream | null = null;
    private taken = false;
    /** @internal */ finished = false;
    /** @internal */ readonly kept: Uint8Array[] = [];
    /** @internal */ onFinish: ((trailers: string[] | null) => void) | null = null;
    /** @internal */ live: ((chunk: Uint8Array) => void) | null = null;
    private readonly budget = new Budget(host.bodyLimit);

    write(): OutputStream {
      if (this.taken) throw refused(undefined);
      this.taken = true;
      const body = this;
      const sink: ByteSink = {
        write(bytes: Uint8Array): void {
          body.budget.take(bytes.length);
          const copy = bytes.slice();
          if (body.live !== null) body.live(copy);
          else body.kept.push(copy);
        },
        get capacity(): number {
          return body.budget.limit - body.budget.used;
        },
      };
      return this.stream = new OutputStream(sink, blocker);
    }

    static finish(body: OutgoingBody, trailers: Fields | undefined): void {
      if (body.finished) throw { tag: 'internal-error', val: 'body already finished' };
      body.finished = true;
      body.stream?.close();
      body.onFinish?.(trailers === undefined ? null : flatOf(trailers.entries_));
    }
  }

  class OutgoingResponse {
    private status = 200;
    private bodyTaken = false;
    /** @internal */ readonly fields: Fields;
    /** @internal */ readonly outBody = new OutgoingBody();
    constructor(headers: Fields) {
      this.fields = headers;
      headers.immutable = true;
    }
    statusCode(): number {
      return this.status;
    }
    setStatusCode(status: number): void {
      // 1xx is never a final answer (it would leave the client waiting for the real one).
      if (!Number.isInteger(status) || status < 200 || status > 599) throw refused(undefined);
      this.status = status;
    }
    headers(): Fields {
      return this.fields;
    }
    body(): OutgoingBody {
      if (this.bodyTaken) throw refused(undefined);
      this.bodyTaken = true;
      return this.outBody;
    }
  }

  class ResponseOutparam {
    /** @internal */ used = false;
    static set(param: ResponseOutparam, response: { tag: 'ok'; val: OutgoingResponse } | { tag: 'err'; val: Variant }): void {
      if (param.used) throw new Error('response-outparam.set called twice');
      param.used = true;
      if (response.tag === 'err') {
        host.fail(`the function answered with error-code ${response.val.tag}`);
        return;
      }
      const r = response.val;
      const head = flatOf(r.fields.entries_);
      const bytes = head.reduce((n, text) => n + text.length, 0);
      if (head.length / 2 > MAX_RESPONSE_HEADERS || bytes > MAX_RESPONSE_HEAD_BYTES) {
        host.fail(`the function's response head has ${head.length / 2} fields and ${bytes} bytes, over the limit of ${MAX_RESPONSE_HEADERS} fields or ${MAX_RESPONSE_HEAD_BYTES} bytes`);
        return;
      }
      host.respond(r.statusCode(), head);
      const body = r.outBody;
      for (const chunk of body.kept) host.data(chunk);
      body.kept.length = 0;
      body.live = (chunk) => host.data(chunk);
      if (body.finished) host.end(null);
      else body.onFinish = (trailers) => host.end(trailers);
    }
  }

  class RequestOptions {
    private connect: bigint | undefined;
    private firstByte: bigint | undefined;
    private between: bigint | undefined;
    connectTimeout(): bigint | undefined { return this.connect; }
    setConnectTimeout(d: bigint | undefined): void { this.connect = d; }
    firstByteTimeout(): bigint | undefined { return this.firstByte; }
    setFirstByteTimeout(d: bigint | undefined): void { this.firstByte = d; }
    betweenBytesTimeout(): bigint | undefined { return this.between; }
    setBetweenBytesTimeout(d: bigint | undefined): void { this.between = d; }
    /** @internal The whole-request deadline the host applies, in ms (null: the cluster's). */
    deadlineMs(): number | null {
      const ns = this.firstByte ?? this.connect;
      return ns === undefined ? null : Number(ns / 1_000_000n);
    }
  }

  class OutgoingRequest {
    private method_: Variant = { tag: 'get' };
    private path: string | undefined;
    private scheme_: Variant | undefined;
    private authority_: string | undefined;
    private bodyTaken = false;
    /** @internal */ readonly fields: Fields;
    /** @internal */ readonly outBody = new OutgoingBody();
    constructor(headers: Fields) {
      this.fields = headers;
      headers.immutable = true;
    }
    body(): OutgoingBody {
      if (this.bodyTaken) throw refused(undefined);
      this.bodyTaken = true;
      return this.outBody;
    }
    method(): Variant { return this.method_; }
    setMethod(m: Variant): void { methodName(m); this.method_ = m; }
    pathWithQuery(): string | undefined { return this.path; }
    setPathWithQuery(p: string | undefined): void {
      if (p !== undefined && (BAD_VALUE.test(p) || /\s/.test(p))) throw refused(undefined);
      this.path = p;
    }
    scheme(): Variant | undefined { return this.scheme_; }
    setScheme(s: Variant | undefined): void { this.scheme_ = s; }
    authority(): string | undefined { return this.authority_; }
    setAuthority(a: string | undefined): void {
      if (a !== undefined && (BAD_VALUE.test(a) || /[\s/?#@]/.test(a))) throw refused(undefined);
      this.authority_ = a;
    }
    /** @internal */ bodyTakenNotFinished(): boolean {
      return this.bodyTaken && !this.outBody.finished;
    }
  }

  class IncomingResponse {
    constructor(private readonly answer: Extract<CallAnswer, { ok: true }>) {}
    status(): number { return this.answer.status; }
    headers(): Fields { return Fields.frozen(entriesOf(this.answer.headers)); }
    consume(): IncomingBody {
      return new IncomingBody(this.answer.body);
    }
  }

  class FutureIncomingResponse {
    private call: PendingCall | null = null;
    private taken = false;
    private refusal: Variant | null = null;
    constructor(private readonly send: () => PendingCall | Variant) {}
    /** @internal Sends the request once its body is complete (at once when it has none). */
    start(): void {
      const sent = this.send();
      if ('answer' in sent) this.call = sent;
      else this.refusal = sent;
    }
    subscribe(): Pollable {
      return new Pollable(() => this.settled(), blocker);
    }
    get(): unknown {
      if (!this.settled()) return undefined;
      if (this.taken) return { tag: 'err', val: undefined };
      this.taken = true;
      if (this.refusal !== null) return { tag: 'ok', val: { tag: 'err', val: this.refusal } };
      const answer = this.call!.answer!;
      if (!answer.ok) return { tag: 'ok', val: { tag: 'err', val: errorCode(answer.code, answer.message) } };
      return { tag: 'ok', val: { tag: 'ok', val: new IncomingResponse(answer) } };
    }
    private settled(): boolean {
      return this.refusal !== null || this.call?.answer != null;
    }
  }

  function handle(request: OutgoingRequest, options: RequestOptions | undefined): FutureIncomingResponse {
    const authority = request.authority() ?? '';
    const cluster = authority.replace(/:\d+$/, '');
    if (!host.allowedHosts.has(cluster)) {
      throw { tag: 'HTTP-request-denied' };
    }
    const future = new FutureIncomingResponse(() => {
      const wire: WireRequest = {
        method: methodName(request.method()),
        scheme: schemeName(request.scheme()),
        authority: cluster,
        pathWithQuery: request.pathWithQuery() ?? '/',
        headers: flatOf(request.fields.entries_),
        body: concat(request.outBody.kept),
      };
      return host.fetch(wire, options?.deadlineMs() ?? null);
    });
    if (request.bodyTakenNotFinished()) request.outBody.onFinish = () => future.start();
    else future.start();
    return future;
  }

  return {
    types: {
      Fields, FutureTrailers, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
      RequestOptions, OutgoingRequest, IncomingResponse, FutureIncomingResponse,
      httpErrorCode: (_err: IoError): undefined => undefined,
    },
    outgoingHandler: { handle },
    incoming: (request) => ({ request: new IncomingRequest(request), outparam: new ResponseOutparam() }),
  };
}

function errorCode(code: string, message: string): Variant {
  return code === 'internal-error' ? { tag: code, val: message } : { tag: code };
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks));
}
