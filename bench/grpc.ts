/**
 * gRPC unary calls through the gateway against the same calls made directly to the server
 * (bench/README.md, "gRPC through the gateway").
 *
 *   npm run bench:grpc                                # = npx tsx bench/grpc.ts, 8 rounds, ~3 min
 *   BENCH_ROUNDS=3 BENCH_DURATION=2 npx tsx bench/grpc.ts   # quicker, noisier
 *   BENCH_ONLY=direct,gateway npx tsx bench/grpc.ts   # without the stamp filter
 *
 * Processes: a node:http2 h2c server with one unary echo method (bench/lib/grpc-server.ts) and
 * h2load (bench/lib/h2load.ts) on OTHER_CORE; each gateway (built dist/, an h2c listener, a route
 * to an `http2: true` cluster) on PROXY_CORE. Scenarios: `direct` (h2load → server), `node-h2`
 * (a reference: the least a Node proxy does, bench/lib/h2-proxy.ts, on PROXY_CORE), `gateway` (no
 * filter) and `stamp` (filters/examples/stamp.wat, assembled with wabt). Each process is
 * checked (echo, status 0 in the trailers, the stamp's headers both ways) and warmed up once, then
 * measured in rounds, the order rotated by one per round; each run is a fixed number of calls
 * (BENCH_DURATION seconds at the warm-up's rate) after a tenth as many unmeasured.
 *
 * Other knobs: BENCH_CONNECTIONS (h2 connections, default 4), BENCH_STREAMS (calls in flight per
 * connection, default 13: 52 in all), BENCH_PROCESS_WARMUP (calls, default 20000), BENCH_LISTENER
 * (JSON merged into the gateways' listener configuration).
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { printTargets, type Target } from './lib/compare.js';
import { ECHO_MESSAGE, frame } from './lib/grpc.js';
import { checkScenario, measureRun, startGrpcProcess, startGrpcServer, warmUp, type Expect, type GrpcLoad, type GrpcRun } from './lib/grpc-runs.js';
import { H2LOAD } from './lib/h2load.js';
import { metricSum, removeTemp, stampVersion, tempDir } from './lib/live.js';
import {
  OTHER_CORE, PINNED, PROXY_CORE, pin, rssMb, startGateway, stop, type Started, runBounded,
} from './lib/processes.js';
import { fmt, median } from './lib/stats.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ROUNDS = Math.max(1, env('BENCH_ROUNDS', 8));
const DURATION_S = env('BENCH_DURATION', 3);
const PROCESS_WARMUP = env('BENCH_PROCESS_WARMUP', 20_000);
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);
/** The whole bench, whatever hangs: everything it started is ended after this. */
const BENCH_LIMIT_MS = 15 * 60_000;
const STAMP_CONFIG = 'grpc-bench';
/** BENCH_LISTENER: JSON merged into the gateways' listener, e.g. '{"bodyTimeoutMs":40}' (bench/README.md, the BodyWatch finding). */
const LISTENER = JSON.parse(process.env.BENCH_LISTENER ?? '{}') as object;

/** An h2c listener and one route to the server as an `http2: true` cluster; the stamp filter on it when `plugin` (its .wasm) is given. */
function grpcConfig(server: number, plugin: string | undefined) {
  return (port: number, admin: number): object => ({
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'grpc', address: '127.0.0.1', port, http2: { cleartext: true }, ...LISTENER }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    clusters: [{ name: 'echo', endpoints: [`http://127.0.0.1:${server}`], http2: true, maxConnections: 4 }],
    plugins: plugin === undefined ? [] : [{ name: 'stamp', module: plugin, configuration: STAMP_CONFIG }],
    routes: [{ name: 'echo', match: { pathPrefix: '/bench.v1.Echo/' }, cluster: 'echo', filters: plugin === undefined ? [] : ['stamp'] }],
  });
}

interface Scenario { id: string; label: string; expect: Expect; start: () => Promise<Started>; gateway: boolean }
interface Live { s: Scenario; under: Started; calls: number; rss: number[] }

async function main(): Promise<void> {
  const load: GrpcLoad = {
    connections: env('BENCH_CONNECTIONS', 4), streams: env('BENCH_STREAMS', 13),
    bodyFile: join(tempDir(), 'echo.grpc'), logFile: join(tempDir(), 'h2load.log'),
  };
  writeFileSync(load.bodyFile, frame(ECHO_MESSAGE));
  const cpu = cpus();
  console.log(`node ${process.version}, ${process.platform}-${process.arch}, ${cpu[0]?.model ?? '?'} × ${cpu.length}, ${new Date().toISOString()}; ${H2LOAD ?? 'h2load missing'}`);
  console.log(PINNED ? `gateways pinned to core ${PROXY_CORE}; the gRPC server, h2load and this bench to core ${OTHER_CORE}` : 'NOT PINNED (fewer than 2 cores or no taskset): figures are noisier');
  console.log(`h2load: ${load.connections} h2c connections × ${load.streams} calls in flight = ${load.connections * load.streams}; unary calls of ${ECHO_MESSAGE.length} B each way;`
    + ` ${ROUNDS} rounds of ~${DURATION_S} s per scenario; load average at the start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  pin(process.pid, OTHER_CORE);

  const server = await startGrpcServer();
  const stamp = stampVersion('edge-gateway'); // filters/examples/stamp.wat as it is, assembled with wabt
  const all: Scenario[] = [
    { id: 'direct', label: 'direct: h2load → server', expect: {}, start: async () => server, gateway: false },
    { id: 'node-h2', label: 'reference: minimal node:http2 proxy', expect: {}, start: () => startGrpcProcess('h2-proxy.ts', [String(server.port)], PROXY_CORE), gateway: false },
    { id: 'gateway', label: 'gateway, no filter', expect: {}, start: () => startGateway('grpc-gateway', grpcConfig(server.port, undefined)), gateway: true },
    { id: 'stamp', label: 'gateway, stamp filter', expect: { servedBy: 'edge-gateway', stamp: STAMP_CONFIG }, start: () => startGateway('grpc-stamp', grpcConfig(server.port, stamp.file)), gateway: true },
  ];
  const scenarios = all.filter((s) => ONLY === undefined || ONLY.includes(s.id));

  const live: Live[] = [];
  for (const s of scenarios) {
    const under = await s.start();
    await checkScenario(s.id, under.port, server.proc, s.expect);
    live.push({ s, under, calls: 0, rss: [rssMb(under.proc.pid!)] });
  }
  for (const l of live) {
    const first = await warmUp(l.under.port, PROCESS_WARMUP, load);
    // The second half's rate, with the JIT warm, sets the calls of a run.
    const second = await warmUp(l.under.port, PROCESS_WARMUP / 2, load);
    l.calls = Math.max(1000, Math.round((second.callsPerSec * DURATION_S) / 100) * 100);
    l.rss.push(rssMb(l.under.proc.pid!));
    console.log(`  warm-up ${l.s.id.padEnd(8)} ${PROCESS_WARMUP} calls at ${fmt(first.callsPerSec)}/s, ${PROCESS_WARMUP / 2} at ${fmt(second.callsPerSec)}/s`
      + `${first.status2xx + second.status2xx < 1.5 * PROCESS_WARMUP ? ` (2xx ${first.status2xx + second.status2xx})` : ''}; ${l.calls} calls per run`);
  }

  const runs: GrpcRun[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < live.length; k++) {
      const l = live[(k + round) % live.length];
      await warmUp(l.under.port, Math.round(l.calls / 10), load);
      const run = await measureRun(l.s.id, round, l.under, server.proc, l.calls, load);
      runs.push(run);
      const r = run.result;
      console.log(`  round ${round + 1} ${l.s.id.padEnd(8)} ${fmt(r.callsPerSec).padStart(6)} calls/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms`
        + `  ${fmt(run.cpuUsPerCall, 1)} µs CPU/call (server ${fmt(run.serverCpuUsPerCall, 1)}, h2load ${fmt(r.loadCpuUsPerCall, 1)})`
        + `  RSS ${fmt(rssMb(l.under.proc.pid!), 1)} MB  load ${run.load.toFixed(2)}`
        + `${run.errors > 0 ? `  ERRORS ${run.errors}: ${run.errorDetail}` : ''}`);
    }
  }
  // After the rounds: every process still answers correctly (no hung connection, no stuck stream).
  for (const l of live) {
    await checkScenario(l.s.id, l.under.port, server.proc, l.s.expect);
    l.rss.push(rssMb(l.under.proc.pid!));
  }
  report(live, runs);
  for (const l of live) if (l.s.gateway) {
    const metric = (name: string, labels = ''): Promise<number> => metricSum(l.under.admin!, name, labels);
    const [upstreamErrors, resets, requests] = [await metric('edge_gateway_upstream_errors_total'), await metric('edge_gateway_http2_stream_resets_total'), await metric('edge_gateway_requests_total')];
    const [minorS, minorN, majorS] = [await metric('nodejs_gc_duration_seconds_sum', 'kind="minor"'), await metric('nodejs_gc_duration_seconds_count', 'kind="minor"'), await metric('nodejs_gc_duration_seconds_sum', 'kind="major"')];
    console.log(`  ${l.s.id}: RSS ${l.rss.map((x) => fmt(x, 1)).join(' → ')} MB (checked → warm → after the rounds); /metrics over its ${requests} calls: upstream errors ${upstreamErrors},`
      + ` HTTP/2 stream resets ${resets}; GC ${fmt((1e6 * (minorS + majorS)) / requests, 1)} µs per call (${minorN} scavenges of ${fmt((1000 * minorS) / minorN, 1)} ms on average, major ${fmt(majorS, 2)} s in all)`);
    await stop(l.under.proc);
  }
}

/** Median over the rounds of of(a) ÷ of(b), each pair from the same round (as lib/compare.ts's pairedRatio). */
function paired(a: GrpcRun[], b: GrpcRun[], of: (r: GrpcRun) => number): { median: number; perRound: number[] } {
  const perRound = a.flatMap((ra) => b.filter((rb) => rb.round === ra.round).map((rb) => of(ra) / of(rb)));
  return { median: median(perRound), perRound };
}
const callsPerSec = (r: GrpcRun): number => r.result.callsPerSec;

function report(live: Live[], runs: GrpcRun[]): void {
  const of = (id: string): GrpcRun[] => runs.filter((r) => r.scenario === id);
  const direct = of('direct');
  const gateway = of('gateway');
  console.log('\n| scenario | calls/s | ÷ direct (per round) | p50 ms | p99 ms | CPU µs/call, process under test | server CPU µs/call | h2load CPU µs/call | load average | errors |');
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---|---:|');
  for (const { s } of live) {
    const rs = of(s.id);
    const ratio = paired(rs, direct, callsPerSec);
    const med = (f: (r: GrpcRun) => number): number => median(rs.map(f));
    console.log(`| ${s.label} | ${fmt(med((r) => r.result.callsPerSec))} | ${s.id === 'direct' ? '1' : `${fmt(ratio.median, 2)} (${ratio.perRound.map((x) => fmt(x, 2)).join(', ')})`}`
      + ` | ${fmt(med((r) => r.result.p50Ms), 2)} | ${fmt(med((r) => r.result.p99Ms), 2)} | ${fmt(med((r) => r.cpuUsPerCall), 1)} | ${fmt(med((r) => r.serverCpuUsPerCall), 1)}`
      + ` | ${fmt(med((r) => r.result.loadCpuUsPerCall), 1)} | ${rs.map((r) => r.load.toFixed(1)).join(' ')} | ${rs.reduce((n, r) => n + r.errors, 0)} |`);
  }
  const ref = of('node-h2');
  if (ref.length > 0 && gateway.length > 0) {
    const rate = paired(gateway, ref, callsPerSec);
    const cpu = paired(gateway, ref, (r) => r.cpuUsPerCall);
    console.log(`\ngateway ÷ minimal node:http2 proxy: calls/s ${fmt(rate.median, 2)} (per round ${rate.perRound.map((x) => fmt(x, 2)).join(', ')}); CPU µs per call ${fmt(cpu.median, 2)} (per round ${cpu.perRound.map((x) => fmt(x, 2)).join(', ')})`);
  }
  const stampRuns = of('stamp');
  if (stampRuns.length > 0 && gateway.length > 0) {
    const rate = paired(stampRuns, gateway, callsPerSec);
    const delta = median(stampRuns.map((r) => r.cpuUsPerCall - (gateway.find((g) => g.round === r.round)?.cpuUsPerCall ?? NaN)));
    console.log(`\nstamp ÷ no filter, calls/s: ${fmt(rate.median, 2)} (per round ${rate.perRound.map((x) => fmt(x, 2)).join(', ')}); the filter's Δ CPU: ${fmt(delta, 1)} µs per call`);
  }
  const targets: Target[] = live.map(({ s }) => ({
    name: `${s.label}: calls without the server's status-0 answer (non-2xx, stream errors, made-up replies)`,
    value: () => of(s.id).reduce((n, r) => n + r.errors, 0), kind: 'max' as const, target: 0, digits: 0,
  }));
  printTargets([], targets);
  console.log(`(gateway ÷ direct, calls/s, is reported without a target: ${fmt(paired(gateway, direct, callsPerSec).median, 2)})`);
}

await runBounded('bench/grpc.ts', BENCH_LIMIT_MS, main, removeTemp);
