/**
 * A function's canary: a second component for an exact share of requests, for requests a header
 * names, each pool measured on its own, rolled back by itself when it fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ENV, FUNCTION_CACHE, HELLO, MISBEHAVE } from '../helpers/functions.js';

const TOKEN = 'function-canary-test-token';

describe('the canary of an edge function', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({
      admin: { address: '127.0.0.1', port: 0, token: TOKEN },
      modules: { cacheDir: FUNCTION_CACHE },
      functions: [{
        name: 'hello', component: HELLO, environment: { VERSION: 'canary' },
        canary: { component: ENV, percent: 25, match: { header: { name: 'x-canary', exact: 'yes' } } },
      }],
      routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  const answer = async (headers: Record<string, string> = {}): Promise<string> => (await request(`${gw.url}/x`, { headers })).body.text();

  it('sends exactly its share of requests to the canary\'s component', async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 12; i++) bodies.push(await answer());
    expect(bodies.filter((b) => b === '{"VERSION":"canary"}')).toHaveLength(3);
    expect(bodies.filter((b) => b === 'hello from /x\n')).toHaveLength(9);
  });

  it('sends every request the header names to the canary', async () => {
    for (let i = 0; i < 4; i++) expect(await answer({ 'x-canary': 'yes' })).toBe('{"VERSION":"canary"}');
  });

  it('reports the canary apart in /functions and /metrics', async () => {
    const listed = await (await request(`${gw.adminUrl}/functions`)).body.json() as Array<{ canary: { percent: number } | null }>;
    expect(listed[0]!.canary).toEqual(expect.objectContaining({ percent: 25 }));
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(text).toContain('edge_gateway_function_requests_total{function="hello:canary",result="ok"} 7');
    expect(text).toContain('edge_gateway_function_requests_total{function="hello",result="ok"} 9');
  });

  const change = (method: string, path: string, body?: object) => request(`${gw.adminUrl}/functions/hello/${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  });

  it('moves the canary\'s share, and promotes it to be the function\'s component, through the admin API', async () => {
    const none = await change('PATCH', 'canary', { percent: 0 });
    expect(none.statusCode).toBe(200);
    await none.body.dump();
    for (let i = 0; i < 8; i++) expect(await answer()).toBe('hello from /x\n');
    const promoted = await change('POST', 'promote');
    expect(promoted.statusCode).toBe(200);
    expect(await promoted.body.json()).toMatchObject({ source: ENV, canary: null });
    for (let i = 0; i < 4; i++) expect(await answer()).toBe('{"VERSION":"canary"}');
    const again = await change('POST', 'promote');
    expect(again.statusCode).toBe(400);
    expect(await again.body.json()).toMatchObject({ error: 'GW_ERR_PLUGIN_CHANGE' });
  });
});

describe('a function canary that fails more than the first component', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({
      modules: { cacheDir: FUNCTION_CACHE },
      functions: [{
        name: 'hello', component: HELLO,
        canary: { component: MISBEHAVE, percent: 50, rollback: { windowMs: 400, minStreams: 4, margin: 0.2 } },
      }],
      routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('is rolled back by itself: every request then goes to the first component', async () => {
    const rolledBack = (): boolean => gw.logs.some((l) => typeof l.msg === 'string'
      && /^function hello: canary rolled back: the canary failed 100\.0% of \d+ requests against 0\.0%/.test(l.msg));
    // Half go to the canary, which fails each; it is judged every 400 ms. Bounded: a busy machine
    // may need a few windows to put 4 canary requests in one.
    const failed: number[] = [];
    for (let i = 0; i < 200 && !rolledBack(); i++) {
      const res = await request(`${gw.url}/throw`);
      if (res.statusCode >= 500) failed.push(res.statusCode);
      await res.body.dump();
    }
    expect(rolledBack()).toBe(true);
    expect(failed.length).toBeGreaterThanOrEqual(4);
    expect(failed.every((s) => s === 503)).toBe(true);
    for (let i = 0; i < 6; i++) {
      const res = await request(`${gw.url}/throw`);
      expect(await res.body.text()).toBe('hello from /throw\n');
    }
    const listed = await (await request(`${gw.adminUrl}/functions`)).body.json() as Array<{ canary: unknown }>;
    expect(listed[0]!.canary).toBeNull();
  });
});

describe('a function canary with steps', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({
      modules: { cacheDir: FUNCTION_CACHE },
      functions: [{ name: 'hello', component: HELLO, canary: { component: ENV, steps: [0, 50, 100], holdMs: 300 } }],
      routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('starts at its first step, moves on after each hold and is promoted at 100', async () => {
    const seen: string[] = [];
    const logged = (text: string): boolean => gw.logs.some((l) => l.msg === text);
    for (let i = 0; i < 400 && !logged('function hello: canary promoted'); i++) {
      seen.push(await (await request(`${gw.url}/s`)).body.text());
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(logged('function hello: canary at 50%')).toBe(true);
    expect(logged('function hello: canary promoted')).toBe(true);
    expect(seen[0]).toBe('hello from /s\n');
    expect(seen).toContain('{}');
    for (let i = 0; i < 4; i++) expect(await (await request(`${gw.url}/s`)).body.text()).toBe('{}');
  });
});

