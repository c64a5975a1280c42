/**
 * Edge functions through a real gateway: componentize-js components in worker threads, real
 * sockets, a real upstream for their outgoing requests, the shipped filters around them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { ENV, FETCH, FUNCTION_CACHE, HELLO, MISBEHAVE } from '../helpers/functions.js';

const metric = async (gw: TestGateway, line: string): Promise<number> => {
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found === undefined ? 0 : Number(found.slice(line.length).trim());
};

describe('edge functions', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      modules: { cacheDir: FUNCTION_CACHE },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, { name: 'other', endpoints: [upstream.url] }],
      plugins: [
        { name: 'stamp', module: 'filters/dist/headers.wasm', configuration: { request: { set: { 'x-request-tag': 'from-filter' } }, response: { set: { 'x-served-by': 'edge-gateway' } } } },
        { name: 'api-key', module: 'filters/dist/api-key.wasm', rootId: 'api-key', configuration: { keys: [{ name: 'demo', sha256: 'c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c' }], header: 'x-api-key' } },
      ],
      functions: [
        { name: 'hello', component: HELLO },
        { name: 'fetch', component: FETCH, allowedHosts: ['backend'] },
        { name: 'env', component: ENV, environment: { GREETING: 'hi', REGION: 'edge-1' } },
        { name: 'misbehave', component: MISBEHAVE, instances: 1, allowedHosts: ['backend'], limits: { timeoutMs: 2000, memoryMb: 48 } },
      ],
      routes: [
        { name: 'stamped', match: { pathPrefix: '/fn/stamped' }, function: 'hello', filters: ['stamp'] },
        { name: 'locked', match: { pathPrefix: '/fn/locked' }, function: 'hello', filters: ['api-key'] },
        { name: 'hello', match: { pathPrefix: '/fn/hello' }, function: 'hello' },
        { name: 'fetch', match: { pathPrefix: '/fn/fetch' }, function: 'fetch' },
        { name: 'env', match: { pathPrefix: '/fn/env' }, function: 'env' },
        { name: 'misbehave', match: { pathPrefix: '/fn/misbehave' }, function: 'misbehave' },
        { name: 'api', match: { pathPrefix: '/' }, cluster: 'backend' },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('answers with the function\'s status, headers and streamed body', async () => {
    const res = await request(`${gw.url}/fn/hello/there?status=201`, { headers: { 'x-request-tag': 'abc' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-function']).toBe('hello');
    expect(res.headers['x-echo-tag']).toBe('abc');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(await res.body.text()).toBe('hello from /fn/hello/there\n');
  });

  it('hands the function the request body', async () => {
    const res = await request(`${gw.url}/fn/hello`, { method: 'POST', body: 'payload bytes' });
    expect(await res.body.text()).toBe('echo: payload bytes');
  });

  it('answers 413 for a request body over the route\'s limit, without running the function', async () => {
    const before = await metric(gw, 'edge_gateway_function_requests_total{function="hello",result="ok"}');
    const res = await request(`${gw.url}/fn/hello`, { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 0x61) });
    expect(res.statusCode).toBe(413);
    await res.body.dump();
    expect(await metric(gw, 'edge_gateway_function_requests_total{function="hello",result="ok"}')).toBe(before);
  });

  it('closes a WebSocket upgrade to a function\'s route (nothing to tunnel to) and keeps serving', async () => {
    const { port } = new URL(gw.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET /fn/hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    let received = '';
    socket.on('data', (d: Buffer) => { received += d.toString('latin1'); });
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(received).not.toContain('101');
    expect(gw.logs.some((l) => l.access === true && l.error === 'upgrade_to_function')).toBe(true);
    expect((await request(`${gw.url}/fn/hello`)).statusCode).toBe(200);
  });

  it('answers 503 when a function cannot make its response (a body with 204 or 304), and keeps serving', async () => {
    // StarlingMonkey refuses a body with a null-body status: the function ends without a response.
    for (const status of [204, 304]) {
      const res = await request(`${gw.url}/fn/hello?status=${status}`);
      expect(res.statusCode).toBe(503);
      await res.body.dump();
    }
    expect((await request(`${gw.url}/fn/hello`)).statusCode).toBe(200);
  });

  it('runs the route\'s filters around the function: request header added, response header added', async () => {
    const res = await request(`${gw.url}/fn/stamped`);
    expect(res.headers['x-echo-tag']).toBe('from-filter');
    expect(res.headers['x-served-by']).toBe('edge-gateway');
    await res.body.dump();
  });

  it('does not run the function when a filter answers with a local reply', async () => {
    const before = await metric(gw, 'edge_gateway_function_requests_total{function="hello",result="ok"}');
    const refused = await request(`${gw.url}/fn/locked`);
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
    expect(await metric(gw, 'edge_gateway_function_requests_total{function="hello",result="ok"}')).toBe(before);
    const allowed = await request(`${gw.url}/fn/locked`, { headers: { 'x-api-key': 'demo-key' } });
    expect(allowed.statusCode).toBe(200);
    await allowed.body.dump();
    expect(await metric(gw, 'edge_gateway_function_requests_total{function="hello",result="ok"}')).toBe(before + 1);
  });

  it('lets a function call a cluster it is allowed, through the cluster\'s pool', async () => {
    const res = await request(`${gw.url}/fn/fetch/items/7`);
    const answer = await res.body.json() as { upstreamStatus: number; upstreamBody: string };
    expect(res.statusCode).toBe(200);
    expect(answer.upstreamStatus).toBe(200);
    expect(JSON.parse(answer.upstreamBody).url).toBe('/items/7');
    expect(upstream.requests.at(-1)!.url).toBe('/items/7');
  });

  it('refuses outgoing requests to a cluster not allowed and to any other host', async () => {
    const seen = upstream.requests.length;
    for (const host of ['other', 'example.com', '127.0.0.1']) {
      const res = await request(`${gw.url}/fn/fetch?host=${host}`);
      expect(res.statusCode, host).toBe(502);
      expect((await res.body.json() as { error: string }).error).toMatch(/error/i);
    }
    expect(upstream.requests.length).toBe(seen);
  });

  it('gives a function its configured environment and nothing of the gateway\'s', async () => {
    const res = await request(`${gw.url}/fn/env`);
    expect(await res.body.json()).toEqual({ GREETING: 'hi', REGION: 'edge-1' });
  });

  it('answers 504 for a function over its time budget, and serves the next request on a new instance', async () => {
    const res = await request(`${gw.url}/fn/misbehave/loop`);
    expect(res.statusCode).toBe(504);
    await res.body.dump();
    expect(gw.logs.some((l) => l.access === true && l.error === 'GW_ERR_FUNCTION_TIMEOUT')).toBe(true);
    const next = await request(`${gw.url}/fn/misbehave/ok`);
    expect(next.statusCode).toBe(200);
    expect(await next.body.text()).toBe('ok\n');
  });

  it('answers 503 for a function that runs out of its memory cap, and others are unaffected', async () => {
    const res = await request(`${gw.url}/fn/misbehave/grow`);
    expect(res.statusCode).toBe(503);
    await res.body.dump();
    const [again, other] = await Promise.all([request(`${gw.url}/fn/misbehave/ok`), request(`${gw.url}/fn/hello`)]);
    expect(again.statusCode).toBe(200);
    expect(other.statusCode).toBe(200);
    await Promise.all([again.body.dump(), other.body.dump()]);
  });

  it('puts an instance back to its start-up state after each request: nothing a request leaves reaches the next', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await request(`${gw.url}/fn/misbehave/count`);
      expect(await res.body.text()).toBe('1\n');
    }
    // Served by one instance, restored each time rather than made anew.
    expect(await metric(gw, 'edge_gateway_function_requests_total{function="misbehave",result="ok"}')).toBeGreaterThanOrEqual(3);
  });

  it('keeps a guest that prints in a loop to a bounded number of log lines per request', async () => {
    const before = gw.logs.length;
    const res = await request(`${gw.url}/fn/misbehave/spam`);
    expect(await res.body.text()).toBe('spammed\n');
    await new Promise((r) => setTimeout(r, 100));
    const lines = gw.logs.slice(before).filter((l) => l.function === 'misbehave' && l.stream === 'stdout');
    expect(lines).toHaveLength(101);
    expect(lines.at(-1)!.msg).toBe('… further output of this request dropped (over 100 lines)');
  });

  it('refuses a guest\'s outgoing requests past 64 in flight, and the others pass', async () => {
    const seen = upstream.requests.length;
    const res = await request(`${gw.url}/fn/misbehave/fan?n=100`);
    expect(await res.body.json()).toEqual({ ok: 64, failed: 36 });
    expect(upstream.requests.length - seen).toBe(64);
  });

  it('waits on a guest timer without holding the gateway', async () => {
    const slow = request(`${gw.url}/fn/misbehave/sleep?ms=200`);
    const started = performance.now();
    const quick = await request(`${gw.url}/fn/hello`);
    await quick.body.dump();
    expect(performance.now() - started).toBeLessThan(150);
    const res = await slow;
    expect(await res.body.text()).toBe('slept 200\n');
  });

  it('warns when making an instance takes over 5 ms (a thread\'s first instance does: jco\'s bindings run cold)', () => {
    expect(gw.logs.some((l) => l.level === 'warn' && l.msg === 'function hello: making an instance ready took over 5 ms (off the request path)')).toBe(true);
  });

  it('exports instantiation time, cold starts, requests and instances', async () => {
    expect(await metric(gw, 'edge_gateway_function_instantiate_seconds_count{function="hello"}')).toBeGreaterThan(0);
    expect(await metric(gw, 'edge_gateway_function_cold_start_seconds_count{function="hello"}')).toBeGreaterThan(0);
    expect(await metric(gw, 'edge_gateway_function_instances{function="hello",state="ready"}')).toBeGreaterThan(0);
    expect(await metric(gw, 'edge_gateway_function_requests_total{function="misbehave",result="timeout"}')).toBe(1);
  });
});
