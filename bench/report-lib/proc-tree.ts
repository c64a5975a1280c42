/**
 * CPU time and resident memory of a process together with its descendants, from /proc: a box of
 * `workers: 2` is a primary and two forked workers, and its cost is theirs together. A process
 * that ends between two reads is left out rather than failing the read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpuUs, rssMb } from '../lib/processes.js';

function childrenOf(pid: number): number[] {
  // Each thread lists the children it forked (/proc/PID/task/TID/children, Linux ≥ 3.5).
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text !== '') for (const child of text.split(' ')) out.push(Number(child));
  }
  return out;
}

/** `pid` and every live descendant of it (depth-first, at most 64 processes). */
export function treePids(pid: number): number[] {
  const seen: number[] = [];
  const todo = [pid];
  while (todo.length > 0 && seen.length < 64) {
    const next = todo.pop()!;
    try {
      todo.push(...childrenOf(next));
      seen.push(next);
    } catch {
      // gone meanwhile
    }
  }
  return seen;
}

function sumOver(pid: number, read: (pid: number) => number): number {
  let total = 0;
  for (const p of treePids(pid)) {
    try {
      const value = read(p);
      if (Number.isFinite(value)) total += value; // a zombie has no VmRSS
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** utime + stime of `pid` and its descendants (all threads), µs. */
export const treeCpuUs = (pid: number): number => sumOver(pid, cpuUs);

/** VmRSS of `pid` and its descendants, MB (pages the processes share are counted in each). */
export const treeRssMb = (pid: number): number => sumOver(pid, rssMb);
