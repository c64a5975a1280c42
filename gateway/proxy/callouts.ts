/**
 * Filters' outbound calls to configured clusters (reference §3.8, §3.9): `proxy_http_call` through
 * the cluster's undici pools, `proxy_grpc_call` (unary) over HTTP/2 with node:http2. Answers are
 * handed back through `done`, which the ABI host delivers to the root context on a later turn.
 * One per generation: its plugins' callouts reach that configuration's clusters, whichever
 * generation is current when the call is made.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { Status } from '../abi/enums.js';
import { HeaderTarget, isHeaderList } from '../abi/header-check.js';
import type { Callouts, GrpcCallRequest, GrpcCallResult, HttpCallRequest, HttpCallResponse } from '../abi/ports.js';
import type { Pairs } from '../abi/pairs.js';
import type { Logger } from '../log.js';
import type { Cluster } from './cluster.js';
import { objectToPairs, withoutPseudo } from './headers.js';

/** Envoy's router reply to a callout that timed out (a local reply: it carries its length). */
const TIMEOUT_RESPONSE: HttpCallResponse = {
  headers: [':status', '504', 'content-length', '24', 'content-type', 'text/plain'],
  body: Buffer.from('upstream request timeout'),
  trailers: [],
};

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;
const GRPC_INTERNAL = 13;

function first(pairs: Pairs, name: string): string | undefined {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return pairs[i + 1];
  return undefined;
}

/** gRPC length-prefixed message: 1 byte compressed flag (0), u32 BE length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The first message of a gRPC body, or null when the body holds no complete message. */
export function grpcUnframe(body: Buffer): Buffer | null {
  if (body.length < 5) return null;
  const len = body.readUInt32BE(1);
  return body.length >= 5 + len ? body.subarray(5, 5 + len) : null;
}

export class ClusterCallouts implements Callouts {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  /** `logger` gets the HTTP/2 connection failures, which the guest sees only as UNAVAILABLE. */
  constructor(private readonly clusters: ReadonlyMap<string, Cluster>, private readonly logger: Pick<Logger, 'warn'>) {}

  httpCall(req: HttpCallRequest, done: (res: HttpCallResponse | null) => void): Status {
    const cluster = this.clusters.get(req.cluster);
    if (cluster === undefined) return Status.BAD_ARGUMENT;
    // Guest bytes bound for the wire: the same rules as a request a filter edits (header-check.ts).
    if (!isHeaderList(HeaderTarget.REQUEST, req.headers) || !isHeaderList(HeaderTarget.TRAILERS, req.trailers)) return Status.BAD_ARGUMENT;
    const headers = withoutPseudo(req.headers);
    headers.push('host', first(req.headers, ':authority')!);
    if (req.body.length > 0) headers.push('content-length', String(req.body.length));
    // timeout_ms 0 means no timeout (reference §3.8); undici reads 0 as "disabled" too.
    const timeout = req.timeoutMs;
    const signal = req.timeoutMs === 0 ? undefined : AbortSignal.timeout(req.timeoutMs);
    cluster.pick().pool.request({
      method: first(req.headers, ':method')! as 'GET',
      path: first(req.headers, ':path')!,
      headers,
      body: req.body.length > 0 ? Buffer.from(req.body) : null,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      signal,
    }).then(async (res) => {
      const body = Buffer.from(await res.body.arrayBuffer());
      const headerPairs: Pairs = [':status', String(res.statusCode), ...objectToPairs(res.headers)];
      done({ headers: headerPairs, body, trailers: objectToPairs(res.trailers) });
    }, (err: { name?: string; code?: string }) => {
      // Envoy: a timeout is answered by the router with a 504, so the filter sees headers; a reset
      // or refused connection is a failure delivered with no headers (status 11 "reset").
      const timedOut = err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT';
      done(timedOut ? TIMEOUT_RESPONSE : null);
    });
    return Status.OK;
  }

  grpcCall(req: GrpcCallRequest, done: (res: GrpcCallResult) => void): { cancel(): void } | Status {
    const cluster = this.clusters.get(req.cluster);
    // Envoy answers an unknown gRPC upstream with PARSE_FAILURE, kept for compatibility.
    if (cluster === undefined) return Status.PARSE_FAILURE;
    // node:http2 throws on metadata it cannot send; refuse it as a bad argument before that.
    if (!isHeaderList(HeaderTarget.EXTRA, req.initialMetadata)) return Status.BAD_ARGUMENT;
    const endpoint = cluster.pick();
    let finished = false;
    const finish = (res: GrpcCallResult): void => {
      if (finished) return;
      finished = true;
      done(res);
    };
    let session: ClientHttp2Session;
    try {
      session = this.session(endpoint.origin);
    } catch (err) {
      this.connectionFailed(endpoint.origin, err);
      queueMicrotask(() => finish({ status: GRPC_UNAVAILABLE, statusMessage: 'connection failed' }));
      return { cancel: () => { finished = true; } };
    }
    const metadata: Record<string, string> = {};
    for (let i = 0; i < req.initialMetadata.length; i += 2) metadata[req.initialMetadata[i]] = req.initialMetadata[i + 1];
    const stream = session.request({
      ...metadata,
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: `/${req.service}/${req.method}`,
      [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
      ...(req.timeoutMs > 0 ? { 'grpc-timeout': `${req.timeoutMs}m` } : {}),
    });
    const timer = req.timeoutMs > 0 ? setTimeout(() => {
      stream.close(constants.NGHTTP2_CANCEL);
      finish({ status: GRPC_DEADLINE_EXCEEDED, statusMessage: 'deadline exceeded' });
    }, req.timeoutMs) : null;
    let initialMetadata: Pairs | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => {
      initialMetadata = metadataPairs(headers);
      const status = headers['grpc-status'];
      if (status !== undefined) {
        // Trailers-only response: the status arrives with the headers.
        finish({ initialMetadata: [], status: Number(status), statusMessage: decodeURIComponent(String(headers['grpc-message'] ?? '')) });
      }
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('trailers', (trailers) => {
      if (timer) clearTimeout(timer);
      const message = grpcUnframe(Buffer.concat(chunks));
      finish({
        initialMetadata,
        message: message ?? undefined,
        trailingMetadata: metadataPairs(trailers),
        status: Number(trailers['grpc-status'] ?? GRPC_INTERNAL),
        statusMessage: decodeURIComponent(String(trailers['grpc-message'] ?? '')),
      });
    });
    stream.on('error', (err) => {
      if (timer) clearTimeout(timer);
      finish({ status: GRPC_UNAVAILABLE, statusMessage: err.message });
    });
    stream.on('close', () => {
      if (timer) clearTimeout(timer);
      finish({ status: GRPC_UNAVAILABLE, statusMessage: 'stream closed without status' });
    });
    stream.end(grpcFrame(req.message));
    return {
      cancel: () => {
        finished = true;
        if (timer) clearTimeout(timer);
        stream.close(constants.NGHTTP2_CANCEL);
      },
    };
  }

  private session(origin: string): ClientHttp2Session {
    const existing = this.sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const session = connect(origin);
    session.on('error', (err) => {
      // The calls on the session fail with it (UNAVAILABLE to the guest); the cause goes to the log.
      this.connectionFailed(origin, err);
      this.sessions.delete(origin);
    });
    session.on('close', () => this.sessions.delete(origin));
    session.unref();
    this.sessions.set(origin, session);
    return session;
  }

  private connectionFailed(origin: string, err: unknown): void {
    const e = err as { message?: string; code?: string };
    this.logger.warn({ origin, err: e?.message ?? String(err), code: e?.code }, 'gRPC callout connection failed');
  }

  close(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

/** gRPC metadata from node:http2 headers: no pseudo-headers, every value a string (`:status` is a number). */
function metadataPairs(headers: IncomingHttpHeaders): Pairs {
  const out: Pairs = [];
  for (const name in headers) {
    const value = headers[name];
    if (name.charCodeAt(0) === 58 || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, String(value));
  }
  return out;
}
