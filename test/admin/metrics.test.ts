import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricType } from '../../gateway/abi/enums.js';
import { MAX_GUEST_METRICS } from '../../gateway/abi/limits.js';
import { GatewayMetrics } from '../../gateway/admin/metrics.js';
import { parseConfig } from '../../gateway/config/load.js';
import { startGateway, startUpstream, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { parseExposition, series, value, type Exposition } from '../helpers/exposition.js';
import { until } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

async function scrape(gw: TestGateway): Promise<Exposition> {
  const res = await fetch(`${gw.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await res.text());
}

/** Scrapes until `ready` holds (requests are counted when the server side has closed them). */
async function scrapeUntil(gw: TestGateway, ready: (e: Exposition) => boolean, ms = 3000): Promise<Exposition> {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = await scrape(gw);
    if (ready(e)) return e;
    if (Date.now() > deadline) throw new Error(`metrics not as expected after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const total = (e: Exposition, name: string): number => e.samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const STAMP = readFileSync('filters/examples/stamp.wat', 'utf8');
const DENY = readFileSync('filters/examples/deny.wat', 'utf8');
const TRAP = guestWat({
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)`,
});

/** Spends 20 ms of wall time in on_log (a busy loop on proxy_get_current_time_nanoseconds). */
const SLOW_LOG = guestWat({
  imports: `
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))`,
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_log") (param i32)
    (local $t0 i64)
    (drop (call $now (i32.const 64)))
    (local.set $t0 (i64.load (i32.const 64)))
    (loop $spin
      (drop (call $now (i32.const 64)))
      (br_if $spin (i64.lt_u (i64.sub (i64.load (i32.const 64)) (local.get $t0)) (i64.const 20000000)))))`,
});

/**
 * Defines a counter "my.requests-seen", a gauge "last_seen_x10" and a histogram "seen_x100" in
 * on_configure; on request n it adds 1 to the counter, sets the gauge to 10n and records 100n.
 */
const CUSTOM = guestWat({
  imports: `
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))`,
  body: `
  (global $n (mut i64) (i64.const 0))
  (data (i32.const 16) "my.requests-seen")
  (data (i32.const 48) "last_seen_x10")
  (data (i32.const 80) "seen_x100")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.and (i32.and
      (i32.eqz (call $define (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 128)))
      (i32.eqz (call $define (i32.const 1) (i32.const 48) (i32.const 13) (i32.const 132))))
      (i32.eqz (call $define (i32.const 2) (i32.const 80) (i32.const 9) (i32.const 136)))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (drop (call $increment (i32.load (i32.const 128)) (i64.const 1)))
    (drop (call $record (i32.load (i32.const 132)) (i64.mul (global.get $n) (i64.const 10))))
    (drop (call $record (i32.load (i32.const 136)) (i64.mul (global.get $n) (i64.const 100))))
    (i32.const 0))`,
});

describe('/metrics', () => {
  it('counts requests by route and status exactly and records their latency per route', async () => {
    const upstream = await startUpstream((req, res) => {
      const status = Number(/^\/status\/(\d+)/.exec(req.url!)?.[1] ?? 200);
      res.writeHead(status, { 'content-length': 3 });
      res.end('hi\n');
    });
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [
        { name: 'api', match: { pathPrefix: '/api' }, cluster: 'backend' },
        { name: 'status', match: { pathPrefix: '/status' }, cluster: 'backend' },
      ],
    });
    cleanup.push(gw.close);
    const paths = ['/api/a', '/api/b', '/api/c', '/status/500', '/status/500', '/status/201', '/nowhere'];
    for (const p of paths) await (await fetch(`${gw.url}${p}`)).arrayBuffer();
    const e = await scrapeUntil(gw, (x) => total(x, 'edge_gateway_requests_total') === paths.length);

    expect(e.type.get('edge_gateway_requests_total')).toBe('counter');
    expect(series(e, 'edge_gateway_requests_total')).toEqual([
      '{"route":"","status":"404"} 1',
      '{"route":"api","status":"200"} 3',
      '{"route":"status","status":"201"} 1',
      '{"route":"status","status":"500"} 2',
    ]);

    const h = 'edge_gateway_request_duration_seconds';
    expect(e.type.get(h)).toBe('histogram');
    expect(value(e, `${h}_count`, { route: 'api' })).toBe(3);
    expect(value(e, `${h}_count`, { route: 'status' })).toBe(3);
    expect(value(e, `${h}_count`, { route: '' })).toBe(1);
    for (const route of ['api', 'status', '']) {
      const buckets = e.samples.filter((s) => s.name === `${h}_bucket` && s.labels.route === route);
      expect(buckets.map((b) => b.labels.le)).toEqual(
        ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
      expect(buckets.at(-1)!.value).toBe(value(e, `${h}_count`, { route }));
      expect(value(e, `${h}_sum`, { route })).toBeGreaterThan(0);
      expect(value(e, `${h}_sum`, { route })).toBeLessThan(10);
    }
  });

  it('counts an upstream error by cluster and code after a 502', async () => {
    const gw = await startGateway({
      clusters: [{ name: 'gone', endpoints: [`http://127.0.0.1:${await deadPort()}`] }],
      routes: [{ name: 'dead', cluster: 'gone' }],
    });
    cleanup.push(gw.close);
    const res = await fetch(`${gw.url}/x`);
    expect(res.status).toBe(502);
    await res.arrayBuffer();
    const e = await scrapeUntil(gw, (x) => total(x, 'edge_gateway_requests_total') === 1);
    expect(e.type.get('edge_gateway_upstream_errors_total')).toBe('counter');
    expect(series(e, 'edge_gateway_upstream_errors_total')).toEqual(['{"cluster":"gone","code":"ECONNREFUSED"} 1']);
    expect(series(e, 'edge_gateway_requests_total')).toEqual(['{"route":"dead","status":"502"} 1']);
  });

  it('times the filters of each request per plugin, only those that ran, and counts local replies', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny', module: wasmFile(DENY, 'deny') }, { name: 'stamp', module: wasmFile(STAMP, 'stamp') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['deny', 'stamp'] }],
    });
    cleanup.push(gw.close);
    for (const p of ['/a', '/admin/x', '/b']) await (await fetch(`${gw.url}${p}`)).arrayBuffer();
    const e = await scrapeUntil(gw, (x) => total(x, 'edge_gateway_requests_total') === 3);

    const f = 'edge_gateway_filter_seconds';
    expect(e.type.get(f)).toBe('histogram');
    expect(value(e, `${f}_count`, { plugin: 'deny' })).toBe(3);
    // deny answered /admin/x itself: stamp never ran on it.
    expect(value(e, `${f}_count`, { plugin: 'stamp' })).toBe(2);
    expect(value(e, `${f}_bucket`, { plugin: 'stamp', le: '+Inf' })).toBe(2);
    expect(value(e, `${f}_sum`, { plugin: 'stamp' })).toBeGreaterThan(0);
    expect(value(e, `${f}_sum`, { plugin: 'stamp' })).toBeLessThan(1);

    expect(series(e, 'edge_gateway_local_replies_total')).toEqual(['{"plugin":"deny","status":"403"} 1']);
    expect(series(e, 'edge_gateway_requests_total')).toEqual(['{"route":"all","status":"200"} 2', '{"route":"all","status":"403"} 1']);
    expect(series(e, 'edge_gateway_filter_failures_total')).toEqual([]);
  });

  it('drops the filter time of a plugin a reload removed once its last request ended, and keeps counting one that stayed', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const upstream = await startUpstream((req, res) => {
      void (req.url === '/hold' ? held : Promise.resolve()).then(() => res.end('ok'));
    });
    cleanup.push(upstream.close);
    const stamp = wasmFile(STAMP, 'stamp');
    const doc = (plugins: string[]) => ({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], admin: { address: '127.0.0.1', port: 0 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: plugins.map((name) => ({ name, module: stamp })),
      routes: [{ name: 'all', cluster: 'backend', filters: plugins }],
    });
    const gw = await startGateway(doc(['stamp', 'old']));
    cleanup.push(gw.close);
    const f = 'edge_gateway_filter_seconds_count';
    const counts = (e: Exposition): string[] => series(e, f);

    await (await fetch(`${gw.url}/a`)).arrayBuffer();
    const inflight = fetch(`${gw.url}/hold`);
    await until(() => upstream.requests.some((r) => r.url === '/hold'));
    await gw.gateway.reload(parseConfig(doc(['stamp', 'new']), 'test-config.yaml'));
    await (await fetch(`${gw.url}/x`)).arrayBuffer();
    // The first generation still serves /hold: "old" is not gone yet.
    expect(counts(await scrapeUntil(gw, (e) => value(e, f, { plugin: 'new' }) === 1)))
      .toEqual(['{"plugin":"new"} 1', '{"plugin":"old"} 1', '{"plugin":"stamp"} 2']);

    release();
    await (await inflight).arrayBuffer();
    expect(counts(await scrapeUntil(gw, (e) => value(e, f, { plugin: 'stamp' }) === 3)))
      .toEqual(['{"plugin":"new"} 1', '{"plugin":"stamp"} 3']);

    // A reload with nothing in flight ends the previous generation at once.
    await gw.gateway.reload(parseConfig(doc(['stamp']), 'test-config.yaml'));
    expect(counts(await scrape(gw))).toEqual(['{"plugin":"stamp"} 3']);
  });

  it('counts the time a filter spends in on_log toward its filter seconds', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'slowlog', module: wasmFile(SLOW_LOG, 'slowlog') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['slowlog'] }],
    });
    cleanup.push(gw.close);
    await (await fetch(`${gw.url}/x`)).arrayBuffer();
    const e = await scrapeUntil(gw, (x) => total(x, 'edge_gateway_requests_total') === 1);
    expect(value(e, 'edge_gateway_filter_seconds_count', { plugin: 'slowlog' })).toBe(1);
    expect(value(e, 'edge_gateway_filter_seconds_sum', { plugin: 'slowlog' })).toBeGreaterThanOrEqual(0.02);
    expect(value(e, 'edge_gateway_filter_seconds_bucket', { plugin: 'slowlog', le: '0.01' })).toBe(0);
    expect(value(e, 'edge_gateway_filter_seconds_bucket', { plugin: 'slowlog', le: '+Inf' })).toBe(1);
  });

  it('counts the requests a failed filter cost and shows its VM as failed', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'trap', module: wasmFile(TRAP, 'trap'), failurePolicy: 'closed' }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['trap'] }],
    });
    cleanup.push(gw.close);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${gw.url}/x`);
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('');
    }
    const e = await scrapeUntil(gw, (x) => total(x, 'edge_gateway_requests_total') === 2);
    // The first request trapped; the second was answered 503 by the closed failure policy.
    expect(series(e, 'edge_gateway_filter_failures_total')).toEqual(['{"plugin":"trap"} 2']);
    expect(series(e, 'edge_gateway_wasm_vms')).toEqual(['{"plugin":"trap","state":"failed"} 1']);
    expect(series(e, 'edge_gateway_local_replies_total')).toEqual([]);
    expect(upstream.requests).toHaveLength(0);
  });

  it('reports the Wasm VMs and their memory per plugin, and one compile and one cache hit for two plugins of one module file', async () => {
    const module = wasmFile(STAMP, 'stamp');
    const gw = await startGateway({
      plugins: [{ name: 'a', module, vmId: 'one' }, { name: 'b', module, vmId: 'two' }],
      services: ['a', 'b'],
    });
    cleanup.push(gw.close);
    const e = await scrape(gw);
    expect(series(e, 'edge_gateway_wasm_vms')).toEqual(['{"plugin":"a","state":"running"} 1', '{"plugin":"b","state":"running"} 1']);
    // stamp.wat declares 2 pages and never grows.
    expect(series(e, 'edge_gateway_wasm_memory_bytes')).toEqual(['{"plugin":"a"} 131072', '{"plugin":"b"} 131072']);
    expect(value(e, 'edge_gateway_module_compiles_total')).toBe(1);
    expect(value(e, 'edge_gateway_module_cache_misses_total')).toBe(1);
    expect(value(e, 'edge_gateway_module_cache_hits_total')).toBe(1);
    expect(value(e, 'edge_gateway_module_cache_entries')).toBe(1);
    expect(value(e, 'edge_gateway_module_cache_bytes')).toBe(statSync(module).size);
  });

  it('names a VM that plugins share after all of them, once each, also while a reload overlaps two generations', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const upstream = await startUpstream((_req, res: ServerResponse) => { void held.then(() => res.end('ok\n')); });
    cleanup.push(upstream.close);
    const module = wasmFile(STAMP, 'stamp');
    const doc = {
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'b', module }, { name: 'a', module }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['a', 'b'] }],
    };
    const gw = await startGateway(doc);
    cleanup.push(gw.close);
    const inflight = fetch(`${gw.url}/slow`);
    const deadline = Date.now() + 3000;
    while (upstream.requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(upstream.requests).toHaveLength(1);
    // Same VM key: the new generation's roots join the VM that still serves the request in flight.
    await gw.gateway.reload(parseConfig(doc, 'test-config.yaml'));
    const during = await scrape(gw);
    expect(series(during, 'edge_gateway_wasm_vms')).toEqual(['{"plugin":"a,b","state":"running"} 1']);
    expect(series(during, 'edge_gateway_wasm_memory_bytes')).toEqual(['{"plugin":"a,b"} 131072']);
    expect(value(during, 'edge_gateway_module_compiles_total')).toBe(1);
    expect(value(during, 'edge_gateway_module_cache_misses_total')).toBe(1);
    expect(value(during, 'edge_gateway_module_cache_hits_total')).toBe(3);
    release();
    expect((await inflight).status).toBe(200);
  });

  it('exposes the metrics a filter defines with proxy_define_metric as wasmcustom_<name> (counters with _total) with exact values', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const doc = {
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'custom', module: wasmFile(CUSTOM, 'custom') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['custom'] }],
    };
    const gw = await startGateway(doc);
    cleanup.push(gw.close);
    for (let i = 0; i < 3; i++) await (await fetch(`${gw.url}/x`)).arrayBuffer();
    const e = await scrape(gw);

    expect(e.type.get('wasmcustom_my_requests_seen_total')).toBe('counter');
    expect(e.help.get('wasmcustom_my_requests_seen_total')).toBe('Metric "my.requests-seen" defined by a Wasm filter (proxy_define_metric)');
    expect(series(e, 'wasmcustom_my_requests_seen_total')).toEqual(['{} 3']);
    expect(e.type.get('wasmcustom_last_seen_x10')).toBe('gauge');
    expect(series(e, 'wasmcustom_last_seen_x10')).toEqual(['{} 30']);
    expect(e.type.get('wasmcustom_seen_x100')).toBe('histogram');
    expect(value(e, 'wasmcustom_seen_x100_count')).toBe(3);
    expect(value(e, 'wasmcustom_seen_x100_sum')).toBe(600);
    const buckets = Object.fromEntries(e.samples.filter((s) => s.name === 'wasmcustom_seen_x100_bucket').map((s) => [s.labels.le, s.value]));
    // Envoy's default histogram buckets.
    expect(buckets).toEqual({
      '0.5': 0, '1': 0, '5': 0, '10': 0, '25': 0, '50': 0, '100': 1, '250': 2, '500': 3, '1000': 3, '2500': 3, '5000': 3,
      '10000': 3, '30000': 3, '60000': 3, '300000': 3, '600000': 3, '1800000': 3, '3600000': 3, '+Inf': 3,
    });

    // A reload defines the same names again: the same metrics keep counting (the VM, and its $n, are shared).
    await gw.gateway.reload(parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], admin: { address: '127.0.0.1', port: 0 }, ...doc,
    }, 'test-config.yaml'));
    await (await fetch(`${gw.url}/x`)).arrayBuffer();
    const after = await scrape(gw);
    expect(series(after, 'wasmcustom_my_requests_seen_total')).toEqual(['{} 4']);
    expect(series(after, 'wasmcustom_last_seen_x10')).toEqual(['{} 40']);
    expect(value(after, 'wasmcustom_seen_x100_count')).toBe(4);
  });

  it('makes names that sanitize alike one metric, and refuses one name with two types', async () => {
    // Counters "a.b" and "a_b" (both wasmcustom_a_b_total), then a gauge "a_b_total": on_configure succeeds
    // only if the first two answer OK and the third INTERNAL_FAILURE (10).
    const guest = guestWat({
      imports: `
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))`,
      body: `
  (data (i32.const 16) "a.b")
  (data (i32.const 32) "a_b")
  (data (i32.const 48) "a_b_total")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (i32.or (call $define (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 128))
                (call $define (i32.const 0) (i32.const 32) (i32.const 3) (i32.const 132)))
      (then (return (i32.const 0))))
    (if (i32.ne (call $define (i32.const 1) (i32.const 48) (i32.const 9) (i32.const 136)) (i32.const 10))
      (then (return (i32.const 0))))
    (drop (call $increment (i32.load (i32.const 128)) (i64.const 1)))
    (drop (call $increment (i32.load (i32.const 132)) (i64.const 5)))
    (i32.const 1))`,
    });
    const module = wasmFile(guest, 'dup');
    const gw = await startGateway({ plugins: [{ name: 'dup', module }], services: ['dup'] });
    cleanup.push(gw.close);
    const e = await scrape(gw);
    expect(e.type.get('wasmcustom_a_b_total')).toBe('counter');
    expect(series(e, 'wasmcustom_a_b_total')).toEqual(['{} 6']);
    expect(gw.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('hostcall proxy_define_metric failed')).map((l) => l.msg))
      .toEqual([`hostcall proxy_define_metric failed in module ${module}: GW_ERR_METRIC_TYPE: metric wasmcustom_a_b_total is already defined with another type`]);
  });

  it('names and documents every gateway metric by Prometheus conventions', async () => {
    const gw = await startGateway({});
    cleanup.push(gw.close);
    const e = await scrape(gw);
    const ours = [...e.type.keys()].filter((n) => n.startsWith('edge_gateway_')).sort();
    expect(ours.map((n) => `${n} ${e.type.get(n)}: ${e.help.get(n)}`)).toEqual([
      'edge_gateway_build_info gauge: Always 1: the gateway\'s version, the Node.js version and the CPU architecture it runs on',
      'edge_gateway_config_info gauge: Always 1: the sha256 of the configuration in force (node identity left out, so nodes on one file agree); it changes with each applied reload',
      'edge_gateway_config_reloads_total counter: Reloads of the configuration file (SIGHUP), by result (applied, rejected)',
      'edge_gateway_connections_dropped_total counter: Connections a listener closed at accept because it had maxConnections open',
      'edge_gateway_filter_failures_total counter: Requests that failed because of a filter: its VM failed during the request, its failure policy answered 503 after an earlier failure, or it reset the stream',
      'edge_gateway_filter_seconds histogram: Time spent in one filter\'s callbacks during one request, by plugin',
      'edge_gateway_function_changes_total counter: Changes of a function through the admin API (swap, canary, promote, rollback), by result (applied, rejected)',
      'edge_gateway_function_cold_start_seconds histogram: Time a request waited for a ready instance of its function (0 when one was warm); over 5 ms is logged as a warning',
      'edge_gateway_function_instances gauge: Instances of a function ready for a request or serving one, and requests queued for one (state="queued")',
      'edge_gateway_function_instantiate_seconds histogram: Time to make one instance of a function (off the request path, in its thread)',
      'edge_gateway_function_requests_total counter: Requests a function answered (ok) or failed (timeout, failed, overloaded)',
      'edge_gateway_http2_rapid_reset_closes_total counter: HTTP/2 connections closed because their client reset too many streams before their response began (rapid reset)',
      'edge_gateway_http2_stream_resets_total counter: HTTP/2 streams the client reset (RST_STREAM) before their response ended, by listener and error code',
      'edge_gateway_local_replies_total counter: Responses a filter sent itself (proxy_send_local_response), by plugin and status',
      'edge_gateway_module_cache_bytes gauge: Module bytes held by the compiled-module cache',
      'edge_gateway_module_cache_entries gauge: Compiled modules held by the compiled-module cache',
      'edge_gateway_module_cache_hits_total counter: Module loads answered by the compiled-module cache',
      'edge_gateway_module_cache_misses_total counter: Module loads that compiled, joined a compile in flight, or met a remembered invalid module',
      'edge_gateway_module_compiles_total counter: WebAssembly.compile calls',
      'edge_gateway_plugin_changes_total counter: Changes to a plugin (swap, configure, enable, disable, canary, promote, rollback, watch, registry), by result (applied, rejected)',
      'edge_gateway_plugin_module_info gauge: The module each plugin runs: 1 per plugin, role (stable, canary) and module sha256',
      'edge_gateway_plugin_version_budget_overruns_total counter: Guest calls of a module version stopped by the CPU budget',
      'edge_gateway_plugin_version_failed_streams_total counter: Streams a module version failed: refused by its failure policy, trapped or over budget, or answered 5xx by it',
      'edge_gateway_plugin_version_filter_seconds_total counter: Time spent in a module version\'s callbacks',
      'edge_gateway_plugin_version_local_replies_total counter: Local replies of a module version, by status class',
      'edge_gateway_plugin_version_streams_total counter: Streams started on a module version of a plugin',
      'edge_gateway_plugin_version_traps_total counter: VM failures of a module version other than the CPU budget (traps, stack overflow, proc_exit)',
      'edge_gateway_request_duration_seconds histogram: Time from the start of a request to the end of its response, by route ("" when no route matched)',
      'edge_gateway_requests_in_flight gauge: Requests being answered now (their response not yet finished), across every configuration generation',
      'edge_gateway_requests_total counter: Requests answered, by route ("" when no route matched) and status (0 when the client left before a response)',
      'edge_gateway_shared_data_bytes gauge: Shared data held per vm_id as counted against sharedState.maxBytesPerVm (keys + values + 384 bytes per entry)',
      'edge_gateway_shared_data_entries gauge: Shared-data keys held per vm_id (deleted keys, held with an empty value, included)',
      'edge_gateway_shared_data_evictions_total counter: Shared-data entries evicted (least recently used first) to make room for a write over the vm_id\'s quota',
      'edge_gateway_shared_data_refusals_total counter: Shared-data writes refused with BAD_ARGUMENT, by vm_id and reason (key_size, value_size, quota: larger than the whole quota)',
      'edge_gateway_shared_queue_bytes gauge: Bytes held by the shared queues of a vm_id, as counted against sharedState.maxBytesPerVm (items + 64 bytes each)',
      'edge_gateway_shared_queue_dropped_total counter: Shared-queue items dropped because the vm_id\'s queues were full: the oldest of the queue enqueued to, or the new item when that queue could not make room',
      'edge_gateway_shared_state_connected gauge: Redis backend: 1 while connected to Redis (writes replicate), 0 while it is away (this node serves its own copy); absent with the memory backend',
      'edge_gateway_shared_state_dropped_writes_total counter: Redis backend: writes dropped, oldest first, because too many waited for Redis (they stay in this node\'s copy only), or refused by Redis for a foreign value',
      'edge_gateway_shared_state_waiting_writes gauge: Redis backend: shared-data writes waiting for Redis (sent or to be sent when it is back)',
      'edge_gateway_tls_handshake_errors_total counter: TLS handshakes a listener refused or lost, by reason (no or a bad client certificate, an old version, a timeout)',
      'edge_gateway_upstream_ejections_total counter: Times outlier detection ejected an endpoint (clusters with outlierDetection)',
      'edge_gateway_upstream_endpoint_healthy gauge: 1 while an endpoint is in service (its health checks pass and outlier detection has not ejected it), else 0 (in panic mode, all 0, every endpoint still gets traffic)',
      'edge_gateway_upstream_errors_total counter: Upstream requests that failed (refused, reset, timed out), by cluster and error code',
      'edge_gateway_upstream_health_checks_total counter: Active health-check probes of an endpoint by result: success, failure (an unexpected status), network_failure (refused, reset), timeout',
      'edge_gateway_upstream_overflows_total counter: Requests answered 503 because the cluster\'s queue was full (cluster_overflow)',
      'edge_gateway_upstream_pending_requests gauge: Requests waiting in a cluster\'s queue for a pooled connection now (bounded by maxPendingRequests)',
      'edge_gateway_upstream_queue_timeouts_total counter: Requests answered 503 after waiting queueTimeoutMs for a connection (queue_timeout)',
      'edge_gateway_upstream_response_seconds histogram: Time from sending a request upstream (its first try) to the response headers it is answered with, by cluster, or function:NAME for an edge function',
      'edge_gateway_upstream_retries_total counter: Retries of upstream tries, by route and reason (the condition of the route\'s retryOn that matched)',
      'edge_gateway_upstream_retry_budget_exhausted_total counter: Retries refused because the cluster\'s retry budget was spent (the request got its last try\'s answer)',
      'edge_gateway_wasm_memory_bytes gauge: Linear memory of the Wasm VMs, by the plugins each hosts (comma-separated when plugins share a VM)',
      'edge_gateway_wasm_vm_recycle_failures_total counter: Recycles abandoned because the fresh VM failed to start or was already over the threshold (the old VM kept serving), by the plugins the VM hosts (comma-separated when plugins share a VM)',
      'edge_gateway_wasm_vm_recycles_total counter: VMs replaced by a fresh one because their memory passed limits.recycleMemoryMb, by the plugins the VM hosts (comma-separated when plugins share a VM)',
      'edge_gateway_wasm_vms gauge: Wasm VMs alive, by the plugins each hosts (comma-separated when plugins share a VM) and state (running, failed)',
    ]);
    // Node's process metrics under their standard names, as dashboards expect them.
    expect(e.type.get('process_cpu_seconds_total')).toBe('counter');
    expect(e.type.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });
});

describe('/metrics against Prometheus\'s own checks', () => {
  const promtool = spawnSync('promtool', ['--version']).status === 0;

  /** A gateway that served a filter's request (observe defines a counter and a ms histogram with tags). */
  async function servedText(): Promise<string> {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'observe', module: 'filters/dist/observe.wasm' }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['observe'] }],
    });
    cleanup.push(gw.close);
    await (await fetch(`${gw.url}/x`)).arrayBuffer();
    const e = await scrapeUntil(gw, (x) => x.type.has('wasmcustom_observe_request_duration_seconds'));
    expect(e.type.get('wasmcustom_observe_requests_total')).toBe('counter');
    return (await fetch(`${gw.adminUrl}/metrics`)).text();
  }

  it('names every counter, and only counters, with _total, and writes no unit but base units', async () => {
    const e = parseExposition(await servedText());
    for (const [name, type] of e.type) {
      expect(name.endsWith('_total'), `${name} (${type})`).toBe(type === 'counter');
      expect(name, name).not.toMatch(/_(ms|milliseconds|us|microseconds|ns|nanoseconds|minutes|hours|kilobytes|megabytes)(_|$)/);
    }
  });

  it.skipIf(!promtool)('passes promtool check metrics', async () => {
    const checked = spawnSync('promtool', ['check', 'metrics'], { input: await servedText(), encoding: 'utf8' });
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.status).toBe(0);
  });
});

describe('GatewayMetrics as the sink of proxy_define_metric', () => {
  const origin = (pluginName: string) => ({ pluginName, rootId: '', vmId: '' });
  const sink = (): GatewayMetrics => new GatewayMetrics({
    vms: () => [], moduleCache: () => ({ hits: 0, misses: 0, compiles: 0, entries: 0, bytes: 0 }),
  });

  it(`lets one plugin add at most ${MAX_GUEST_METRICS} metrics whatever its VMs, without counting names it shares`, async () => {
    const metrics = sink();
    for (let i = 0; i < MAX_GUEST_METRICS; i++) expect(metrics.define(MetricType.COUNTER, `a_${i}`, origin('a'))).not.toBeNull();
    // A new VM of the same plugin (a reload, a recycle) starts with an empty table: the cap holds here.
    expect(metrics.define(MetricType.COUNTER, 'a_more', origin('a'))).toBeNull();
    // Names already in the registry are the same metric: no new series, so still answered.
    const shared = metrics.define(MetricType.COUNTER, 'a_7', origin('a'));
    expect(shared).not.toBeNull();
    expect(metrics.define(MetricType.COUNTER, 'b_own', origin('b'))).not.toBeNull();
    expect(metrics.define(MetricType.COUNTER, 'a_8', origin('b'))).not.toBeNull();
    shared!.add(2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('\nwasmcustom_a_7_total 2\n');
    expect(text).not.toContain('wasmcustom_a_more');
    expect(text.match(/^# TYPE wasmcustom_/gm)).toHaveLength(MAX_GUEST_METRICS + 1);
  });
});
