/**
 * The report page (bench/report-lib/html.ts) made from a small results object: bars as long as
 * their values, names escaped, a missing peer said to be missing, and nothing loaded from elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../../bench/report-lib/html.js';
import { summarize } from '../../../bench/report-lib/summary.js';
import type { ReportResults } from '../../../bench/report-lib/results.js';
import { smallResults } from './results-fixture.js';

const page = (results: ReportResults = smallResults()): string => renderReport(results, summarize(results));

/** The bars of the page's first chart (requests per second): target id → width. */
function firstChartBars(html: string): Map<string, number> {
  const chart = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
  return new Map([...chart.matchAll(/<rect class="bar" data-target="([^"]+)"[^>]* width="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])]));
}

describe('the report page', () => {
  it('draws one bar per measured target, each as long as its req/s relative to the others', () => {
    const bars = firstChartBars(page());
    expect([...bars.keys()]).toEqual(['gw-none', 'undici']);
    // Medians: gateway 750 req/s, undici 1 500.
    expect(bars.get('undici')! / bars.get('gw-none')!).toBeCloseTo(2, 2);
  });

  it('draws a bar for CPU per request too, and a latency curve and a memory line per measured target', () => {
    const html = page();
    expect(html.match(/<rect class="bar" data-target="undici"/g)).toHaveLength(2);
    expect(html.match(/<polyline class="line" data-target="gw-none"/g)).toHaveLength(2);
    expect(html.match(/<circle class="dot" data-target="undici"/g)).toHaveLength(3);
  });

  it('shows a peer that is not installed as "not installed", in the tables and in place of its bars, with no line or dot', () => {
    const html = page();
    expect(html).toContain('<tr class="missing"><td>nginx (1 worker)</td><td colspan="9">not installed (Debian: apt-get install nginx-light)</td></tr>');
    expect(html.match(/<text class="missing"[^>]*>not installed<\/text>/g)).toHaveLength(3);
    expect(html).not.toMatch(/data-target="nginx"/);
  });

  it('escapes the names of targets and machine facts wherever they appear', () => {
    const results = smallResults();
    results.targets[1].label = '<script>alert("x")</script> & co';
    results.machine.cpuModel = 'CPU <b>';
    const html = page(results);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('CPU <b>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
    expect(html).toContain('CPU &lt;b&gt;');
  });

  it('is self-contained: inline style and SVG, no script, no link, font or image from elsewhere', () => {
    const html = page();
    expect(html).toMatch(/<style>[\s\S]+<\/style>/);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|src=/i);
    expect(html.match(/href="([^"]*)"/g)?.every((h) => h.startsWith('href="#'))).toBe(true);
  });

  it('records the machine, the versions, the load average of each round and the method', () => {
    const html = page();
    for (const fact of ['Test CPU × 2', 'v20.20.2 / 11.3', '7.30.2 / 1.23.3 / 9.0.0', 'HAProxy version 2.6.12', 'abc1234']) expect(html).toContain(fact);
    expect(html).toContain('<tr><th>nginx</th><td>not installed</td></tr>');
    // Each run's load average is 1 + its round in the fixture.
    expect(html).toContain('<tr><td>1</td><td>1.00–1.00</td></tr><tr><td>2</td><td>2.00–2.00</td></tr>');
    expect(html).toMatch(/<h2 id="method">Method<\/h2>\s*<p>Every target stands in front of the same upstream/);
  });

  it('flags a target that was not pinned to one core', () => {
    const results = smallResults();
    results.targets[0].pinned = false;
    expect(page(results)).toContain('gateway, no filter <span class="flag">unpinned</span>');
  });
});
