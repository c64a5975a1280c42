/**
 * What the report's hand-written SVG charts share: escaping, scales and their ticks, the
 * palette, number formatting. No chart library: the page must open offline, as one file.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML and SVG, in element content and in quoted attributes. */
export const esc = (text: string): string => text.replace(/[&<>"']/g, (ch) => ENTITIES[ch]);

/** A coordinate: one decimal is finer than a pixel and keeps the file small. */
export const px = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Maps [d0, d1] onto [r0, r1] linearly. */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** Maps [d0, d1] (both > 0) onto [r0, r1] on a log scale. */
export function logarithmic(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const f = linear(Math.log10(d0), Math.log10(d1), r0, r1);
  return (v) => f(Math.log10(v));
}

/** Round tick values from 0 to at least `max`, about `count` of them (steps of 1, 2 or 5 × 10ⁿ). */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  // toPrecision: 3 × 0.1 is 0.30000000000000004 in binary floating point.
  for (let i = 0; i === 0 || ticks.at(-1)! < max; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** The 1, 2 and 5 × 10ⁿ values that bracket [min, max] (both > 0), for a log axis. */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) ticks.push(Number((m * 10 ** e).toPrecision(1)));
  }
  const below = ticks.filter((t) => t <= min).at(-1) ?? ticks[0];
  const above = ticks.find((t) => t >= max) ?? ticks.at(-1)!;
  return ticks.filter((t) => t >= below && t <= above);
}

/** A tick label: thousands with a thin space, small values with the digits they need. */
export function tickLabel(v: number): string {
  if (v >= 1000) return Math.round(v).toLocaleString('en-US').replace(/,/g, ' ');
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

/** Colours told apart by most readers, also in print (Okabe–Ito first, then darker tones). */
export const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#5b5b5b', '#b8a100', '#7a3e9d', '#1b7837'];

export const colorAt = (index: number): string => PALETTE[index % PALETTE.length];

/** The opening tag of a chart: scales with the page, described for screen readers. */
export function svgOpen(width: number, height: number, title: string): string {
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>`;
}

/** A legend under a chart: one coloured swatch and name per series. */
export function legend(items: ReadonlyArray<{ label: string; color: string }>): string {
  return `<p class="legend">${items.map((i) => `<span><i style="background:${i.color}"></i>${esc(i.label)}</span>`).join('')}</p>`;
}
