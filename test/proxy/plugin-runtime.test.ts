import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { Guest, send, type Callback } from '../helpers/guests.js';
import { startHttpServer } from '../helpers/http-callouts.js';

/** Stamps requests with x-filtered: yes, and traps (`unreachable`) on paths starting with /boom. */
function boomFilter(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `
        (if (call $path_is ${g.lit('/boom')}) (then unreachable))
        (call $add_header (i32.const 0) ${g.lit('x-filtered')} ${g.lit('yes')})
        (i32.const 0)`,
    },
  });
}

/** Traps in `callback` (also exporting the other stream callbacks, which continue). */
function trapIn(callback: Callback): string {
  const g = new Guest();
  const on: Partial<Record<Callback, string | true>> = {
    proxy_on_request_headers: true, proxy_on_request_body: true, proxy_on_response_headers: true,
    proxy_on_response_body: true, proxy_on_response_trailers: true,
  };
  on[callback] = 'unreachable';
  return g.build({ log: false, on });
}

/** Calls cluster "auth" from on_request_headers and pauses; the answer traps. */
function trapInCalloutAnswer(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `
        (drop (call $proxy_http_call ${g.lit('auth')} ${g.pairs([[':method', 'GET'], [':path', '/'], [':authority', 'auth']])}
          ${g.lit('')} ${g.lit('')} (i32.const 5000) (i32.const 0x18)))
        (i32.const 1)`,
      proxy_on_http_call_response: 'unreachable',
    },
  });
}

interface PluginInfo { name: string; healthy: boolean; reloads: number; failure: string | null }

describe('failure policies', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(wat: string, failurePolicy: string, extraClusters: Array<Record<string, unknown>> = []): Promise<{ gw: TestGateway; upstream: Upstream }> {
    const upstream = await startUpstream((req, res) => {
      if (req.url === '/trailers') {
        res.writeHead(200, { trailer: 'x-t' });
        res.write('body');
        res.addTrailers({ 'x-t': '1' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 8 });
      res.end('upstream');
    });
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, ...extraClusters],
      plugins: [{ name: 'fragile', module: wasmFile(wat, 'fragile'), failurePolicy }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['fragile'] }],
    });
    cleanup.push(gw.close);
    return { gw, upstream };
  }

  async function plugin(gw: TestGateway): Promise<PluginInfo> {
    const res = await fetch(`${gw.adminUrl}/plugins`);
    return ((await res.json()) as PluginInfo[]).find((p) => p.name === 'fragile')!;
  }

  it('closed: answers 503 for the request that trapped and for every later request', async () => {
    const { gw, upstream } = await setup(boomFilter(), 'closed');
    const ok = await send(`${gw.url}/ok`);
    expect(ok.status).toBe(200);
    const boom = await send(`${gw.url}/boom`);
    expect(boom.status).toBe(503);
    // Envoy's wasm_fail_stream reply: empty, the filter's name only in the access log.
    expect(boom.headers['content-length']).toBe('0');
    expect(boom.headers['content-type']).toBeUndefined();
    expect(boom.body.toString()).toBe('');
    const later = await send(`${gw.url}/ok`);
    expect(later.status).toBe(503);
    expect(later.body.toString()).toBe('');
    expect(upstream.requests.map((r) => r.url)).toEqual(['/ok']);
    const info = await plugin(gw);
    expect(info.healthy).toBe(false);
    expect(info.reloads).toBe(0);
    expect(info.failure).toMatch(/^trap: unreachable/);
    const access = gw.logs.filter((l) => l.access === true);
    expect(access.map((l) => [l.status, l.failedFilter, l.error])).toEqual([
      [200, undefined, undefined], [503, 'fragile', 'wasm_fail_stream'], [503, 'fragile', 'wasm_fail_stream'],
    ]);
  });

  it('open: skips the filter on the request that trapped and leaves it out of later requests', async () => {
    const { gw, upstream } = await setup(boomFilter(), 'open');
    expect((await send(`${gw.url}/ok`)).status).toBe(200);
    const boom = await send(`${gw.url}/boom`);
    expect(boom.status).toBe(200);
    expect(boom.body.toString()).toBe('upstream');
    expect((await send(`${gw.url}/after`)).status).toBe(200);
    expect(upstream.requests.map((r) => [r.url, r.headers['x-filtered']])).toEqual([['/ok', 'yes'], ['/boom', undefined], ['/after', undefined]]);
    expect((await plugin(gw)).healthy).toBe(false);
  });

  it('reload: answers 503 for the request that trapped and serves the next one from a fresh VM, then backs off', async () => {
    const { gw, upstream } = await setup(boomFilter(), 'reload');
    expect((await send(`${gw.url}/boom`)).status).toBe(503);
    // The first reload is immediate.
    const next = await send(`${gw.url}/ok`);
    expect(next.status).toBe(200);
    expect(upstream.requests.map((r) => [r.url, r.headers['x-filtered']])).toEqual([['/ok', 'yes']]);
    expect(await plugin(gw)).toMatchObject({ healthy: true, reloads: 1, failure: null });
    // A second failure within a minute waits 1 s before the next reload.
    expect((await send(`${gw.url}/boom`)).status).toBe(503);
    const failedAt = Date.now();
    expect((await send(`${gw.url}/ok`)).status).toBe(503);
    let status = 503;
    while (status === 503 && Date.now() - failedAt < 3000) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await send(`${gw.url}/ok`)).status;
    }
    expect(status).toBe(200);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(1000);
    expect(await plugin(gw)).toMatchObject({ healthy: true, reloads: 2, failure: null });
  });

  describe('a failing filter never hangs the client', () => {
    const cases: Array<[Callback, string, number | 'reset']> = [
      ['proxy_on_request_headers', '/r', 503],
      ['proxy_on_request_body', '/r', 503],
      ['proxy_on_response_headers', '/r', 503],
      ['proxy_on_response_body', '/r', 503],
      // The head is on its way when trailers arrive: the only answer left is a reset.
      ['proxy_on_response_trailers', '/trailers', 'reset'],
    ];
    for (const [callback, path, expected] of cases) {
      it(`closed: a trap in ${callback} answers ${expected}`, async () => {
        const { gw } = await setup(trapIn(callback), 'closed');
        const started = Date.now();
        const outcome = await send(`${gw.url}${path}`, { method: 'POST', body: ['some body'] }).then((r) => r.status, () => 'reset');
        expect(outcome).toBe(expected);
        expect(Date.now() - started).toBeLessThan(2000);
      });
    }

    it('open: a trap in proxy_on_response_headers lets the upstream response through', async () => {
      const { gw } = await setup(trapIn('proxy_on_response_headers'), 'open');
      const reply = await send(`${gw.url}/r`);
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('upstream');
    });

    for (const [policy, expected] of [['closed', 503], ['open', 200]] as const) {
      it(`${policy}: a trap in the callout answer of a paused stream answers ${expected}`, async () => {
        const auth = await startHttpServer((_req, res) => res.end('ok'));
        cleanup.push(auth.close);
        const { gw } = await setup(trapInCalloutAnswer(), policy, [{ name: 'auth', endpoints: [auth.url] }]);
        const started = Date.now();
        const reply = await send(`${gw.url}/r`);
        expect(reply.status).toBe(expected);
        expect(Date.now() - started).toBeLessThan(2000);
      });
    }
  });
});

describe('allowedHostcalls', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  /** The shipped deny filter imports proxy_get_header_map_value and proxy_send_local_response. */
  const gatewayWith = async (allowedHostcalls?: string[]): Promise<TestGateway> => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny', module: 'filters/dist/deny.wasm', ...(allowedHostcalls ? { allowedHostcalls } : {}) }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['deny'] }],
    });
    cleanup.push(gw.close);
    return gw;
  };

  it('starts a plugin whose list holds every hostcall its module imports, and the filter works', async () => {
    const gw = await gatewayWith(['proxy_get_header_map_value', 'proxy_send_local_response', 'proxy_log']);
    expect((await send(`${gw.url}/admin/x`)).status).toBe(403);
    expect((await send(`${gw.url}/ok`)).status).toBe(200);
  });

  it('refuses to start a plugin whose module imports a hostcall outside its list, naming the module and the hostcall', async () => {
    await expect(gatewayWith(['proxy_get_header_map_value'])).rejects.toMatchObject({
      code: 'GW_ERR_ABI_CAPABILITY',
      failures: [{ plugin: 'deny', error: expect.objectContaining({
        code: 'GW_ERR_ABI_CAPABILITY',
        message: expect.stringMatching(/^plugin deny: module .*deny\.wasm[\s\S]*does not list: proxy_send_local_response$/),
      }) }],
    });
  });
});
