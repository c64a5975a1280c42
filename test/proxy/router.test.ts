import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeSchema } from '../../gateway/config/schema.js';
import { Router, compileRoute, type RequestFacts } from '../../gateway/proxy/router.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';

function route(name: string, match: Record<string, unknown>): ReturnType<typeof compileRoute<string>> {
  return compileRoute(routeSchema.parse({ name, cluster: 'backend', match }), name);
}

function facts(over: Partial<Omit<RequestFacts, 'header'>> & { headers?: Record<string, string> } = {}): RequestFacts {
  const headers = over.headers ?? {};
  return {
    host: over.host ?? 'api.example.com',
    path: over.path ?? '/',
    method: over.method ?? 'GET',
    header: (name) => headers[name],
  };
}

function matches(match: Record<string, unknown>, req: RequestFacts): boolean {
  return route('r', match).matches(req);
}

describe('compileRoute', () => {
  it('matches every request when the match is empty', () => {
    expect(matches({}, facts({ host: 'anything', path: '/x/y', method: 'DELETE' }))).toBe(true);
  });

  it('matches an exact host case-insensitively and nothing else', () => {
    expect(matches({ host: 'API.Example.com' }, facts({ host: 'api.example.com' }))).toBe(true);
    expect(matches({ host: 'api.example.com' }, facts({ host: 'www.example.com' }))).toBe(false);
    expect(matches({ host: 'api.example.com' }, facts({ host: 'api.example.com.evil' }))).toBe(false);
  });

  it('matches "*.suffix" on any subdomain depth but not on the bare domain or a look-alike', () => {
    const m = { host: '*.example.com' };
    expect(matches(m, facts({ host: 'a.example.com' }))).toBe(true);
    expect(matches(m, facts({ host: 'a.b.example.com' }))).toBe(true);
    expect(matches(m, facts({ host: 'example.com' }))).toBe(false);
    expect(matches(m, facts({ host: 'badexample.com' }))).toBe(false);
    expect(matches(m, facts({ host: '.example.com' }))).toBe(false);
  });

  it('matches an exact path only when the whole path is equal', () => {
    expect(matches({ path: '/health' }, facts({ path: '/health' }))).toBe(true);
    expect(matches({ path: '/health' }, facts({ path: '/health/' }))).toBe(false);
    expect(matches({ path: '/health' }, facts({ path: '/Health' }))).toBe(false);
  });

  it('matches a path prefix as a plain string prefix, as Envoy does', () => {
    expect(matches({ pathPrefix: '/api' }, facts({ path: '/api' }))).toBe(true);
    expect(matches({ pathPrefix: '/api' }, facts({ path: '/api/users' }))).toBe(true);
    expect(matches({ pathPrefix: '/api' }, facts({ path: '/apix' }))).toBe(true);
    expect(matches({ pathPrefix: '/api' }, facts({ path: '/v1/api' }))).toBe(false);
    expect(matches({ pathPrefix: '/' }, facts({ path: '/anything' }))).toBe(true);
  });

  it('anchors a path regex at both ends, also around an alternation', () => {
    const m = { pathRegex: '/v[0-9]+/items' };
    expect(matches(m, facts({ path: '/v12/items' }))).toBe(true);
    expect(matches(m, facts({ path: '/x/v1/items' }))).toBe(false);
    expect(matches(m, facts({ path: '/v1/items/7' }))).toBe(false);
    const alt = { pathRegex: '/a|/b' };
    expect(matches(alt, facts({ path: '/a' }))).toBe(true);
    expect(matches(alt, facts({ path: '/b' }))).toBe(true);
    expect(matches(alt, facts({ path: '/ab' }))).toBe(false);
    expect(matches(alt, facts({ path: '/b/c' }))).toBe(false);
  });

  it('matches methods from the list, whatever their case in the config', () => {
    const m = { methods: ['get', 'POST'] };
    expect(matches(m, facts({ method: 'GET' }))).toBe(true);
    expect(matches(m, facts({ method: 'POST' }))).toBe(true);
    expect(matches(m, facts({ method: 'PUT' }))).toBe(false);
  });

  it('matches a header by exact value, by anchored regex, by presence and by absence', () => {
    const exact = { headers: [{ name: 'X-Tenant', exact: 'acme' }] };
    expect(matches(exact, facts({ headers: { 'x-tenant': 'acme' } }))).toBe(true);
    expect(matches(exact, facts({ headers: { 'x-tenant': 'acme2' } }))).toBe(false);
    expect(matches(exact, facts())).toBe(false);

    const regex = { headers: [{ name: 'x-version', regex: 'v[12]' }] };
    expect(matches(regex, facts({ headers: { 'x-version': 'v2' } }))).toBe(true);
    expect(matches(regex, facts({ headers: { 'x-version': 'v21' } }))).toBe(false);
    expect(matches(regex, facts({ headers: { 'x-version': 'av1' } }))).toBe(false);
    expect(matches(regex, facts())).toBe(false);

    const present = { headers: [{ name: 'authorization', present: true }] };
    expect(matches(present, facts({ headers: { authorization: '' } }))).toBe(true);
    expect(matches(present, facts())).toBe(false);

    const absent = { headers: [{ name: 'authorization', present: false }] };
    expect(matches(absent, facts())).toBe(true);
    expect(matches(absent, facts({ headers: { authorization: 'Bearer x' } }))).toBe(false);
  });

  it('requires every condition of a match to hold', () => {
    const m = { host: '*.example.com', pathPrefix: '/api', methods: ['GET'], headers: [{ name: 'x-a', exact: '1' }] };
    const ok = { host: 'eu.example.com', path: '/api/x', method: 'GET', headers: { 'x-a': '1' } };
    expect(matches(m, facts(ok))).toBe(true);
    expect(matches(m, facts({ ...ok, host: 'eu.example.org' }))).toBe(false);
    expect(matches(m, facts({ ...ok, path: '/web' }))).toBe(false);
    expect(matches(m, facts({ ...ok, method: 'POST' }))).toBe(false);
    expect(matches(m, facts({ ...ok, headers: { 'x-a': '2' } }))).toBe(false);
  });

  it('keeps the route config and target it was compiled with', () => {
    const compiled = route('api', { pathPrefix: '/api' });
    expect(compiled.target).toBe('api');
    expect(compiled.config.name).toBe('api');
    expect(compiled.config.bodyLimitBytes).toBe(1024 * 1024);
  });
});

describe('Router', () => {
  it('returns the first matching route in config order', () => {
    const router = new Router([
      route('exact', { path: '/api/health' }),
      route('api', { pathPrefix: '/api' }),
      route('all', {}),
    ]);
    expect(router.match(facts({ path: '/api/health' }))?.target).toBe('exact');
    expect(router.match(facts({ path: '/api/users' }))?.target).toBe('api');
    expect(router.match(facts({ path: '/web' }))?.target).toBe('all');
  });

  it('never reaches a later route shadowed by an earlier catch-all', () => {
    const router = new Router([route('all', {}), route('api', { pathPrefix: '/api' })]);
    expect(router.match(facts({ path: '/api/users' }))?.target).toBe('all');
  });

  it('returns undefined when no route matches', () => {
    const router = new Router([route('api', { pathPrefix: '/api' }), route('admin', { host: 'admin.local' })]);
    expect(router.match(facts({ path: '/web' }))).toBeUndefined();
    expect(new Router<string>([]).match(facts())).toBeUndefined();
  });
});

describe('regex routes on hostile input', () => {
  // `(a+)+` against "aaa…a!" is the textbook catastrophic backtrack: a backtracking engine tries
  // every way to split the a's (2^n) before it gives up; at 25 characters V8's RegExp takes
  // seconds. RE2 is linear in the input.
  let upstream: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [
        { name: 'by-path', cluster: 'backend', match: { pathRegex: '/(a+)+' } },
        { name: 'by-header', cluster: 'backend', match: { headers: [{ name: 'x-name', regex: '(a+)+' }] } },
      ],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  /**
   * Sends the requests one after another while the event loop's delay is sampled every 5 ms, and
   * returns their statuses and the longest the loop was blocked. The gateway runs in this process,
   * so a match that blocks it shows up here as lag, whatever the wall time of a request.
   */
  async function lagOf(requests: Array<{ path: string; headers?: Record<string, string> }>): Promise<{ statuses: number[]; maxLagMs: number }> {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const statuses: number[] = [];
    for (const r of requests) statuses.push((await fetch(gw.url + r.path, { headers: r.headers })).status);
    delay.disable();
    return { statuses, maxLagMs: delay.max / 1e6 };
  }

  it('answers a path built to make (a+)+ backtrack, short and 8 KiB long, without blocking the event loop', async () => {
    // The short one first: a backtracking engine fails this check after seconds instead of hanging.
    const short = await lagOf([{ path: `/${'a'.repeat(25)}!` }]);
    expect(short.statuses).toEqual([404]);
    expect(short.maxLagMs).toBeLessThan(250);
    const long = await lagOf([{ path: `/${'a'.repeat(8192)}!` }, { path: `/${'a'.repeat(8192)}` }]);
    expect(long.statuses).toEqual([404, 200]);
    expect(long.maxLagMs).toBeLessThan(250);
  });

  it('answers a header value built to make (a+)+ backtrack without blocking the event loop', async () => {
    const short = await lagOf([{ path: '/x', headers: { 'x-name': `${'a'.repeat(25)}!` } }]);
    expect(short.statuses).toEqual([404]);
    expect(short.maxLagMs).toBeLessThan(250);
    const long = await lagOf([{ path: '/x', headers: { 'x-name': `${'a'.repeat(8000)}!` } }, { path: '/x', headers: { 'x-name': 'a'.repeat(8000) } }]);
    expect(long.statuses).toEqual([404, 200]);
    expect(long.maxLagMs).toBeLessThan(250);
  });
});
