/**
 * WebSocket and other Upgrade requests: routed and filtered like any request, then tunnelled.
 *
 * The request runs as a RequestFlow on a response bound to the client's socket, so the route's
 * filters see and may change the upgrade request's headers (on_request_headers), or refuse it
 * with a local reply that goes out on the socket as an HTTP/1.1 answer; the access log, metrics
 * and on_log/on_done come from the flow as for any request. Once the request headers are final,
 * the tunnel takes over instead of an upstream exchange: http-proxy-3 sends the filtered request
 * to an endpoint of the route's cluster and splices the two sockets after its 101. What flows
 * through the tunnel stays opaque to filters (Envoy's upgrade filter chain sees the headers only).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { RequestFlow } from './flow.js';
import type { Generation } from './generation.js';
import type { RouteRuntime, Scheme } from './types.js';

/** What a tunnel's proxy request tells its flow: the upstream accepted (101), or never answered. */
const flows = new WeakMap<IncomingMessage, RequestFlow>();

/** Hooks the listener's one WebSocket proxy to the flows of its tunnels (once per proxy). */
export function watchTunnels(ws: ProxyServer): void {
  ws.on('proxyReqWs', (proxyReq, req) => {
    const flow = flows.get(req as IncomingMessage);
    if (flow !== undefined) proxyReq.on('upgrade', () => flow.tunnelled(101));
  });
}

/**
 * The filtered request, as http-proxy-3 sends it on: the path and headers the filters left, with
 * the hop-by-hop headers the upgrade itself needs (the header map drops them, as for any request).
 */
function applyHeaders(req: IncomingMessage, flow: RequestFlow): void {
  const map = flow.requestHeaders;
  const headers: Record<string, string | string[]> = {};
  const pairs = map.pairs;
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i];
    if (name.charCodeAt(0) === 0x3a /* : */) continue;
    const had = headers[name];
    headers[name] = had === undefined ? pairs[i + 1] : Array.isArray(had) ? [...had, pairs[i + 1]] : [had, pairs[i + 1]];
  }
  const original = req.headers;
  if (original.connection !== undefined) headers.connection = original.connection;
  if (original.upgrade !== undefined) headers.upgrade = original.upgrade;
  headers.host = map.get(':authority') ?? original.host ?? '';
  req.headers = headers;
  req.url = map.get(':path') ?? req.url;
}

/** Runs `req` through `route`'s filters and tunnels it; the flow ends when the connection does. */
export function upgrade(ws: ProxyServer, req: IncomingMessage, socket: Duplex, head: Buffer, route: RouteRuntime, generation: Generation, scheme: Scheme): void {
  const res = new ServerResponse(req);
  res.assignSocket(socket as Socket);
  res.shouldKeepAlive = false;
  // A local reply (a filter refused the upgrade) is the connection's last answer.
  res.once('finish', () => socket.end());
  generation.inflight++;
  const flow = new RequestFlow(req, res, route, generation, scheme);
  flow.tunnel = (f) => {
    if (f.route.cluster === null) {
      // An edge function answers one request; it has no connection to hand over.
      f.tunnelled(501, 'upgrade_to_function');
      socket.destroy();
      return;
    }
    const endpoint = f.route.cluster.pick();
    f.endpoint = endpoint;
    applyHeaders(req, f);
    flows.set(req, f);
    ws.ws(req, socket as Socket, head, { target: endpoint.origin }, (err) => {
      f.tunnelled(502, (err as NodeJS.ErrnoException).code ?? 'upstream_connect_error');
      ws.emit('error', err, req, socket as Socket);
    });
  };
  flow.run();
}
