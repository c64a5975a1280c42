/** The workers' garbage collector (gateway/workers/gc-threads.ts): on their main thread once they have a core each or less. */
import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../../gateway/workers/gc-threads.js';

describe('the Node arguments of the workers', () => {
  it('add --single-threaded-gc when the workers have a core each or less', () => {
    expect(workerExecArgv(2, 2, ['--import', 'tsx'])).toEqual(['--import', 'tsx', '--single-threaded-gc']);
    expect(workerExecArgv(4, 2, [])).toEqual(['--single-threaded-gc']);
  });

  it('keep V8\'s concurrent collector when cores are left over', () => {
    expect(workerExecArgv(2, 8, ['--import', 'tsx'])).toEqual(['--import', 'tsx']);
  });

  it('leave an explicit choice either way as it is', () => {
    expect(workerExecArgv(2, 2, ['--no-single-threaded-gc'])).toEqual(['--no-single-threaded-gc']);
    expect(workerExecArgv(2, 2, ['--single-threaded-gc'])).toEqual(['--single-threaded-gc']);
  });
});
