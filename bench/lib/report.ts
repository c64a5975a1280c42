/** Measuring with tinybench and printing the result table. */
import { Bench, hrtimeNow } from 'tinybench';

/** One measured operation, in nanoseconds per operation. */
export interface Measured {
  median: number;
  p99: number;
  samples: number;
}

export interface MeasureOptions {
  /** Minimum measuring time; tinybench keeps sampling until both time and iterations are reached. */
  timeMs: number;
  warmupMs: number;
  /** Each sample runs `perSample` operations; the figures are divided by it. */
  perSample?: number;
  minIterations?: number;
}

/** Time scale for a quicker or steadier run: BENCH_TIME_SCALE=0.3 npx tsx bench/abi-micro.ts */
const SCALE = Number(process.env.BENCH_TIME_SCALE ?? '1') || 1;

function bench(opts: MeasureOptions): Bench {
  // hrtimeNow (process.hrtime.bigint) instead of performance.now: ns resolution for µs-sized samples.
  return new Bench({
    now: hrtimeNow,
    time: opts.timeMs * SCALE,
    warmupTime: opts.warmupMs * SCALE,
    warmupIterations: 32,
    iterations: opts.minIterations ?? 64,
    throws: true,
  });
}

function result(b: Bench, opts: MeasureOptions): Measured {
  const latency = b.tasks[0].result!.latency; // milliseconds per sample
  const per = 1e6 / (opts.perSample ?? 1);
  return { median: latency.p50! * per, p99: latency.p99! * per, samples: latency.samples.length };
}

export function measureSync(name: string, fn: () => unknown, opts: MeasureOptions): Measured {
  const b = bench(opts);
  b.add(name, fn);
  b.runSync();
  return result(b, opts);
}

export async function measureAsync(name: string, fn: () => Promise<unknown>, opts: MeasureOptions): Promise<Measured> {
  const b = bench(opts);
  b.add(name, fn);
  await b.run();
  return result(b, opts);
}

export type Unit = 'ns' | 'µs' | 'ms';
const DIV: Record<Unit, number> = { ns: 1, µs: 1e3, ms: 1e6 };

export interface Row {
  id: string;
  operation: string;
  unit: Unit;
  /** Nanoseconds, or a plain number when `unit` is absent from the formatting (ratios). */
  median: number;
  p99: number | null;
  /** Target for the median, in ns; null for informational rows. */
  target: number | null;
  samples: number | null;
  /** Printed instead of the target in `unit`. */
  targetLabel?: string;
  /** Printed instead of a number with unit (e.g. "9.7×"). */
  display?: string;
}

export function fmt(ns: number, unit: Unit): string {
  const v = ns / DIV[unit];
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

export function verdict(row: Row): string {
  if (row.target === null) return '';
  return row.median <= row.target ? 'PASS' : 'FAIL';
}

export function table(rows: readonly Row[]): string {
  const head = ['#', 'operation', 'median', 'p99', 'target', 'result', 'samples'];
  const body = rows.map((r) => [
    r.id,
    r.operation,
    r.display ?? fmt(r.median, r.unit),
    r.p99 === null ? '' : fmt(r.p99, r.unit),
    r.target === null ? '' : r.targetLabel ?? `≤ ${fmt(r.target, r.unit).replace(/\.0+ /, ' ')}`,
    verdict(r),
    r.samples === null ? '' : String(r.samples),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)));
  const right = [false, false, true, true, true, false, true];
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
