import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricType } from '../../gateway/abi/enums.js';
import { MAX_GUEST_METRICS } from '../../gateway/abi/limits.js';
import { GuestMetrics, exportedName } from '../../gateway/admin/guest-metrics.js';
import { parseExposition, series, value } from '../helpers/exposition.js';
import { startGateway, startUpstream, wasmFile } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const origin = { pluginName: 'p', rootId: '', vmId: '' };

/** The error code `fn` throws with (GatewayError.code). */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('exportedName', () => {
  it('takes TAG=.=VALUE;.; segments out of the name as labels, sorted by tag', () => {
    expect(exportedName(MetricType.GAUGE, 'route=.=api;.;response_code_class=.=2xx;.;observe.in_flight')).toEqual({
      family: 'wasmcustom_observe_in_flight', labels: [['response_code_class', '2xx'], ['route', 'api']], scale: 1,
    });
  });

  it('finds tags after the name too, as Istio writes them, and keeps any bytes of a value', () => {
    expect(exportedName(MetricType.GAUGE, 'edge.size.path=.=/a b?c;.;')).toEqual({ family: 'wasmcustom_edge_size', labels: [['path', '/a b?c']], scale: 1 });
  });

  it('gives counters the _total suffix once', () => {
    expect(exportedName(MetricType.COUNTER, 'my.requests').family).toBe('wasmcustom_my_requests_total');
    expect(exportedName(MetricType.COUNTER, 'my.requests_total').family).toBe('wasmcustom_my_requests_total');
  });

  it('exports a histogram in milliseconds in seconds', () => {
    expect(exportedName(MetricType.HISTOGRAM, 'upstream.rq_time_ms')).toEqual({ family: 'wasmcustom_upstream_rq_time_seconds', labels: [], scale: 1e-3 });
    expect(exportedName(MetricType.GAUGE, 'queue_ms').family).toBe('wasmcustom_queue_ms');
  });

  it('refuses a reserved tag, a tag given twice and tags without a name', () => {
    expect(codeOf(() => exportedName(MetricType.HISTOGRAM, 'le=.=1;.;x'))).toBe('GW_ERR_METRIC_NAME');
    expect(() => exportedName(MetricType.HISTOGRAM, 'le=.=1;.;x')).toThrow('metric "le=.=1;.;x": the tag "le" is reserved by Prometheus');
    expect(() => exportedName(MetricType.GAUGE, 'a=.=1;.;a=.=2;.;x')).toThrow('the tag "a" is given twice');
    expect(() => exportedName(MetricType.GAUGE, 'a=.=1;.;')).toThrow('metric "a=.=1;.;" has tags but no name');
  });
});

describe('GuestMetrics', () => {
  it('writes one family with a series per tag value, each cell keeping its own value', async () => {
    const registry = new Registry();
    const guest = new GuestMetrics(registry);
    const api = guest.define(MetricType.COUNTER, 'route=.=api;.;observe.requests', origin)!;
    const web = guest.define(MetricType.COUNTER, 'route=.=web;.;observe.requests', origin)!;
    api.add(2);
    web.add(5);
    expect(api.value()).toBe(2);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE wasmcustom_observe_requests_total counter\n');
    expect(text).toContain('wasmcustom_observe_requests_total{route="api"} 2\n');
    expect(text).toContain('wasmcustom_observe_requests_total{route="web"} 5\n');
  });

  it('answers the same cell for names that export alike, tags in any order', () => {
    const guest = new GuestMetrics(new Registry());
    const a = guest.define(MetricType.GAUGE, 'a=.=1;.;b=.=2;.;m.x', origin);
    expect(guest.define(MetricType.GAUGE, 'b=.=2;.;a=.=1;.;m_x', origin)).toBe(a);
  });

  it('records a millisecond histogram in seconds, in Envoy\'s buckets divided by 1000', async () => {
    const registry = new Registry();
    new GuestMetrics(registry).define(MetricType.HISTOGRAM, 'route=.=api;.;rq_ms', origin)!.observe(150);
    const text = await registry.metrics();
    expect(text).toContain('wasmcustom_rq_seconds_bucket{le="0.1",route="api"} 0\n');
    expect(text).toContain('wasmcustom_rq_seconds_bucket{le="0.25",route="api"} 1\n');
    expect(text).toContain('wasmcustom_rq_seconds_sum{route="api"} 0.15\n');
  });

  it('refuses a family under another type or with other tags', () => {
    const guest = new GuestMetrics(new Registry());
    guest.define(MetricType.COUNTER, 'route=.=api;.;hits', origin);
    expect(codeOf(() => guest.define(MetricType.GAUGE, 'hits_total', origin))).toBe('GW_ERR_METRIC_TYPE');
    expect(() => guest.define(MetricType.GAUGE, 'hits_total', origin)).toThrow('metric wasmcustom_hits_total is already defined with another type');
    expect(codeOf(() => guest.define(MetricType.COUNTER, 'host=.=a;.;hits', origin))).toBe('GW_ERR_METRIC_NAME');
    expect(() => guest.define(MetricType.COUNTER, 'host=.=a;.;hits', origin)).toThrow('metric wasmcustom_hits_total is already defined with the tags (route), not (host)');
  });
});

/**
 * A hostile filter: in on_configure it defines a gauge, a counter whose tag value holds CR, LF, a
 * quote, a backslash and the byte 0xff, then tries 1100 more counters of one family, each with
 * its own tag value (three hex digits), and sets the gauge to how many the host took. Each request
 * adds 1 to the hostile counter.
 */
const HOSTILE_TAGS = guestWat({
  imports: `
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))`,
  body: `
  (data (i32.const 0x200) "0123456789abcdef")
  (data (i32.const 0x300) "t=.=XYZ;.;many")
  (data (i32.const 0x340) "v=.=a\\0d\\0ab\\22c\\5cd\\ff;.;hostile")
  (data (i32.const 0x380) "taken")
  (func $hex (param $at i32) (param $digit i32)
    (i32.store8 (local.get $at) (i32.load8_u (i32.add (i32.const 0x200) (i32.and (local.get $digit) (i32.const 15))))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (local $i i32) (local $taken i64)
    (drop (call $define (i32.const 1) (i32.const 0x380) (i32.const 5) (i32.const 0x400)))
    (drop (call $define (i32.const 0) (i32.const 0x340) (i32.const 23) (i32.const 0x404)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1100)))
      (call $hex (i32.const 0x304) (i32.shr_u (local.get $i) (i32.const 8)))
      (call $hex (i32.const 0x305) (i32.shr_u (local.get $i) (i32.const 4)))
      (call $hex (i32.const 0x306) (local.get $i))
      (if (i32.eqz (call $define (i32.const 0) (i32.const 0x300) (i32.const 14) (i32.const 0x408)))
        (then (local.set $taken (i64.add (local.get $taken) (i64.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (drop (call $record (i32.load (i32.const 0x400)) (local.get $taken)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $increment (i32.load (i32.const 0x404)) (i64.const 1)))
    (i32.const 0))`,
});

describe('metrics a hostile filter defines, through a gateway', () => {
  it(`take any bytes in a tag value and stop at ${MAX_GUEST_METRICS} series, and /metrics stays valid`, async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'hostile', module: wasmFile(HOSTILE_TAGS, 'hostile-tags') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['hostile'] }],
    });
    cleanup.push(gw.close);
    for (let i = 0; i < 2; i++) expect((await fetch(`${gw.url}/x`)).status).toBe(200);
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const e = parseExposition(text);
    // The gauge and the hostile counter took two of the plugin's series: 998 of the 1100 went in.
    expect(value(e, 'wasmcustom_taken')).toBe(MAX_GUEST_METRICS - 2);
    expect(series(e, 'wasmcustom_many_total')).toHaveLength(MAX_GUEST_METRICS - 2);
    expect(value(e, 'wasmcustom_many_total', { t: '3e5' })).toBe(0);
    expect(value(e, 'wasmcustom_many_total', { t: '3e6' })).toBeUndefined();
    // The tag value comes back whole, escaped in the exposition; the byte 0xff, not UTF-8 (which
    // the exposition is), as U+FFFD.
    expect(value(e, 'wasmcustom_hostile_total', { v: 'a\r\nb"c\\d\ufffd' })).toBe(2);
    expect(text).not.toMatch(/\nb"c/); // the LF did not end the line
    if (spawnSync('promtool', ['--version']).status === 0) {
      const checked = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(checked.stdout + checked.stderr).toBe('');
    }
  });
});
