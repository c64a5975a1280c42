/** The report's progress line (bench/report-lib/progress.ts): rewritten in place on a terminal, plain lines elsewhere. */
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../../bench/report-lib/progress.js';

function fake(isTTY: boolean, columns = 80) {
  const written: string[] = [];
  return { out: { isTTY, columns, write: (text: string) => written.push(text) }, written };
}

describe('the progress line', () => {
  it('rewrites one line in place on a terminal, and ends it when done', () => {
    const { out, written } = fake(true);
    const progress = createProgress(out);
    progress.update('round 1/5');
    progress.update('round 2/5');
    progress.done();
    expect(written).toEqual(['\rround 1/5\x1b[K', '\rround 2/5\x1b[K', '\n']);
  });

  it('cuts a line wider than the terminal, which \\r could not rewrite once wrapped', () => {
    const { out, written } = fake(true, 30);
    createProgress(out).update('x'.repeat(100));
    expect(written[0]).toBe(`\r${'x'.repeat(28)}…\x1b[K`);
  });

  it('prints plain lines elsewhere, once per new state, and nothing more when done', () => {
    const { out, written } = fake(false);
    const progress = createProgress(out);
    progress.update('round 1/5');
    progress.update('round 1/5');
    progress.update('round 2/5');
    progress.done();
    expect(written).toEqual(['round 1/5\n', 'round 2/5\n']);
  });
});
