/**
 * Fleet state: shared data through Redis and a box's cores, with a real redis-server on loopback.
 *
 *   npx tsx bench/shared-state.ts                         # every section, ~4 minutes
 *   BENCH_ONLY=convergence,rate-limit npx tsx bench/shared-state.ts
 *
 * Sections (bench/README.md, "Fleet state"):
 * - convergence: 1000 writes on node A, each timed until node B's copy holds it (two Redis
 *   backends in this process, each with its own connections); p50/p99 against the 10 ms target.
 * - rate-limit: three gateway processes on one Redis, the shipped rate-limit filter (capacity
 *   1000): requests one after another, alternating between the nodes, must pass exactly 1000;
 *   then autocannon on the three nodes at once on a fresh key: the overshoot in % of the capacity.
 * - cost: the rate-limit filter (every request passes) with the memory backend and with Redis,
 *   in rounds (bench/lib/processes.ts): CPU µs per request and req/s, target ≤ 10% more.
 * - cores: req/s of `workers: 2` ÷ `workers: 1`, and nginx with 2 workers beside them, unpinned
 *   (the box uses both cores; the upstream and autocannon share them).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { request, Agent } from 'node:http';
import { join } from 'node:path';
import { configSchema } from '../gateway/config/schema.js';
import { createSharedState } from '../gateway/shared-state/create.js';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import { controlVerdict, pick, printRows, printTargets, rows, type Target } from './lib/compare.js';
import { NGINX, startNginx } from './lib/nginx.js';
import {
  ROOT, benchOptions, cleanUp, ensureFilters, freePort, printSetup, runRounds, startGateway, startServer, stop, track,
  type ScenarioDef, type Started,
} from './lib/processes.js';
import { fmt } from './lib/stats.js';

const OPTIONS = benchOptions();
const SECTIONS = OPTIONS.only ?? ['convergence', 'rate-limit', 'cost', 'cores'];
const RATE_LIMIT = join(ROOT, 'filters/dist/rate-limit.wasm');

/** A redis-server of the bench's own, on a free loopback port, no persistence. */
async function startRedis(): Promise<{ url: string; proc: ReturnType<typeof spawn> }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  track(proc);
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const probe = createSharedState(options(url, 'probe:'), 'probe');
    const up = await until(() => probe.replication()!.connected, 200);
    await probe.close();
    if (up) return { url, proc };
  }
  throw new Error('redis-server did not answer within 20 s');
}

function options(url: string, prefix: string) {
  return configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url, prefix } }).sharedState;
}

async function until(probe: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (probe()) return true;
    await new Promise((r) => setImmediate(r));
  }
  return probe();
}

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

async function convergence(url: string): Promise<Target[]> {
  const a = createSharedState(options(url, 'conv:'), 'a');
  const b = createSharedState(options(url, 'conv:'), 'b');
  await until(() => a.replication()!.connected && b.replication()!.connected, 5000);
  b.data.get('vm', 'k');
  const ms: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const value = new TextEncoder().encode(`v${i}`);
    const t0 = performance.now();
    a.data.set('vm', 'k', value, 0);
    if (!(await until(() => b.data.get('vm', 'k')?.value.length === value.length && new TextDecoder().decode(b.data.get('vm', 'k')!.value) === `v${i}`, 2000))) {
      throw new Error(`write ${i} did not reach node B within 2 s`);
    }
    ms.push(performance.now() - t0);
  }
  await a.close();
  await b.close();
  const p50 = quantile(ms, 0.5);
  const p99 = quantile(ms, 0.99);
  console.log(`convergence over 1000 writes, node A → node B through Redis: p50 ${fmt(p50, 3)} ms, p99 ${fmt(p99, 3)} ms, max ${fmt(Math.max(...ms), 3)} ms`);
  return [{ name: 'convergence p99, ms', value: () => p99, kind: 'max', target: 10, digits: 3 }];
}

/** The gateway configuration of a node with the rate-limit filter on one route. */
function limitConfig(upstream: number, backend: object, capacity: number, extra: object = {}) {
  return (port: number, admin: number): object => ({
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    sharedState: backend,
    clusters: [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }],
    plugins: [{ name: 'limit', module: RATE_LIMIT, configuration: { key: { source: 'header', header: 'x-client' }, capacity, refillPerSecond: 0.001 } }],
    routes: [{ name: 'api', match: { pathPrefix: '/' }, cluster: 'upstream', filters: ['limit'] }],
    ...extra,
  });
}

function get(port: number, agent: Agent, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers: { 'x-client': client } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

async function rateLimit(url: string, upstream: Started): Promise<Target[]> {
  const nodes: Started[] = [];
  for (let i = 0; i < 3; i++) {
    // A node id each (the filter counts per node), as --node-id gives them.
    nodes.push(await startGateway(`node-${i}`, (p, a) => ({ ...limitConfig(upstream.port, { backend: 'redis', url, prefix: 'rl:' }, 1000)(p, a), node: { id: `node-${i}`, cluster: 'bench' } })));
  }
  const agents = nodes.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  let passed = 0;
  for (let i = 0; i < 1500; i++) if ((await get(nodes[i % 3].port, agents[i % 3], 'sequential')) === 200) passed++;
  console.log(`rate limit across 3 nodes, 1500 requests one after another, alternating: ${passed} passed of a capacity of 1000`);
  // Concurrent: autocannon (in this process: the nodes are the processes under test) on every node at once.
  const autocannon = createRequire(import.meta.url)('autocannon') as (o: object) => Promise<{ '2xx': number }>;
  const runs = await Promise.all(nodes.map((n) => autocannon({
    url: `http://127.0.0.1:${n.port}/`, connections: 10, duration: 3, headers: { ...CLIENT_HEADERS, 'x-client': 'concurrent' },
  })));
  const ok = runs.reduce((sum, r) => sum + r['2xx'], 0);
  const overshoot = (ok - 1000) / 1000 * 100;
  console.log(`rate limit across 3 nodes under autocannon on each (10 connections, 3 s): ${ok} passed of a capacity of 1000, overshoot ${fmt(overshoot, 1)}%`);
  for (const n of nodes) await stop(n.proc);
  return [{ name: 'sequential requests across 3 nodes: |passed − capacity|', value: () => Math.abs(passed - 1000), kind: 'max', target: 0, digits: 0 }];
}

async function cost(url: string, upstream: Started): Promise<Target[]> {
  const headers = { ...CLIENT_HEADERS, 'x-client': 'cost' };
  const defs: ScenarioDef[] = [
    { id: 'memory', label: 'rate-limit, memory backend', headers, start: () => startGateway('memory', limitConfig(upstream.port, { backend: 'memory' }, 1e9)), check: async () => undefined },
    { id: 'control', label: 'control: memory backend, a second process', headers, start: () => startGateway('control', limitConfig(upstream.port, { backend: 'memory' }, 1e9)), check: async () => undefined },
    { id: 'redis', label: 'rate-limit, redis backend', headers, start: () => startGateway('redis', limitConfig(upstream.port, { backend: 'redis', url, prefix: 'cost:' }, 1e9)), check: async () => undefined },
  ];
  const table = rows(await runRounds(defs, upstream, OPTIONS), defs, 'memory');
  printRows(table, 'memory');
  console.log(`\n${controlVerdict(table, 'control').line}`);
  return [{ name: 'redis backend ÷ memory backend, CPU µs per request', value: () => pick(table, 'redis', (r) => r.cpuRatio), kind: 'max', target: 1.1 }];
}

async function cores(upstream: Started): Promise<Target[]> {
  const headers = { ...CLIENT_HEADERS, 'x-client': 'cores' };
  const box = (workers: number, filter = true) => () => startGateway(`workers-${workers}${filter ? '' : '-plain'}`,
    limitConfig(upstream.port, { backend: 'memory' }, 1e9, { workers, ...(filter ? {} : { routes: [{ name: 'api', match: { pathPrefix: '/' }, cluster: 'upstream' }] }) }), false);
  const defs: ScenarioDef[] = [
    { id: 'w1', label: 'workers: 1, rate-limit', headers, unpinned: true, start: box(1), check: async () => undefined },
    { id: 'w2', label: 'workers: 2, rate-limit (shared through the primary)', headers, unpinned: true, start: box(2), check: async () => undefined },
    { id: 'w1-plain', label: 'workers: 1, no filter', headers, unpinned: true, start: box(1, false), check: async () => undefined },
    { id: 'w2-plain', label: 'workers: 2, no filter', headers, unpinned: true, start: box(2, false), check: async () => undefined },
    ...(NGINX === undefined ? [] : [{ id: 'nginx-2', label: 'nginx, 2 workers (no filter)', headers, unpinned: true, start: () => startNginx(upstream.port, 2), check: async () => undefined }]),
  ];
  const table = rows(await runRounds(defs, upstream, OPTIONS), defs, 'w1');
  console.log('(CPU µs per request counts the primary process only for workers: 2; read req/s)');
  printRows(table, 'w1');
  console.log(`workers: 2 ÷ nginx with 2 workers, req/s: ${fmt(pick(table, 'w2', (r) => r.reqPerSec) / pick(table, 'nginx-2', (r) => r.reqPerSec), 2)}`);
  console.log(`no filter: workers: 2 ÷ workers: 1, req/s: ${fmt(pick(table, 'w2-plain', (r) => r.reqPerSec) / pick(table, 'w1-plain', (r) => r.reqPerSec), 2)}`);
  return [{ name: 'workers: 2 ÷ workers: 1, req/s', value: () => pick(table, 'w2', (r) => r.reqRatio), kind: 'min', target: 1.6 }];
}

async function main(): Promise<void> {
  ensureFilters(['rate-limit']);
  printSetup(OPTIONS);
  const redis = await startRedis();
  const upstream = await startServer('upstream');
  const targets: Target[] = [];
  if (SECTIONS.includes('convergence')) targets.push(...await convergence(redis.url));
  if (SECTIONS.includes('rate-limit')) targets.push(...await rateLimit(redis.url, upstream));
  if (SECTIONS.includes('cost')) targets.push(...await cost(redis.url, upstream));
  if (SECTIONS.includes('cores')) targets.push(...await cores(upstream));
  printTargets([], targets);
}

try {
  await main();
} finally {
  cleanUp();
}
