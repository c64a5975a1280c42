/** The report's markdown summary (bench/report-lib/summary-table.ts): what the bench prints and bench/README.md quotes. */
import { describe, expect, it } from 'vitest';
import { markdownTable } from '../../../bench/report-lib/summary-table.js';
import { summarize } from '../../../bench/report-lib/summary.js';
import { smallResults } from './results-fixture.js';

describe('the markdown summary table', () => {
  it('has a header, a separator and one row per target, in order', () => {
    const lines = markdownTable(summarize(smallResults())).split('\n');
    expect(lines[0]).toMatch(/^\| target \| req\/s \| ÷ gateway \| ÷ undici \| CPU µs\/req /);
    expect(lines[1]).toMatch(/^\|---\|---:/);
    expect(lines.slice(2).map((l) => l.split(' | ')[0])).toEqual(['| gateway, no filter', '| undici proxy', '| nginx (1 worker)']);
  });

  it('gives each measured target its figures: req/s, ratios, CPU, latency, memory and cold start', () => {
    const undici = markdownTable(summarize(smallResults())).split('\n')[3];
    expect(undici).toBe('| undici proxy | 1500 | 2.00 | 1.00 | 75.0 | 0.50 | 0.60 / 3.00 / 3.50 | 80 → 70 (70) | 600 (500–700) | 0 |');
  });

  it('marks a peer that is not installed, with empty cells for its figures', () => {
    expect(markdownTable(summarize(smallResults())).split('\n')[4]).toBe('| nginx (1 worker) | not installed | | | | | | | | |');
  });

  it('escapes a pipe in a name, and footnotes a target that was not pinned', () => {
    const results = smallResults();
    results.targets[0] = { ...results.targets[0], label: 'gateway | workers: 2', pinned: false };
    const text = markdownTable(summarize(results));
    expect(text).toContain('| gateway \\| workers: 2 ¹ |');
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^¹ not pinned/);
  });
});
