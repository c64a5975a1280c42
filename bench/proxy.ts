/**
 * Proxy throughput bench (issue point 11): the gateway against the Node.js proxies users know, all
 * in front of the same local upstream.
 *
 *   npm run bench:proxy                          # = npx tsx bench/proxy.ts, 3 rounds, ~6 minutes
 *   npx tsx bench/proxy.ts --json out.json       # also writes every run as JSON
 *   BENCH_ROUNDS=5 npx tsx bench/proxy.ts        # steadier (the README table), ~10 minutes
 *   BENCH_ROUNDS=1 BENCH_DURATION=3 npx tsx bench/proxy.ts   # quicker, noisier
 *   BENCH_ONLY=undici,gw-0 npx tsx bench/proxy.ts            # a subset of scenarios
 *
 * Every party has its own process: the upstream, each proxy under test, and the load generator
 * (autocannon, bench/lib/load.ts), so no two share an event loop. On a small machine they still
 * share cores, so each scenario runs BENCH_ROUNDS times. Each round starts a fresh process per
 * proxy, warms it up, then measures the scenarios one after the other (in a rotated order); the
 * table shows medians, and the targets are ratios between scenarios of the same round, whose
 * drift cancels. Besides req/s and latency the table shows the CPU time the process under test
 * spent per request (from /proc), which contention moves less than throughput.
 *
 * The gateway runs as users run it: `node --import tsx gateway/cli.ts start --config <file>`, with
 * log.level error (access logs are measured separately, in the gw-0-info scenario).
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  CLIENT_HEADERS, ROOT, benchOptions, cleanUp, ensureFilters, fmt, median, pairedRatio, printSetup, runRounds, startGateway, startServer,
  type Run, type ScenarioDef, type Started,
} from './lib/processes.js';

const OPTIONS = benchOptions();
const STAMP = join(ROOT, 'filters/dist/stamp.wasm');

function gatewayConfig(port: number, admin: number, upstream: number, filters: number, level: string): object {
  const plugins = Array.from({ length: filters }, (_, i) => ({
    // One VM per plugin (distinct vmId), as three different filters would have.
    name: `stamp-${i + 1}`, module: STAMP, vmId: `stamp-${i + 1}`, configuration: `stamp ${i + 1}`,
  }));
  return {
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level },
    clusters: [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }],
    plugins,
    routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'upstream', filters: plugins.map((p) => p.name) }],
  };
}

/** Checks a scenario does what its row claims before it is measured. */
async function check(id: string, port: number, stamps: number, gateway: boolean): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/check`, { headers: CLIENT_HEADERS });
  const seen = await res.json() as Record<string, string>;
  const problems: string[] = [];
  if (res.status !== 200) problems.push(`status ${res.status}`);
  const expectStamp = stamps === 0 ? undefined : Array.from({ length: stamps }, (_, i) => `stamp ${i + 1}`).join(', ');
  if (seen['x-edge-stamp'] !== expectStamp) problems.push(`upstream saw x-edge-stamp ${seen['x-edge-stamp']}, expected ${expectStamp}`);
  const servedBy = stamps === 0 ? null : Array(stamps).fill('edge-gateway').join(', ');
  if (res.headers.get('x-served-by') !== servedBy) problems.push(`client saw x-served-by ${res.headers.get('x-served-by')}, expected ${servedBy}`);
  if (gateway && (seen['x-request-id'] === undefined || seen['x-forwarded-for'] !== '127.0.0.1')) problems.push('no x-request-id / x-forwarded-for');
  if (seen['user-agent'] !== CLIENT_HEADERS['user-agent']) problems.push('user-agent not forwarded');
  const body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  if (problems.length > 0) throw new Error(`scenario ${id}: ${problems.join('; ')}`);
}

async function main(): Promise<void> {
  ensureFilters();
  const up = await startServer('upstream');
  const target = `http://127.0.0.1:${up.port}`;
  const scenario = (id: string, label: string, stamps: number, gateway: boolean, start: ScenarioDef['start']): ScenarioDef => ({
    id, label, headers: CLIENT_HEADERS, start, check: (under) => check(id, under.port, stamps, gateway),
  });
  const gateway = (id: string, filters: number, level: string): (() => Promise<Started>) =>
    () => startGateway(id, (port, admin) => gatewayConfig(port, admin, up.port, filters, level));
  const defs = [
    scenario('direct', 'direct to the upstream', 0, false, async () => up),
    scenario('http-proxy-3', 'http-proxy-3, minimal (no agent: a connection per request)', 0, false, () => startServer('http-proxy-3', target)),
    scenario('http-proxy-3-ka', 'http-proxy-3 + keep-alive agent', 0, false, () => startServer('http-proxy-3-ka', target)),
    scenario('undici', 'undici `Pool.stream` proxy', 0, false, () => startServer('undici', target)),
    scenario('gw-0', 'gateway, no filters', 0, true, gateway('gw-0', 0, 'error')),
    scenario('gw-1', 'gateway, 1 filter (stamp)', 1, true, gateway('gw-1', 1, 'error')),
    scenario('gw-3', 'gateway, 3 filters (stamp ×3, 3 VMs)', 3, true, gateway('gw-3', 3, 'error')),
    scenario('gw-0-info', 'gateway, no filters, log.level info (access log)', 0, true, gateway('gw-0-info', 0, 'info')),
  ];
  const wanted = defs.filter((d) => OPTIONS.only === undefined || OPTIONS.only.includes(d.id));

  printSetup(OPTIONS);
  const runs = await runRounds(wanted, up, OPTIONS);
  const labels = new Map(wanted.map((d) => [d.id, d.label]));
  console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const of = (id: string): Run[] => runs.filter((r) => r.scenario === id);
  console.log('\n| scenario | req/s | p50 ms | p99 ms | CPU µs/req (process under test) | upstream CPU µs/req | errors | req/s per round (best) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const [id, label] of labels) {
    const s = { id, label };
    const rs = of(s.id);
    const errors = rs.reduce((n, r) => n + r.result.errors + r.result.non2xx + r.result.timeouts, 0);
    console.log(`| ${s.label} | ${fmt(median(rs.map((r) => r.result.reqPerSec)))} | ${fmt(median(rs.map((r) => r.result.p50Ms)), 2)} | ${fmt(median(rs.map((r) => r.result.p99Ms)), 2)} | ${fmt(median(rs.map((r) => r.cpuUsPerReq)), 1)} | ${fmt(median(rs.map((r) => r.upstreamCpuUsPerReq)), 1)} | ${errors} | ${rs.map((r) => fmt(r.result.reqPerSec)).join(', ')} (${fmt(Math.max(...rs.map((r) => r.result.reqPerSec)))}) |`);
  }

  const ratios: { name: string; a: string; b: string; target?: number }[] = [
    { name: 'gateway no filters / http-proxy-3 + keep-alive', a: 'gw-0', b: 'http-proxy-3-ka', target: 1.2 },
    { name: 'gateway no filters / http-proxy-3 minimal', a: 'gw-0', b: 'http-proxy-3', target: 1.2 },
    { name: 'gateway no filters / undici proxy', a: 'gw-0', b: 'undici', target: 0.85 },
    { name: 'one filter / no filter', a: 'gw-1', b: 'gw-0', target: 0.92 },
    { name: 'three filters / no filter', a: 'gw-3', b: 'gw-0', target: 0.8 },
    { name: 'access log at info / log.level error', a: 'gw-0-info', b: 'gw-0' },
    { name: 'undici proxy / direct', a: 'undici', b: 'direct' },
  ];
  console.log('\n| ratio of req/s | median of per-round ratios | per round | ratio of medians | ratio of bests | CPU/req ratio (b/a) | target | result |');
  console.log('|---|---:|---|---:|---:|---:|---:|---|');
  for (const q of ratios) {
    const a = of(q.a);
    const b = of(q.b);
    if (a.length === 0 || b.length === 0) continue;
    const { median: paired, perRound } = pairedRatio(a, b, (r) => r.result.reqPerSec);
    const ofMedians = median(a.map((r) => r.result.reqPerSec)) / median(b.map((r) => r.result.reqPerSec));
    const ofBests = Math.max(...a.map((r) => r.result.reqPerSec)) / Math.max(...b.map((r) => r.result.reqPerSec));
    const cpuRatio = median(b.map((r) => r.cpuUsPerReq)) / median(a.map((r) => r.cpuUsPerReq));
    const verdict = q.target === undefined ? '' : paired >= q.target ? 'PASS' : 'FAIL';
    console.log(`| ${q.name} | ${fmt(paired, 2)} | ${perRound.map((x) => fmt(x, 2)).join(', ')} | ${fmt(ofMedians, 2)} | ${fmt(ofBests, 2)} | ${q.a === 'direct' || q.b === 'direct' ? '—' : fmt(cpuRatio, 2)} | ${q.target === undefined ? '' : `≥ ${q.target}`} | ${verdict} |`);
  }
  if (OPTIONS.jsonOut !== undefined) writeFileSync(OPTIONS.jsonOut, JSON.stringify({ node: process.version, ...OPTIONS, runs }, null, 2));
}

try {
  await main();
} finally {
  cleanUp();
}
