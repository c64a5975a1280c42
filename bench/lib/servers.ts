/**
 * The servers of the proxy bench besides the gateway, one role per process (bench/proxy.ts forks
 * this file once per role):
 *
 *   upstream                 node:http, a fixed 1 KB JSON body with content-length (GET /64k: 64 KB,
 *                            GET /1m: 1 MiB, written in one piece); GET /check
 *                            answers the request headers it received, for the bench's sanity checks;
 *                            GET /authz… answers 200 with `x-auth-user: jane` and no body (the
 *                            authorization service of the ext-authz filter)
 *   http-proxy-3 URL         `createProxyServer({ target })` in a node:http server, as minimal as
 *                            it gets (no agent: http-proxy-3 then opens one upstream connection per
 *                            request and sends `connection: close`)
 *   http-proxy-3-ka URL      the same with a keep-alive agent (128 sockets), as one would deploy it
 *   undici URL               an undici Pool (128 connections) and `Pool.stream` writing the upstream
 *                            body straight into the ServerResponse
 *   hello                    what the example edge function filters/functions/hello answers, as
 *                            a plain Node handler (bench/functions.ts compares the two)
 *
 * Each listens on 127.0.0.1:0 and sends `{ port }` to the parent over IPC.
 */
import { Agent, createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import { Pool } from 'undici';

/** A JSON body of `size` bytes. */
const body = (size: number): Buffer => Buffer.from(JSON.stringify({ ok: true, service: 'bench-upstream', items: [1, 2, 3, 4, 5] }).padEnd(size, ' '));
const BODIES: Record<string, Buffer> = { '/': body(1024), '/64k': body(64 * 1024), '/1m': body(1024 * 1024) };

function upstream(): RequestListener {
  return (req, res) => {
    if (req.url === '/check') {
      const body = JSON.stringify(req.headers);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (req.url?.startsWith('/authz') === true) {
      res.writeHead(200, { 'x-auth-user': 'jane', 'content-length': 0 });
      res.end();
      return;
    }
    // Drain a request body if any, then answer the fixed body.
    req.resume();
    const answer = BODIES[req.url ?? '/'] ?? BODIES['/'];
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  };
}

function httpProxy3(target: string, keepAlive: boolean): RequestListener {
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 128 }) : undefined;
  const proxy = createProxyServer({ target, agent });
  proxy.on('error', (_err, _req, res) => {
    const out = res as ServerResponse;
    if (!out.headersSent) out.writeHead(502);
    out.end();
  });
  return (req, res) => proxy.web(req, res);
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): the least a proxy must drop. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function undiciProxy(target: string): RequestListener {
  const pool = new Pool(target, { connections: 128, keepAliveTimeout: 30_000 });
  return (req: IncomingMessage, res: ServerResponse) => {
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.stream({ path: req.url ?? '/', method: req.method as 'GET', headers, body: hasBody ? req : null, opaque: res },
      ({ statusCode, headers: h, opaque }) => {
        const out = opaque as ServerResponse;
        const flat: string[] = [];
        for (const name in h) {
          const v = h[name];
          if (HOP.has(name) || v === undefined) continue;
          if (typeof v === 'string') flat.push(name, v);
          else for (const x of v) flat.push(name, x);
        }
        out.writeHead(statusCode, flat);
        return out;
      }).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  };
}

/** The hello function's answer: text/plain, x-function, `hello from <path>` in three writes (chunked). */
function hello(): RequestListener {
  return (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-function': 'hello' });
    res.write('hello ');
    res.write('from ');
    res.end(`${(req.url ?? '/').split('?')[0]}\n`);
  };
}

const [role, target] = process.argv.slice(2);
const handlers: Record<string, () => RequestListener> = {
  upstream,
  'http-proxy-3': () => httpProxy3(target, false),
  'http-proxy-3-ka': () => httpProxy3(target, true),
  undici: () => undiciProxy(target),
  hello,
};
if (handlers[role] === undefined) throw new Error(`bench/lib/servers.ts: unknown role "${role}"`);
const server = createServer({ keepAliveTimeout: 65_000 }, handlers[role]());
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
