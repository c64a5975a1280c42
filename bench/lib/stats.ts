/** Small figures helpers shared by the benches. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '—');
