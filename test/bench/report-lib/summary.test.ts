/**
 * The report's statistics (bench/report-lib/summary.ts): small-sample spreads, ratios as medians
 * of per-round ratios, latency medians per percentile, and memory under load.
 */
import { describe, expect, it } from 'vitest';
import { distribution, latencyMedians, summarize } from '../../../bench/report-lib/summary.js';
import { run, smallResults } from './results-fixture.js';

describe('the report statistics', () => {
  it('spread a small sample by nearest rank: min, p50, p90 and max', () => {
    expect(distribution([700, 500, 600])).toEqual({ n: 3, min: 500, p50: 600, p90: 700, max: 700 });
    const ten = distribution([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
    expect([ten.min, ten.p50, ten.p90, ten.max]).toEqual([1, 5, 9, 10]);
  });

  it('give an empty sample no figures rather than zeros', () => {
    const none = distribution([]);
    expect(none.n).toBe(0);
    expect([none.min, none.p50, none.p90, none.max].every(Number.isNaN)).toBe(true);
  });

  it('take ratios per round against the no-filter gateway and the undici proxy, so that a slow round cancels out', () => {
    const [gateway, undici] = summarize(smallResults());
    // Round 2 is twice as slow for both: each round's ratio is 2, whatever the medians of the raw figures.
    expect(undici.vsGateway).toEqual({ req: 2, cpu: 0.5, reqPerRound: [2, 2] });
    expect(gateway.vsUndici).toEqual({ req: 0.5, cpu: 2, reqPerRound: [0.5, 0.5] });
    expect(gateway.vsGateway.req).toBe(1);
    expect(gateway.reqPerSec).toBe(750);
    expect(gateway.cpuUsPerReq).toBe(150);
  });

  it('take each latency percentile as the median over the rounds', () => {
    expect(latencyMedians([run('a', 0, 1, 1, [1, 2, 3, 4, 5, 6]), run('a', 1, 1, 1, [3, 4, 5, 10, 20, 30])])).toEqual([2, 3, 4, 7, 12.5, 18]);
    expect(latencyMedians([])).toEqual([]);
  });

  it('count memory under load only from the samples of the rounds taken while the target was under load', () => {
    const [gateway, undici] = summarize(smallResults());
    // gw-none: 80 MB was during its warm-up, 95 while undici or nothing was loaded.
    expect(gateway.rssUnderLoad).toEqual({ median: 100, peak: 110 });
    expect(undici.rssUnderLoad).toEqual({ median: 70, peak: 70 });
  });

  it('summarise the cold starts and the first request after each', () => {
    const [gateway] = summarize(smallResults());
    expect(gateway.coldStart).toEqual({ n: 3, min: 500, p50: 600, p90: 700, max: 700 });
    expect(gateway.firstRequest.p50).toBe(25);
  });

  it('leave a peer that is not installed without figures, and say why', () => {
    const nginx = summarize(smallResults())[2];
    expect(nginx.status).toBe('not installed');
    expect(nginx.note).toMatch(/apt-get install nginx-light/);
    expect([nginx.reqPerSec, nginx.cpuUsPerReq, nginx.vsGateway.req, nginx.vsUndici.cpu, nginx.coldStart.p50].every(Number.isNaN)).toBe(true);
    expect(nginx.errors).toBe(0);
  });

  it('add up errors, timeouts and non-2xx answers over every run', () => {
    const results = smallResults();
    results.targets[0].runs[0].result.errors = 2;
    results.targets[0].runs[1].result.non2xx = 3;
    results.targets[0].runs[1].result.timeouts = 1;
    expect(summarize(results)[0].errors).toBe(6);
  });
});
