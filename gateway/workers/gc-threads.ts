/**
 * How the workers of a box run V8's garbage collector. With a core each or less (as many workers
 * as the box has cores, or more), a worker's concurrent marking and sweeping threads only take
 * CPU from the workers beside it, and they can leave a worker streaming large bodies collecting
 * its old generation after every scavenge (measured: 64 KB responses through one pinned process,
 * 2 starts in 3 at ~250 µs per request against ~150 with the collector on the main thread:
 * bench/README.md, "One core: the garbage collector on the main thread"). So such workers run
 * with `--single-threaded-gc`. V8 takes the flag only when the process starts, which is why the
 * primary passes it to the workers it forks and a single-process gateway leaves it to its
 * command line (README, "One core").
 */

const FLAG = '--single-threaded-gc';

/** The Node arguments of the workers: the primary's own, with FLAG when `count` workers have a core each or less. */
export function workerExecArgv(count: number, cores: number, execArgv: readonly string[]): string[] {
  // An explicit choice either way (--single-threaded-gc or --no-single-threaded-gc) stands.
  if (count < cores || execArgv.some((a) => a === FLAG || a === '--no-single-threaded-gc')) return [...execArgv];
  return [...execArgv, FLAG];
}
