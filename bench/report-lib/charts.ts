/**
 * The report's four charts as inline SVG strings: bars (throughput, CPU per request), latency
 * percentile curves, RSS over time, and cold-start dots. Each takes plain figures and colours, so
 * it can be tested on a small hand-made input; html.ts decides what goes in.
 */
import { fmt, LATENCY_PERCENTILES } from '../lib/stats.js';
import type { RssSample } from './results.js';
import { esc, linear, logarithmic, logTicks, niceTicks, px, svgOpen, tickLabel } from './svg.js';

const WIDTH = 960;
/** Room on the left for the targets' names, of the horizontal charts. */
const NAMES = 250;
const ROW = 28;

export interface BarItem {
  id: string;
  label: string;
  color: string;
  value: number;
  /** Why there is no bar (e.g. "not installed"), shown in its place. */
  missing?: string;
  /** Said after the value, e.g. the ratio to the baseline. */
  annotation?: string;
}

/** Horizontal bars, one per item, each as long as its value on an axis from 0. */
export function barChart(title: string, unit: string, items: readonly BarItem[], digits = 0): string {
  const right = 190;
  const measured = items.filter((i) => i.missing === undefined && Number.isFinite(i.value));
  const ticks = niceTicks(Math.max(0, ...measured.map((i) => i.value)));
  const x = linear(0, ticks.at(-1)!, NAMES, WIDTH - right);
  const bottom = 8 + items.length * ROW;
  const parts = [svgOpen(WIDTH, bottom + 28, title)];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${px(x(t))}" x2="${px(x(t))}" y1="4" y2="${bottom}"/>`,
      `<text class="tick" x="${px(x(t))}" y="${bottom + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  parts.push(`<text class="tick" x="${WIDTH - right}" y="${bottom + 28}" text-anchor="end">${esc(unit)}</text>`);
  items.forEach((item, row) => {
    const y = 8 + row * ROW;
    parts.push(`<text class="name" x="${NAMES - 8}" y="${y + ROW / 2}" text-anchor="end" dominant-baseline="middle">${esc(item.label)}</text>`);
    if (item.missing !== undefined || !Number.isFinite(item.value)) {
      parts.push(`<text class="missing" x="${NAMES + 6}" y="${y + ROW / 2}" dominant-baseline="middle">${esc(item.missing ?? 'no figure')}</text>`);
      return;
    }
    const end = x(item.value);
    const said = `${fmt(item.value, digits)} ${unit}${item.annotation === undefined ? '' : ` · ${item.annotation}`}`;
    parts.push(`<rect class="bar" data-target="${esc(item.id)}" x="${NAMES}" y="${y + 4}" width="${px(end - NAMES)}" height="${ROW - 8}" fill="${item.color}"><title>${esc(`${item.label}: ${said}`)}</title></rect>`,
      `<text class="value" x="${px(end + 6)}" y="${y + ROW / 2}" dominant-baseline="middle">${esc(said)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface Series {
  id: string;
  label: string;
  color: string;
}

/** Where a percentile sits on the x axis: its "nines", −log10(1 − p), so p99 and p99.9 get room; the maximum after p99.9. */
export function ninesOf(p: number): number {
  return p >= 1 ? 3.6 : -Math.log10(1 - p);
}

const PERCENTILE_NAMES = LATENCY_PERCENTILES.map((p) => (p >= 1 ? 'max' : `p${Number((p * 100).toPrecision(3))}`));

/** One line per series through its latency at each of LATENCY_PERCENTILES (ms), on a log latency axis. */
export function latencyChart(series: ReadonlyArray<Series & { latencyMs: readonly number[] }>): string {
  const [left, right, top, bottom] = [70, 30, 12, 300];
  const values = series.flatMap((s) => s.latencyMs).filter((v) => Number.isFinite(v) && v > 0);
  const ticks = values.length === 0 ? [1, 10] : logTicks(Math.min(...values), Math.max(...values));
  const y = logarithmic(ticks[0], ticks.at(-1)!, bottom, top);
  const x = linear(ninesOf(0.5) - 0.15, ninesOf(1) + 0.15, left, WIDTH - right);
  const parts = [svgOpen(WIDTH, bottom + 44, 'Latency by percentile, ms (log scale)')];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${left}" x2="${WIDTH - right}" y1="${px(y(t))}" y2="${px(y(t))}"/>`,
      `<text class="tick" x="${left - 8}" y="${px(y(t))}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`);
  }
  LATENCY_PERCENTILES.forEach((p, i) => {
    parts.push(`<line class="grid" x1="${px(x(ninesOf(p)))}" x2="${px(x(ninesOf(p)))}" y1="${top}" y2="${bottom}"/>`,
      `<text class="tick" x="${px(x(ninesOf(p)))}" y="${bottom + 18}" text-anchor="middle">${PERCENTILE_NAMES[i]}</text>`);
  });
  parts.push(`<text class="tick" x="${left - 8}" y="${bottom + 36}" text-anchor="end">ms</text>`);
  for (const s of series) {
    const points = LATENCY_PERCENTILES.map((p, i) => ({ p, i, v: s.latencyMs[i] })).filter((d) => Number.isFinite(d.v) && d.v > 0);
    if (points.length === 0) continue;
    parts.push(`<polyline class="line" data-target="${esc(s.id)}" fill="none" stroke="${s.color}" points="${points.map((d) => `${px(x(ninesOf(d.p)))},${px(y(d.v))}`).join(' ')}"/>`);
    for (const d of points) {
      parts.push(`<circle cx="${px(x(ninesOf(d.p)))}" cy="${px(y(d.v))}" r="3" fill="${s.color}"><title>${esc(`${s.label}: ${PERCENTILE_NAMES[d.i]} ${fmt(d.v, 2)} ms`)}</title></circle>`);
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

/** At most this many points per line: a few minutes at 4 samples a second is ~1 000, more than the chart's pixels. */
const MAX_POINTS = 600;

/** RSS of each series over time (MB, from 0), with labelled vertical marks (e.g. where the rounds start). */
export function rssChart(samples: readonly RssSample[], series: readonly Series[], marks: ReadonlyArray<{ t: number; label: string }>): string {
  const [left, right, top, bottom] = [70, 30, 20, 320];
  const end = samples.at(-1)?.t ?? 1;
  const peak = Math.max(0, ...samples.flatMap((s) => series.map((l) => s.mb[l.id] ?? 0)));
  const yTicks = niceTicks(peak);
  const y = linear(0, yTicks.at(-1)!, bottom, top);
  const x = linear(0, end, left, WIDTH - right);
  const parts = [svgOpen(WIDTH, bottom + 44, 'Resident memory over time, MB')];
  for (const t of yTicks) {
    parts.push(`<line class="grid" x1="${left}" x2="${WIDTH - right}" y1="${px(y(t))}" y2="${px(y(t))}"/>`,
      `<text class="tick" x="${left - 8}" y="${px(y(t))}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`);
  }
  for (const t of niceTicks(end, 8).filter((t) => t <= end)) {
    parts.push(`<text class="tick" x="${px(x(t))}" y="${bottom + 18}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  parts.push(`<text class="tick" x="${WIDTH - right}" y="${bottom + 36}" text-anchor="end">seconds</text>`,
    `<text class="tick" x="${left - 8}" y="${top - 8}" text-anchor="end">MB</text>`);
  for (const m of marks) {
    parts.push(`<line class="mark" x1="${px(x(m.t))}" x2="${px(x(m.t))}" y1="${top}" y2="${bottom}"/>`,
      `<text class="tick" x="${px(x(m.t) + 4)}" y="${top + 10}">${esc(m.label)}</text>`);
  }
  const stride = Math.max(1, Math.ceil(samples.length / MAX_POINTS));
  for (const s of series) {
    const points = samples.filter((sample, i) => i % stride === 0 && Number.isFinite(sample.mb[s.id]) && sample.mb[s.id] > 0);
    if (points.length === 0) continue;
    parts.push(`<polyline class="line" data-target="${esc(s.id)}" fill="none" stroke="${s.color}" points="${points.map((p) => `${px(x(p.t))},${px(y(p.mb[s.id]))}`).join(' ')}"><title>${esc(s.label)}</title></polyline>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

export interface DotRow extends Series {
  /** Each cold start, ms. */
  samples: readonly number[];
  p50: number;
  missing?: string;
}

/** One row per target: a dot per cold start and a bar at the median, on a log time axis. */
export function coldStartChart(rows: readonly DotRow[]): string {
  const right = 30;
  const all = rows.flatMap((r) => r.samples).filter((v) => v > 0);
  const ticks = all.length === 0 ? [1, 10] : logTicks(Math.min(...all), Math.max(...all));
  const x = logarithmic(ticks[0], ticks.at(-1)!, NAMES, WIDTH - right);
  const bottom = 8 + rows.length * ROW;
  const parts = [svgOpen(WIDTH, bottom + 32, 'Cold start: spawn to the first proxied 200, ms (log scale)')];
  for (const t of ticks) {
    parts.push(`<line class="grid" x1="${px(x(t))}" x2="${px(x(t))}" y1="4" y2="${bottom}"/>`,
      `<text class="tick" x="${px(x(t))}" y="${bottom + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  parts.push(`<text class="tick" x="${WIDTH - right}" y="${bottom + 30}" text-anchor="end">ms</text>`);
  rows.forEach((r, row) => {
    const mid = 8 + row * ROW + ROW / 2;
    parts.push(`<text class="name" x="${NAMES - 8}" y="${mid}" text-anchor="end" dominant-baseline="middle">${esc(r.label)}</text>`);
    if (r.missing !== undefined) {
      parts.push(`<text class="missing" x="${NAMES + 6}" y="${mid}" dominant-baseline="middle">${esc(r.missing)}</text>`);
      return;
    }
    // A little vertical spread (in turn: middle, above, below), so that equal times stay visible as several dots.
    r.samples.forEach((v, i) => {
      parts.push(`<circle class="dot" data-target="${esc(r.id)}" cx="${px(x(v))}" cy="${mid + ((i % 3) - 1) * 5}" r="4" fill="${r.color}"><title>${esc(`${r.label}: ${fmt(v, 1)} ms`)}</title></circle>`);
    });
    if (Number.isFinite(r.p50)) {
      parts.push(`<line class="median" x1="${px(x(r.p50))}" x2="${px(x(r.p50))}" y1="${mid - 11}" y2="${mid + 11}"><title>${esc(`${r.label}: median ${fmt(r.p50, 1)} ms`)}</title></line>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}
