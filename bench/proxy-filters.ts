/**
 * Per-filter cost through the gateway: one row per shipped filter, each alone on the route, against
 * the same gateway with no filter, plus the filter's µs per request in the ABI host alone
 * (bench/filters.ts, run in its own process after the load runs).
 *
 *   npm run bench:filters                             # = npx tsx bench/proxy-filters.ts, 3 rounds, ~6 min
 *   BENCH_ROUNDS=5 npx tsx bench/proxy-filters.ts --json out.json   # steadier; JSON of every run
 *   BENCH_ONLY=headers,jwt npx tsx bench/proxy-filters.ts           # some filters (and no filter)
 *   BENCH_ROUNDS=1 BENCH_DURATION=3 npx tsx bench/proxy-filters.ts  # quick and noisy
 *
 * Processes, rounds and warm-up as in bench/proxy.ts (bench/lib/processes.ts). Each filter runs with
 * its README configuration (bench/lib/filter-cases.ts) on a request that carries what the filter
 * needs to let it through, and each scenario is checked before it is measured: the upstream and
 * the client must see the headers that prove the filter did its work. The ratios are medians of
 * per-round ratios against `none` (the same gateway without a filter, same request headers but
 * the filter's own).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { FILTER_CASES, unmet, type FilterCase } from './lib/filter-cases.js';
import { gatewayConfig } from './lib/filter-gateway.js';
import {
  CLIENT_HEADERS, ROOT, benchOptions, cleanUp, ensureFilters, fmt, median, pairedRatio, printSetup, runRounds, startGateway, startServer,
  tempFile, type Run, type ScenarioDef, type Started,
} from './lib/processes.js';

const OPTIONS = benchOptions();


/** Throws unless the gateway forwards `GET /` and the filter did its work on `GET /check`. */
async function check(id: string, under: Started, c: FilterCase | undefined, headers: Record<string, string>): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${under.port}/check`, { headers });
  const seen = await res.json() as Record<string, string>;
  const problems = c === undefined ? [] : unmet(c, (name) => seen[name], (name) => res.headers.get(name) ?? undefined);
  if (res.status !== 200) problems.push(`status ${res.status}`);
  if (seen['user-agent'] !== CLIENT_HEADERS['user-agent']) problems.push('user-agent not forwarded');
  const body = await fetch(`http://127.0.0.1:${under.port}/`, { headers }).then((r) => r.text());
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  if (c?.metric !== undefined) {
    // on_log runs after the reply: give the metric a moment to be recorded.
    let text = '';
    for (let i = 0; i < 50 && !text.includes(c.metric); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      text = await fetch(`http://127.0.0.1:${under.admin}/metrics`).then((r) => r.text());
    }
    if (!text.includes(c.metric)) problems.push(`/metrics has no ${c.metric}`);
  }
  if (problems.length > 0) throw new Error(`scenario ${id}: ${problems.join('; ')}`);
}

/** bench/filters.ts in a process of its own, after the load runs: the ABI host's µs per request. */
function abiCosts(names: string[]): Promise<Map<string, number>> {
  const out = tempFile('abi.json', '');
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/filters.ts'), '--json', out], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BENCH_ONLY: names.join(',') },
  });
  return new Promise((resolve, reject) => {
    proc.once('close', (code) => {
      if (code !== 0) return reject(new Error(`bench/filters.ts exited with ${code}`));
      const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<{ name: string; median: number }>;
      resolve(new Map(rows.map((r) => [r.name, r.median])));
    });
  });
}

async function main(): Promise<void> {
  const cases = FILTER_CASES.filter((c) => OPTIONS.only === undefined || OPTIONS.only.includes(c.name));
  ensureFilters(cases.map((c) => c.name));
  const up = await startServer('upstream');
  const scenario = (id: string, c: FilterCase | undefined): ScenarioDef => {
    const headers = { ...CLIENT_HEADERS, ...c?.request };
    return {
      id, label: c === undefined ? 'no filter' : c.name, headers,
      start: () => startGateway(id, (port, admin) => gatewayConfig(port, admin, up.port, c)),
      check: (under) => check(id, under, c, headers),
    };
  };
  const defs = [scenario('none', undefined), ...cases.map((c) => scenario(c.name, c))];

  printSetup(OPTIONS);
  const runs = await runRounds(defs, up, OPTIONS);
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('measuring the ABI host alone (bench/filters.ts)…');
  const abi = await abiCosts(cases.map((c) => c.name));

  const of = (id: string): Run[] => runs.filter((r) => r.scenario === id);
  const none = of('none');
  const base = {
    p99: median(none.map((r) => r.result.p99Ms)),
    cpu: median(none.map((r) => r.cpuUsPerReq)),
  };
  console.log('\n| filter | req/s | req/s vs no filter | per round | p99 ms | Δ p99 ms | CPU µs/req | Δ CPU µs/req | ABI host µs/req | errors |');
  console.log('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const d of defs) {
    const rs = of(d.id);
    const errors = rs.reduce((n, r) => n + r.result.errors + r.result.non2xx + r.result.timeouts, 0);
    const p99 = median(rs.map((r) => r.result.p99Ms));
    const cpu = median(rs.map((r) => r.cpuUsPerReq));
    const ratio = pairedRatio(rs, none, (r) => r.result.reqPerSec);
    const isBase = d.id === 'none';
    console.log(`| ${d.label} | ${fmt(median(rs.map((r) => r.result.reqPerSec)))} | ${isBase ? '1' : fmt(ratio.median, 2)} | ${isBase ? '' : ratio.perRound.map((x) => fmt(x, 2)).join(', ')}`
      + ` | ${fmt(p99, 2)} | ${isBase ? '' : fmt(p99 - base.p99, 2)} | ${fmt(cpu, 1)} | ${isBase ? '' : fmt(cpu - base.cpu, 1)} | ${isBase ? '' : fmt(abi.get(d.id) ?? NaN, 2)} | ${errors} |`);
  }
  if (OPTIONS.jsonOut !== undefined) writeFileSync(OPTIONS.jsonOut, JSON.stringify({ node: process.version, ...OPTIONS, runs, abi: Object.fromEntries(abi) }, null, 2));
}

try {
  await main();
} finally {
  cleanUp();
}
