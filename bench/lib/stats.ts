/** Small figures helpers shared by the benches. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The nearest-rank percentile `p` (0–1; 1 is the maximum) of values sorted ascending; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** The latency percentiles a load run reports (bench/lib/load.ts), in this order: p50, p75, p90, p99, p99.9 and the maximum. */
export const LATENCY_PERCENTILES: readonly number[] = [0.5, 0.75, 0.9, 0.99, 0.999, 1];

export const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '—');
