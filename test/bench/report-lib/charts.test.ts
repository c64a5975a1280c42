/** The report's SVG charts (bench/report-lib/charts.ts) and what they share (svg.ts): scales, ticks, escaping. */
import { describe, expect, it } from 'vitest';
import { barChart, coldStartChart, latencyChart, ninesOf, rssChart } from '../../../bench/report-lib/charts.js';
import type { RssSample } from '../../../bench/report-lib/results.js';
import { esc, linear, logarithmic, logTicks, niceTicks, tickLabel } from '../../../bench/report-lib/svg.js';

const widths = (svg: string): number[] => [...svg.matchAll(/class="bar"[^>]* width="([\d.]+)"/g)].map((m) => Number(m[1]));

describe('the chart helpers', () => {
  it('escape the five characters that matter in HTML text and attributes', () => {
    expect(esc(`<a href="x">Tom & Jerry's</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;');
  });

  it('choose round ticks from 0 that cover the largest value', () => {
    expect(niceTicks(3140)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(niceTicks(0.3, 3)).toEqual([0, 0.1, 0.2, 0.3]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });

  it('choose 1-2-5 ticks that bracket a log range', () => {
    expect(logTicks(3.78, 231)).toEqual([2, 5, 10, 20, 50, 100, 200, 500]);
    expect(logTicks(18, 4251)).toEqual([10, 20, 50, 100, 200, 500, 1000, 2000, 5000]);
  });

  it('map values linearly and logarithmically onto pixels', () => {
    expect(linear(0, 100, 10, 210)(25)).toBe(60);
    expect(logarithmic(1, 1000, 0, 300)(10)).toBeCloseTo(100);
  });

  it('label ticks with thin-space thousands and only the digits small values need', () => {
    expect([tickLabel(12500), tickLabel(50), tickLabel(2), tickLabel(0.25)]).toEqual(['12 500', '50', '2', '0.25']);
  });

  it('place latency percentiles by their nines, the maximum last', () => {
    const xs = [0.5, 0.75, 0.9, 0.99, 0.999, 1].map(ninesOf);
    expect(xs[2]).toBeCloseTo(1);
    expect(xs[3]).toBeCloseTo(2);
    expect(xs.every((x, i) => i === 0 || x > xs[i - 1])).toBe(true);
  });
});

describe('the charts', () => {
  it('draw bars as long as their values, and text in place of a missing one', () => {
    const svg = barChart('req/s', 'req/s', [
      { id: 'a', label: 'a', color: '#000', value: 1000 },
      { id: 'b', label: 'b', color: '#000', value: 2500 },
      { id: 'c', label: 'c', color: '#000', value: NaN, missing: 'not installed' },
    ]);
    const [a, b] = widths(svg);
    expect(b / a).toBeCloseTo(2.5, 2);
    expect(widths(svg)).toHaveLength(2);
    expect(svg).toContain('>not installed</text>');
  });

  it('draw one latency curve per series through its six percentiles', () => {
    const svg = latencyChart([{ id: 'a', label: 'a', color: '#000', latencyMs: [1, 2, 3, 10, 20, 30] }, { id: 'b', label: 'b', color: '#111', latencyMs: [2, 3, 4, 5, 6, 7] }]);
    const lines = [...svg.matchAll(/<polyline[^>]* points="([^"]+)"/g)].map((m) => m[1].split(' '));
    expect(lines.map((points) => points.length)).toEqual([6, 6]);
    expect(svg).toContain('>max</text>');
    expect(svg).toContain('<title>a: p99.9 20.00 ms</title>');
  });

  it('draw at most 600 points per memory line, and the marks given', () => {
    const samples: RssSample[] = Array.from({ length: 1800 }, (_, i) => ({ t: i / 4, mb: { a: 100 + (i % 7) }, active: null, phase: 'rounds' }));
    const svg = rssChart(samples, [{ id: 'a', label: 'a', color: '#000' }], [{ t: 30, label: 'rounds start' }]);
    const points = /points="([^"]+)"/.exec(svg)![1].split(' ');
    expect(points.length).toBeLessThanOrEqual(600);
    expect(points.length).toBeGreaterThan(500);
    expect(svg).toContain('>rounds start</text>');
  });

  it('draw one dot per cold start and a median bar per row', () => {
    const svg = coldStartChart([
      { id: 'a', label: 'a', color: '#000', samples: [20, 25, 30], p50: 25 },
      { id: 'b', label: 'b', color: '#111', samples: [], p50: NaN, missing: 'not installed' },
    ]);
    expect(svg.match(/<circle class="dot" data-target="a"/g)).toHaveLength(3);
    expect(svg.match(/<line class="median"/g)).toHaveLength(1);
    expect(svg).toContain('>not installed</text>');
  });
});
