/** CPU and memory of a process tree (bench/report-lib/proc-tree.ts), read from /proc of real processes. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { treePids, treeRssMb } from '../../../bench/report-lib/proc-tree.js';
import { rssMb } from '../../../bench/lib/processes.js';

describe('a process tree', () => {
  it('holds a process and the children it spawned, and adds up their memory', async () => {
    const child = spawn('sleep', ['10'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(treePids(process.pid)).toEqual(expect.arrayContaining([process.pid, child.pid]));
      expect(treeRssMb(process.pid)).toBeGreaterThan(rssMb(process.pid));
    } finally {
      child.kill();
      await once(child, 'exit');
    }
  });

  it('is empty for a process that does not exist', () => {
    expect(treePids(2 ** 22 + 1)).toEqual([]);
    expect(treeRssMb(2 ** 22 + 1)).toBe(0);
  });
});
