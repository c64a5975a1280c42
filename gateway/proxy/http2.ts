/**
 * HTTP/2 from clients: over TLS (ALPN `h2`, beside `http/1.1`), and in cleartext with prior
 * knowledge (h2c, where a listener enables it). Both land in the same request handler as HTTP/1.1,
 * through Node's compatibility API, so every stream runs the same route, filter chain and flow.
 *
 * How a connection reaches the right server: the listener's own server stays the HTTP/1.1 one,
 * with every client timeout and limit it has (client-timeouts.ts); its connection listener is
 * wrapped so that a connection that negotiated `h2` (or, in cleartext, opened with the HTTP/2
 * preface) goes to an HTTP/2 server instead, which never listens itself.
 *
 * Limits (the CVE-2023-44487 class): concurrent streams per connection and the header list are
 * bounded by SETTINGS; a client that resets more than `maxPrematureResets` streams before their
 * response began, and more than half of its streams (Envoy's premature-reset rule), gets GOAWAY
 * ENHANCE_YOUR_CALM and loses the connection. Each stream the client resets is counted.
 */
import { createServer as createH2Server, constants, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.js';

type H2Config = ListenerConfig['http2'];

/** The 24 bytes every HTTP/2 connection starts with (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Whether `req` is an HTTP/2 stream's (an HTTP/1.1 request line may claim "HTTP/2.0" too). */
export function isHttp2Request(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && (req as { stream?: unknown }).stream !== undefined;
}

/** What the HTTP/2 side reports. */
export interface Http2Events {
  /** The client reset a stream (RST_STREAM) before its response ended. */
  streamReset(code: number): void;
  /** A session was closed for resetting too many streams before their response began. */
  rapidReset(remoteAddress: string | undefined, resets: number, streams: number): void;
}

/**
 * The request as the rest of the data plane reads an HTTP/1.1 one: Host from :authority when the
 * client sent no host header, and the raw headers without the pseudo-headers (the flow makes its
 * own from the request line).
 */
export function asHttp1Request(req: IncomingMessage): void {
  const authority = req.headers[':authority'];
  if (req.headers.host === undefined && typeof authority === 'string') req.headers.host = authority;
  const raw = req.rawHeaders;
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) !== 0x3a /* : */) kept.push(raw[i], raw[i + 1]);
  Object.defineProperty(req, 'rawHeaders', { value: kept, configurable: true });
}

/**
 * The connection each new session is made on, while the HTTP/2 server takes it (the session is
 * made, and 'session' emitted, inside that call). A session's own socket is a proxy that refuses
 * destroy(): a rapid-reset client that does not close must lose the connection itself.
 */
let arriving: Socket | null = null;

function hand(h2: Http2Server, socket: Socket): void {
  arriving = socket;
  try {
    h2.emit('connection', socket);
  } finally {
    arriving = null;
  }
}

function watchSession(session: Http2Session, socket: Socket | null, config: H2Config, events: Http2Events): void {
  let streams = 0;
  let premature = 0;
  let closing = false;
  session.on('stream', (stream: ServerHttp2Stream) => {
    streams++;
    stream.once('close', () => {
      const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR;
      // NB: rstCode is also set when the gateway resets; only the peer's count (aborted).
      if (code === constants.NGHTTP2_NO_ERROR || !stream.aborted) return;
      events.streamReset(code);
      if (stream.headersSent) return;
      premature++;
      if (closing || premature <= config.maxPrematureResets || premature * 2 <= streams) return;
      closing = true;
      events.rapidReset(socket?.remoteAddress, premature, streams);
      // GOAWAY, then close: the client learns why and the connection goes once its last stream
      // has (destroying at once can leave the GOAWAY unsent and the TCP connection open). A client
      // that keeps streams open loses the connection a second later.
      session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.close();
      setTimeout(() => {
        session.destroy();
        socket?.destroy();
      }, 1000).unref();
    });
  });
}

/** The HTTP/2 server of a listener: it takes connections from `route` below, never from a port. */
export function createHttp2Server(listener: ListenerConfig, handler: (req: IncomingMessage, res: ServerResponse) => void, events: Http2Events): Http2Server {
  const config = listener.http2;
  const server = createH2Server({
    settings: { maxConcurrentStreams: config.maxConcurrentStreams, maxHeaderListSize: config.maxHeaderListSize, enablePush: false },
    // Header lines per request as for HTTP/1.1, plus the four pseudo-headers.
    maxHeaderListPairs: listener.maxRequestHeaders + 4,
    maxSessionMemory: 10,
  }, handler as unknown as Parameters<typeof createH2Server>[1]);
  server.on('session', (session: Http2Session) => {
    watchSession(session, arriving, config, events);
    // An idle connection closes as an HTTP/1.1 keep-alive one does.
    session.setTimeout(listener.idleTimeoutMs, () => session.close());
    session.on('error', () => session.destroy());
  });
  return server;
}

/** Sends connections that negotiated `h2` through ALPN to `h2`; the others stay with `server`'s HTTP/1.1. */
export function routeTlsConnections(server: Server, h2: Http2Server): void {
  const [http1] = server.listeners('secureConnection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: Socket & { alpnProtocol?: string | false }) => {
    if (socket.alpnProtocol === 'h2') hand(h2, socket);
    else http1.call(server, socket);
  });
}

/**
 * Sends cleartext connections that open with the HTTP/2 preface to `h2`; the others stay HTTP/1.1.
 * The first bytes are read before either server sees the connection, so a client that sends
 * nothing is closed after `headersTimeoutMs` here (HTTP/1.1's own timeout starts with its parser).
 */
export function routeCleartextConnections(server: Server, h2: Http2Server, headersTimeoutMs: number): void {
  const [http1] = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), headersTimeoutMs);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const h2Start = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2Start && head.length < PREFACE.length) return; // a preface in pieces: wait for the rest
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.pause();
      socket.unshift(head);
      if (h2Start) hand(h2, socket);
      else {
        http1.call(server, socket);
        // NB: paused above; the HTTP/1.1 side reads the bytes put back as 'data'.
        socket.resume();
      }
    };
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', () => clearTimeout(timer));
  });
}
