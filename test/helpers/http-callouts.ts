/**
 * A real `Callouts` port for ABI tests: `httpCall` sends the request with node:http and `grpcCall`
 * with a node:http2 (h2c) client, each to the base URL its cluster name maps to, and reports what
 * came back the way Envoy's async clients do. Plus the servers to talk to: plain node:http and
 * node:http2 servers listening on port 0.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Status } from '../../gateway/abi/enums.js';
import type { Callouts, GrpcCallRequest, GrpcCallResult, HttpCallRequest, HttpCallResponse } from '../../gateway/abi/ports.js';
import type { Pairs } from '../../gateway/abi/pairs.js';
import { grpcFrame, grpcUnframe } from '../../gateway/proxy/callouts.js';

/** gRPC status codes the port reports for transport problems. */
const GRPC_UNKNOWN = 2;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

const EMPTY = new Uint8Array(0);

/** Lower-cased flat pairs from node's raw [name, value, name, value, …] lists. */
function rawPairs(raw: readonly string[]): Pairs {
  const out: Pairs = [];
  for (let i = 0; i < raw.length; i += 2) out.push(raw[i].toLowerCase(), raw[i + 1]);
  return out;
}

/** Groups pairs into the object shape node's clients take, keeping repeated names. */
function headerObject(pairs: Pairs, skip: (name: string) => boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i];
    if (skip(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? pairs[i + 1] : [...(Array.isArray(prev) ? prev : [prev]), pairs[i + 1]];
  }
  return out;
}

function firstValue(pairs: Pairs, name: string): string | undefined {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return pairs[i + 1];
  return undefined;
}

/** What a callout server saw of one request. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export class NodeCallouts implements Callouts {
  /** Cluster name → base URL (`http://127.0.0.1:<port>`). */
  readonly clusters = new Map<string, string>();

  constructor(clusters: Record<string, string> = {}) {
    for (const [name, url] of Object.entries(clusters)) this.clusters.set(name, url);
  }

  httpCall(req: HttpCallRequest, done: (res: HttpCallResponse | null) => void): Status {
    const base = this.clusters.get(req.cluster);
    if (base === undefined) return Status.BAD_ARGUMENT;
    const url = new URL(base);
    const headers = headerObject(req.headers, (name) => name.startsWith(':'));
    headers.host = firstValue(req.headers, ':authority')!;
    const hasTrailers = req.trailers.length > 0;
    if (req.body.length > 0 && !hasTrailers) headers['content-length'] = String(req.body.length);
    if (hasTrailers) headers.trailer = [...new Set(req.trailers.filter((_, i) => i % 2 === 0))].join(', ');

    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (res: HttpCallResponse | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(res);
    };

    let request: http.ClientRequest;
    try {
      request = http.request({
        host: url.hostname,
        port: url.port,
        method: firstValue(req.headers, ':method'),
        path: firstValue(req.headers, ':path'),
        headers,
        agent: false,
      });
    } catch {
      return Status.INTERNAL_FAILURE;
    }
    request.on('error', () => finish(null));
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => finish(null));
      res.on('aborted', () => finish(null));
      res.on('end', () => finish({
        headers: [':status', String(res.statusCode), ...rawPairs(res.rawHeaders)],
        body: new Uint8Array(Buffer.concat(chunks)),
        trailers: rawPairs(res.rawTrailers),
      }));
    });
    if (req.timeoutMs > 0) {
      // Envoy's router answers a callout timeout itself with a 504, not with a reset (§4.5).
      timer = setTimeout(() => {
        request.destroy();
        const body = Buffer.from('upstream request timeout');
        finish({ headers: [':status', '504', 'content-length', String(body.length), 'content-type', 'text/plain'], body, trailers: [] });
      }, req.timeoutMs);
    }
    if (hasTrailers) request.addTrailers(headerObject(req.trailers, () => false));
    request.end(req.body.length > 0 ? Buffer.from(req.body) : undefined);
    return Status.OK;
  }

  grpcCall(req: GrpcCallRequest, done: (res: GrpcCallResult) => void): { cancel(): void } | Status {
    const base = this.clusters.get(req.cluster);
    if (base === undefined) return Status.PARSE_FAILURE; // Envoy, kept for compatibility (§3.9)
    const session = http2.connect(base);
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (res: GrpcCallResult | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      session.close();
      if (res !== null) done(res);
    };
    session.on('error', (err) => finish({ status: GRPC_UNAVAILABLE, statusMessage: err.message }));

    const headers: http2.OutgoingHttpHeaders = {
      ...headerObject(req.initialMetadata, (name) => name.startsWith(':')),
      ':method': 'POST',
      ':path': `/${req.service}/${req.method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (req.timeoutMs > 0) headers['grpc-timeout'] = `${req.timeoutMs}m`;
    const stream = session.request(headers);
    let initialMetadata: Pairs = [];
    let httpStatus = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      initialMetadata = headerPairs(h);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    let trailers: Pairs | null = null;
    stream.on('trailers', (t) => { trailers = headerPairs(t); });
    stream.on('error', (err) => finish({ status: GRPC_UNAVAILABLE, statusMessage: err.message }));
    stream.on('close', () => {
      // A trailers-only answer carries grpc-status in the headers.
      const md = trailers ?? initialMetadata;
      const status = firstValue(md, 'grpc-status');
      if (status === undefined) {
        finish({ status: httpStatus === 200 ? GRPC_UNKNOWN : GRPC_UNAVAILABLE, statusMessage: `http status ${httpStatus}` });
        return;
      }
      const message = grpcUnframe(Buffer.concat(chunks));
      finish({
        initialMetadata: trailers === null ? [] : initialMetadata,
        message: message ?? EMPTY,
        trailingMetadata: md,
        status: Number(status),
        statusMessage: decodeURIComponent(firstValue(md, 'grpc-message') ?? ''),
      });
    });
    if (req.timeoutMs > 0) {
      timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish({ status: GRPC_DEADLINE_EXCEEDED, statusMessage: 'upstream request timeout' });
      }, req.timeoutMs);
    }
    stream.end(grpcFrame(req.message));
    return {
      cancel: () => {
        if (finished) return;
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(null);
      },
    };
  }
}

function headerPairs(h: http2.IncomingHttpHeaders): Pairs {
  const out: Pairs = [];
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, v);
  }
  return out;
}

/** A listening server and its base URL; `close()` also drops open connections. */
export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

function baseUrl(server: http.Server | http2.Http2Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A node:http server on port 0 that records every request it sees, then lets `handler` answer. */
export async function startHttpServer(
  handler: (req: SeenRequest, res: http.ServerResponse) => void,
  seen: SeenRequest[] = [],
): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(request);
      handler(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: baseUrl(server),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** How a gRPC test server answers one unary call. */
export interface GrpcAnswer {
  readonly message?: Uint8Array;
  readonly status: number;
  readonly statusMessage?: string;
  readonly metadata?: Record<string, string>;
  /** Never answer (for cancel and deadline tests). */
  readonly hang?: boolean;
}

/** What a gRPC test server saw of one call; `closed` resolves when the client's stream ends. */
export interface SeenGrpcCall {
  readonly path: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly message: Uint8Array | null;
  readonly closed: Promise<void>;
}

/** A node:http2 (h2c) server on port 0 answering unary gRPC calls with `answer`. */
export async function startGrpcServer(
  answer: (call: SeenGrpcCall) => GrpcAnswer,
  seen: SeenGrpcCall[] = [],
): Promise<TestServer> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) => stream.on('close', resolve));
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const call = { path: String(headers[':path']), headers, message: grpcUnframe(Buffer.concat(chunks)), closed };
      seen.push(call);
      const a = answer(call);
      if (a.hang) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...a.metadata }, { waitForTrailers: true });
      stream.on('wantTrailers', () => {
        const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(a.status) };
        if (a.statusMessage) trailers['grpc-message'] = encodeURIComponent(a.statusMessage);
        stream.sendTrailers(trailers);
      });
      stream.end(a.message ? grpcFrame(a.message) : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: baseUrl(server),
    close: () => new Promise<void>((resolve) => {
      for (const session of sessions) session.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A base URL on which nothing listens (a port that was just released). */
export async function refusingUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = baseUrl(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return url;
}
