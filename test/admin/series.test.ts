/**
 * The request-path series (gateway/admin/series.ts) write exactly what prom-client's own Counter
 * and Histogram write for the same updates: the same text on /metrics, and the same sums when a
 * box's primary aggregates its workers' JSON.
 */
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesCounter, SeriesHistogram } from '../../gateway/admin/series.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];
/** Values below, on and above the bounds: `le` counts a value equal to its bound. */
const SAMPLES = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 2, 30];

/** The same updates through prom-client's metrics and through ours, each in its own registry. */
function both(): { theirs: Registry; ours: Registry; update(route: string, status: string, seconds: number): void; drop(route: string): void } {
  const theirs = new Registry();
  const ours = new Registry();
  const counter = new Counter({ name: 'c_total', help: 'h', labelNames: ['route', 'status'], registers: [theirs] });
  const histogram = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['route'], buckets: BOUNDS, registers: [theirs] });
  const plainCounter = new SeriesCounter('c_total', 'h', ['route', 'status'], ours);
  const plainHistogram = new SeriesHistogram('h_seconds', 'h', ['route'], BOUNDS, ours);
  return {
    theirs, ours,
    update(route, status, seconds) {
      counter.labels(route, status).inc();
      histogram.labels(route).observe(seconds);
      plainCounter.labels(route, status).inc();
      plainHistogram.labels(route).observe(seconds);
    },
    drop(route) {
      histogram.remove(route);
      plainHistogram.remove(route);
    },
  };
}

describe('the request-path series', () => {
  it('write the exposition prom-client writes, bucket by bucket, for values on and between the bounds', async () => {
    const { theirs, ours, update } = both();
    SAMPLES.forEach((s, i) => update(i % 3 === 0 ? 'api' : 'web "quoted"\n', String(200 + (i % 2) * 304), s));
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('h_seconds_bucket{le="0.01",route="api"} 2\n'); // 0.0005 and 0.01 (on its bound)
  });

  it('forget a removed series, as prom-client does', async () => {
    const { theirs, ours, update, drop } = both();
    update('old', '200', 0.5);
    update('kept', '200', 0.5);
    drop('old');
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).not.toContain('h_seconds_count{route="old"}');
  });

  it('sum across a box\'s workers as prom-client\'s metrics do', async () => {
    const workers = [both(), both()];
    workers[0].update('api', '200', 0.002);
    workers[1].update('api', '200', 0.2);
    workers[1].update('web', '503', 3);
    const theirs = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.theirs.getMetricsAsJSON())));
    const ours = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.ours.getMetricsAsJSON())));
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_seconds_count{route="api"} 2\n');
  });
});
