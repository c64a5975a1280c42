/** The benches' idle memory (bench/lib/idle-rss.ts): the lowest reading of a window, not the first. */
import { describe, expect, it } from 'vitest';
import { idleRssOver } from '../../bench/lib/idle-rss.js';

const sequence = (values: number[]): (() => number) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
};

describe('the idle resident set', () => {
  it('waits out a plateau before V8 gives memory back, and reads the level after it', async () => {
    // The chain of five: 96 MB for a while, then 80 and 79 for good.
    const read = sequence([103, 96, 96, 96, 96, 96, 96, 96, 96, 80, 80, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79, 79]);
    expect(await idleRssOver(read, { everyMs: 1, windowMs: 40, heldMs: 5 })).toEqual({ mb: 79, settled: true });
  });

  it('says a reading that was still falling at the end of its window had not settled', async () => {
    let mb = 100;
    const result = await idleRssOver(() => (mb -= 5), { everyMs: 1, windowMs: 20, heldMs: 5 });
    expect(result.settled).toBe(false);
    expect(result.mb).toBeLessThan(100);
  });
});
