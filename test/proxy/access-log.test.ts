import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, startUpstream, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

const STAMP = readFileSync('filters/examples/stamp.wat', 'utf8');
const DENY = readFileSync('filters/examples/deny.wat', 'utf8');
const TRAP = guestWat({
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)`,
});

/** Spends 30 ms of wall time in on_response_headers (a busy loop on the host's clock). */
const SLOW_RESPONSE = guestWat({
  imports: `
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))`,
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (local $t0 i64)
    (drop (call $now (i32.const 64)))
    (local.set $t0 (i64.load (i32.const 64)))
    (loop $spin
      (drop (call $now (i32.const 64)))
      (br_if $spin (i64.lt_u (i64.sub (i64.load (i32.const 64)) (local.get $t0)) (i64.const 30000000))))
    (i32.const 0))`,
});

type Line = Record<string, unknown>;

const accessLines = (gw: TestGateway): Line[] => gw.logs.filter((l) => l.access === true);

async function until<T>(probe: () => T | undefined, what: string, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The access-log lines once there are `n` (a line is written when the server side has closed the exchange). */
const accessLogged = (gw: TestGateway, n: number): Promise<Line[]> =>
  until(() => { const l = accessLines(gw); return l.length >= n ? l : undefined; }, `${n} access-log lines`);

/** Splits off the fields that vary per run and checks their shape; returns the rest for an exact match. */
function fixed(line: Line, maxMs: number): Line {
  const { time, durationMs, client, host, userAgent, upstreamMs, filtersMs, ...rest } = line;
  expect(typeof time).toBe('string');
  expect(Number.isNaN(Date.parse(time as string))).toBe(false);
  expect(typeof durationMs).toBe('number');
  expect(durationMs as number).toBeGreaterThan(0);
  expect(durationMs as number).toBeLessThan(maxMs);
  // Who asked: always the test's loopback client; the host has the gateway's port.
  expect(client).toBe('127.0.0.1');
  if (host !== undefined) expect(host).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(userAgent === undefined || userAgent === null || typeof userAgent === 'string').toBe(true);
  // Timings, where the line has them (the test below checks them against the request's duration).
  for (const part of [upstreamMs, filtersMs]) if (part !== undefined && part !== null) expect(part as number).toBeGreaterThanOrEqual(0);
  return rest;
}

const BASE = { level: 'info', service: 'edge-gateway', access: true, msg: 'request' };

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A gateway in front of `upstream`, with the stamp filter on its one route. */
async function stamped<U extends { url: string; close(): Promise<void> }>(upstream: U): Promise<{ upstream: U; gw: TestGateway }> {
  cleanup.push(upstream.close);
  const gw = await startGateway({
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'stamp', module: wasmFile(STAMP, 'stamp'), configuration: 'v1' }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
  });
  cleanup.push(gw.close);
  return { upstream, gw };
}

describe('the access log', () => {
  it('writes one structured line per request with route, upstream, duration, bytes and request id', async () => {
    const { upstream, gw } = await stamped(await startUpstream());
    const t0 = performance.now();
    const ids = ['req-1', 'req-2', 'req-3', 'req-4'];
    const sizes = await Promise.all(ids.map(async (id) => {
      const res = await fetch(`${gw.url}/hello?n=${id}`, { headers: { 'x-request-id': id } });
      expect(res.status).toBe(200);
      return (await res.arrayBuffer()).byteLength;
    }));
    const elapsed = performance.now() - t0;
    const lines = await accessLogged(gw, ids.length);
    await new Promise((r) => setTimeout(r, 50));
    expect(accessLines(gw)).toHaveLength(ids.length);
    const byId = new Map(lines.map((l) => [l.requestId, l]));
    ids.forEach((id, k) => {
      expect(fixed(byId.get(id)!, elapsed + 1)).toEqual({
        ...BASE, method: 'GET', path: `/hello?n=${id}`, status: 200, route: 'all', upstream: upstream.url, attempts: 1,
        bytesIn: 0, bytesOut: sizes[k], requestId: id,
      });
    });
  });

  it('names the client, the host and the user agent, and times the upstream and the filters within the request', async () => {
    const { upstream, gw } = await stamped(await startUpstream((_req, res) => setTimeout(() => res.end('late'), 60)));
    // node:http, not fetch: fetch does not let a caller set Host.
    const body = await new Promise<string>((resolve, reject) => {
      request(`${gw.url}/who`, { headers: { 'user-agent': 'load-test/1.0', host: 'api.example.com' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve(text));
      }).on('error', reject).end();
    });
    expect(body).toBe('late');
    const [line] = await accessLogged(gw, 1);
    expect(line).toMatchObject({ level: 'info', client: '127.0.0.1', host: 'api.example.com', userAgent: 'load-test/1.0', upstream: upstream.url });
    // The upstream held the answer 60 ms: its time is most of the request's, the filter's a small part.
    expect(line.upstreamMs as number).toBeGreaterThanOrEqual(55);
    expect(line.upstreamMs as number).toBeLessThanOrEqual(line.durationMs as number);
    expect(line.filtersMs as number).toBeGreaterThan(0);
    expect(line.filtersMs as number).toBeLessThan(line.durationMs as number);
  });

  it('charges a local reply\'s response callbacks to their filters once, not also to the callback that sent it', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'slow', module: wasmFile(SLOW_RESPONSE, 'slow-response') }, { name: 'deny', module: wasmFile(DENY, 'deny') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['slow', 'deny'] }],
    });
    cleanup.push(gw.close);
    expect((await fetch(`${gw.url}/admin`)).status).toBe(403);
    const [line] = await accessLogged(gw, 1);
    // deny's reply walked slow's on_response_headers (30 ms) inside deny's on_request_headers.
    expect(line.filtersMs as number).toBeGreaterThanOrEqual(30);
    expect(line.filtersMs as number).toBeLessThanOrEqual(line.durationMs as number);
  });

  it('counts the request body in bytesIn, sized or chunked, and logs the request id the gateway generated', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    const sized = await fetch(`${gw.url}/upload`, { method: 'POST', body: 'hello world' });
    const sizedOut = (await sized.arrayBuffer()).byteLength;
    await accessLogged(gw, 1);
    // Chunked: two writes, no content-length.
    const chunkedOut = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/chunked`, { method: 'PUT' }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => { n += c.length; });
        res.on('end', () => resolve(n));
      });
      req.on('error', reject);
      req.write('a'.repeat(1000));
      req.end('b'.repeat(234));
    });
    const [first, second] = await accessLogged(gw, 2);
    expect(upstream.requests.map((r) => r.body.length)).toEqual([11, 1234]);
    expect(fixed(first, 5000)).toEqual({
      ...BASE, method: 'POST', path: '/upload', status: 200, route: 'all', upstream: upstream.url, attempts: 1,
      bytesIn: 11, bytesOut: sizedOut, requestId: upstream.requests[0].headers['x-request-id'],
    });
    expect(first.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(fixed(second, 5000)).toEqual({
      ...BASE, method: 'PUT', path: '/chunked', status: 200, route: 'all', upstream: upstream.url, attempts: 1,
      bytesIn: 1234, bytesOut: chunkedOut, requestId: upstream.requests[1].headers['x-request-id'],
    });
  });

  it('logs a request no route matched as a 404 with error route_not_found', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'api', match: { pathPrefix: '/api' }, cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    const res = await fetch(`${gw.url}/other`, { headers: { 'x-request-id': 'lost-1' } });
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('no route matched\n');
    const [line] = await accessLogged(gw, 1);
    expect(fixed(line, 5000)).toEqual({
      ...BASE, method: 'GET', path: '/other', status: 404, route: null, upstream: null,
      bytesIn: 0, bytesOut: 17, requestId: 'lost-1', error: 'route_not_found',
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('logs a 502 with the upstream and its error code, beside a warning naming the cluster', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const gw = await startGateway({
      clusters: [{ name: 'gone', endpoints: [dead] }],
      routes: [{ name: 'dead', cluster: 'gone' }],
    });
    cleanup.push(gw.close);
    const res = await fetch(`${gw.url}/x`, { headers: { 'x-request-id': 'r502' } });
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).toBe('upstream connect error or disconnect/reset before headers\n');
    const [line] = await accessLogged(gw, 1);
    expect(fixed(line, 5000)).toEqual({
      ...BASE, method: 'GET', path: '/x', status: 502, route: 'dead', upstream: dead, attempts: 1,
      bytesIn: 0, bytesOut: body.length, requestId: 'r502', error: 'ECONNREFUSED',
    });
    const warning = gw.logs.find((l) => l.msg === 'upstream error');
    expect(warning).toMatchObject({ level: 'warn', route: 'dead', cluster: 'gone', upstream: dead, code: 'ECONNREFUSED', path: '/x' });
  });

  it('logs a 504 when the upstream does not answer within the timeout', async () => {
    const upstream = await startUpstream(() => undefined);
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'slow', endpoints: [upstream.url], timeoutMs: 100 }],
      routes: [{ name: 'slow', cluster: 'slow' }],
    });
    cleanup.push(gw.close);
    const res = await fetch(`${gw.url}/wait`, { headers: { 'x-request-id': 'r504' } });
    expect(res.status).toBe(504);
    const body = await res.text();
    expect(body).toBe('upstream request timeout\n');
    const [line] = await accessLogged(gw, 1);
    const rest = fixed(line, 5000);
    expect(line.durationMs as number).toBeGreaterThanOrEqual(90);
    expect(rest).toEqual({
      ...BASE, method: 'GET', path: '/wait', status: 504, route: 'slow', upstream: upstream.url, attempts: 1,
      bytesIn: 0, bytesOut: body.length, requestId: 'r504', error: 'UND_ERR_HEADERS_TIMEOUT',
    });
  });

  it('names the filter that answered locally, and the one that failed', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny', module: wasmFile(DENY, 'deny') }, { name: 'trap', module: wasmFile(TRAP, 'trap') }],
      routes: [
        { name: 'guarded', match: { pathPrefix: '/admin' }, cluster: 'backend', filters: ['deny'] },
        { name: 'broken', cluster: 'backend', filters: ['trap'] },
      ],
    });
    cleanup.push(gw.close);
    const denied = await fetch(`${gw.url}/admin/users`, { headers: { 'x-request-id': 'd1' } });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toBe('forbidden by the deny filter\n');
    const [deniedLine] = await accessLogged(gw, 1);
    expect(fixed(deniedLine, 5000)).toEqual({
      ...BASE, method: 'GET', path: '/admin/users', status: 403, route: 'guarded', upstream: null, attempts: 0,
      bytesIn: 0, bytesOut: 29, requestId: 'd1', localReplyBy: 'deny',
    });

    const failed = await fetch(`${gw.url}/anything`, { headers: { 'x-request-id': 'f1' } });
    expect(failed.status).toBe(503);
    expect(await failed.text()).toBe('');
    const [, failedLine] = await accessLogged(gw, 2);
    expect(fixed(failedLine, 5000)).toEqual({
      ...BASE, method: 'GET', path: '/anything', status: 503, route: 'broken', upstream: null, attempts: 0,
      bytesIn: 0, bytesOut: 0, requestId: 'f1', failedFilter: 'trap', error: 'wasm_fail_stream',
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('logs status 0 and downstream_remote_disconnect for a client that leaves before the answer', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const upstream = await startUpstream((_req, res: ServerResponse) => { void held.then(() => res.end('too late\n')); });
    cleanup.push(async () => { release(); await upstream.close(); });
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    const req = request(`${gw.url}/leave`, { headers: { 'x-request-id': 'gone-1' } });
    req.on('error', () => undefined);
    req.end();
    await until(() => (upstream.requests.length === 1 ? true : undefined), 'the upstream to receive the request');
    req.destroy();
    const [line] = await accessLogged(gw, 1);
    expect(fixed(line, 5000)).toEqual({
      ...BASE, method: 'GET', path: '/leave', status: 0, route: 'all', upstream: upstream.url, attempts: 1,
      bytesIn: 0, bytesOut: 0, requestId: 'gone-1', error: 'downstream_remote_disconnect',
    });
  });
});
