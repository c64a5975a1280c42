/**
 * The tables of the proxy benches (bench/proxy.ts, bench/proxy-filters.ts), from the runs of
 * bench/lib/processes.ts: one row per scenario against a baseline scenario, a control row, and
 * the targets with PASS/FAIL.
 *
 * Every ratio is the median of per-round ratios: both runs of a pair come from the same round,
 * so a slow stretch of the machine hits both. CPU µs per request of the process under test is
 * the primary figure; req/s and latency stand beside it. The control is a second process of the
 * baseline's code: the bench is trusted only when the two agree within CONTROL_TOLERANCE.
 */
import type { Run, ScenarioDef } from './processes.js';
import { fmt, median } from './stats.js';

/** How far the control may read from the baseline before the run calls itself too noisy. */
export const CONTROL_TOLERANCE = 0.05;

export interface Row {
  id: string;
  label: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number;
  /** A gateway's GC time per request and young-generation collections per 1000 requests (NaN for other proxies). */
  gcUsPerReq: number;
  minorGcPer1k: number;
  errors: number;
  /** Per-round req/s of this scenario ÷ the baseline's: median, and each round's. */
  reqRatio: number;
  reqRatios: number[];
  /** Per-round CPU µs per request of this scenario ÷ the baseline's (median), and minus it. */
  cpuRatio: number;
  cpuDelta: number;
  /** CPU µs per request above the baseline, round by round. */
  cpuDeltas: number[];
  /** The 1-minute load average at each round's run. */
  loads: number[];
}

/** Median over the rounds of of(a) ÷ of(b), each pair from the same round. */
export function pairedRatio(a: Run[], b: Run[], of: (r: Run) => number): { median: number; perRound: number[] } {
  const perRound: number[] = [];
  for (const ra of a) {
    const rb = b.find((r) => r.round === ra.round);
    if (rb !== undefined) perRound.push(of(ra) / of(rb));
  }
  return { median: median(perRound), perRound };
}

/** One row per scenario of `defs`, against the scenario `baseline`. */
export function rows(runs: Run[], defs: ScenarioDef[], baseline: string): Row[] {
  const of = (id: string): Run[] => runs.filter((r) => r.scenario === id);
  const base = of(baseline);
  return defs.map((d) => {
    const rs = of(d.id);
    const cpu = pairedRatio(rs, base, (r) => r.cpuUsPerReq);
    const deltas = rs.map((r) => r.cpuUsPerReq - (base.find((b) => b.round === r.round)?.cpuUsPerReq ?? NaN));
    const req = pairedRatio(rs, base, (r) => r.result.reqPerSec);
    return {
      id: d.id, label: d.label,
      reqPerSec: median(rs.map((r) => r.result.reqPerSec)),
      p50Ms: median(rs.map((r) => r.result.p50Ms)),
      p99Ms: median(rs.map((r) => r.result.p99Ms)),
      cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
      gcUsPerReq: median(rs.flatMap((r) => (r.gc === undefined ? [] : [r.gc.usPerReq]))),
      minorGcPer1k: median(rs.flatMap((r) => (r.gc === undefined ? [] : [r.gc.minorPer1k]))),
      errors: rs.reduce((n, r) => n + r.result.errors + r.result.non2xx + r.result.timeouts, 0),
      reqRatio: req.median, reqRatios: req.perRound, cpuRatio: cpu.median, cpuDelta: median(deltas), cpuDeltas: deltas,
      loads: rs.map((r) => r.load),
    };
  });
}

/** The scenario table, as bench/README.md shows it. */
export function printRows(table: Row[], baseline: string): void {
  console.log(`\n| scenario | req/s | ÷ ${baseline} (per round) | p50 ms | p99 ms | CPU µs/req | CPU ÷ ${baseline} | Δ CPU µs/req | GC µs/req | minor GCs per 1k req | load per round | errors |`);
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const r of table) {
    const isBase = r.id === baseline;
    console.log(`| ${r.label} | ${fmt(r.reqPerSec)} | ${isBase ? '1' : `${fmt(r.reqRatio, 2)} (${r.reqRatios.map((x) => fmt(x, 2)).join(', ')})`}`
      + ` | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.cpuUsPerReq, 1)} | ${isBase ? '1' : fmt(r.cpuRatio, 2)} | ${isBase ? '' : fmt(r.cpuDelta, 1)}`
      + ` | ${fmt(r.gcUsPerReq, 1)} | ${fmt(r.minorGcPer1k, 1)}`
      + ` | ${r.loads.map((l) => l.toFixed(1)).join(' ')} | ${r.errors} |`);
  }
}

/** One scenario against its `base-` twin (BENCH_BASELINE): this build ÷ the baseline's, per round. */
export interface BaselineRow {
  label: string;
  cpuUsPerReq: number;
  baseCpuUsPerReq: number;
  cpuRatio: number;
  reqRatio: number;
}

/**
 * Each scenario of `defs` that has a `base-` twin (the same scenario from the baseline's build, in
 * the same rounds), against it: medians of per-round ratios, as every other row.
 */
export function againstBaseline(runs: Run[], defs: ScenarioDef[]): BaselineRow[] {
  const of = (id: string): Run[] => runs.filter((r) => r.scenario === id);
  return defs.filter((d) => defs.some((b) => b.id === `base-${d.id}`)).map((d) => {
    const [mine, base] = [of(d.id), of(`base-${d.id}`)];
    return {
      label: d.label,
      cpuUsPerReq: median(mine.map((r) => r.cpuUsPerReq)),
      baseCpuUsPerReq: median(base.map((r) => r.cpuUsPerReq)),
      cpuRatio: pairedRatio(mine, base, (r) => r.cpuUsPerReq).median,
      reqRatio: pairedRatio(mine, base, (r) => r.result.reqPerSec).median,
    };
  });
}

export function printAgainstBaseline(runs: Run[], defs: ScenarioDef[]): void {
  const table = againstBaseline(runs, defs);
  if (table.length === 0) return;
  console.log('\n| scenario | CPU µs/req, this build | baseline build | this ÷ baseline, CPU/req | this ÷ baseline, req/s |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of table) {
    console.log(`| ${r.label} | ${fmt(r.cpuUsPerReq, 1)} | ${fmt(r.baseCpuUsPerReq, 1)} | ${fmt(r.cpuRatio, 3)} | ${fmt(r.reqRatio, 3)} |`);
  }
}

/** The control's verdict: the bench's own noise, in the same units as every other ratio. */
export function controlVerdict(table: Row[], control: string): { ok: boolean; line: string } {
  const row = table.find((r) => r.id === control);
  if (row === undefined) return { ok: false, line: 'no control row' };
  const off = Math.max(Math.abs(row.cpuRatio - 1), Math.abs(row.reqRatio - 1));
  const ok = off <= CONTROL_TOLERANCE;
  const figures = `CPU/req ${fmt(row.cpuRatio, 3)}, req/s ${fmt(row.reqRatio, 3)}`;
  return { ok, line: ok
    ? `control (a second process of the baseline's code) agrees: ${figures}, within ${CONTROL_TOLERANCE * 100}%`
    : `TOO NOISY: the control reads ${figures} of the baseline (more than ${CONTROL_TOLERANCE * 100}% off); rerun on a quieter machine` };
}

export interface Target {
  name: string;
  /** The measured figure, from the rows. */
  value: (table: Row[]) => number;
  /** `min`: the figure must be at least `target`; `max`: at most. */
  kind: 'min' | 'max';
  target: number;
  digits?: number;
}

/** The targets table; a target whose scenario did not run is left out. */
export function printTargets(table: Row[], targets: Target[]): void {
  console.log('\n| target | measured | wanted | result |');
  console.log('|---|---:|---:|---|');
  for (const t of targets) {
    const v = t.value(table);
    if (!Number.isFinite(v)) continue;
    const pass = t.kind === 'min' ? v >= t.target : v <= t.target;
    console.log(`| ${t.name} | ${fmt(v, t.digits ?? 2)} | ${t.kind === 'min' ? '≥' : '≤'} ${t.target} | ${pass ? 'PASS' : 'FAIL'} |`);
  }
}

/** A row's field by scenario id (NaN when it did not run). */
export function pick(table: Row[], id: string, field: (r: Row) => number): number {
  const row = table.find((r) => r.id === id);
  return row === undefined ? NaN : field(row);
}
