/**
 * The proxy benches' verdicts (bench/lib/compare.ts): ratios are medians of per-round pairs, and
 * the control decides whether a run may be trusted at all.
 */
import { describe, expect, it } from 'vitest';
import { againstBaseline, controlVerdict, pairedRatio, rows } from '../../bench/lib/compare.js';
import type { Run, ScenarioDef } from '../../bench/lib/processes.js';

function run(scenario: string, round: number, reqPerSec: number, cpuUsPerReq: number): Run {
  return {
    scenario, round, load: 1, cpuUsPerReq, upstreamCpuUsPerReq: 10,
    result: { requests: reqPerSec * 4, reqPerSec, p50Ms: 1, p99Ms: 5, latencyMs: [1, 2, 3, 5, 6, 7], errors: 0, timeouts: 0, non2xx: 0 },
  };
}

const def = (id: string): ScenarioDef => ({ id, label: id, headers: {}, start: async () => { throw new Error('not started'); }, check: async () => {} });

describe('the proxy bench tables', () => {
  it('pair runs by round, so a slow round slows both sides of its ratio', () => {
    // Round 1 is twice as slow for everyone: the ratio of medians would mix it in, the paired ratio does not.
    const base = [run('none', 0, 10_000, 50), run('none', 1, 5_000, 100), run('none', 2, 10_000, 50)];
    const filter = [run('f', 0, 9_000, 55), run('f', 1, 4_500, 110), run('f', 2, 9_000, 55)];
    expect(pairedRatio(filter, base, (r) => r.result.reqPerSec)).toEqual({ median: 0.9, perRound: [0.9, 0.9, 0.9] });
    const [, f] = rows([...base, ...filter], [def('none'), def('f')], 'none');
    expect(f.cpuRatio).toBeCloseTo(1.1);
    expect(f.cpuDelta).toBeCloseTo(5);
  });

  it('reads a filter against its own process\'s plain route round by round, so a slow process slows both sides', () => {
    // The filtered process is 20% slower than another would be; its plain route shows it too.
    const plain = [run('headers/plain', 0, 10_000, 60), run('headers/plain', 1, 8_000, 75), run('headers/plain', 2, 10_000, 60)];
    const filtered = [run('headers', 0, 9_000, 66), run('headers', 1, 7_200, 81), run('headers', 2, 9_000, 67)];
    const [row] = rows([...plain, ...filtered], [def('headers')], 'headers/plain');
    expect(row.cpuDeltas).toEqual([6, 6, 7]);
    expect(row.cpuDelta).toBe(6);
    expect(row.reqRatio).toBeCloseTo(0.9);
  });

  it('trusts a run whose control reads within 5% of the baseline, and calls one that does not too noisy', () => {
    const base = [run('none', 0, 10_000, 50), run('none', 1, 10_000, 50), run('none', 2, 10_000, 50)];
    const close = [run('control', 0, 10_200, 51), run('control', 1, 9_900, 49.5), run('control', 2, 10_100, 50.5)];
    const far = [run('control', 0, 8_800, 57), run('control', 1, 9_000, 56), run('control', 2, 9_100, 55)];
    const good = controlVerdict(rows([...base, ...close], [def('none'), def('control')], 'none'), 'control');
    expect(good.ok).toBe(true);
    const noisy = controlVerdict(rows([...base, ...far], [def('none'), def('control')], 'none'), 'control');
    expect(noisy.ok).toBe(false);
    expect(noisy.line).toMatch(/^TOO NOISY/);
    expect(controlVerdict(rows(base, [def('none')], 'none'), 'control').ok).toBe(false);
  });

  it('set each scenario against its twin from the baseline build, round by round, and leave out those without one', () => {
    const runs = [
      run('headers', 0, 9_000, 60), run('headers', 1, 4_500, 120),
      run('base-headers', 0, 10_000, 50), run('base-headers', 1, 5_000, 100),
      run('none', 0, 10_000, 50), run('none', 1, 10_000, 50),
    ];
    const [row, ...rest] = againstBaseline(runs, [def('none'), def('headers'), def('base-headers')]);
    expect(rest).toEqual([]);
    expect(row.label).toBe('headers');
    expect(row.cpuRatio).toBeCloseTo(1.2);
    expect(row.reqRatio).toBeCloseTo(0.9);
    expect([row.cpuUsPerReq, row.baseCpuUsPerReq]).toEqual([90, 75]);
  });

  it('give a gateway\'s GC time per request as the median of its rounds, and none for a proxy without /metrics', () => {
    const gateway = [0, 1, 2].map((round) => ({ ...run('gw', round, 10_000, 50), gc: { usPerReq: [3, 9, 4][round], minorPer1k: [2, 2, 3][round] } }));
    const proxy = [0, 1, 2].map((round) => run('undici', round, 10_000, 40));
    const [gw, undici] = rows([...gateway, ...proxy], [def('gw'), def('undici')], 'gw');
    expect([gw.gcUsPerReq, gw.minorGcPer1k]).toEqual([4, 2]);
    expect([undici.gcUsPerReq, undici.minorGcPer1k]).toEqual([NaN, NaN]);
  });
});
