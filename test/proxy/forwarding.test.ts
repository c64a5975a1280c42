import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { deadOrigin, startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { until } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request with node:http (exact control over Host, framing and hop-by-hop headers). */
function send(base: string, opts: { method?: string; path?: string; headers?: Record<string, string | number | string[]>;
  body?: Array<string | Buffer>; agent?: Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${opts.path ?? '/'}`, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const part of opts.body ?? []) req.write(part);
    req.end();
  });
}

/** An upstream that answers with its own name (to see which one a route picked). */
function named(name: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': name.length });
    res.end(name);
  };
}

/** A node:http server on port 0 that the test drives itself (nothing buffered by a helper). */
async function rawServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    server, url: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}


function accessLines(gw: TestGateway): Array<Record<string, unknown>> {
  return gw.logs.filter((l) => l.access === true);
}

/** Full garbage collection on demand, so that samples show retained memory only. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const BLOCK = Buffer.alloc(64 * 1024);
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 7919 + (i >> 8)) & 0xff;
const STREAMED_BLOCKS = 1600; // 100 MiB
const SAMPLE_EVERY = 10 * 2 ** 20;

/** 100 MiB from one 64 KiB block: the source holds nothing but the block. */
function* blocks(): Generator<Buffer> {
  for (let i = 0; i < STREAMED_BLOCKS; i++) yield BLOCK;
}

function expectedDigest(): string {
  const hash = createHash('sha256');
  for (const b of blocks()) hash.update(b);
  return hash.digest('hex');
}

/**
 * Samples retained memory (after full GCs) when asked, and reports the largest growth of heapUsed
 * and arrayBuffers over the baseline taken at start. Two GCs per sample: V8 frees ArrayBuffer
 * backing stores in a sweep that the next GC completes, so one GC alone still counts garbage.
 */
class MemoryWatch {
  private readonly base: NodeJS.MemoryUsage;
  private peakHeap = 0;
  private peakBuffers = 0;
  samples = 0;

  constructor() {
    gc();
    gc();
    this.base = process.memoryUsage();
  }

  sample(): void {
    gc();
    gc();
    const now = process.memoryUsage();
    this.samples++;
    this.peakHeap = Math.max(this.peakHeap, now.heapUsed - this.base.heapUsed);
    this.peakBuffers = Math.max(this.peakBuffers, now.arrayBuffers - this.base.arrayBuffers);
  }

  /** Samples when `bytes` crossed a multiple of 10 MiB since `before`. */
  progress(before: number, bytes: number): void {
    if (Math.floor(before / SAMPLE_EVERY) !== Math.floor(bytes / SAMPLE_EVERY)) this.sample();
  }

  peaks(): { heapMiB: number; arrayBuffersMiB: number } {
    return { heapMiB: this.peakHeap / 2 ** 20, arrayBuffersMiB: this.peakBuffers / 2 ** 20 };
  }
}

/** A filter that buffers the whole request body (StopIterationAndBuffer until end of stream). */
const BUFFER_BODY = guestWat({
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (result i32) (local.get $eos) (then (i32.const 0)) (else (i32.const 1))))`,
});

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const u = await startUpstream(handler);
  cleanup.push(u.close);
  return u;
}

async function gateway(config: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway(config);
  cleanup.push(gw.close);
  return gw;
}

describe('routing', () => {
  it('matches an exact host and a "*.suffix" host, with and without a port in Host', async () => {
    const [api, wild, rest] = await Promise.all([upstream(named('api')), upstream(named('wild')), upstream(named('rest'))]);
    const gw = await gateway({
      clusters: [{ name: 'api', endpoints: [api.url] }, { name: 'wild', endpoints: [wild.url] }, { name: 'rest', endpoints: [rest.url] }],
      routes: [
        { name: 'api', match: { host: 'api.example.com' }, cluster: 'api' },
        { name: 'wild', match: { host: '*.example.com' }, cluster: 'wild' },
        { name: 'rest', cluster: 'rest' },
      ],
    });
    const seen: string[] = [];
    for (const host of ['api.example.com', 'API.example.com:8080', 'eu.example.com', 'a.b.example.com:443', 'example.com', 'example.com:80', '[::1]:8080']) {
      seen.push((await send(gw.url, { headers: { host } })).body.toString());
    }
    expect(seen).toEqual(['api', 'api', 'wild', 'wild', 'rest', 'rest', 'rest']);
  });

  it('matches exact, prefix and anchored regex paths, ignoring the query string', async () => {
    const [exact, prefix, regex, rest] = await Promise.all(['exact', 'prefix', 'regex', 'rest'].map((n) => upstream(named(n))));
    const gw = await gateway({
      clusters: [['exact', exact], ['prefix', prefix], ['regex', regex], ['rest', rest]].map(([name, u]) => ({ name, endpoints: [(u as Upstream).url] })),
      routes: [
        { name: 'exact', match: { path: '/health' }, cluster: 'exact' },
        { name: 'prefix', match: { pathPrefix: '/api/' }, cluster: 'prefix' },
        { name: 'regex', match: { pathRegex: '/v[0-9]+/items' }, cluster: 'regex' },
        { name: 'rest', cluster: 'rest' },
      ],
    });
    const seen: string[] = [];
    for (const path of ['/health', '/health?full=1', '/health/', '/api/users?x=/health', '/api', '/v2/items', '/v2/items?q=1', '/x/v2/items', '/v2/items/1']) {
      seen.push((await send(gw.url, { path })).body.toString());
    }
    expect(seen).toEqual(['exact', 'exact', 'rest', 'prefix', 'rest', 'regex', 'regex', 'rest', 'rest']);
  });

  it('matches methods and header values (exact, regex, present)', async () => {
    const [write, tenant, beta, auth, rest] = await Promise.all(['write', 'tenant', 'beta', 'auth', 'rest'].map((n) => upstream(named(n))));
    const gw = await gateway({
      clusters: [['write', write], ['tenant', tenant], ['beta', beta], ['auth', auth], ['rest', rest]].map(([name, u]) => ({ name, endpoints: [(u as Upstream).url] })),
      routes: [
        { name: 'write', match: { methods: ['POST', 'put'] }, cluster: 'write' },
        { name: 'tenant', match: { headers: [{ name: 'X-Tenant', exact: 'acme' }] }, cluster: 'tenant' },
        { name: 'beta', match: { headers: [{ name: 'x-version', regex: 'beta-[0-9]+' }] }, cluster: 'beta' },
        { name: 'auth', match: { headers: [{ name: 'authorization', present: true }] }, cluster: 'auth' },
        { name: 'rest', cluster: 'rest' },
      ],
    });
    const seen = [
      (await send(gw.url, { method: 'POST', body: ['x'] })).body.toString(),
      (await send(gw.url, { method: 'PUT', body: ['x'] })).body.toString(),
      (await send(gw.url, { headers: { 'x-tenant': 'acme' } })).body.toString(),
      (await send(gw.url, { headers: { 'x-tenant': 'acme-corp' } })).body.toString(),
      (await send(gw.url, { headers: { 'x-version': 'beta-12' } })).body.toString(),
      (await send(gw.url, { headers: { 'x-version': 'beta-12x' } })).body.toString(),
      (await send(gw.url, { headers: { authorization: 'Bearer t' } })).body.toString(),
      (await send(gw.url, { method: 'DELETE' })).body.toString(),
    ];
    expect(seen).toEqual(['write', 'write', 'tenant', 'rest', 'beta', 'rest', 'auth', 'rest']);
  });

  it('takes the first matching route in config order', async () => {
    const [first, second] = await Promise.all([upstream(named('first')), upstream(named('second'))]);
    const gw = await gateway({
      clusters: [{ name: 'first', endpoints: [first.url] }, { name: 'second', endpoints: [second.url] }],
      routes: [
        { name: 'first', match: { pathPrefix: '/a' }, cluster: 'first' },
        { name: 'second', match: { path: '/a/b' }, cluster: 'second' },
      ],
    });
    expect((await send(gw.url, { path: '/a/b' })).body.toString()).toBe('first');
    expect(second.requests).toHaveLength(0);
  });

  it('answers 404 itself with a short body when no route matches, and logs it', async () => {
    const u = await upstream();
    const gw = await gateway({
      clusters: [{ name: 'backend', endpoints: [u.url] }],
      routes: [{ name: 'api', match: { pathPrefix: '/api' }, cluster: 'backend' }],
    });
    const reply = await send(gw.url, { path: '/web?x=1' });
    expect(reply.status).toBe(404);
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.headers['content-length']).toBe('17');
    expect(reply.body.toString()).toBe('no route matched\n');
    expect(u.requests).toHaveLength(0);
    const line = accessLines(gw).at(-1)!;
    expect([line.method, line.path, line.status, line.route, line.error]).toEqual(['GET', '/web?x=1', 404, null, 'route_not_found']);
  });

  it('applies each route its own body limit when a filter buffers the body', async () => {
    const u = await upstream();
    const gw = await gateway({
      clusters: [{ name: 'backend', endpoints: [u.url] }],
      plugins: [{ name: 'buffer', module: wasmFile(BUFFER_BODY, 'buffer') }],
      routes: [
        { name: 'small', match: { pathPrefix: '/small' }, cluster: 'backend', filters: ['buffer'], bodyLimitBytes: 1024 },
        { name: 'large', match: { pathPrefix: '/large' }, cluster: 'backend', filters: ['buffer'], bodyLimitBytes: 4096 },
      ],
    });
    const body = Buffer.alloc(2048, 'b');
    const small = await send(gw.url, { method: 'POST', path: '/small', body: [body] });
    expect(small.status).toBe(413);
    expect(small.body.toString()).toBe('Payload Too Large\n');
    const large = await send(gw.url, { method: 'POST', path: '/large', body: [body] });
    expect(large.status).toBe(200);
    expect(u.requests.map((r) => [r.url, r.body.length])).toEqual([['/large', 2048]]);
  });

  it('uses the route timeoutMs instead of the cluster one', async () => {
    // undici checks header/body timeouts on a coarse clock (about 0.5–1 s), so the upstream's delay
    // is far from both limits: 200 ms (route) < 1500 ms (upstream) < 5000 ms (cluster).
    const u = await upstream((_req, res) => { setTimeout(() => res.end('late'), 1500); });
    const gw = await gateway({
      clusters: [{ name: 'backend', endpoints: [u.url], timeoutMs: 5000 }],
      routes: [
        { name: 'hurried', match: { pathPrefix: '/hurried' }, cluster: 'backend', timeoutMs: 200 },
        { name: 'patient', cluster: 'backend' },
      ],
    });
    const started = performance.now();
    const hurried = await send(gw.url, { path: '/hurried' });
    expect(hurried.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(1400);
    const patient = await send(gw.url, { path: '/patient' });
    expect(patient.status).toBe(200);
    expect(patient.body.toString()).toBe('late');
  });
});

describe('forwarding', () => {
  it('removes hop-by-hop request headers and adds x-forwarded-* and a generated x-request-id', async () => {
    const u = await upstream();
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await send(gw.url, {
      path: '/p',
      headers: {
        host: 'shop.example.com:8080', connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'x-hop': '1', te: 'trailers',
        upgrade: 'h2c', 'proxy-authorization': 'Basic eA==', 'proxy-connection': 'keep-alive', 'x-kept': 'yes',
      },
    });
    expect(reply.status).toBe(200);
    const seen = u.requests[0].headers;
    expect(seen['x-request-id']).toMatch(UUID);
    expect(seen).toEqual({
      host: 'shop.example.com:8080',
      'x-kept': 'yes',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'shop.example.com:8080',
      'x-request-id': seen['x-request-id'],
      connection: 'keep-alive',
    });
    await until(() => accessLines(gw).length === 1);
    expect(accessLines(gw)[0].requestId).toBe(seen['x-request-id']);
  });

  it('appends the client to an existing x-forwarded-for and keeps the client x-request-id', async () => {
    const u = await upstream();
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    await send(gw.url, { headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.2', 'x-request-id': 'req-42', 'x-forwarded-proto': 'https' } });
    const seen = u.requests[0].headers;
    expect([seen['x-forwarded-for'], seen['x-request-id'], seen['x-forwarded-proto']])
      .toEqual(['203.0.113.7, 198.51.100.2, 127.0.0.1', 'req-42', 'http']);
  });

  it('removes hop-by-hop response headers and the ones the upstream named in Connection', async () => {
    const u = await upstream((_req, res) => {
      res.writeHead(200, {
        connection: 'x-hop-resp', 'x-hop-resp': '1', 'keep-alive': 'timeout=5', 'proxy-authenticate': 'Basic', 'x-kept-resp': 'yes',
        'content-length': 2,
      });
      res.end('ok');
    });
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await send(gw.url, { headers: { connection: 'close' } });
    expect(reply.body.toString()).toBe('ok');
    const { date, ...rest } = reply.headers;
    expect(typeof date).toBe('string');
    expect(rest).toEqual({ 'x-kept-resp': 'yes', 'content-length': '2', connection: 'close' });
  });

  it('preserves method, path, query and Host', async () => {
    const u = await upstream();
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    await send(gw.url, { method: 'PATCH', path: '/a/b%20c/?x=1&y=%2F&x=2', headers: { host: 'Custom.Example:1234' }, body: ['{}'] });
    await send(gw.url, { method: 'OPTIONS', path: '/*' });
    expect(u.requests.map((r) => [r.method, r.url, r.headers.host, r.body.toString()])).toEqual([
      ['PATCH', '/a/b%20c/?x=1&y=%2F&x=2', 'Custom.Example:1234', '{}'],
      ['OPTIONS', '/*', gw.url.slice('http://'.length), ''],
    ]);
  });

  it('sends requests round robin across the endpoints of a cluster', async () => {
    const order: string[] = [];
    const [a, b] = await Promise.all(['a', 'b'].map((n) => upstream((_req, res) => { order.push(n); res.end(n); })));
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [a.url, b.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    for (let i = 0; i < 6; i++) await send(gw.url);
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    await until(() => accessLines(gw).length === 6);
    expect(accessLines(gw).map((l) => l.upstream)).toEqual([a.url, b.url, a.url, b.url, a.url, b.url]);
  });

  it('reuses one kept-alive upstream connection for sequential requests', async () => {
    const u = await upstream();
    const sockets = new Set<Socket>();
    u.server.on('connection', (s: Socket) => sockets.add(s));
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    for (let i = 0; i < 8; i++) expect((await send(gw.url, { path: `/n${i}` })).status).toBe(200);
    expect(u.requests).toHaveLength(8);
    expect(sockets.size).toBe(1);
  });

  it('streams a chunked request body and a chunked response body through, piece by piece', async () => {
    // Each side sends its next piece only once the other end has seen the previous one: nothing
    // can pass unless the gateway forwards every piece as it comes.
    const upstreamGot: string[] = [];
    const clientGot: string[] = [];
    let framing: [string | undefined, string | undefined] | null = null;
    const u = await rawServer((req, res) => {
      framing = [req.headers['transfer-encoding'], req.headers['content-length']];
      req.on('data', (c: Buffer) => upstreamGot.push(c.toString()));
      req.on('end', async () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (const piece of ['one,', 'two,', 'three']) {
          res.write(piece);
          await until(() => clientGot.join('').endsWith(piece));
        }
        res.end();
      });
    });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await new Promise<{ te: string | undefined; cl: string | undefined; done: boolean }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/chunks`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.on('data', (c: Buffer) => clientGot.push(c.toString()));
        res.on('end', () => resolve({ te: res.headers['transfer-encoding'], cl: res.headers['content-length'], done: res.complete }));
      });
      req.on('error', reject);
      void (async () => {
        for (const piece of ['alpha,', 'beta,', 'gamma']) {
          req.write(piece);
          await until(() => upstreamGot.join('').endsWith(piece));
        }
        req.end();
      })();
    });
    expect(framing).toEqual(['chunked', undefined]);
    expect(upstreamGot.join('')).toBe('alpha,beta,gamma');
    expect(reply).toEqual({ te: 'chunked', cl: undefined, done: true });
    expect(clientGot.join('')).toBe('one,two,three');
  });

  it('answers HEAD, 204 and 304 without a body and keeps the connection usable', async () => {
    const u = await upstream((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 11 });
        res.end();
      } else if (req.url === '/204') {
        res.writeHead(204, { 'x-s': '204' });
        res.end();
      } else if (req.url === '/304') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
      } else {
        res.writeHead(200, { 'content-length': 5 });
        res.end('after');
      }
    });
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    const head = await send(gw.url, { method: 'HEAD', path: '/h', agent });
    const noContent = await send(gw.url, { path: '/204', agent });
    const notModified = await send(gw.url, { path: '/304', headers: { 'if-none-match': '"v1"' }, agent });
    const after = await send(gw.url, { path: '/after', agent });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, '11', 0]);
    expect([noContent.status, noContent.headers['x-s'], noContent.body.length]).toEqual([204, '204', 0]);
    expect([notModified.status, notModified.headers.etag, notModified.body.length]).toEqual([304, '"v1"', 0]);
    expect([after.status, after.body.toString()]).toEqual([200, 'after']);
    await until(() => accessLines(gw).length === 4);
    expect(accessLines(gw).map((l) => [l.status, l.error])).toEqual([[200, undefined], [204, undefined], [304, undefined], [200, undefined]]);
  });

  it('answers 502 with a short body when the upstream is unreachable and logs the error code', async () => {
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [await deadOrigin()] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await send(gw.url, { path: '/x' });
    expect(reply.status).toBe(502);
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.body.toString()).toBe('upstream connect error or disconnect/reset before headers\n');
    await until(() => accessLines(gw).length === 1);
    const line = accessLines(gw)[0];
    expect([line.status, line.route, line.error]).toEqual([502, 'all', 'ECONNREFUSED']);
  });

  it('answers 502 when the upstream closes the connection before its response headers', async () => {
    const u = await rawServer((req) => { req.socket.destroy(); });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await send(gw.url, { path: '/drop' });
    expect([reply.status, reply.body.toString()]).toEqual([502, 'upstream connect error or disconnect/reset before headers\n']);
    await until(() => accessLines(gw).length === 1);
    expect([accessLines(gw)[0].status, accessLines(gw)[0].error]).toEqual([502, 'UND_ERR_SOCKET']);
  });

  it('answers 504 with a short body when the upstream is slower than the timeout', async () => {
    const u = await upstream(() => { /* never answers */ });
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url], timeoutMs: 200 }], routes: [{ name: 'all', cluster: 'backend' }] });
    const reply = await send(gw.url, { path: '/slow' });
    expect(reply.status).toBe(504);
    expect(reply.body.toString()).toBe('upstream request timeout\n');
    await until(() => accessLines(gw).length === 1);
    const line = accessLines(gw)[0];
    expect([line.status, line.error]).toEqual([504, 'UND_ERR_HEADERS_TIMEOUT']);
  });

  it('destroys the client connection when the upstream resets in the middle of the body', async () => {
    const u = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(100, 'x'));
      setTimeout(() => res.socket!.destroy(), 30);
    });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const outcome = await new Promise<{ status: number; received: number; complete: boolean; error: string }>((resolve) => {
      const req = httpRequest(`${gw.url}/reset`, { agent: false }, (res) => {
        let received = 0;
        let error = '';
        res.on('data', (c: Buffer) => { received += c.length; });
        res.on('error', (err: NodeJS.ErrnoException) => { error = err.code ?? err.message; });
        res.on('close', () => resolve({ status: res.statusCode!, received, complete: res.complete, error }));
      });
      req.end();
    });
    expect(outcome).toEqual({ status: 200, received: 100, complete: false, error: 'ECONNRESET' });
    await until(() => accessLines(gw).length === 1);
    expect(accessLines(gw)[0].error).toBe('UND_ERR_SOCKET');
  });

  it('aborts the upstream request when the client goes away in the middle of its body', async () => {
    let upstreamEnded: { bytes: number; complete: boolean } | null = null;
    let received = 0;
    const u = await rawServer((req) => {
      req.on('data', (c: Buffer) => { received += c.length; });
      req.on('close', () => { upstreamEnded = { bytes: received, complete: req.complete }; });
    });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const client = httpRequest(`${gw.url}/upload`, { method: 'POST', headers: { 'content-length': 1_000_000 }, agent: false });
    client.on('error', () => undefined);
    client.write(Buffer.alloc(1000, 'u'));
    await until(() => received === 1000);
    client.destroy();
    await until(() => upstreamEnded !== null);
    expect(upstreamEnded).toEqual({ bytes: 1000, complete: false });
    await until(() => accessLines(gw).length === 1);
    expect([accessLines(gw)[0].error, accessLines(gw)[0].bytesIn]).toEqual(['downstream_remote_disconnect', 1000]);
    expect(gw.gateway['generation'].inflight).toBe(0);
  });
});

describe('streaming without buffering', () => {
  it('streams a 100 MiB request body to the upstream while retained memory stays flat', async () => {
    let received = 0;
    const hash = createHash('sha256');
    let watch: MemoryWatch | null = null;
    const u = await rawServer((req, res) => {
      req.on('data', (c: Buffer) => {
        const before = received;
        received += c.length;
        hash.update(c);
        watch?.progress(before, received);
      });
      req.on('end', () => res.end(String(received)));
    });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const total = BLOCK.length * STREAMED_BLOCKS;
    watch = new MemoryWatch();
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/upload`, { method: 'PUT', headers: { 'content-length': total }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      pipeline(Readable.from(blocks()), req).catch(reject);
    });
    const peak = watch.peaks();
    expect(answer).toBe(String(total));
    expect(hash.digest('hex')).toBe(expectedDigest());
    expect(watch.samples).toBe(10);
    expect(peak.heapMiB).toBeLessThan(20);
    expect(peak.arrayBuffersMiB).toBeLessThan(20);
    await until(() => accessLines(gw).length === 1);
    expect([accessLines(gw)[0].status, accessLines(gw)[0].bytesIn]).toEqual([200, total]);
  }, 60_000);

  it('streams a 100 MiB response body to the client while retained memory stays flat', async () => {
    const u = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      pipeline(Readable.from(blocks()), res).catch(() => undefined);
    });
    cleanup.push(u.close);
    const gw = await gateway({ clusters: [{ name: 'backend', endpoints: [u.url] }], routes: [{ name: 'all', cluster: 'backend' }] });
    const total = BLOCK.length * STREAMED_BLOCKS;
    const watch = new MemoryWatch();
    const hash = createHash('sha256');
    const got = await new Promise<{ bytes: number; te: string | undefined }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/download`, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          const before = bytes;
          bytes += c.length;
          hash.update(c);
          watch.progress(before, bytes);
        });
        res.on('end', () => resolve({ bytes, te: res.headers['transfer-encoding'] }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const peak = watch.peaks();
    expect(got).toEqual({ bytes: total, te: 'chunked' });
    expect(hash.digest('hex')).toBe(expectedDigest());
    expect(watch.samples).toBe(10);
    expect(peak.heapMiB).toBeLessThan(20);
    expect(peak.arrayBuffersMiB).toBeLessThan(20);
    await until(() => accessLines(gw).length === 1);
    expect([accessLines(gw)[0].status, accessLines(gw)[0].bytesOut]).toEqual([200, total]);
  }, 60_000);
});
