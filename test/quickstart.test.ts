/**
 * The README's quick start: config/gateway.yaml with the demo upstream answers the curl examples.
 * Ports are moved to 0 so the test runs beside anything else on the machine.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startDemoUpstream } from '../gateway/demo-upstream.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { get, rawExchange } from './helpers/raw-http.js';

describe('the quick-start configuration', () => {
  let gw: TestGateway;
  let upstream: Server;
  beforeAll(async () => {
    const demo = await startDemoUpstream(0);
    upstream = demo.server;
    const doc = parse(readFileSync('config/gateway.yaml', 'utf8')) as Record<string, unknown> & { clusters: Array<{ endpoints: string[] }> };
    doc.clusters[0].endpoints = [`http://127.0.0.1:${demo.address.port}`];
    delete doc.listeners;
    delete doc.admin;
    gw = await startGateway(doc);
  });
  afterAll(async () => {
    await gw.close();
    upstream.close();
  });

  it('forwards /hello with the request header added and the response headers set', async () => {
    const res = await fetch(`${gw.url}/hello`, { headers: { 'x-client-id': 'headers-test' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-served-by')).toBe('edge-gateway');
    expect(res.headers.get('x-upstream')).toBeNull();
    expect(res.headers.get('x-ratelimit-limit')).toBe('20');
    const echo = await res.json() as { headers: Record<string, string> };
    expect(echo.headers['x-edge-gateway']).toBe('edge-1');
  });

  it('limits a client that names itself in x-client-id: 20 at once, then 429 with retry-after equal to x-ratelimit-reset', async () => {
    const replies: Response[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${gw.url}/hello`, { headers: { 'x-client-id': 'burst-test' } });
      await res.arrayBuffer();
      replies.push(res);
    }
    expect(replies.slice(0, 20).map((r) => r.status)).toEqual(Array(20).fill(200));
    // The 5 more arrive within far less than the 500 ms that 5 tokens take at 10/s.
    const refused = replies.find((r) => r.status === 429);
    expect(refused).toBeDefined();
    expect(refused!.headers.get('retry-after')).toBe('1');
    expect(refused!.headers.get('x-ratelimit-reset')).toBe('1');
  });

  it('lets a load test without a client id through: no 429 in 100 requests from one address', async () => {
    const statuses = await Promise.all(Array.from({ length: 100 }, async () => {
      const res = await fetch(`${gw.url}/hello`);
      await res.arrayBuffer();
      return res.status;
    }));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('answers /fn/hello from the hello edge function, through the route\'s filters', async () => {
    const res = await fetch(`${gw.url}/fn/hello`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-function')).toBe('hello');
    expect(res.headers.get('x-served-by')).toBe('edge-gateway');
    expect(await res.text()).toBe('hello from /fn/hello\n');
  });

  it('answers /admin… with the deny filter\'s 403', async () => {
    const res = await fetch(`${gw.url}/admin/users`);
    expect(res.status).toBe(403);
    expect(await res.text()).toBe('forbidden by the deny filter\n');
  });

  it('denies /admin and guards /private however the target is spelled, on raw sockets', async () => {
    const port = Number(new URL(gw.url).port);
    for (const target of ['http://edge.example/admin/users', '//admin', '/./admin', '/%61dmin', '/x/../admin', '/%2e%2e/admin/users']) {
      const reply = await rawExchange(port, [get(target)]);
      expect([target, reply.statuses]).toEqual([target, [403]]);
    }
    for (const target of ['http://edge.example/private/x', '//private/x', '/%70rivate/x', '/public/../private/x']) {
      const reply = await rawExchange(port, [get(target)]);
      expect([target, reply.statuses]).toEqual([target, [401]]);
    }
  });

  it('asks /private for an API key and forwards the key\'s name', async () => {
    const missing = await fetch(`${gw.url}/private/x`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: 'unauthorized', message: 'missing API key' });
    const ok = await fetch(`${gw.url}/private/x`, { headers: { 'x-api-key': 'demo-key' } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { headers: Record<string, string> }).headers['x-api-key-name']).toBe('demo');
  });

  it('answers a CORS preflight from the allowed origin and counts requests in filter metrics', async () => {
    const pre = await fetch(`${gw.url}/api`, {
      method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^wasmcustom_observe_requests_total\{response_code_class="2xx",route="api"\} [1-9]/m);
  });
});

describe('npm start on a built checkout', () => {
  it('rebuilds nothing when nothing changed: the gateway\'s JavaScript and every filter and function stay as they are', () => {
    const built = ['dist/gateway/cli.js', 'dist/gateway/gateway.js', ...readdirSync('filters/dist').filter((f) => f.endsWith('.wasm')).map((f) => `filters/dist/${f}`),
      ...readdirSync('filters/dist/functions').map((f) => `filters/dist/functions/${f}`)];
    const stamps = (): Record<string, number> => Object.fromEntries(built.map((f) => [f, statSync(f).mtimeMs]));
    // What `npm start` runs before it starts the gateway: once to be up to date with the sources
    // (a checkout edited since its last build), then again with nothing changed.
    const build = (): void => {
      const run = spawnSync('npm', ['run', 'build', '--silent'], { encoding: 'utf8', timeout: 120_000 });
      expect(run.status, run.stderr).toBe(0);
    };
    build();
    const before = stamps();
    build();
    expect(stamps()).toEqual(before);
  }, 250_000);
});
