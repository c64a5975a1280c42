/**
 * The report's statistics, from the raw results: one summary per target, which the HTML page and
 * the markdown table both show. Every ratio is the median of per-round ratios (both runs of a pair
 * come from the same round, so a slow stretch of the machine slows both; bench/lib/compare.ts);
 * every other figure of the rounds is the median over the rounds.
 */
import { pairedRatio } from '../lib/compare.js';
import type { Run } from '../lib/processes.js';
import { median, percentile } from '../lib/stats.js';
import { GATEWAY_BASELINE, PROXY_BASELINE, type ReportResults, type TargetResult } from './results.js';

/** A small sample's spread: nearest-rank percentiles (NaN throughout when empty). */
export interface Distribution {
  n: number;
  min: number;
  p50: number;
  p90: number;
  max: number;
}

/** Medians of per-round ratios of this target ÷ a baseline: req/s, and CPU µs per request. */
export interface Ratios {
  req: number;
  cpu: number;
  /** Each round's req/s ratio, in round order. */
  reqPerRound: number[];
}

export interface TargetSummary extends Pick<TargetResult, 'id' | 'label' | 'group' | 'status' | 'pinned' | 'note' | 'idleRssMb' | 'firstStartMs'> {
  reqPerSec: number;
  cpuUsPerReq: number;
  vsGateway: Ratios;
  vsUndici: Ratios;
  /** Per LATENCY_PERCENTILES (bench/lib/stats.ts): the median over the rounds of each run's percentile, ms. */
  latencyMs: number[];
  /** RSS while the load generator sent to this target, over the rounds: median and peak, MB. */
  rssUnderLoad: { median: number; peak: number };
  coldStart: Distribution;
  firstRequest: Distribution;
  /** Errors, timeouts and non-2xx answers over every measured run. */
  errors: number;
  /** The 1-minute load average at the end of each of its runs. */
  loads: number[];
}

export function distribution(xs: readonly number[]): Distribution {
  const sorted = [...xs].sort((a, b) => a - b);
  return { n: sorted.length, min: percentile(sorted, 0), p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), max: percentile(sorted, 1) };
}

/** The median of `xs`, or NaN when there is none (stats.ts's median has no case for an empty list). */
const medianOf = (xs: number[]): number => (xs.length === 0 ? NaN : median(xs));

function ratios(runs: Run[], base: Run[]): Ratios {
  const req = pairedRatio(runs, base, (r) => r.result.reqPerSec);
  const cpu = pairedRatio(runs, base, (r) => r.cpuUsPerReq);
  return { req: medianOf(req.perRound), cpu: medianOf(cpu.perRound), reqPerRound: req.perRound };
}

/** The median over the runs of each latency percentile. */
export function latencyMedians(runs: Run[]): number[] {
  if (runs.length === 0) return [];
  return runs[0].result.latencyMs.map((_, i) => medianOf(runs.map((r) => r.result.latencyMs[i])));
}

export function summarize(results: ReportResults): TargetSummary[] {
  const runsOf = (id: string): Run[] => results.targets.find((t) => t.id === id)?.runs ?? [];
  const gateway = runsOf(GATEWAY_BASELINE);
  const undici = runsOf(PROXY_BASELINE);
  return results.targets.map((t) => {
    const underLoad = results.rss.filter((s) => s.phase === 'rounds' && s.active === t.id).map((s) => s.mb[t.id]).filter(Number.isFinite);
    return {
      id: t.id, label: t.label, group: t.group, status: t.status, pinned: t.pinned, note: t.note,
      idleRssMb: t.idleRssMb, firstStartMs: t.firstStartMs,
      reqPerSec: medianOf(t.runs.map((r) => r.result.reqPerSec)),
      cpuUsPerReq: medianOf(t.runs.map((r) => r.cpuUsPerReq)),
      vsGateway: ratios(t.runs, gateway),
      vsUndici: ratios(t.runs, undici),
      latencyMs: latencyMedians(t.runs),
      rssUnderLoad: { median: medianOf(underLoad), peak: underLoad.length === 0 ? NaN : Math.max(...underLoad) },
      coldStart: distribution(t.coldStarts.map((c) => c.ms)),
      firstRequest: distribution(t.coldStarts.map((c) => c.firstRequestMs)),
      errors: t.runs.reduce((n, r) => n + r.result.errors + r.result.non2xx + r.result.timeouts, 0),
      loads: t.runs.map((r) => r.load),
    };
  });
}
