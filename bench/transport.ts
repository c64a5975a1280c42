/**
 * Transport bench: the gateway's TLS termination and HTTP/2 against nginx with the same
 * certificate, in front of the same upstream (bench/README.md, "Transport: TLS and HTTP/2").
 *
 *   npm run bench:transport                     # = npx tsx bench/transport.ts, 6 rounds, ~6 min
 *   BENCH_ONLY=handshake,h2 npx tsx bench/transport.ts          # some kinds
 *   BENCH_ROUNDS=2 BENCH_DURATION=1 npx tsx bench/transport.ts   # quicker, noisier
 *   npx tsx bench/transport.ts --json out.json                 # also writes every run as JSON
 *
 * Needs nginx (Debian: nginx-light), h2load (nghttp2-client) and openssl.
 *
 * Proxies: nginx (one worker, no master), the gateway with no filter on the route, and the gateway
 * with the stamp filter (filters/examples/stamp.wat). Each is one process pinned to PROXY_CORE,
 * started once with a TLS listener (ALPN h2 and http/1.1), an h2c listener and plain HTTP/1.1,
 * checked, and warmed up; the upstream, the load generators and this script run on OTHER_CORE.
 * Five kinds of load, each measured on every proxy in every round, the proxies in an order
 * rotated by one per round:
 *
 * - handshake: new connections, each a full TLS handshake (no resumption) and one HTTP/1.1 GET
 *   with `connection: close`, BENCH_HANDSHAKE_PARALLEL at a time (bench/lib/handshakes.ts);
 * - https: autocannon over HTTPS/1.1 with keep-alive, BENCH_CONNECTIONS connections;
 * - http: the same in cleartext, the reference for what TLS costs each proxy;
 * - h2: h2load over TLS (ALPN h2), BENCH_H2_CLIENTS connections × BENCH_H2_STREAMS streams;
 * - h2c: the same in cleartext, prior knowledge.
 *
 * Every request carries the 13 browser-like headers (bench/lib/client-headers.ts). The main
 * figure is the proxy's CPU µs per handshake or request (/proc); ratios are medians of per-round
 * ratios against nginx. Targets: gateway ÷ nginx ≥ 0.6 in rate, and in handshakes or requests
 * per CPU-second of the proxy (nginx's CPU per unit ÷ the gateway's). After the rounds: RSS and
 * used heap per round, the gateways' own counters and open handles (errors, leaks), and how long
 * each proxy takes to stop.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { makeCertificate, type Certificate } from './lib/certificate.js';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import { printTargets, type Target } from './lib/compare.js';
import { metricSum, sleep } from './lib/live.js';
import { nginxVersion, startNginxTls } from './lib/nginx-tls.js';
import {
  OTHER_CORE, PINNED, PROXY_CORE, ROOT, freePort, pin, rssMb, startGateway, startServer, stop, tempFile, runBounded,
} from './lib/processes.js';
import { fmt, median } from './lib/stats.js';
import { h2Get, https1Get } from './lib/tls-requests.js';
import { h2load, handshakes, keepAlive, type Kind, type Measurement, type Window } from './lib/transport-runs.js';
import { watToBytes } from './lib/wat.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ALL_KINDS: readonly Kind[] = ['handshake', 'https', 'http', 'h2', 'h2c'];
const KINDS = (process.env.BENCH_ONLY?.split(',').filter(Boolean) ?? ALL_KINDS) as Kind[];
const ROUNDS = Math.max(1, env('BENCH_ROUNDS', 6));
const WINDOW: Window = { warmupS: env('BENCH_WARMUP', 0.5), durationS: env('BENCH_DURATION', 2) };
/** Each proxy gets one run of this many seconds per kind before the rounds (JIT, TLS caches). */
const PROCESS_WARMUP_S = env('BENCH_PROCESS_WARMUP_S', 3);
const CONNECTIONS = env('BENCH_CONNECTIONS', 50);
const PARALLEL = env('BENCH_HANDSHAKE_PARALLEL', 16);
const H2_CLIENTS = env('BENCH_H2_CLIENTS', 10);
const H2_STREAMS = env('BENCH_H2_STREAMS', 10);
const BENCH_LIMIT_MS = 30 * 60_000;
const UNIT: Record<Kind, string> = { handshake: 'handshakes', https: 'req', http: 'req', h2: 'req', h2c: 'req' };
const TITLE: Record<Kind, string> = {
  handshake: `TLS handshakes: a new connection per request, ${PARALLEL} in parallel`,
  https: `HTTPS/1.1 keep-alive: autocannon, ${CONNECTIONS} connections`,
  http: `HTTP/1.1 keep-alive in cleartext (what TLS costs is https − this): autocannon, ${CONNECTIONS} connections`,
  h2: `HTTP/2 over TLS (ALPN h2): h2load, ${H2_CLIENTS} connections × ${H2_STREAMS} streams`,
  h2c: `h2c (prior knowledge): h2load, ${H2_CLIENTS} connections × ${H2_STREAMS} streams`,
};

interface Proxy {
  id: 'nginx' | 'gw' | 'gw-stamp';
  label: string;
  proc: ChildProcess;
  pid: number;
  tls: number;
  h2c: number;
  /** Plain HTTP/1.1: the gateway's h2c listener (it serves both), a listener of its own in nginx. */
  http: number;
  admin?: number;
  stamp: boolean;
}

interface Run extends Measurement { kind: Kind; proxy: Proxy['id']; round: number }

function gatewayConfig(upstream: number, cert: Certificate, h2c: number, stamp: string | undefined) {
  return (port: number, admin: number): object => ({
    node: { id: 'bench', cluster: 'bench' },
    listeners: [
      { name: 'https', address: '127.0.0.1', port, tls: { certFile: cert.certFile, keyFile: cert.keyFile } },
      { name: 'h2c', address: '127.0.0.1', port: h2c, http2: { cleartext: true } },
    ],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    clusters: [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }],
    plugins: stamp === undefined ? [] : [{ name: 'stamp', module: stamp, configuration: 'stamp 1' }],
    routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'upstream', filters: stamp === undefined ? [] : ['stamp'] }],
  });
}

/** Throws unless `p` answers 200 over HTTPS/1.1, h2 and h2c with what its row claims; returns what was negotiated. */
async function check(p: Proxy, cert: Certificate): Promise<string[]> {
  const problems: string[] = [];
  const answers = [
    ['https/1.1', await https1Get(p.tls, '/check', cert.pem, CLIENT_HEADERS)],
    ['h2', await h2Get(p.tls, '/check', cert.pem, CLIENT_HEADERS)],
    ['h2c', await h2Get(p.h2c, '/check', undefined, CLIENT_HEADERS)],
  ] as const;
  for (const [what, a] of answers) {
    const seen = (a.status === 200 ? JSON.parse(a.body) : {}) as Record<string, string>;
    if (a.status !== 200) problems.push(`${what}: status ${a.status}`);
    if (what === 'h2' && !a.negotiated.endsWith(' h2')) problems.push(`h2: negotiated ${a.negotiated}`);
    if (seen['user-agent'] !== CLIENT_HEADERS['user-agent']) problems.push(`${what}: user-agent not forwarded`);
    if (seen['x-forwarded-proto'] !== (what === 'h2c' ? 'http' : 'https')) problems.push(`${what}: upstream saw x-forwarded-proto ${seen['x-forwarded-proto']}`);
    if (seen['x-edge-stamp'] !== (p.stamp ? 'stamp 1' : undefined)) problems.push(`${what}: upstream saw x-edge-stamp ${seen['x-edge-stamp']}`);
    if (a.headers['x-served-by'] !== (p.stamp ? 'edge-gateway' : undefined)) problems.push(`${what}: client saw x-served-by ${String(a.headers['x-served-by'])}`);
  }
  const plain = await fetch(`http://127.0.0.1:${p.http}/check`, { headers: CLIENT_HEADERS, signal: AbortSignal.timeout(5000) });
  const plainSeen = await plain.json() as Record<string, string>;
  if (plain.status !== 200 || plainSeen['x-edge-stamp'] !== (p.stamp ? 'stamp 1' : undefined)) problems.push(`http/1.1: status ${plain.status}, x-edge-stamp ${plainSeen['x-edge-stamp']}`);
  const body = (await https1Get(p.tls, '/', cert.pem)).body;
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  if (problems.length > 0) throw new Error(`${p.id}: ${problems.join('; ')}`);
  return answers.map(([what, a]) => `${what} ${a.negotiated}`);
}

function measure(kind: Kind, p: Proxy, w: Window): Promise<Measurement> {
  switch (kind) {
    case 'handshake': return handshakes(p.tls, p.pid, CLIENT_HEADERS, PARALLEL, w);
    case 'https': return keepAlive(`https://127.0.0.1:${p.tls}/`, p.pid, CLIENT_HEADERS, CONNECTIONS, w);
    case 'http': return keepAlive(`http://127.0.0.1:${p.http}/`, p.pid, CLIENT_HEADERS, CONNECTIONS, w);
    case 'h2': return h2load(`https://127.0.0.1:${p.tls}/`, p.pid, CLIENT_HEADERS, H2_CLIENTS, H2_STREAMS, w);
    case 'h2c': return h2load(`http://127.0.0.1:${p.h2c}/`, p.pid, CLIENT_HEADERS, H2_CLIENTS, H2_STREAMS, w);
  }
}

const describe = (m: Measurement, unit: string): string =>
  `${fmt(m.rate).padStart(6)} ${unit}/s  ${fmt(m.cpuUsPerUnit, 1).padStart(6)} µs CPU/${unit === 'req' ? 'req' : 'handshake'}`
  + `  core ${fmt((m.rate * m.cpuUsPerUnit) / 1e4)}%  p50 ${fmt(m.p50Ms, 2)} ms  p99 ${fmt(m.p99Ms, 2)} ms  load ${m.load.toFixed(2)}`
  + `${m.errors > 0 ? `  ERRORS ${m.errors} (${m.firstError})` : ''}`;

/** Per-round ratios of `of(a) ÷ of(b)` for one kind, and their median. */
function paired(runs: Run[], kind: Kind, a: string, b: string, of: (r: Run) => number): { median: number; perRound: number[] } {
  const perRound: number[] = [];
  for (const ra of runs.filter((r) => r.kind === kind && r.proxy === a)) {
    const rb = runs.find((r) => r.kind === kind && r.proxy === b && r.round === ra.round);
    if (rb !== undefined) perRound.push(of(ra) / of(rb));
  }
  return { median: median(perRound), perRound };
}

function printTable(runs: Run[], kind: Kind, proxies: Proxy[]): void {
  const unit = UNIT[kind];
  console.log(`\n${TITLE[kind]}\n`);
  const p50 = kind === 'h2' || kind === 'h2c' ? 'mean ms (h2load)' : 'p50 ms';
  console.log(`| proxy | ${unit}/s | ÷ nginx (per round) | CPU µs per ${unit === 'req' ? 'request' : 'handshake'} | per CPU-second ÷ nginx | proxy core busy | ${p50} | p99 ms | errors |`);
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|');
  for (const p of proxies) {
    const rs = runs.filter((r) => r.kind === kind && r.proxy === p.id);
    if (rs.length === 0) continue;
    const rate = paired(runs, kind, p.id, 'nginx', (r) => r.rate);
    const perCpu = paired(runs, kind, 'nginx', p.id, (r) => r.cpuUsPerUnit);
    const isBase = p.id === 'nginx';
    console.log(`| ${p.label} | ${fmt(median(rs.map((r) => r.rate)))} | ${isBase ? '1' : `${fmt(rate.median, 2)} (${rate.perRound.map((x) => fmt(x, 2)).join(', ')})`}`
      + ` | ${fmt(median(rs.map((r) => r.cpuUsPerUnit)), 1)} | ${isBase ? '1' : fmt(perCpu.median, 2)} | ${fmt(median(rs.map((r) => (r.rate * r.cpuUsPerUnit) / 1e4)))}%`
      + ` | ${fmt(median(rs.map((r) => r.p50Ms)), 2)} | ${fmt(median(rs.map((r) => r.p99Ms)), 2)} | ${rs.reduce((n, r) => n + r.errors, 0)} |`);
  }
}

async function main(): Promise<void> {
  const unknown = KINDS.filter((k) => !ALL_KINDS.includes(k));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown kind ${unknown.join(', ')} (kinds: ${ALL_KINDS.join(', ')})`);
  if (KINDS.some((k) => k === 'h2' || k === 'h2c') && spawnSync('h2load', ['--version']).status !== 0) {
    throw new Error('h2load is not installed (Debian: apt-get install nghttp2-client)');
  }
  const cpu = cpus();
  console.log(`node ${process.version}, ${process.platform}-${process.arch}, ${cpu[0]?.model ?? '?'} × ${cpu.length}, nginx ${nginxVersion()?.join('.') ?? 'missing'}, ${new Date().toISOString()}`);
  console.log(PINNED ? `proxies pinned to core ${PROXY_CORE}; upstream, load generators and this bench to core ${OTHER_CORE}` : 'NOT PINNED (fewer than 2 cores or no taskset): figures are noisier');
  console.log(`load average at the start ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${ROUNDS} rounds of ${WINDOW.warmupS} s warm-up + ${WINDOW.durationS} s measured per kind and proxy; ${Object.keys(CLIENT_HEADERS).length} request headers`);
  pin(process.pid, OTHER_CORE);
  const cert = makeCertificate();
  const stampFile = join(dirname(tempFile('stamp.wasm', '')), 'stamp.wasm');
  writeFileSync(stampFile, watToBytes(readFileSync(join(ROOT, 'filters/examples/stamp.wat'), 'utf8'), 'stamp.wat'));
  const upstream = await startServer('upstream');
  const proxies: Proxy[] = [];
  const nginx = await startNginxTls(upstream.port, cert);
  proxies.push({ id: 'nginx', label: 'nginx, 1 worker', proc: nginx.proc, pid: nginx.proc.pid!, tls: nginx.port, h2c: nginx.h2c, http: nginx.http, stamp: false });
  for (const [id, label, stamp] of [['gw', 'gateway, no filter', undefined], ['gw-stamp', 'gateway, stamp filter', stampFile]] as const) {
    const h2c = await freePort();
    const gw = await startGateway(id, gatewayConfig(upstream.port, cert, h2c, stamp));
    proxies.push({ id, label, proc: gw.proc, pid: gw.proc.pid!, tls: gw.port, h2c, http: h2c, admin: gw.admin, stamp: stamp !== undefined });
  }
  for (const p of proxies) console.log(`  ${p.id.padEnd(9)} checked: ${(await check(p, cert)).join('; ')}`);

  /** Open handles (sockets, servers, timers) of each gateway before any load, against after the last. */
  const handles = async (p: Proxy): Promise<number> => (p.admin === undefined ? NaN : metricSum(p.admin, 'nodejs_active_handles_total'));
  const handlesBefore = new Map<string, number>();
  for (const p of proxies) handlesBefore.set(p.id, await handles(p));
  const rssStart = new Map<string, number>();
  for (const p of proxies) {
    for (const kind of KINDS) {
      const m = await measure(kind, p, { warmupS: 0, durationS: PROCESS_WARMUP_S });
      console.log(`  warm-up ${p.id.padEnd(9)} ${kind.padEnd(9)} ${describe(m, UNIT[kind])}${m.negotiated === '' ? '' : `  (${m.negotiated})`}`);
    }
    rssStart.set(p.id, rssMb(p.pid));
  }
  const runs: Run[] = [];
  /** RSS and, for the gateways, V8's used heap (MB) after each round: a leak climbs round after round. */
  const rssRounds = new Map<string, number[]>(proxies.map((p) => [p.id, []]));
  const heapRounds = new Map<string, number[]>(proxies.map((p) => [p.id, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of KINDS) {
      for (let k = 0; k < proxies.length; k++) {
        const p = proxies[(k + round) % proxies.length];
        const m = await measure(kind, p, WINDOW);
        runs.push({ ...m, kind, proxy: p.id, round });
        console.log(`  round ${round + 1} ${kind.padEnd(9)} ${p.id.padEnd(9)} ${describe(m, UNIT[kind])}`);
      }
    }
    for (const p of proxies) {
      rssRounds.get(p.id)!.push(rssMb(p.pid));
      if (p.admin !== undefined) heapRounds.get(p.id)!.push(await metricSum(p.admin, 'nodejs_heap_size_used_bytes') / 2 ** 20);
    }
  }
  await sleep(2000);
  console.log('\nafter the rounds:');
  let answered5xx = 0;
  for (const p of proxies) {
    let counters = '';
    if (p.admin !== undefined) {
      const requests = (labels = ''): Promise<number> => metricSum(p.admin!, 'edge_gateway_requests_total', labels);
      const [all, ok, left, failed] = [await requests(), await requests('status="200"'), await requests('status="0"'), await requests('status="5')];
      answered5xx += failed;
      // h2load ends a run with streams in flight: those read as status 0 (the client left) and as resets.
      counters = `; requests ${all}: 200 ${ok}, client left (status 0) ${left}, 5xx ${failed}, other ${all - ok - left - failed};`
        + ` h2 streams reset by clients ${await metricSum(p.admin, 'edge_gateway_http2_stream_resets_total')};`
        + ` TLS handshake errors ${await metricSum(p.admin, 'edge_gateway_tls_handshake_errors_total')};`
        + ` connections dropped ${await metricSum(p.admin, 'edge_gateway_connections_dropped_total')};`
        + ` open handles ${handlesBefore.get(p.id)} before any load, ${await handles(p)} now`;
    }
    const heap = heapRounds.get(p.id)!;
    console.log(`  ${p.id.padEnd(9)} RSS ${fmt(rssStart.get(p.id)!, 1)} MB after the warm-up, then per round ${rssRounds.get(p.id)!.map((x) => fmt(x, 1)).join(', ')} MB`
      + `${heap.length === 0 ? '' : ` (heap used ${heap.map((x) => fmt(x, 1)).join(', ')} MB)`}${counters}`);
  }

  for (const kind of KINDS) printTable(runs, kind, proxies);
  const targets: Target[] = [];
  // Plain HTTP/1.1 is the reference for what TLS costs, not a transport target.
  for (const kind of KINDS.filter((k) => k !== 'http')) {
    const unit = kind === 'handshake' ? 'handshakes' : 'requests';
    targets.push(
      { name: `${kind}: gateway ÷ nginx, ${unit}/s`, value: () => paired(runs, kind, 'gw', 'nginx', (r) => r.rate).median, kind: 'min', target: 0.6 },
      { name: `${kind}: gateway ÷ nginx, ${unit} per CPU-second of the proxy`, value: () => paired(runs, kind, 'nginx', 'gw', (r) => r.cpuUsPerUnit).median, kind: 'min', target: 0.6 },
    );
  }
  targets.push(
    { name: 'errors, non-2xx and timeouts seen by the load generators through the gateways', value: () => runs.filter((r) => r.proxy !== 'nginx').reduce((n, r) => n + r.errors, 0), kind: 'max', target: 0, digits: 0 },
    { name: 'requests the gateways answered 5xx (their own counter)', value: () => answered5xx, kind: 'max', target: 0, digits: 0 },
  );
  printTargets([], targets);
  const jsonAt = process.argv.indexOf('--json');
  if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ node: process.version, rounds: ROUNDS, window: WINDOW, runs }, null, 2));
  // A proxy that takes long to stop on SIGTERM after this load would be a finding of its own.
  for (const p of proxies) {
    const t0 = performance.now();
    await stop(p.proc);
    console.log(`  ${p.id.padEnd(9)} stopped ${fmt((performance.now() - t0) / 1000, 1)} s after SIGTERM${p.proc.signalCode === 'SIGKILL' ? ' (SIGKILL after 10 s)' : ''}`);
  }
}

await runBounded('bench/transport.ts', BENCH_LIMIT_MS, main);
