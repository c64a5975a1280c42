/**
 * Live plugins under load: module swaps through the admin API, a canary's share, and a push to a
 * fleet through the Redis module registry (bench/README.md, "Live modules").
 *
 *   npm run bench:live                          # = npx tsx bench/live-modules.ts, every section, ~4 min
 *   BENCH_ONLY=canary,push npx tsx bench/live-modules.ts
 *   BENCH_ROUNDS=2 BENCH_SWAPS=100 BENCH_SWAP_EVERY_MS=100 BENCH_PUSHES=10 npx tsx bench/live-modules.ts
 *
 * Sections:
 * - swaps: one gateway pinned to PROXY_CORE, the stamp filter. BENCH_SWAPS swaps without load
 *   first (the swap's own cost; RSS before and after, with no request garbage), then rounds of a
 *   run without swaps and a run of the same length with BENCH_SWAPS swaps under autocannon with
 *   the browser-like headers (versions A and B alternating, one swap every BENCH_SWAP_EVERY_MS,
 *   each after the previous one answered and was seen served). Errors, p99 ratio (median of per-round ratios), the
 *   API's answer time and the time until a plain request is served by the new version, and the
 *   gateway's RSS 1 s and 5 s after each run.
 * - canary: a canary at 5% through the API, 10 000 requests; its share from /plugins's counters
 *   and from the responses' x-served-by.
 * - push: redis-server, 3 gateway processes following `stamp:stable`; `edge-gateway push` of
 *   the other version, timed until every node serves it (each polled every 10 ms), BENCH_PUSHES times;
 *   as many pushes through dist/gateway/cli-plugins.js alone, in turns, to show the CLI's start-up.
 */
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import { printTargets, type Target } from './lib/compare.js';
import {
  ADMIN_TOKEN, adminCall, metricSum, quantile, removeTemp, runLoad, servedBy, sleep, stampVersion, startRedis, tempDir,
  untilServedBy, type Measured, type PluginReport, type Version,
} from './lib/live.js';
import {
  OTHER_CORE, PINNED, PROXY_CORE, ROOT, buildGateway, cpuUs, pin, rssMb, startGateway, startServer, track, type Started, runBounded,
} from './lib/processes.js';
import { fmt, median } from './lib/stats.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const SECTIONS = process.env.BENCH_ONLY?.split(',').filter(Boolean) ?? ['swaps', 'canary', 'push'];
const ROUNDS = Math.max(1, env('BENCH_ROUNDS', 4));
const SWAPS = Math.max(2, env('BENCH_SWAPS', 100));
const SWAP_EVERY_MS = env('BENCH_SWAP_EVERY_MS', 100);
const CONNECTIONS = env('BENCH_CONNECTIONS', 50);
const CANARY_REQUESTS = env('BENCH_CANARY_REQUESTS', 10_000);
const PUSHES = Math.max(1, env('BENCH_PUSHES', 10));
/** The whole bench, whatever hangs: everything it started is ended after this. */
const BENCH_LIMIT_MS = 20 * 60_000;
const PREFIX = 'bench-live:';

/** A gateway with the `stamp` plugin on every request, the admin API on with the bench's token. */
function liveConfig(upstream: number, module: unknown, extra: object = {}) {
  return (port: number, admin: number): object => ({
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin, token: ADMIN_TOKEN },
    log: { level: 'error' },
    clusters: [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }],
    plugins: [{ name: 'stamp', module, configuration: 'live' }],
    routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'upstream', filters: ['stamp'] }],
    ...extra,
  });
}

/** Throws unless a plain request to `port` is answered 200 by `label`. */
async function expectServed(what: string, port: number, agent: Agent, label: string): Promise<void> {
  const seen = await servedBy(port, agent);
  if (seen.status !== 200 || seen.label !== label) throw new Error(`${what}: answered ${seen.status} by ${seen.label}, expected 200 by ${label}`);
}

/** RSS of `pid` (MB) 1 s and 5 s into an idle pause: how much of a change is garbage not yet collected. */
async function settledRss(pid: number): Promise<[number, number]> {
  await sleep(1000);
  const at1 = rssMb(pid);
  await sleep(4000);
  return [at1, rssMb(pid)];
}

/** `failed`: check requests not answered 200. */
interface SwapFigures { apiMs: number[]; seenMs: number[]; stale: number; failed: number; refused: number; never: number; inLoad: number; firstProblem: string }
const newFigures = (): SwapFigures => ({ apiMs: [], seenMs: [], stale: 0, failed: 0, refused: 0, never: 0, inLoad: 0, firstProblem: '' });

/**
 * SWAPS swaps, one starting every SWAP_EVERY_MS (or as soon as the previous one is done when it
 * took longer): PUT the module, then plain requests one after another until the new version
 * serves one. A request sent after the API answered and served by the old version is `stale`.
 */
async function swapLoop(gw: Started, agent: Agent, versions: [Version, Version], loadMs: number, into: SwapFigures): Promise<void> {
  const start = performance.now();
  for (let k = 0; k < SWAPS && performance.now() - start < loadMs + 30_000; k++) {
    const wait = start + k * SWAP_EVERY_MS - performance.now();
    if (wait > 0) await sleep(wait);
    const v = versions[(k + 1) % 2];
    const t0 = performance.now();
    const answer = await adminCall(gw.admin!, 'PUT', '/plugins/stamp/module', v.bytes).catch((err: Error) => ({ status: 0, body: { error: err.message } }));
    const apiMs = performance.now() - t0;
    const body = answer.body as PluginReport & { error?: string };
    if (answer.status !== 200 || body.stable?.sha256 !== v.sha256) {
      into.refused++;
      into.firstProblem ||= `swap ${k} to ${v.label}: HTTP ${answer.status} ${JSON.stringify(body).slice(0, 200)}`;
      continue;
    }
    const seen = await untilServedBy(gw.port, agent, v.label, t0, 0, 5000);
    into.apiMs.push(apiMs);
    into.stale += seen.others;
    into.failed += seen.errors;
    if (Number.isNaN(seen.ms)) {
      into.never++;
      into.firstProblem ||= `swap ${k} to ${v.label}: answered 200 but no request was served by it within 5 s`;
    } else into.seenMs.push(seen.ms);
    if (performance.now() - start <= loadMs) into.inLoad++;
  }
}

let swapGateway: Promise<Started> | undefined;

/** The gateway of the swaps and canary sections (started once), serving version A. */
function liveGateway(upstream: Started, a: Version): Promise<Started> {
  swapGateway ??= (async () => {
    const gw = await startGateway('live', liveConfig(upstream.port, a.file));
    await expectServed('the live gateway', gw.port, new Agent({ keepAlive: false }), a.label);
    return gw;
  })();
  return swapGateway;
}

async function swaps(upstream: Started, a: Version, b: Version): Promise<Target[]> {
  const gw = await liveGateway(upstream, a);
  const pid = gw.proc.pid!;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const spec = { url: `http://127.0.0.1:${gw.port}/`, connections: CONNECTIONS, headers: CLIENT_HEADERS };
  const loadS = (SWAPS * SWAP_EVERY_MS) / 1000;
  const warm = await runLoad({ ...spec, warmupS: 0, durationS: 15, warmupRequests: 10_000 }, pid);
  console.log(`  warm-up: ${warm.result.requests} requests; then ${SWAPS} swaps without load (B, A, B …), timed, RSS settled before and after`);
  const idleBefore = await settledRss(pid);
  const idle = newFigures();
  const cpu0 = cpuUs(pid);
  await swapLoop(gw, agent, [a, b], loadS * 1000, idle);
  const cpuPerSwap = (cpuUs(pid) - cpu0) / SWAPS;
  const idleAfter = await settledRss(pid);
  const idleVms = await metricSum(gw.admin!, 'edge_gateway_wasm_vms');
  await expectServed('after the swaps without load', gw.port, agent, a.label);
  console.log(`  ${SWAPS} swaps without load: API call → 200 p50 ${fmt(quantile(idle.apiMs, 0.5), 1)} ms, p99 ${fmt(quantile(idle.apiMs, 0.99), 1)} ms;`
    + ` → served p50 ${fmt(quantile(idle.seenMs, 0.5), 1)} ms, p99 ${fmt(quantile(idle.seenMs, 0.99), 1)} ms; stale ${idle.stale}, failed ${idle.failed}, refused ${idle.refused}, never ${idle.never};`
    + ` gateway CPU in those ${fmt(loadS)} s ÷ swaps (check requests and idle timers included) ${fmt(cpuPerSwap)} µs; RSS ${fmt(idleBefore[1], 1)} → ${fmt(idleAfter[0], 1)} MB at 1 s, ${fmt(idleAfter[1], 1)} MB at 5 s; VMs ${idleVms}`);
  const figures = newFigures();
  const plain: Measured[] = [];
  const swapped: Measured[] = [];
  const rssBeforeSwaps: number[] = [];
  const rssAfterSwaps: number[] = [];
  let rssStart: [number, number] = [NaN, NaN];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['no swaps', 'swaps'] as const) {
      let swapping: Promise<void> = Promise.resolve();
      const m = await runLoad({ ...spec, warmupS: 0.5, durationS: loadS }, pid,
        kind === 'swaps' ? () => { swapping = swapLoop(gw, agent, [a, b], loadS * 1000, figures); } : undefined);
      await swapping;
      (kind === 'swaps' ? swapped : plain).push(m);
      const rss = await settledRss(pid);
      if (kind === 'no swaps') rssBeforeSwaps.push(rss[1]);
      else rssAfterSwaps.push(rss[1]);
      if (round === 0 && kind === 'no swaps') rssStart = rss;
      const vms = await metricSum(gw.admin!, 'edge_gateway_wasm_vms');
      const r = m.result;
      console.log(`  round ${round + 1} ${kind.padEnd(8)} ${fmt(r.reqPerSec).padStart(5)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms`
        + `  ${fmt(m.cpuUsPerReq, 1)} µs CPU/req  errors ${r.errors} non2xx ${r.non2xx} timeouts ${r.timeouts}`
        + `  | RSS ${fmt(rss[0], 1)} MB at 1 s, ${fmt(rss[1], 1)} MB at 5 s  VMs ${vms}  load ${loadavg()[0].toFixed(2)}`);
    }
  }
  const bad = (ms: Measured[]): number => ms.reduce((n, m) => n + m.result.errors + m.result.non2xx + m.result.timeouts, 0);
  const ratio = (of: (m: Measured) => number): number[] => swapped.map((m, i) => of(m) / of(plain[i]));
  const p99 = ratio((m) => m.result.p99Ms);
  const cpu = ratio((m) => m.cpuUsPerReq);
  const growth = rssAfterSwaps.map((after, i) => after - rssBeforeSwaps[i]);
  const control = rssBeforeSwaps.slice(1).map((before, i) => before - rssAfterSwaps[i]);
  const total = SWAPS * ROUNDS;
  console.log(`\nswaps under load: ${ROUNDS} rounds of ${fmt(loadS, 1)} s runs, ${SWAPS} swaps per swap run (${figures.inLoad} of ${total} done while the load ran)`);
  console.log(`  errors + non-2xx + timeouts: ${bad(swapped)} in the swap runs, ${bad(plain)} in the runs without swaps`);
  console.log(`  p99 with swaps ÷ without: median ${fmt(median(p99), 2)} (per round ${p99.map((x) => fmt(x, 2)).join(', ')});`
    + ` p50 ${fmt(median(ratio((m) => m.result.p50Ms)), 2)}; req/s ${fmt(median(ratio((m) => m.result.reqPerSec)), 2)}; CPU µs/req ${fmt(median(cpu), 2)} (per round ${cpu.map((x) => fmt(x, 2)).join(', ')})`);
  console.log(`  API call → 200: p50 ${fmt(quantile(figures.apiMs, 0.5), 1)} ms, p99 ${fmt(quantile(figures.apiMs, 0.99), 1)} ms, max ${fmt(Math.max(...figures.apiMs), 1)} ms`);
  console.log(`  API call → a plain request served by the new version: p50 ${fmt(quantile(figures.seenMs, 0.5), 1)} ms, p99 ${fmt(quantile(figures.seenMs, 0.99), 1)} ms, max ${fmt(Math.max(...figures.seenMs), 1)} ms`);
  console.log(`  requests sent after the API answered but served by the old version: ${figures.stale}; check requests not answered 200: ${figures.failed}; swaps refused: ${figures.refused}; never served: ${figures.never}${figures.firstProblem === '' ? '' : ` (first: ${figures.firstProblem})`}`);
  console.log(`  RSS (5 s settled) across each swap run: ${growth.map((g) => `${g >= 0 ? '+' : ''}${fmt(g, 1)}`).join(', ')} MB;`
    + ` across each run without swaps after the first: ${control.map((g) => `${g >= 0 ? '+' : ''}${fmt(g, 1)}`).join(', ') || '—'} MB;`
    + ` from ${fmt(rssStart[1], 1)} MB before the first swap run to ${fmt(rssAfterSwaps.at(-1)!, 1)} MB after ${total} swaps;`
    + ` median after a swap run ${fmt(median(rssAfterSwaps), 1)} MB, after a run without ${fmt(median(rssBeforeSwaps), 1)} MB`);
  return [
    { name: 'swaps: non-2xx + errors + timeouts during the swap runs', value: () => bad(swapped), kind: 'max', target: 0, digits: 0 },
    { name: 'swaps: refused, never served, old version after the API answered, or a check request failed', value: () => [figures, idle].reduce((n, f) => n + f.refused + f.never + f.stale + f.failed, 0), kind: 'max', target: 0, digits: 0 },
    { name: `swaps: RSS growth across ${SWAPS} swaps without load (settled 5 s), MB`, value: () => idleAfter[1] - idleBefore[1], kind: 'max', target: 20, digits: 1 },
    // Under load the reading follows where V8's heap is in its cycle (±30 MB run to run), so the runs without swaps are the control.
    { name: 'swaps: RSS after a swap run − after a run without swaps (medians over the rounds, settled 5 s), MB', value: () => median(rssAfterSwaps) - median(rssBeforeSwaps), kind: 'max', target: 20, digits: 1 },
  ];
}

async function canary(upstream: Started, a: Version, c: Version): Promise<Target[]> {
  const gw = await liveGateway(upstream, a);
  const before = await adminCall(gw.admin!, 'GET', '/plugins/stamp');
  const stable = before.body.stable;
  const started = await adminCall(gw.admin!, 'POST', '/plugins/stamp/canary', { module: { wasm: Buffer.from(c.bytes).toString('base64') }, percent: 5 });
  if (started.status !== 200 || started.body.canary?.sha256 !== c.sha256 || started.body.canary.percent !== 5) {
    throw new Error(`canary: HTTP ${started.status} ${JSON.stringify(started.body).slice(0, 300)}`);
  }
  // A bounded loop rather than autocannon: each response's x-served-by is counted as well.
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const seen = new Map<string, number>();
  let sent = 0;
  const deadline = performance.now() + 120_000;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (sent < CANARY_REQUESTS && performance.now() < deadline) {
      sent++;
      const r = await servedBy(gw.port, agent).catch(() => null);
      const key = r === null || r.status !== 200 ? 'error' : r.label ?? 'none';
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }));
  agent.destroy();
  const after = (await adminCall(gw.admin!, 'GET', '/plugins/stamp')).body;
  const onCanary = after.canary?.counters.streams ?? NaN;
  const onStable = after.stable.counters.streams - (after.stable.sha256 === stable.sha256 ? stable.counters.streams : 0);
  const share = (100 * onCanary) / (onCanary + onStable);
  const clientShare = (100 * (seen.get(c.label) ?? 0)) / sent;
  console.log(`\ncanary at 5%: ${sent} requests (16 at a time); counters: canary ${onCanary}, stable ${onStable}: share ${fmt(share, 2)}%;`
    + ` responses by version: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}: share ${fmt(clientShare, 2)}%`);
  const rolled = await adminCall(gw.admin!, 'POST', '/plugins/stamp/rollback');
  if (rolled.status !== 200 || rolled.body.canary !== null) throw new Error(`canary rollback: HTTP ${rolled.status}`);
  return [
    { name: 'canary: |share − 5| from /plugins counters, points', value: () => (Number.isFinite(share) ? Math.abs(share - 5) : 100), kind: 'max', target: 1 },
    { name: 'canary: |share − 5| from the responses, points', value: () => Math.abs(clientShare - 5), kind: 'max', target: 1 },
    { name: 'canary: requests not answered 200', value: () => seen.get('error') ?? 0, kind: 'max', target: 0, digits: 0 },
  ];
}

/**
 * `edge-gateway push FILE --tag stamp:stable`, as an operator runs it (the built CLI), or with
 * `lazy` the same command through dist/gateway/cli-plugins.js alone: what the push would take if
 * cli.ts did not import the whole gateway first. Resolves with its run time, ms.
 */
function cliPush(redis: string, v: Version, lazy = false): Promise<number> {
  const args = [v.file, '--tag', 'stamp:stable', '--redis', redis, '--prefix', PREFIX];
  const entry = pathToFileURL(join(ROOT, 'dist/gateway/cli-plugins.js')).href;
  const t0 = performance.now();
  const proc = spawn(process.execPath, lazy
    ? ['--input-type=module', '-e', `const { pluginCommand } = await import(${JSON.stringify(entry)}); process.exit(await pluginCommand('push', process.argv.slice(1)));`, ...args]
    : [join(ROOT, 'dist/gateway/cli.js'), 'push', ...args], { cwd: tempDir(), stdio: ['ignore', 'ignore', 'pipe'] });
  track(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const limit = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  return new Promise((resolve, reject) => proc.once('close', (code) => {
    clearTimeout(limit);
    if (code === 0) resolve(performance.now() - t0);
    else reject(new Error(`edge-gateway push ${v.label} exited with ${code}: ${stderr}`));
  }));
}

interface PushFigures { total: number[]; fromPublish: number[]; run: number[]; never: number }

async function push(upstream: Started, a: Version, b: Version): Promise<Target[]> {
  buildGateway();
  const redis = await startRedis();
  const firstPush = await cliPush(redis.url, a);
  const nodes: Started[] = [];
  for (let i = 0; i < 3; i++) {
    // Unpinned: three nodes of a fleet, each free to take either core.
    nodes.push(await startGateway(`node-${i}`, liveConfig(upstream.port, { redis: 'stamp:stable' },
      { modules: { registry: { url: redis.url, prefix: PREFIX }, cacheDir: join(tempDir(), `cache-${i}`) } }), false));
  }
  const agents = nodes.map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  for (const [i, n] of nodes.entries()) await expectServed(`node ${i}`, n.port, agents[i], a.label);
  const sub = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  let publishedAt = NaN;
  sub.on('message', () => { publishedAt = performance.now(); });
  await sub.subscribe(`${PREFIX}modules`);
  const cli: PushFigures = { total: [], fromPublish: [], run: [], never: 0 };
  const lazy: PushFigures = { total: [], fromPublish: [], run: [], never: 0 };
  try {
    // The CLI and the lazy entry in turns of two pushes (B then A), so each pushes both versions.
    for (let i = 0; i < 2 * PUSHES; i++) {
      const v = i % 2 === 0 ? b : a;
      const into = Math.floor(i / 2) % 2 === 0 ? cli : lazy;
      publishedAt = NaN;
      const t0 = performance.now();
      const exited = cliPush(redis.url, v, into === lazy);
      const seen = await Promise.all(nodes.map((n, j) => untilServedBy(n.port, agents[j], v.label, t0, 10, 5000)));
      into.run.push(await exited);
      const all = Math.max(...seen.map((s) => s.ms));
      if (Number.isNaN(all)) into.never++;
      else {
        into.total.push(all);
        into.fromPublish.push(t0 + all - publishedAt);
      }
      console.log(`  push ${String(i + 1).padStart(2)} ${v.label} ${into === cli ? 'CLI ' : 'lazy'}: ran ${fmt(into.run.at(-1)!)} ms, published at +${fmt(publishedAt - t0)} ms;`
        + ` nodes served it at ${seen.map((s) => `+${fmt(s.ms)}`).join(', ')} ms`);
      await sleep(300);
    }
  } finally {
    sub.disconnect();
  }
  console.log(`
push to 3 nodes, ${PUSHES} pushes with the CLI and ${PUSHES} through cli-plugins.js alone (first CLI run, before the nodes started: ${fmt(firstPush)} ms):`);
  for (const [what, f] of [['edge-gateway push', cli], ['cli-plugins.js alone', lazy]] as const) {
    console.log(`  ${what}: start → every node serves it: p50 ${fmt(quantile(f.total, 0.5))} ms, max ${fmt(Math.max(...f.total))} ms;`
      + ` publish seen by the bench → every node: p50 ${fmt(quantile(f.fromPublish, 0.5), 1)} ms, max ${fmt(Math.max(...f.fromPublish), 1)} ms;`
      + ` the command's run p50 ${fmt(quantile(f.run, 0.5))} ms; not served by every node within 5 s: ${f.never}`);
  }
  const worst = (xs: number[]): number => (xs.length === 0 ? Infinity : Math.max(...xs));
  return [
    { name: 'push: `edge-gateway push` start → every one of 3 nodes serves it, p50, ms', value: () => quantile(cli.total, 0.5), kind: 'max', target: 1000, digits: 0 },
    { name: 'push: the same, worst push, ms', value: () => worst(cli.total), kind: 'max', target: 1000, digits: 0 },
    { name: 'push: pushes not served by every node within 5 s', value: () => cli.never + lazy.never, kind: 'max', target: 0, digits: 0 },
  ];
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(`node ${process.version}, ${process.platform}-${process.arch}, ${cpu[0]?.model ?? '?'} × ${cpu.length}, ${new Date().toISOString()}`);
  console.log(PINNED ? `gateway of the swaps and canary sections pinned to core ${PROXY_CORE}; upstream, autocannon and this bench to core ${OTHER_CORE}; the 3 nodes of the push section unpinned`
    : 'NOT PINNED (fewer than 2 cores or no taskset): figures are noisier');
  console.log(`load average at the start ${loadavg().map((l) => l.toFixed(2)).join(' ')}; autocannon ${CONNECTIONS} connections, ${Object.keys(CLIENT_HEADERS).length} request headers`);
  pin(process.pid, OTHER_CORE);
  const [a, b, c] = ['version-aaaa', 'version-bbbb', 'canary-cccc1'].map(stampVersion);
  const upstream = await startServer('upstream');
  const targets: Target[] = [];
  if (SECTIONS.includes('swaps')) targets.push(...await swaps(upstream, a, b));
  if (SECTIONS.includes('canary')) targets.push(...await canary(upstream, a, c));
  if (SECTIONS.includes('push')) targets.push(...await push(upstream, a, b));
  printTargets([], targets);
}

await runBounded('bench/live-modules.ts', BENCH_LIMIT_MS, main, removeTemp);
