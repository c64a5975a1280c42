/**
 * The public listeners: check and normalize the request target (request-target.ts), match a
 * route, run the request through its flow, or answer 404. WebSocket and other Upgrade requests
 * are checked and matched the same way and tunnelled with http-proxy-3. Client timeouts and the
 * connection limit are the listener's (client-timeouts.ts); parse errors and timeouts Node
 * detects come through `clientError`, answered here as Node would and reported to the host.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { ListenerConfig } from '../config/schema.js';
import { BodyWatch, hasBody, serverOptions, type ClientLimits } from './client-timeouts.js';
import { RequestFlow } from './flow.js';
import type { Generation } from './generation.js';
import { prepareRequest, type Rejection, type TargetOptions } from './request-target.js';
import type { RequestFacts } from './router.js';
import { asHttp1Request, createHttp2Server, isHttp2Request, routeCleartextConnections, routeTlsConnections, type Http2Events } from './http2.js';
import type { ListenerTls } from './tls.js';
import { upgrade, watchTunnels } from './upgrade.js';
import type { Scheme } from './types.js';

/** What the listeners need from the gateway: the generation now in force, whether to drain, and where to report. */
export interface ListenerHost {
  current(): Generation;
  draining(): boolean;
  /** A request no route matched, answered 404 here in `seconds` with `bytesOut` body bytes. */
  notFound(req: IncomingMessage, seconds: number, bytesOut: number): void;
  upgradeError(err: Error, req: IncomingMessage): void;
  /** A request answered before routing (refused, or OPTIONS *): status and reason for the access log. */
  rejected(req: IncomingMessage, status: number, reason: string): void;
  /**
   * Node refused the bytes on a connection (a parse error: `details` is llhttp's HPE_* code) or
   * timed it out; the answer (`status`, 0 when none could be sent) is already on its way.
   */
  clientError(status: number, reason: string, details: string, socket: Duplex): void;
  /** A connection was closed at accept: the listener had maxConnections open. */
  connectionDropped(): void;
  /** The server itself failed (accept errors such as EMFILE), which must not end the process. */
  serverError(err: Error): void;
  /** A TLS handshake failed (no or a bad client certificate, an old TLS version, a timeout). */
  tlsError?(err: NodeJS.ErrnoException, socket: Duplex): void;
  /** What HTTP/2 clients do to their streams (resets, rapid resets). */
  readonly http2?: Http2Events;
}

class Facts implements RequestFacts {
  host: string;
  path: string;
  method: string;

  constructor(private readonly req: IncomingMessage) {
    const host = req.headers.host ?? '';
    const colon = host.startsWith('[') ? host.indexOf(']:') + 1 : host.lastIndexOf(':');
    this.host = (colon > 0 ? host.slice(0, colon) : host).toLowerCase();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.method = req.method ?? 'GET';
  }

  header(name: string): string | undefined {
    const value = this.req.headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  }
}

const BAD_GATEWAY_BODY = 'upstream connect error or disconnect/reset before headers\n';
const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-type: text/plain\r\n'
  + `content-length: ${BAD_GATEWAY_BODY.length}\r\n\r\n${BAD_GATEWAY_BODY}`;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large',
  505: 'HTTP Version Not Supported',
};

/** A raw response for a connection whose request never reached a flow (and a close after it). */
function rawResponse(status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
}

/**
 * Connections that had a request refused. Node may already have parsed requests pipelined behind
 * it (their handlers run before the refusal's close): those must not reach a route or the upstream.
 */
const refused = new WeakSet<object>();

/**
 * Responses pipelined behind another on their connection, by connection. NB: Node never emits
 * 'close' on a response that had not got its socket when the connection closed (the client left
 * with requests pipelined): their flows would never end (no on_log/on_done/on_delete, the
 * generation never drained, the upstream exchange left running). The connection's close ends them.
 */
const queuedResponses = new WeakMap<object, ServerResponse[]>();

function closeQueued(this: Duplex): void {
  const queued = queuedResponses.get(this);
  queuedResponses.delete(this);
  for (const res of queued ?? []) {
    if ((res as { _closed?: boolean })._closed === true) continue;
    (res as { _closed?: boolean })._closed = true;
    res.destroyed = true;
    res.emit('close');
  }
}

function trackQueued(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const queued = queuedResponses.get(socket);
  if (queued !== undefined) {
    queued.push(res);
    return;
  }
  queuedResponses.set(socket, [res]);
  socket.once('close', closeQueued);
}

const NOT_FOUND_BODY = 'no route matched\n';

/** Answers a request no route matched with a 404, and reports it. */
function notFound(host: ListenerHost, req: IncomingMessage, res: ServerResponse): void {
  const startedAt = performance.now();
  res.writeHead(404, { 'content-type': 'text/plain', 'content-length': NOT_FOUND_BODY.length });
  res.end(NOT_FOUND_BODY);
  host.notFound(req, (performance.now() - startedAt) / 1000, NOT_FOUND_BODY.length);
}

/** Answers a request refused before routing; the connection closes after it (no desync possible). */
function refuse(req: IncomingMessage, res: ServerResponse, rejection: Rejection): void {
  const body = `${STATUS_TEXT[rejection.status]}\n`;
  // NB: req.socket, not res.socket: a response pipelined behind another has no socket yet. An
  // HTTP/2 stream ends alone: its connection's other streams are no desync risk.
  if (req.httpVersionMajor === 1) refused.add(req.socket);
  res.shouldKeepAlive = false;
  res.writeHead(rejection.status, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

/** What Node's clientError means: the status to answer (0: the socket is gone) and the reason. */
function classify(err: NodeJS.ErrnoException, socket: Duplex): [number, string] {
  const code = err.code ?? '';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // With the headers complete the parser has handed a request out: the whole request is late.
    const incoming = (socket as { parser?: { incoming?: IncomingMessage | null } }).parser?.incoming;
    return [408, incoming ? 'request_timeout' : 'request_headers_timeout'];
  }
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'request_headers_too_large'];
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, 'http1.codec_error'];
  // The client closed in the middle of a request: nobody to answer (the flow, if any, logs it).
  if (code === 'HPE_INVALID_EOF_STATE') return [0, 'downstream_remote_disconnect'];
  if (code.startsWith('HPE_')) return [400, 'http1.codec_error'];
  return [0, 'downstream_remote_disconnect'];
}

export function listenerOptions(config: ListenerConfig): { path: TargetOptions; limits: ClientLimits } {
  return {
    path: Object.freeze({
      normalize: config.normalizePath, mergeSlashes: config.mergeSlashes, escapedSlashes: config.escapedSlashes,
      maxHeaders: config.maxRequestHeaders,
    }),
    limits: Object.freeze({
      headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs, bodyTimeoutMs: config.bodyTimeoutMs,
    }),
  };
}

/** The scheme of a listener's requests (:scheme, x-forwarded-proto): the flow and the WebSocket proxy take it from here. */
export function listenerScheme(config: ListenerConfig): Scheme {
  return config.tls === undefined ? 'http' : 'https';
}

/** `tls`: the listener's certificates (tls.ts) when it terminates TLS, else null. */
export function createListener(host: ListenerHost, config: ListenerConfig, tls: ListenerTls | null = null): Server {
  const { path, limits } = listenerOptions(config);
  const scheme = listenerScheme(config);
  const watchBodies = limits.bodyTimeoutMs > 0 || limits.requestTimeoutMs > 0;
  // x-forwarded-* come from the flow's request headers (upgrade.ts, as for plain requests), not from http-proxy-3's xfwd.
  const ws = createProxyServer({ ws: true, xfwd: false });
  watchTunnels(ws);
  ws.on('error', (err, req, socket) => {
    host.upgradeError(err as Error, req as IncomingMessage);
    const s = socket as (Duplex & { bytesWritten?: number }) | undefined;
    // Nothing sent yet (no 101): the upstream could not be reached, answer 502 as for requests.
    if (s !== undefined && !s.destroyed && s.writable && s.bytesWritten === 0) s.end(BAD_GATEWAY);
    else s?.destroy?.();
  });

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const h2 = isHttp2Request(req);
    if (h2) asHttp1Request(req);
    // Left unanswered: the connection closes once the refusal is out.
    else if (refused.has(req.socket)) return;
    if (host.draining()) res.shouldKeepAlive = false;
    const rejection = prepareRequest(req, path);
    if (rejection !== null) {
      refuse(req, res, rejection);
      host.rejected(req, rejection.status, rejection.reason);
      return;
    }
    if (req.url === '*') {
      // OPTIONS * (RFC 9110 §9.3.7) is about the server, and undici cannot send that target on.
      res.writeHead(200, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', 'content-length': 0 });
      res.end();
      host.rejected(req, 200, 'options_asterisk');
      return;
    }
    const generation = host.current();
    const route = generation.router.match(new Facts(req));
    if (route === undefined) {
      notFound(host, req, res);
      if (watchBodies && !req.complete && hasBody(req)) new BodyWatch(req, null, limits);
      return;
    }
    generation.inflight++;
    if (!h2 && res.socket === null) trackQueued(req, res);
    const flow = new RequestFlow(req, res, route.target, generation, scheme);
    if (watchBodies && !req.complete && hasBody(req)) new BodyWatch(req, flow, limits);
    flow.run();
  };
  // A slow handshake counts against the same budget as slow headers (slowloris before TLS is up).
  const h2 = (tls !== null ? config.http2.enabled : config.http2.cleartext) && host.http2 !== undefined
    ? createHttp2Server(config, handler, host.http2) : null;
  const server: Server = tls === null ? createServer(serverOptions(limits), handler)
    : createTlsServer({ ...serverOptions(limits), ...tls.serverOptions(limits.headersTimeoutMs, h2 !== null) }, handler);
  if (h2 !== null) {
    if (tls !== null) routeTlsConnections(server, h2);
    else routeCleartextConnections(server, h2, limits.headersTimeoutMs);
  }
  if (tls !== null) {
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      host.tlsError?.(err, socket);
      socket.destroy();
    });
  }
  server.maxConnections = config.maxConnections;
  // One more than allowed, so that a request over the limit is seen (and refused), not cut short.
  server.maxHeadersCount = config.maxRequestHeaders + 1;
  server.on('drop', () => host.connectionDropped());
  server.on('error', (err) => host.serverError(err));

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, reason] = classify(err, socket);
    if (status !== 0) {
      // As Node does by default: answer only when no response of this connection has begun.
      const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (socket.writable && (current == null || !current.headersSent)) socket.write(rawResponse(status));
      host.clientError(status, reason, err.code ?? '', socket);
    }
    socket.destroy();
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (refused.has(socket)) {
      socket.destroy();
      return;
    }
    const rejection = prepareRequest(req, path);
    if (rejection !== null) {
      socket.end(rawResponse(rejection.status));
      host.rejected(req, rejection.status, rejection.reason);
      return;
    }
    const generation = host.current();
    const route = generation.router.match(new Facts(req));
    if (route === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    upgrade(ws, req, socket, head, route.target, generation, scheme);
  });
  return server;
}
