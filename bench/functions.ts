/**
 * Edge functions (bench/README.md, "Edge functions"): the example hello function through the
 * gateway against the same handler as a plain Node upstream behind the same gateway, and the
 * costs that are the function's own: instances made per second, memory per warm instance, the
 * time to make one, and the first request after a load and after a swap.
 *
 *   npm run bench:functions                                   # = npx tsx bench/functions.ts, ~3 min
 *   BENCH_ROUNDS=2 BENCH_DURATION=3 npx tsx bench/functions.ts  # quicker, noisier
 *
 * Processes: the built gateway (dist/, `node dist/gateway/cli.js start`) on PROXY_CORE with two
 * routes, /fn/hello → the hello function (`instances` warm instances, 2 by default) and /node/ → a
 * cluster of bench/lib/servers.ts's `hello` role (the same answer from node:http, on OTHER_CORE);
 * autocannon runs in this driver, on OTHER_CORE, with the browser-like headers of
 * bench/lib/client-headers.ts. Each round measures both targets, the order swapped every round;
 * the gateway's CPU µs per request (all its threads, from /proc) is read around each run.
 *
 * Knobs: BENCH_ROUNDS (4), BENCH_DURATION (s, 4), BENCH_CONNECTIONS (8), BENCH_INSTANCES (2),
 * BENCH_REUSE (snapshot; fresh makes a new instance per request).
 */
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import { OTHER_CORE, PINNED, ROOT, buildGateway, cpuUs, pin, rssMb, runBounded, startGateway, startServer, stop, type Started } from './lib/processes.js';
import { fmt, median } from './lib/stats.js';
import { loadComponent } from '../gateway/functions/component-loader.js';
import { createModuleStore } from '../gateway/modules/module-store.js';
import { FunctionPool } from '../gateway/functions/function-pool.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ROUNDS = Math.max(1, env('BENCH_ROUNDS', 4));
const DURATION_S = env('BENCH_DURATION', 4);
const CONNECTIONS = env('BENCH_CONNECTIONS', 8);
const INSTANCES = env('BENCH_INSTANCES', 2);
/** BENCH_REUSE: the gateway's reuse mode (snapshot, the default, or fresh: an instance per request). */
const REUSE = (process.env.BENCH_REUSE ?? 'snapshot') as 'snapshot' | 'fresh';
const TOKEN = 'bench-functions-0123456789abcdef';
const HELLO = join(ROOT, 'filters/dist/functions/hello.wasm');
const ENV_FN = join(ROOT, 'filters/dist/functions/env.wasm');
const LIMIT_MS = 10 * 60_000;

interface AutocannonResult { requests: { total: number }; errors: number; non2xx: number; latency: { p50: number; p99: number } }
type Autocannon = (opts: Record<string, unknown>, done: (err: Error | null, r: AutocannonResult) => void) => unknown;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function config(upstream: number, instances: number, cacheDir: string) {
  return (port: number, admin: number): object => ({
    listeners: [{ name: 'public', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin, token: TOKEN },
    log: { level: 'error' },
    modules: { cacheDir },
    clusters: [{ name: 'node', endpoints: [`http://127.0.0.1:${upstream}`] }],
    functions: [{ name: 'hello', component: HELLO, instances, reuse: REUSE, limits: { maxQueue: 1024, queueTimeoutMs: 10_000 } }],
    routes: [
      { name: 'fn', match: { pathPrefix: '/fn/hello' }, function: 'hello' },
      { name: 'node', match: { pathPrefix: '/node/' }, cluster: 'node' },
    ],
  });
}

function cannon(url: string, seconds: number): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: seconds, headers: CLIENT_HEADERS }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

async function timedGet(url: string): Promise<{ ms: number; status: number; body: string }> {
  const t = performance.now();
  const res = await fetch(url);
  const body = await res.text();
  return { ms: performance.now() - t, status: res.status, body };
}

async function metric(admin: number, line: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found === undefined ? 0 : Number(found.slice(line.length).trim());
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)] ?? NaN;

/**
 * Time to make an instance ready, measured in this process through the pool (one thread, requests
 * one after another): a new instance each time (`fresh`), or the start-up state put back (`snapshot`).
 */
async function instantiateTimes(count: number, reuse: 'fresh' | 'snapshot'): Promise<number[]> {
  const cache = join(tmpdir(), 'bench-functions-cache');
  const component = await loadComponent(readFileSync(HELLO), 'hello', cache, 128, createModuleStore());
  const times: number[] = [];
  const pool = new FunctionPool('hello', component, {
    instances: 1, reuse, environment: [], allowedHosts: [], bodyLimit: 1 << 20, timeoutMs: 5000, maxQueue: 10, queueTimeoutMs: 5000, heapMb: 64,
  }, async () => ({ ok: false, code: 'internal-error', message: 'none' }), {
    instantiated: (ms) => times.push(ms), waited: () => {}, guestLog: () => {}, threadFailed: () => {}, finished: () => {},
  });
  await pool.ready();
  times.length = 0; // the thread's first instance (made and warmed up) is not a request's
  const request = { method: 'GET', scheme: 'http', authority: 'bench', pathWithQuery: '/', headers: [], body: new Uint8Array(0) };
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => pool.call(request, { head: () => {}, data: () => {}, end: () => resolve(), fail: () => resolve() }));
  }
  await new Promise((r) => setTimeout(r, 200));
  await pool.close();
  return times;
}

async function main(): Promise<void> {
  pin(process.pid, OTHER_CORE);
  console.log(`edge functions bench: ${ROUNDS} rounds × ${DURATION_S} s, ${CONNECTIONS} connections, ${INSTANCES} instances, reuse ${REUSE}, pinned: ${PINNED}`);
  readFileSync(HELLO); // built by `npm run build`
  buildGateway(); // before any clock starts: the cold starts below time the gateway, not tsc
  const upstream = await startServer('hello');
  const cacheDir = join(tmpdir(), `bench-functions-${process.pid}`);
  rmSync(cacheDir, { recursive: true, force: true });

  // Cold start: component load → first answer, first with nothing cached (jco transpiles), then with the transpiled files on disk.
  const cold: Array<{ label: string; ms: number; first: number }> = [];
  let gw: Started | null = null;
  for (const label of ['fresh cache (transpile)', 'transpiled files cached']) {
    if (gw !== null) await stop(gw.proc);
    const t = performance.now();
    gw = await startGateway(`fn-${cold.length}`, config(upstream.port, INSTANCES, cacheDir));
    const first = await timedGet(`http://127.0.0.1:${gw.port}/fn/hello`);
    if (first.status !== 200) throw new Error(`first answer ${first.status}: ${first.body}`);
    cold.push({ label, ms: performance.now() - t, first: first.ms });
  }
  const g = gw!;
  const node = await timedGet(`http://127.0.0.1:${g.port}/node/x`);
  const fn = await timedGet(`http://127.0.0.1:${g.port}/fn/hello`);
  if (node.body !== 'hello from /node/x\n' || fn.body !== 'hello from /fn/hello\n') throw new Error(`unexpected answers: ${node.body} / ${fn.body}`);
  const idleRss = rssMb(g.proc.pid!);

  // Throughput: warm both, then rounds, order swapped each round.
  await cannon(`http://127.0.0.1:${g.port}/node/x`, 2);
  await cannon(`http://127.0.0.1:${g.port}/fn/hello`, 2);
  type Run = { target: string; rps: number; p50: number; p99: number; cpu: number; bad: number; refill: number; load: number };
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['node', 'fn'] : ['fn', 'node'];
    for (const target of order) {
      const url = target === 'fn' ? `http://127.0.0.1:${g.port}/fn/hello` : `http://127.0.0.1:${g.port}/node/x`;
      const made0 = await metric(g.admin!, 'edge_gateway_function_instantiate_seconds_count{function="hello"}');
      const cpu0 = cpuUs(g.proc.pid!);
      const r = await cannon(url, DURATION_S);
      const cpu = cpuUs(g.proc.pid!) - cpu0;
      const made = await metric(g.admin!, 'edge_gateway_function_instantiate_seconds_count{function="hello"}') - made0;
      runs.push({ target, rps: r.requests.total / DURATION_S, p50: r.latency.p50, p99: r.latency.p99, cpu: cpu / Math.max(1, r.requests.total), bad: r.errors + r.non2xx, refill: made / DURATION_S, load: loadavg()[0] });
      console.log(`  round ${round + 1} ${target.padEnd(4)} ${fmt(r.requests.total / DURATION_S, 1)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${fmt(cpu / Math.max(1, r.requests.total))} CPU µs/req, errors ${r.errors + r.non2xx}`);
    }
  }
  const of = (t: string): Run[] => runs.filter((r) => r.target === t);
  const ratios = of('fn').map((f, i) => f.rps / of('node')[i]!.rps);

  // First request after a swap (the admin API): the swap's own time, then the first answer from the new component.
  const swapStart = performance.now();
  const swapped = await fetch(`http://127.0.0.1:${g.admin}/functions/hello/component`, { method: 'PUT', body: readFileSync(ENV_FN), headers: { 'content-type': 'application/wasm', authorization: `Bearer ${TOKEN}` } });
  await swapped.text();
  const swapMs = performance.now() - swapStart;
  const afterSwap = await timedGet(`http://127.0.0.1:${g.port}/fn/hello`);
  await stop(g.proc);

  // Memory per warm instance: the same gateway idle with 1 and with 9 instances.
  const rss: number[] = [];
  for (const n of [1, 9]) {
    const one = await startGateway(`fn-rss-${n}`, config(upstream.port, n, cacheDir));
    await new Promise((r) => setTimeout(r, 2000));
    rss.push(rssMb(one.proc.pid!));
    await stop(one.proc);
  }
  const times = await instantiateTimes(40, 'fresh');
  const restores = await instantiateTimes(200, 'snapshot');

  console.log('\n| figure | value |\n| --- | ---: |');
  for (const t of ['node', 'fn']) {
    const label = t === 'fn' ? 'hello function' : 'same handler on a Node upstream';
    console.log(`| ${label}: req/s (median of rounds) | ${fmt(median(of(t).map((r) => r.rps)), 1)} |`);
    console.log(`| ${label}: p50 / p99 latency, ms | ${fmt(median(of(t).map((r) => r.p50)))} / ${fmt(median(of(t).map((r) => r.p99)))} |`);
    console.log(`| ${label}: gateway CPU µs per request (all threads) | ${fmt(median(of(t).map((r) => r.cpu)))} |`);
  }
  console.log(`| function ÷ Node upstream, req/s (median of per-round ratios) | ${fmt(median(ratios), 3)} (rounds ${ratios.map((x) => fmt(x, 3)).join(', ')}) |`);
  console.log(`| failed requests (errors + non-2xx), all runs | ${runs.reduce((n, r) => n + r.bad, 0)} |`);
  console.log(`| instances made per second under load (refill rate) | ${fmt(median(of('fn').map((r) => r.refill)), 1)} |`);
  console.log(`| make a new instance (reuse: fresh), median / p99 (ms, ${times.length} in one thread) | ${fmt(median(times), 1)} / ${fmt(pct(times, 0.99), 1)} |`);
  console.log(`| put an instance back to its start-up state (reuse: snapshot), median / p99 (ms, ${restores.length}) | ${fmt(median(restores), 2)} / ${fmt(pct(restores, 0.99), 2)} |`);
  console.log(`| RSS per warm instance (MB: 9 instances ${fmt(rss[1]!)} − 1 instance ${fmt(rss[0]!)}, ÷ 8) | ${fmt((rss[1]! - rss[0]!) / 8, 1)} |`);
  console.log(`| gateway RSS idle with ${INSTANCES} instances (MB) | ${fmt(idleRss)} |`);
  for (const c of cold) console.log(`| start → first answer, ${c.label} (ms; the first request alone) | ${fmt(c.ms)} (${fmt(c.first, 1)}) |`);
  console.log(`| swap through the admin API (ms), then the first request (ms) | ${fmt(swapMs)}, ${fmt(afterSwap.ms, 1)} |`);
  console.log(`| load average (1 min) over the rounds | ${runs.map((r) => fmt(r.load, 2)).join(' ')} |`);
  rmSync(cacheDir, { recursive: true, force: true });
  await stop(upstream.proc);
}

await runBounded('bench/functions.ts', LIMIT_MS, main);
