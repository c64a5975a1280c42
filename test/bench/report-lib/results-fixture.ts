/**
 * A small results object as bench/report.ts writes it, for the report's tests: targets with
 * hand-picked figures per round, so that every statistic and every bar can be worked out by hand.
 */
import type { ReportResults, RoundRun, TargetResult } from '../../../bench/report-lib/results.js';

/** One measured run: `reqPerSec` and `cpuUsPerReq` as given, latencies `latencyMs` (p50…max). */
export function run(scenario: string, round: number, reqPerSec: number, cpuUsPerReq: number, latencyMs = [1, 2, 3, 4, 5, 6]): RoundRun {
  return {
    scenario, round, load: 1 + round, cpuUsPerReq, upstreamCpuUsPerReq: 20, fromS: round * 10, toS: round * 10 + 2,
    result: { requests: reqPerSec * 2, reqPerSec, p50Ms: latencyMs[0], p99Ms: latencyMs[3], latencyMs, errors: 0, timeouts: 0, non2xx: 0 },
  };
}

export function target(id: string, label: string, runs: RoundRun[], extra: Partial<TargetResult> = {}): TargetResult {
  return {
    id, label, group: id.startsWith('gw-') ? 'gateway' : 'peer', status: 'measured', pinned: true,
    idleRssMb: 80, firstStartMs: 900, coldStarts: [{ ms: 500, firstRequestMs: 20 }, { ms: 700, firstRequestMs: 30 }, { ms: 600, firstRequestMs: 25 }],
    runs, ...extra,
  };
}

/**
 * The no-filter gateway at 1 000 req/s and 100 µs/req, undici at 2 000 req/s and 50 µs/req (round
 * 1 is twice as slow for both), nginx not installed.
 */
export function smallResults(): ReportResults {
  return {
    startedAt: '2026-12-07T10:00:00.000Z', finishedAt: '2026-12-07T10:04:00.000Z', durationS: 240,
    machine: {
      cpuModel: 'Test CPU', cores: 2, memoryGb: 24, os: 'Debian GNU/Linux 12 (bookworm)', kernel: '6.1.0', node: 'v20.20.2', v8: '11.3',
      undici: '7.30.2', httpProxy3: '1.23.3', autocannon: '9.0.0', nginx: null, haproxy: 'HAProxy version 2.6.12', commit: 'abc1234', pinned: true,
    },
    settings: { quick: false, rounds: 2, warmupS: 0.5, durationS: 1.5, connections: 16, processWarmup: 10_000, functionWarmup: 1000, coldStarts: 3, rssIntervalMs: 250 },
    targets: [
      target('gw-none', 'gateway, no filter', [run('gw-none', 0, 1000, 100), run('gw-none', 1, 500, 200)]),
      target('undici', 'undici proxy', [run('undici', 0, 2000, 50, [0.5, 1, 1.5, 2, 2.5, 3]), run('undici', 1, 1000, 100, [0.7, 1, 1.5, 4, 4.5, 5])]),
      target('nginx', 'nginx (1 worker)', [], { status: 'not installed', note: 'not installed (Debian: apt-get install nginx-light)', idleRssMb: NaN, firstStartMs: NaN, coldStarts: [] }),
    ],
    rss: [
      { t: 0, mb: { 'gw-none': 80, undici: 60 }, active: 'gw-none', phase: 'warm-up' },
      { t: 1, mb: { 'gw-none': 90, undici: 60 }, active: 'gw-none', phase: 'rounds' },
      { t: 2, mb: { 'gw-none': 110, undici: 61 }, active: 'gw-none', phase: 'rounds' },
      { t: 3, mb: { 'gw-none': 95, undici: 70 }, active: 'undici', phase: 'rounds' },
      { t: 4, mb: { 'gw-none': 95, undici: 66 }, active: null, phase: 'rounds' },
    ],
    loadAverage: { start: 0.5, end: 2.5 },
  };
}
