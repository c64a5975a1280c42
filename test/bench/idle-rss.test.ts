/** The benches' idle memory (bench/lib/idle-rss.ts) is read once it stops moving, not at once. */
import { describe, expect, it } from 'vitest';
import { settledRssMb } from '../../bench/lib/idle-rss.js';

const sequence = (values: number[]): (() => number) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
};

describe('the idle resident set', () => {
  it('waits for the drop that comes seconds after the last request, and reads the level after it', async () => {
    const read = sequence([99.6, 99.6, 99.6, 81.4, 81.4, 81.5, 81.4, 81.5]);
    expect(await settledRssMb(read, { everyMs: 1, stableMs: 3 })).toEqual({ mb: 81.4, settled: true });
  });

  it('takes readings that keep moving only until its bound, and says they had not settled', async () => {
    let mb = 100;
    const result = await settledRssMb(() => (mb -= 5), { everyMs: 1, stableMs: 3, maxMs: 30 });
    expect(result.settled).toBe(false);
    expect(result.mb).toBeLessThan(100);
  });
});
