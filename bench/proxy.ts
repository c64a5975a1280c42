/**
 * Proxy throughput bench: the gateway against the proxies users know, all in front of the same
 * local upstream, at 1 KB, 64 KB and 1 MiB responses.
 *
 *   npm run bench:proxy                          # = npx tsx bench/proxy.ts, 12 rounds, ~12 minutes
 *   npx tsx bench/proxy.ts --json out.json       # also writes every run as JSON
 *   BENCH_ROUNDS=20 npx tsx bench/proxy.ts       # steadier
 *   BENCH_ROUNDS=2 BENCH_DURATION=2 npx tsx bench/proxy.ts   # quicker, noisier
 *   BENCH_ONLY=undici,gw-0,control npx tsx bench/proxy.ts    # a subset of scenarios
 *   BENCH_BASELINE=../before npx tsx bench/proxy.ts          # also base-gw-0, base-gw-1, base-gw-0-info from that build
 *
 * Every party has its own process: the upstream, each proxy under test, and the load generator
 * (autocannon, bench/lib/load.ts); the proxies are pinned to one core and the upstream and the
 * load generator to the other, every process is warmed up once and the scenarios are measured in
 * rounds (bench/lib/processes.ts). The tables (bench/lib/compare.ts) put CPU µs per request of
 * the process under test first, with req/s and latency beside it, and a control: a second
 * gateway process with no filter, which must read within 5% of the first.
 *
 * The gateway runs as users run it: `node dist/gateway/cli.js start --config <file>` (built first), with
 * log.level error (the access log is measured separately, in the gw-0-info scenario).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlVerdict, pick, printAgainstBaseline, printRows, printTargets, rows, type Target } from './lib/compare.js';
import { NGINX, startNginx } from './lib/nginx.js';
import {
  ROOT, baselineTwins, benchOptions, cleanUp, ensureFilters, printSetup, runRounds, startGateway, startServer,
  type ScenarioDef, type Started,
} from './lib/processes.js';
import { CLIENT_HEADERS } from './lib/client-headers.js';

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
  const scenario = (id: string, label: string, stamps: number, gateway: boolean, start: ScenarioDef['start'], path = '/'): ScenarioDef => ({
    id, label, headers: CLIENT_HEADERS, start, path, check: (under) => check(id, under.port, stamps, gateway),
  });
  const gateway = (id: string, filters: number, level: string, root?: string): (() => Promise<Started>) =>
    () => startGateway(id, (port, admin) => gatewayConfig(port, admin, up.port, filters, level), true, root);
  const defs: ScenarioDef[] = [
    { ...scenario('direct', 'direct to the upstream (unpinned: shares its core)', 0, false, async () => up), unpinned: true },
    scenario('http-proxy-3-ka', 'http-proxy-3 + keep-alive agent', 0, false, () => startServer('http-proxy-3-ka', target)),
    scenario('undici', 'undici `Pool.stream` proxy', 0, false, () => startServer('undici', target)),
    ...(NGINX === undefined ? [] : [scenario('nginx', 'nginx, 1 worker, keep-alive upstream', 0, false, () => startNginx(up.port))]),
    scenario('gw-0', 'gateway, no filters', 0, true, gateway('gw-0', 0, 'error')),
    scenario('control', 'control: gateway, no filters, a second process', 0, true, gateway('control', 0, 'error')),
    scenario('gw-1', 'gateway, 1 filter (stamp)', 1, true, gateway('gw-1', 1, 'error')),
    scenario('gw-3', 'gateway, 3 filters (stamp ×3, 3 VMs)', 3, true, gateway('gw-3', 3, 'error')),
    scenario('gw-0-info', 'gateway, no filters, log.level info (access log)', 0, true, gateway('gw-0-info', 0, 'info')),
    scenario('undici-64k', 'undici proxy, 64 KB responses', 0, false, () => startServer('undici', target), '/64k'),
    scenario('gw-0-64k', 'gateway, no filters, 64 KB responses', 0, true, gateway('gw-0-64k', 0, 'error'), '/64k'),
    scenario('undici-1m', 'undici proxy, 1 MiB responses', 0, false, () => startServer('undici', target), '/1m'),
    scenario('gw-0-1m', 'gateway, no filters, 1 MiB responses', 0, true, gateway('gw-0-1m', 0, 'error'), '/1m'),
  ];
  // BENCH_BASELINE: the same gateway rows from the baseline's build, at 1 KB.
  const twins = { 'gw-0': [0, 'error'], 'gw-1': [1, 'error'], 'gw-0-info': [0, 'info'] } as const;
  defs.push(...baselineTwins(defs, (d, root) => {
    const made = twins[d.id as keyof typeof twins];
    if (made === undefined) return null;
    const id = `base-${d.id}`;
    return { ...scenario(id, `baseline: ${d.label}`, made[0], true, gateway(id, made[0], made[1], root)) };
  }, OPTIONS));
  const wanted = defs.filter((d) => OPTIONS.only === undefined || OPTIONS.only.includes(d.id));

  printSetup(OPTIONS);
  const runs = await runRounds(wanted, up, OPTIONS);
  const table = rows(runs, wanted, 'gw-0');
  printRows(table, 'gw-0');
  printAgainstBaseline(runs, wanted);
  const verdict = controlVerdict(table, 'control');
  console.log(`\n${verdict.line}`);

  // Gateway ÷ reference, per round, at the same response size: req/s, and CPU per request the other way round.
  const versus = (a: string, b: string, field: 'req' | 'cpu'): number => {
    const ra = table.find((r) => r.id === a);
    const rb = table.find((r) => r.id === b);
    if (ra === undefined || rb === undefined) return NaN;
    return field === 'req' ? ra.reqRatio / rb.reqRatio : ra.cpuRatio / rb.cpuRatio;
  };
  const targets: Target[] = [
    { name: 'gateway ÷ undici proxy, req/s at 1 KB', value: () => versus('gw-0', 'undici', 'req'), kind: 'min', target: 0.95 },
    { name: 'gateway ÷ undici proxy, req/s at 64 KB', value: () => versus('gw-0-64k', 'undici-64k', 'req'), kind: 'min', target: 0.9 },
    { name: 'gateway ÷ undici proxy, CPU per request at 64 KB', value: () => versus('gw-0-64k', 'undici-64k', 'cpu'), kind: 'max', target: 1.1 },
    { name: 'gateway ÷ undici proxy, CPU per request at 1 MiB', value: () => versus('gw-0-1m', 'undici-1m', 'cpu'), kind: 'max', target: 1.1 },
    { name: 'gateway ÷ nginx (1 worker), req/s at 1 KB', value: () => versus('gw-0', 'nginx', 'req'), kind: 'min', target: 0.75 },
    { name: 'one filter (stamp) ÷ no filter, req/s', value: (t) => pick(t, 'gw-1', (r) => r.reqRatio), kind: 'min', target: 0.92 },
    { name: 'gateway ÷ http-proxy-3 + keep-alive, req/s', value: () => versus('gw-0', 'http-proxy-3-ka', 'req'), kind: 'min', target: 1.2 },
  ];
  printTargets(table, targets);
  if (!verdict.ok) console.log('\n(the control says this run is too noisy to judge the targets)');
  if (OPTIONS.jsonOut !== undefined) writeFileSync(OPTIONS.jsonOut, JSON.stringify({ node: process.version, ...OPTIONS, runs }, null, 2));
}

try {
  await main();
} finally {
  cleanUp();
}
