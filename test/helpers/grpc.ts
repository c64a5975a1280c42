/**
 * gRPC by hand over node:http2, for the end-to-end tests: 5-byte length-prefixed messages,
 * `content-type: application/grpc`, `te: trailers`, and the status in the trailers (or in the
 * headers of a trailers-only answer). A real HTTP/2 server on port 0 (h2c) serves gRPC methods and,
 * for any other path, echoes a plain request as JSON, its trailers included.
 */
import { connect, constants, createServer, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';

/** One gRPC message with its 5-byte prefix (not compressed). */
export function frame(message: string | Buffer): Buffer {
  const bytes = typeof message === 'string' ? Buffer.from(message) : message;
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  bytes.copy(out, 5);
  return out;
}

/** Reads length-prefixed messages as bytes arrive. */
export class Deframer {
  private buffered = Buffer.alloc(0);

  /** The messages completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    const out: Buffer[] = [];
    while (this.buffered.length >= 5) {
      const len = this.buffered.readUInt32BE(1);
      if (this.buffered.length < 5 + len) break;
      out.push(this.buffered.subarray(5, 5 + len));
      this.buffered = this.buffered.subarray(5 + len);
    }
    return out;
  }
}

/** A call as the server sees it. */
export interface ServerCall {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly messages: Buffer[];
  trailers: IncomingHttpHeaders | null;
  /** Runs for each message as it arrives. */
  onMessage(fn: (message: Buffer) => void): void;
  /** The client ended its side. */
  readonly ended: Promise<void>;
  /** Response headers (status 200, application/grpc). */
  respond(extra?: Record<string, string>): void;
  send(message: string | Buffer): void;
  /** The status in the trailers, after what was sent. */
  finish(status: number, message?: string, extra?: Record<string, string>): void;
  /** The whole answer as one HEADERS frame with END_STREAM. */
  trailersOnly(status: number, message?: string): void;
  readonly stream: ServerHttp2Stream;
}

/** A plain (non-gRPC) request as the server saw it. */
export interface PlainSeen {
  method: string;
  path: string;
  authority: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  trailers: Record<string, string | string[] | undefined> | null;
}

export interface H2Upstream {
  readonly url: string;
  readonly calls: ServerCall[];
  readonly plain: PlainSeen[];
  /** Sends GOAWAY on every open connection and closes them (the server keeps listening). */
  dropConnections(): Promise<void>;
  close(): Promise<void>;
}

/**
 * An h2c server on port 0: `methods` by path answer gRPC calls; any other path gets `plain` (default:
 * 200 with the request as JSON and a trailer x-upstream-trailer: yes).
 */
export async function startH2Upstream(methods: Record<string, (call: ServerCall) => void>,
  plain?: (seen: PlainSeen, stream: ServerHttp2Stream) => void): Promise<H2Upstream> {
  const calls: ServerCall[] = [];
  const plains: PlainSeen[] = [];
  const server: Http2Server = createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    const method = methods[path];
    if (method === undefined) return servePlain(stream, headers, plains, plain);
    const deframer = new Deframer();
    const listeners: Array<(m: Buffer) => void> = [];
    let pendingTrailers: Record<string, string> = {};
    let endResolve!: () => void;
    const call: ServerCall = {
      path, headers, messages: [], trailers: null, stream,
      ended: new Promise<void>((r) => { endResolve = r; }),
      onMessage: (fn) => listeners.push(fn),
      respond: (extra = {}) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extra }, { waitForTrailers: true }),
      send: (message) => stream.write(frame(message)),
      finish: (status, message = '', extra = {}) => {
        pendingTrailers = { 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message), ...extra };
        stream.end();
      },
      trailersOnly: (status, message = '') => stream.respond({
        ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message),
      }, { endStream: true }),
    };
    stream.on('wantTrailers', () => stream.sendTrailers(pendingTrailers));
    stream.on('data', (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        call.messages.push(m);
        for (const fn of listeners) fn(m);
      }
    });
    stream.on('trailers', (t) => { call.trailers = t; });
    stream.on('end', () => endResolve());
    calls.push(call);
    method(call);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  return {
    url: `http://127.0.0.1:${port}`, calls, plain: plains,
    dropConnections: () => Promise.all([...sessions].map((s) => new Promise<void>((r) => {
      s.goaway();
      s.close(() => r());
    }))).then(() => undefined),
    close: () => new Promise((r) => {
      for (const s of sessions) s.destroy();
      server.close(() => r());
    }),
  };
}

function servePlain(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, plains: PlainSeen[], plain?: (seen: PlainSeen, stream: ServerHttp2Stream) => void): void {
  const chunks: Buffer[] = [];
  let trailers: IncomingHttpHeaders | null = null;
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('trailers', (t) => { trailers = t; });
  stream.on('end', () => {
    const rest: PlainSeen['headers'] = {};
    for (const name in headers) if (!name.startsWith(':')) rest[name] = headers[name];
    const seen: PlainSeen = {
      method: String(headers[':method']), path: String(headers[':path']), authority: String(headers[':authority']),
      headers: rest, body: Buffer.concat(chunks).toString('utf8'), trailers: trailers === null ? null : Object.fromEntries(Object.entries(trailers)),
    };
    plains.push(seen);
    if (plain !== undefined) return plain(seen, stream);
    stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-upstream-trailer': 'yes' }));
    stream.end(JSON.stringify(seen));
  });
}

/** What a client got back. */
export interface GrpcAnswer {
  headers: IncomingHttpHeaders;
  /** The response headers ended the stream (a trailers-only answer). */
  endedWithHeaders: boolean;
  messages: Buffer[];
  trailers: IncomingHttpHeaders | null;
  /** grpc-status and decoded grpc-message, from the trailers or a trailers-only head. */
  status: number;
  message: string;
}

/** An h2c (or https) session to `url` that ignores its own errors (tests read them from requests). */
export function h2Session(url: string): ClientHttp2Session {
  const session = connect(url);
  session.on('error', () => undefined);
  return session;
}

/**
 * A client call: `messages` sent in order (each after `beforeMessage(i)`), then the request
 * trailers if any; resolves with the whole answer.
 */
export function grpcCall(session: ClientHttp2Session, path: string, messages: Array<string | Buffer>, opts: {
  metadata?: Record<string, string>; trailers?: Record<string, string>; beforeMessage?: (i: number) => Promise<void>;
  onMessage?: (m: Buffer) => void;
} = {}): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...opts.metadata,
    }, { waitForTrailers: opts.trailers !== undefined });
    const answer: GrpcAnswer = { headers: {}, endedWithHeaders: false, messages: [], trailers: null, status: -1, message: '' };
    const deframer = new Deframer();
    const status = (h: IncomingHttpHeaders): void => {
      if (h['grpc-status'] === undefined) return;
      answer.status = Number(h['grpc-status']);
      answer.message = decodeURIComponent(String(h['grpc-message'] ?? ''));
    };
    stream.on('response', (headers, flags) => {
      answer.headers = headers;
      answer.endedWithHeaders = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (answer.endedWithHeaders) status(headers);
    });
    stream.on('data', (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        answer.messages.push(m);
        opts.onMessage?.(m);
      }
    });
    stream.on('trailers', (t) => {
      answer.trailers = t;
      status(t);
    });
    stream.on('end', () => resolve(answer));
    stream.on('error', reject);
    stream.on('wantTrailers', () => stream.sendTrailers(opts.trailers!));
    void (async () => {
      for (let i = 0; i < messages.length; i++) {
        await opts.beforeMessage?.(i);
        stream.write(frame(messages[i]));
      }
      stream.end();
    })().catch(reject);
  });
}
