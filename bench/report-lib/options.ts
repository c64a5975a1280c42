/**
 * The report's settings, from the environment:
 *
 *   BENCH_QUICK=1            a ~1 minute smoke run: 2 rounds of 0.25 + 1 s, 3 cold starts, short warm-ups
 *   BENCH_ROUNDS             rounds (default 5)
 *   BENCH_WARMUP             s of unmeasured load before each measured run (default 0.5)
 *   BENCH_DURATION           s measured per run (default 1.5)
 *   BENCH_CONNECTIONS        autocannon connections (default 16)
 *   BENCH_PROCESS_WARMUP     requests each warm process gets once (default 10 000)
 *   BENCH_FUNCTION_WARMUP    the same for the edge function (default 1 000: it answers ~200 a second)
 *   BENCH_COLD_STARTS        spawns per target for the cold-start figure (default 10)
 *   BENCH_ONLY               target ids to run, comma-separated (the no-filter gateway and the undici proxy always run)
 */
import type { ReportSettings } from './results.js';

export interface ReportOptions extends ReportSettings {
  only: string[] | undefined;
}

function number(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${raw}: expected a number ≥ ${min}`);
  return value;
}

export function reportOptions(): ReportOptions {
  const quick = process.env.BENCH_QUICK === '1';
  return Object.freeze({
    quick,
    rounds: Math.round(number('BENCH_ROUNDS', quick ? 2 : 5, 1)),
    warmupS: number('BENCH_WARMUP', quick ? 0.25 : 0.5, 0),
    durationS: number('BENCH_DURATION', quick ? 1 : 1.5, 0.25),
    // Moderate on purpose: tail latency at 16 requests in flight is still mostly the proxy's own,
    // not a queue of 50 (bench/proxy.ts's count, where p99 is Little's law).
    connections: Math.round(number('BENCH_CONNECTIONS', 16, 1)),
    processWarmup: Math.round(number('BENCH_PROCESS_WARMUP', quick ? 3000 : 10_000, 0)),
    functionWarmup: Math.round(number('BENCH_FUNCTION_WARMUP', quick ? 300 : 1000, 0)),
    coldStarts: Math.round(number('BENCH_COLD_STARTS', quick ? 3 : 10, 1)),
    rssIntervalMs: 250,
    only: process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean),
  });
}
