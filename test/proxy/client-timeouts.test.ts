/**
 * Client timeouts and the connection limit of a listener, against a real gateway on raw sockets,
 * with short timeouts so each case takes well under a second or two.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyWatch } from '../../gateway/proxy/client-timeouts.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { until } from '../helpers/host.js';
import { get, rawExchange } from '../helpers/raw-http.js';

const LIMITS = { headersTimeoutMs: 300, requestTimeoutMs: 1500, bodyTimeoutMs: 300, idleTimeoutMs: 200 };

function lastAccess(gw: TestGateway): Record<string, unknown> {
  return gw.logs.filter((l) => l.access === true).at(-1)!;
}

/** An upstream that reads bodies and never answers; it records how each request ended. */
async function sink(): Promise<{ server: Server; url: string; ended: Array<{ url: string; bytes: number; complete: boolean }> }> {
  const ended: Array<{ url: string; bytes: number; complete: boolean }> = [];
  const server = createServer((req: IncomingMessage) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; });
    req.on('close', () => ended.push({ url: req.url!, bytes, complete: req.complete }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ended };
}

describe('client timeouts', () => {
  let upstream: Upstream;
  let stalled: Awaited<ReturnType<typeof sink>>;
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    upstream = await startUpstream();
    stalled = await sink();
    gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, ...LIMITS }],
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, { name: 'sink', endpoints: [stalled.url] }],
      routes: [
        { name: 'upload', match: { pathPrefix: '/upload' }, cluster: 'sink' },
        { name: 'echo', match: { pathPrefix: '/echo' }, cluster: 'backend' },
      ],
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw.close();
    await upstream.close();
    stalled.server.closeAllConnections();
    stalled.server.close();
  });

  it('closes a slowloris connection, whose headers never end, with 408 after the headers timeout', async () => {
    const trickle: Array<string | number> = ['GET /echo HTTP/1.1\r\nHost: a\r\n'];
    for (let i = 0; i < 30; i++) trickle.push(100, `X-Slow-${i}: 1\r\n`);
    const reply = await rawExchange(port, trickle);
    expect([reply.closed, reply.statuses]).toEqual([true, [408]]);
    expect(reply.ms).toBeLessThan(1000);
    expect(lastAccess(gw).error).toBe('request_headers_timeout');
  });

  it('closes a connection that never sends a byte after the headers timeout', async () => {
    const reply = await rawExchange(port, [], 3000);
    expect([reply.closed, reply.statuses]).toEqual([true, [408]]);
    expect(reply.ms).toBeLessThan(1000);
  });

  it('closes an idle keep-alive connection after the idle timeout (plus the second Node adds)', async () => {
    const reply = await rawExchange(port, ['GET /echo HTTP/1.1\r\nHost: a\r\n\r\n'], 4000);
    expect([reply.closed, reply.statuses]).toEqual([true, [200]]);
    expect(reply.data).toMatch(/\r\nKeep-Alive: timeout=0\r\n/);
    expect(reply.ms).toBeGreaterThanOrEqual(1000);
    expect(reply.ms).toBeLessThan(2500);
  });

  it('answers 408 and closes when the body stops arriving, and aborts the upstream request', async () => {
    const reply = await rawExchange(port, ['POST /upload/stall HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789'], 3000);
    expect([reply.closed, reply.statuses]).toEqual([true, [408]]);
    expect(reply.data).toMatch(/\r\nconnection: close\r\n/i);
    expect(reply.ms).toBeLessThan(1200);
    await until(() => stalled.ended.some((e) => e.url === '/upload/stall'));
    expect(stalled.ended.find((e) => e.url === '/upload/stall')).toEqual({ url: '/upload/stall', bytes: 10, complete: false });
    await until(() => lastAccess(gw).path === '/upload/stall');
    expect([lastAccess(gw).status, lastAccess(gw).error]).toEqual([408, 'request_body_timeout']);
  });

  it('lets a slow but steady body go on, until the whole-request timeout', async () => {
    const chunks: Array<string | number> = ['POST /upload/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n'];
    for (let i = 0; i < 40; i++) chunks.push(100, 'x');
    const reply = await rawExchange(port, chunks, 3000);
    expect([reply.closed, reply.statuses]).toEqual([true, [408]]);
    // Past the body timeout many times over: cut by the whole-request timeout, not the body one.
    expect(reply.ms).toBeGreaterThanOrEqual(1400);
    expect(reply.ms).toBeLessThan(2600);
    await until(() => lastAccess(gw).path === '/upload/slow');
    expect(lastAccess(gw).error).toBe('request_timeout');
  });

  it('also closes a stalled body of a request no route matched (answered 404 first)', async () => {
    const reply = await rawExchange(port, ['POST /nowhere HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc'], 3000);
    expect([reply.closed, reply.statuses]).toEqual([true, [404]]);
    expect(reply.ms).toBeLessThan(1200);
  });
});

describe('the connection limit', () => {
  it('closes connections over maxConnections at accept, counts them, and accepts again once one closes', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, maxConnections: 2 }],
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    const port = Number(new URL(gw.url).port);
    const open: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = connect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        open.push(s);
      }
      const over = await rawExchange(port, [get('/over')], 1500);
      expect([over.closed, over.statuses]).toEqual([true, []]);
      expect(gw.gateway.connectionsDropped('public')).toBe(1);
      const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      expect(metrics).toContain('edge_gateway_connections_dropped_total{listener="public"} 1\n');
      expect(gw.logs.some((l) => l.msg === 'connection limit reached: new connections are closed')).toBe(true);
      open.pop()!.destroy();
      const server = (gw.gateway as unknown as { servers: Map<string, { _connections: number }> }).servers.get('public')!;
      await until(() => server._connections < 2);
      expect((await rawExchange(port, [get('/again')], 1500)).statuses).toEqual([200]);
      expect(upstream.requests.map((r) => r.url)).toContain('/again');
      expect(upstream.requests.map((r) => r.url)).not.toContain('/over');
    } finally {
      for (const s of open) s.destroy();
      await gw.close();
      await upstream.close();
    }
  });
});

describe('the body watch of a request', () => {
  it('lets its request go once the body has ended, instead of holding it until its next tick', async () => {
    const watches: Array<InstanceType<typeof BodyWatch>> = [];
    const server = createServer((req, res) => {
      const watch = new BodyWatch(req, null, { headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, bodyTimeoutMs: 60_000, idleTimeoutMs: 5_000 });
      watches.push(watch);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(url, { method: 'POST', body: 'x'.repeat(10_000) })).status).toBe(200);
    // Cleared at once: a live timer (one period, 15 s here) would keep the request, and whatever holds it, alive.
    expect(watches.map((w) => (w as unknown as { timer: { _destroyed: boolean } }).timer._destroyed)).toEqual([true]);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
