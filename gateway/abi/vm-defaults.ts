/** What a VM uses when its ports bring no scheduler or clock (tests, the embedded default). */
import type { Scheduler } from './ports.js';

export const defaultScheduler: Scheduler = {
  every(periodMs, fn) {
    const timer = setInterval(fn, periodMs);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
  defer(fn) {
    setImmediate(fn);
  },
};

// Wall time is the epoch origin plus the monotonic clock, as performance.timeOrigin + now() is,
// but one process.hrtime.bigint() per read: ~100 ns less per proxy_get_current_time_nanoseconds
// than now() + BigInt(Math.round(…)) (bench/README.md, row 1), and exact ns instead of 256 ns steps.
const wallOriginNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - process.hrtime.bigint();

export const defaultClock = {
  wallNs: () => wallOriginNs + process.hrtime.bigint(),
  monotonicNs: () => process.hrtime.bigint(),
};
