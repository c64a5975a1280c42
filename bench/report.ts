/**
 * The benchmark report: the gateway (no filter, one filter, the shipped chain, an edge function,
 * `workers: 2`) and the proxies a user would pick instead (a bare undici proxy, http-proxy-3,
 * nginx and HAProxy when installed), measured in one run for four figures: memory, cold start,
 * throughput with CPU per request, and tail latency. Writes bench/report/index.html (one
 * self-contained page) and bench/report/results.json (every raw figure, per round).
 *
 *   npm run bench:report                     # = npx tsx bench/report.ts, 5 rounds, ~4 min
 *   BENCH_QUICK=1 npx tsx bench/report.ts    # a ~1 minute smoke run
 *   BENCH_ROUNDS=10 npx tsx bench/report.ts  # steadier
 *
 * The other knobs are in bench/report-lib/options.ts; the method is on the page and in
 * bench/README.md ("Benchmark report"). Processes, pinning and the load generator are those of the
 * proxy benches (bench/lib/processes.ts).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIPPED_CHAIN } from './lib/filter-cases.js';
import { idleRssOver } from './lib/idle-rss.js';
import { OTHER_CORE, ROOT, buildGateway, ensureFilters, pin, runBounded, startServer } from './lib/processes.js';
import { fmt } from './lib/stats.js';
import { coldStarts } from './report-lib/cold-start.js';
import { renderReport } from './report-lib/html.js';
import { startTimed, type Live } from './report-lib/launch.js';
import { describeMachine } from './report-lib/machine.js';
import { reportOptions } from './report-lib/options.js';
import { compilePeerServers } from './report-lib/peer-servers.js';
import { treeRssMb } from './report-lib/proc-tree.js';
import { createProgress } from './report-lib/progress.js';
import { GATEWAY_BASELINE, PROXY_BASELINE, type ColdStart, type ReportResults, type RoundRun, type TargetResult } from './report-lib/results.js';
import { RssSampler } from './report-lib/rss-sampler.js';
import { loadAverage, measureRun, warmUp } from './report-lib/runs.js';
import { markdownTable } from './report-lib/summary-table.js';
import { summarize } from './report-lib/summary.js';
import { REQUEST_HEADERS, reportTargets, type Target } from './report-lib/targets.js';

const OPTIONS = reportOptions();
const OUT_DIR = join(ROOT, 'bench/report');
/** The whole run, however slow the machine: past it everything is stopped (runBounded). */
const LIMIT_MS = 30 * 60_000;

const progress = createProgress(process.stdout);
const t0 = performance.now();
const elapsed = (): string => {
  const s = Math.round((performance.now() - t0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const say = (text: string): void => progress.update(`bench:report [${elapsed()}] ${text}`);

interface Warm {
  live: Live;
  firstStartMs: number;
  idleRssMb: number;
}

/** Starts one warm process per target, each checked; idle RSS is read once all are up, as the lowest over a window (bench/lib/idle-rss.ts). */
async function startWarm(targets: Target[]): Promise<Map<string, Warm>> {
  const warm = new Map<string, Warm>();
  for (const [i, t] of targets.entries()) {
    say(`starting ${t.id} (${i + 1}/${targets.length})`);
    const started = await startTimed(t.id, await t.launch(), t.pinned, t.path, REQUEST_HEADERS);
    await t.check(started.live);
    warm.set(t.id, { live: started.live, firstStartMs: Math.round(started.ms), idleRssMb: NaN });
  }
  await Promise.all([...warm].map(async ([id, w]) => {
    const { mb, settled } = await idleRssOver(() => treeRssMb(w.live.proc.pid!));
    w.idleRssMb = Math.round(mb * 10) / 10;
    if (!settled) console.log(`idle RSS of ${id} was still falling after 30 s: ${w.idleRssMb} MB is an upper bound`);
  }));
  return warm;
}

/** The process warm-ups, then the rounds, in an order rotated by one per round. */
async function rounds(targets: Target[], warm: Map<string, Warm>, upstreamPid: number, sampler: RssSampler): Promise<RoundRun[]> {
  for (const [i, t] of targets.entries()) {
    say(`warming up ${t.id} (${i + 1}/${targets.length})`);
    await warmUp(t, warm.get(t.id)!.live, Math.min(OPTIONS.processWarmup, t.maxWarmup), OPTIONS.connections, sampler);
  }
  sampler.phase = 'rounds';
  const runs: RoundRun[] = [];
  let last = '';
  for (let round = 0; round < OPTIONS.rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(k + round) % targets.length];
      say(`round ${round + 1}/${OPTIONS.rounds}, ${t.id} (${k + 1}/${targets.length})${last}`);
      const run = await measureRun(t, warm.get(t.id)!.live, upstreamPid, round, OPTIONS, sampler);
      runs.push(run);
      last = ` · last: ${t.id} ${fmt(run.result.reqPerSec)} req/s, ${fmt(run.cpuUsPerReq, 1)} µs/req`;
    }
  }
  return runs;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  pin(process.pid, OTHER_CORE); // this driver wakes up between runs and samples memory: keep it off the proxies' core
  say('building the gateway and the filters');
  buildGateway();
  ensureFilters(['headers', ...SHIPPED_CHAIN, 'functions/hello']);
  if (!existsSync(join(ROOT, 'filters/dist/functions/hello.wasm'))) throw new Error('filters/dist/functions/hello.wasm is missing: run npm run build');
  compilePeerServers();
  const upstream = await startServer('upstream');
  const functionCache = mkdtempSync(join(tmpdir(), 'bench-report-fn-'));
  process.once('exit', () => rmSync(functionCache, { recursive: true, force: true }));

  const baselines = [GATEWAY_BASELINE, PROXY_BASELINE];
  const all = reportTargets(upstream.port, functionCache, OPTIONS.functionWarmup)
    .filter((t) => OPTIONS.only === undefined || OPTIONS.only.includes(t.id) || baselines.includes(t.id));
  const runnable = all.filter((t) => t.missing === null);

  const warm = await startWarm(runnable);
  const cold = await coldStarts(runnable, OPTIONS.coldStarts, (i, n, id) => say(`cold start ${i + 1}/${n}, ${id}`));
  const sampler = new RssSampler(new Map(runnable.map((t) => [t.id, warm.get(t.id)!.live.proc.pid!])), OPTIONS.rssIntervalMs);
  sampler.start();
  let runs: RoundRun[];
  try {
    runs = await rounds(runnable, warm, upstream.proc.pid!, sampler);
  } finally {
    sampler.stop();
  }
  progress.done();

  const finishedAt = new Date();
  const { only: _only, ...settings } = OPTIONS;
  const targets: TargetResult[] = all.map((t) => ({
    id: t.id, label: t.label, group: t.group, pinned: t.pinned,
    status: t.missing === null ? 'measured' : 'not installed',
    ...(t.missing !== null ? { note: t.missing } : t.note === undefined ? {} : { note: t.note }),
    idleRssMb: warm.get(t.id)?.idleRssMb ?? NaN,
    firstStartMs: warm.get(t.id)?.firstStartMs ?? NaN,
    coldStarts: cold.get(t.id) ?? ([] as ColdStart[]),
    runs: runs.filter((r) => r.scenario === t.id),
  }));
  const results: ReportResults = {
    startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(),
    durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine: describeMachine(),
    settings,
    targets,
    rss: sampler.samples,
    loadAverage: { start: loadStart, end: loadAverage() },
  };
  const summaries = summarize(results);
  mkdirSync(OUT_DIR, { recursive: true });
  // NaN (a figure that does not exist) is written as null, which is what JSON.stringify makes of it.
  writeFileSync(join(OUT_DIR, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(join(OUT_DIR, 'index.html'), renderReport(results, summaries));

  const m = results.machine;
  const loads = runs.map((r) => r.load);
  console.log(`\n${m.cpuModel} × ${m.cores}, ${fmt(m.memoryGb, 1)} GB, ${m.os}, node ${m.node}; ${results.startedAt}; ${fmt(results.durationS)} s;`
    + ` load average ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)} over the rounds; ${OPTIONS.rounds} rounds of ${OPTIONS.warmupS} + ${OPTIONS.durationS} s, ${OPTIONS.connections} connections\n`);
  console.log(markdownTable(summaries));
  console.log(`\nwrote ${join('bench/report', 'index.html')} and ${join('bench/report', 'results.json')}`);
}

// The progress line is ended on every way out, so that an error starts on a line of its own.
await runBounded('bench/report.ts', LIMIT_MS, main, () => progress.done());
