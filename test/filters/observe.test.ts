/**
 * filters/observe end to end: a real gateway on port 0 runs filters/dist/observe.wasm in front of
 * a real upstream, requests get 200/302/404/503 answers on two routes, and the metrics the filter
 * defines are read back from the gateway's metrics endpoint (`wasmcustom_<name>`); every behaviour
 * of filters/observe/README.md is checked, configuration errors included.
 */
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { filterHarness, type FilterGateway, type UpstreamHandler } from '../helpers/filter-gateway.js';
import type { TestGateway } from '../helpers/gateway.js';
import { send, waitFor } from '../helpers/guests.js';
import { refusingUrl } from '../helpers/http-callouts.js';
import { wasmFile } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

const MODULE = 'filters/dist/observe.wasm';

/** Every sample of the exposition as `name{labels}` → value (labels as prom-client writes them). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('the observe filter', () => {
  const h = filterHarness(MODULE, 'observe');

  /** The upstream answers the status named by the last path segment (`/api/404`), after `?delay=ms`. */
  const byPath: UpstreamHandler = (req, res) => {
    const url = new URL(req.url!, 'http://x');
    const status = Number(url.pathname.split('/').pop()) || 200;
    const reply = (): void => {
      res.writeHead(status, { 'content-type': 'text/plain', ...(status === 302 ? { location: '/' } : {}) });
      res.end(`status ${status}\n`);
    };
    const delay = Number(url.searchParams.get('delay') ?? 0);
    if (delay > 0) setTimeout(reply, delay);
    else reply();
  };

  function setup(opts: { configuration?: unknown; routes?: Array<Record<string, unknown>>; plugins?: Array<Record<string, unknown>> } = {})
    : Promise<FilterGateway> {
    return h.start(opts.configuration, {
      handler: byPath,
      plugins: opts.plugins,
      routes: opts.routes ?? [
        { name: 'api', match: { pathPrefix: '/api' }, cluster: 'backend', filters: ['observe'] },
        { name: 'web', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['observe'] },
      ],
    });
  }

  async function scrape(gw: TestGateway): Promise<Map<string, number>> {
    const res = await fetch(`${gw.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    return parseMetrics(await res.text());
  }

  /** Scrapes until the filter's counters (names starting with `prefix`) add up to `total` (on_log runs after the reply). */
  async function scrapeWhenCounted(gw: TestGateway, total: number, prefix = 'wasmcustom_observe_requests_'): Promise<Map<string, number>> {
    let metrics = new Map<string, number>();
    let seen = -1;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      metrics = await scrape(gw);
      seen = [...metrics].filter(([k]) => k.startsWith(prefix)).reduce((sum, [, v]) => sum + v, 0);
      if (seen >= total) return metrics;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for ${total} requests under ${prefix} (saw ${seen})`);
  }

  /** The filter's series only: counter values and histogram counts, by name. */
  function observed(metrics: Map<string, number>, prefix = 'wasmcustom_observe_'): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of metrics) {
      if (!k.startsWith(prefix)) continue;
      if (k.includes('_request_duration_seconds_') && !k.includes('_count{')) continue;
      out[k] = v;
    }
    return out;
  }

  it('counts requests and records a latency sample per route and status class', async () => {
    const { gw } = await setup();
    const paths = ['/api/200', '/api/200', '/api/404', '/api/503', '/api/302', '/home/200', '/home/404', '/home/404', '/home/503', '/home/503', '/home/503'];
    for (const path of paths) expect((await send(`${gw.url}${path}`)).status).toBe(Number(path.split('/').pop()));
    const metrics = await scrapeWhenCounted(gw, paths.length);
    expect(observed(metrics)).toEqual({
      'wasmcustom_observe_requests_total{response_code_class="2xx",route="api"}': 2,
      'wasmcustom_observe_requests_total{response_code_class="3xx",route="api"}': 1,
      'wasmcustom_observe_requests_total{response_code_class="4xx",route="api"}': 1,
      'wasmcustom_observe_requests_total{response_code_class="5xx",route="api"}': 1,
      'wasmcustom_observe_requests_total{response_code_class="2xx",route="web"}': 1,
      'wasmcustom_observe_requests_total{response_code_class="4xx",route="web"}': 2,
      'wasmcustom_observe_requests_total{response_code_class="5xx",route="web"}': 3,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="2xx",route="api"}': 2,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="3xx",route="api"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="4xx",route="api"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="5xx",route="api"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="2xx",route="web"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="4xx",route="web"}': 2,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="5xx",route="web"}': 3,
    });
    // The same counts as the gateway's own request counter.
    expect(metrics.get('edge_gateway_requests_total{route="api",status="200"}')).toBe(2);
    expect(metrics.get('edge_gateway_requests_total{route="web",status="503"}')).toBe(3);
  });

  it('defines no metric before the first request of a route and class', async () => {
    const { gw } = await setup();
    expect(observed(await scrape(gw))).toEqual({});
    await send(`${gw.url}/api/200`);
    const metrics = await scrapeWhenCounted(gw, 1);
    expect(Object.keys(observed(metrics))).toEqual(['wasmcustom_observe_requests_total{response_code_class="2xx",route="api"}', 'wasmcustom_observe_request_duration_seconds_count{response_code_class="2xx",route="api"}']);
  });

  it('records the latency from the request headers to the end of the response, exported in seconds', async () => {
    const { gw } = await setup();
    await send(`${gw.url}/api/200?delay=150`);
    const metrics = await scrapeWhenCounted(gw, 1);
    const h = 'wasmcustom_observe_request_duration_seconds';
    const labels = 'response_code_class="2xx",route="api"';
    expect(metrics.get(`${h}_count{${labels}}`)).toBe(1);
    const sum = metrics.get(`${h}_sum{${labels}}`)!;
    expect(sum).toBeGreaterThanOrEqual(0.15);
    expect(sum).toBeLessThan(1);
    // Envoy's default buckets in seconds: the sample is above 100 ms and within 1 s.
    expect(metrics.get(`${h}_bucket{le="0.1",${labels}}`)).toBe(0);
    expect(metrics.get(`${h}_bucket{le="1",${labels}}`)).toBe(1);
  });

  it('uses the configured prefix', async () => {
    const { gw } = await setup({ configuration: { prefix: 'edge.obs' } });
    await send(`${gw.url}/api/404`);
    const metrics = await scrapeWhenCounted(gw, 1, 'wasmcustom_edge_obs_requests_');
    expect(observed(metrics, 'wasmcustom_edge_obs_')).toEqual({
      'wasmcustom_edge_obs_requests_total{response_code_class="4xx",route="api"}': 1,
      'wasmcustom_edge_obs_request_duration_seconds_count{response_code_class="4xx",route="api"}': 1,
    });
    expect(observed(metrics)).toEqual({});
  });

  it('turns dots and colons of route names into underscores in the route label', async () => {
    const { gw } = await setup({
      routes: [
        { name: 'v1.api:read', match: { pathPrefix: '/api' }, cluster: 'backend', filters: ['observe'] },
        { name: 'web-site', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['observe'] },
      ],
    });
    await send(`${gw.url}/api/200`);
    await send(`${gw.url}/x/200`);
    const metrics = await scrapeWhenCounted(gw, 2);
    expect(metrics.get('wasmcustom_observe_requests_total{response_code_class="2xx",route="v1_api_read"}')).toBe(1);
    expect(metrics.get('wasmcustom_observe_requests_total{response_code_class="2xx",route="web-site"}')).toBe(1);
  });

  it('counts a request an earlier filter answered, timing it from the request start', async () => {
    const { gw, upstream } = await setup({
      plugins: [{ name: 'deny', module: 'filters/dist/deny.wasm' }],
      routes: [{ name: 'api', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['deny', 'observe'] }],
    });
    const reply = await send(`${gw.url}/admin/x`);
    expect(reply.status).toBe(403);
    const metrics = await scrapeWhenCounted(gw, 1);
    expect(observed(metrics)).toEqual({
      'wasmcustom_observe_requests_total{response_code_class="4xx",route="api"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="4xx",route="api"}': 1,
    });
    expect(metrics.get('wasmcustom_observe_request_duration_seconds_sum{response_code_class="4xx",route="api"}')).toBeLessThan(1);
    expect(upstream.requests).toHaveLength(0);
  });

  it('counts the gateway\'s own answers, such as 502 for an unreachable upstream', async () => {
    const gw = await h.gateway({
      clusters: [{ name: 'dead', endpoints: [await refusingUrl()] }],
      plugins: [{ name: 'observe', module: MODULE }],
      routes: [{ name: 'gone', cluster: 'dead', filters: ['observe'] }],
    });
    expect((await send(`${gw.url}/x`)).status).toBe(502);
    const metrics = await scrapeWhenCounted(gw, 1);
    expect(observed(metrics)).toEqual({
      'wasmcustom_observe_requests_total{response_code_class="5xx",route="gone"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="5xx",route="gone"}': 1,
    });
  });

  it('counts a request whose client left before any response under the class none', async () => {
    const { gw, upstream } = await setup();
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${gw.url}/api/200?delay=300`, { agent: false });
      req.on('error', () => resolve());
      req.end();
      // Leave once the upstream has the request, long before it answers.
      waitFor(() => upstream.requests.length === 1, 'the upstream to get the request').then(() => req.destroy(), () => req.destroy());
    });
    const metrics = await scrapeWhenCounted(gw, 1);
    expect(observed(metrics)).toEqual({
      'wasmcustom_observe_requests_total{response_code_class="none",route="api"}': 1,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="none",route="api"}': 1,
    });
  });

  it('adds to the same metrics from two plugins with the same prefix', async () => {
    const { gw } = await setup({
      plugins: [{ name: 'observe-2', module: MODULE }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['observe', 'observe-2'] }],
    });
    await send(`${gw.url}/200`);
    const metrics = await scrapeWhenCounted(gw, 2);
    expect(observed(metrics)).toEqual({
      'wasmcustom_observe_requests_total{response_code_class="2xx",route="api"}': 2,
      'wasmcustom_observe_request_duration_seconds_count{response_code_class="2xx",route="api"}': 2,
    });
  });

  it('warns once and skips a metric the host refuses to define, leaving requests alone', async () => {
    // Another plugin holds wasmcustom_p_requests_total as a gauge: observe's counter of that name is refused.
    const squatter = wasmFile(guestWat({
      imports: '(import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))',
      body: `
  (data (i32.const 16) "p.requests_total")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $define (i32.const 1) (i32.const 16) (i32.const 16) (i32.const 128))))`,
    }), 'squatter');
    const { gw } = await setup({
      configuration: { prefix: 'p' },
      plugins: [{ name: 'squatter', module: squatter }],
      routes: [{ name: 'b', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['squatter', 'observe'] }],
    });
    for (let i = 0; i < 2; i++) expect((await send(`${gw.url}/second/200`)).status).toBe(200);
    const metrics = await scrapeWhenCounted(gw, 2, 'wasmcustom_p_request_duration_seconds_count');
    expect(metrics.get('wasmcustom_p_request_duration_seconds_count{response_code_class="2xx",route="b"}')).toBe(2);
    expect(metrics.get('wasmcustom_p_requests_total')).toBe(0); // the squatter's gauge, untouched
    const warnings = gw.logs.filter((l) => l.source === 'wasm' && l.plugin === 'observe' && String(l.msg).startsWith('observe: cannot define'));
    expect(warnings.map((l) => l.msg)).toEqual(['observe: cannot define metric route=.=b;.;response_code_class=.=2xx;.;p.requests: INTERNAL_FAILURE (it is not recorded)']);
  });

  describe('configuration errors refuse the plugin at load', () => {
    const cases: Array<[string, unknown, string]> = [
      ['text that is not JSON', '{"prefix": "x"', 'configuration is not valid JSON: unexpected end of input at line 1, column 15'],
      ['not an object', ['observe'], 'configuration must be a JSON object such as {"prefix":"observe"}, got an array'],
      ['an unknown key', { prefix: 'a', buckets: [1, 2] }, 'unknown key "buckets" (expected "prefix")'],
      ['a prefix that is not a string', { prefix: 7 }, '"prefix" must be a string such as "observe", got a number'],
      ['an empty prefix', { prefix: '' }, '"prefix" must be dot-separated names of letters, digits and _ (such as "observe" or "edge.observe"), got ""'],
      ['a prefix with a space', { prefix: 'my metrics' }, 'got "my metrics"'],
      ['a prefix with an empty segment', { prefix: 'edge..observe' }, 'got "edge..observe"'],
      ['a prefix ending with a dot', { prefix: 'observe.' }, 'got "observe."'],
    ];
    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(reason);
      });
    }
  });

  it('takes an empty configuration as the defaults', async () => {
    const { gw } = await setup({ configuration: ' ' });
    await send(`${gw.url}/api/200`);
    const metrics = await scrapeWhenCounted(gw, 1);
    expect(metrics.get('wasmcustom_observe_requests_total{response_code_class="2xx",route="api"}')).toBe(1);
  });
});
