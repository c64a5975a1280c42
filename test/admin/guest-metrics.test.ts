import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MetricType } from '../../gateway/abi/enums.js';
import { GuestMetrics, exportedName } from '../../gateway/admin/guest-metrics.js';

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
