/**
 * The load runs of the report: each warm process's one-time warm-up, and one measured run of a
 * target in a round. The load generator is bench/lib/load.ts (autocannon in its own process, on
 * the other core); CPU is read from /proc around the measured part, for the target's whole
 * process tree (bench/lib/processes.ts reads one process, which misses the workers of a box).
 */
import { loadavg } from 'node:os';
import type { LoadResult } from '../lib/load.js';
import { cpuUs, load } from '../lib/processes.js';
import type { Live } from './launch.js';
import { treeCpuUs } from './proc-tree.js';
import type { ReportSettings, RoundRun } from './results.js';
import type { RssSampler } from './rss-sampler.js';
import { REQUEST_HEADERS, type Target } from './targets.js';

/** A fresh process runs its request path interpreted for its first thousands of requests: `requests` of them first (at most 15 s). */
export function warmUp(target: Target, live: Live, requests: number, connections: number, sampler: RssSampler): Promise<void> {
  const spec = { url: `http://127.0.0.1:${live.port}${target.path}`, connections, warmupS: 0, durationS: 15, headers: REQUEST_HEADERS, warmupRequests: requests };
  sampler.active = target.id;
  const proc = load(spec, () => undefined);
  return new Promise((resolve, reject) => {
    proc.once('close', (code) => {
      sampler.active = null;
      if (code === 0) resolve();
      else reject(new Error(`the warm-up of ${target.id} exited with ${code}`));
    });
  });
}

/** One measured run: `settings.warmupS` of load thrown away, then `settings.durationS` measured. */
export function measureRun(target: Target, live: Live, upstreamPid: number, round: number, settings: ReportSettings, sampler: RssSampler): Promise<RoundRun> {
  const spec = { url: `http://127.0.0.1:${live.port}${target.path}`, connections: settings.connections, warmupS: settings.warmupS, durationS: settings.durationS, headers: REQUEST_HEADERS };
  const pid = live.proc.pid!;
  sampler.active = target.id;
  const fromS = sampler.now();
  return new Promise((resolve, reject) => {
    let cpu0 = 0;
    let up0 = 0;
    let run: RoundRun | undefined;
    let failure: Error | undefined;
    const proc = load(spec, (line) => {
      try {
        const msg = JSON.parse(line) as { phase?: string } & LoadResult;
        if (msg.phase === 'measure') {
          cpu0 = treeCpuUs(pid);
          up0 = cpuUs(upstreamPid);
          return;
        }
        // Read at once: the CPU counters must stop with the load, not when its process has exited.
        const cpu = treeCpuUs(pid) - cpu0;
        const up = cpuUs(upstreamPid) - up0;
        run = {
          scenario: target.id, round, load: loadAverage(), result: msg, fromS, toS: sampler.now(),
          cpuUsPerReq: cpu / msg.requests, upstreamCpuUsPerReq: up / msg.requests,
        };
      } catch (err) {
        failure = new Error(`target ${target.id}: ${(err as Error).message}`);
      }
    });
    // Settled on 'close' (its stdout read to the end), so that no two load generators ever overlap.
    proc.once('close', (code) => {
      sampler.active = null;
      if (run !== undefined) resolve(run);
      else reject(failure ?? new Error(`the load generator for ${target.id} exited with ${code} before its result`));
    });
  });
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}
