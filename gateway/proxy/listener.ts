/**
 * The public listeners: match a route, run the request through its flow, or answer 404. WebSocket
 * and other Upgrade requests are matched the same way and tunnelled with http-proxy-3.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import { RequestFlow } from './flow.js';
import { upgradeProxyHeaders } from './headers.js';
import type { Generation } from './generation.js';
import type { RequestFacts } from './router.js';

/** What the listeners need from the gateway: the generation now in force, and whether to drain. */
export interface ListenerHost {
  current(): Generation;
  draining(): boolean;
  notFound(req: IncomingMessage, res: ServerResponse): void;
  upgradeError(err: Error, req: IncomingMessage): void;
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

export function createListener(host: ListenerHost): Server {
  // x-forwarded-* come from upgradeProxyHeaders (as for plain requests), not from http-proxy-3's xfwd.
  const ws = createProxyServer({ ws: true, xfwd: false });
  ws.on('error', (err, req, socket) => {
    host.upgradeError(err as Error, req as IncomingMessage);
    const s = socket as (Duplex & { bytesWritten?: number }) | undefined;
    // Nothing sent yet (no 101): the upstream could not be reached, answer 502 as for requests.
    if (s !== undefined && !s.destroyed && s.writable && s.bytesWritten === 0) s.end(BAD_GATEWAY);
    else s?.destroy?.();
  });

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    if (host.draining()) res.shouldKeepAlive = false;
    const generation = host.current();
    const route = generation.router.match(new Facts(req));
    if (route === undefined) {
      host.notFound(req, res);
      return;
    }
    generation.inflight++;
    new RequestFlow(req, res, route.target, generation).run();
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const generation = host.current();
    const route = generation.router.match(new Facts(req));
    if (route === undefined) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    ws.ws(req, socket, head, { target: route.target.cluster.pick().origin, headers: upgradeProxyHeaders(req, generation.scheme) });
  });
  return server;
}
