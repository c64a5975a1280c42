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
import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LoadResult } from './lib/load.js';

const ROOT = join(import.meta.dirname, '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '3');
const DURATION_S = Number(process.env.BENCH_DURATION ?? '5');
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? '2');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? '50');
/** Requests each process gets right after it starts, so that its JIT is warm before it is measured. */
const PROCESS_WARMUP = Number(process.env.BENCH_PROCESS_WARMUP ?? '10000');
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const jsonAt = process.argv.indexOf('--json');
const JSON_OUT = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** What a browser-like client sends besides host; the gateway adds x-forwarded-* and x-request-id. */
const CLIENT_HEADERS = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
  accept: 'application/json, text/plain, */*',
  'accept-encoding': 'gzip, deflate, br',
  'accept-language': 'en-US,en;q=0.9',
};
const STAMP = join(ROOT, 'filters/dist/stamp.wasm');

interface Scenario {
  id: string;
  label: string;
  port: number;
  /** The process under test (the upstream itself for `direct`). */
  proc: ChildProcess;
}

interface Run {
  scenario: string;
  round: number;
  result: LoadResult;
  /** CPU µs per request of the process under test, and of the upstream, during the measured run. */
  cpuUsPerReq: number;
  upstreamCpuUsPerReq: number;
}

const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'bench-proxy-'));

function cleanUp(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanUp();
  process.exit(130);
});

/** SIGTERM to one process we started, then wait (bounded) for it to exit; SIGKILL after 10 s. */
async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process, in µs. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** Forks bench/lib/servers.ts in `role` and waits for its port. */
function startServer(role: string, target?: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(join(ROOT, 'bench/lib/servers.ts'), target === undefined ? [role] : [role, target], {
    execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve({ proc, port: m.port }));
    proc.once('exit', (code) => reject(new Error(`${role} server exited with ${code}`)));
  });
}

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

/** Starts `edge-gateway start` in its own process and waits (bounded) until /readyz answers 200. */
async function startGateway(id: string, upstream: number, filters: number, level: string): Promise<{ proc: ChildProcess; port: number }> {
  const [port, admin] = [await freePort(), await freePort()];
  const file = join(tmp, `${id}.json`);
  writeFileSync(file, JSON.stringify(gatewayConfig(port, admin, upstream, filters, level), null, 2));
  // stdout (pino's JSON lines) goes to /dev/null.
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', 'start', '--config', file], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`gateway ${id} exited with ${proc.exitCode}: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return { proc, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway ${id} not ready after 15 s: ${stderr}`);
}

/** Checks a scenario does what its row claims before it is measured. */
async function check(s: Scenario, stamps: number, gateway: boolean): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${s.port}/check`, { headers: CLIENT_HEADERS });
  const seen = await res.json() as Record<string, string>;
  const problems: string[] = [];
  if (res.status !== 200) problems.push(`status ${res.status}`);
  const expectStamp = stamps === 0 ? undefined : Array.from({ length: stamps }, (_, i) => `stamp ${i + 1}`).join(', ');
  if (seen['x-edge-stamp'] !== expectStamp) problems.push(`upstream saw x-edge-stamp ${seen['x-edge-stamp']}, expected ${expectStamp}`);
  const servedBy = stamps === 0 ? null : Array(stamps).fill('edge-gateway').join(', ');
  if (res.headers.get('x-served-by') !== servedBy) problems.push(`client saw x-served-by ${res.headers.get('x-served-by')}, expected ${servedBy}`);
  if (gateway && (seen['x-request-id'] === undefined || seen['x-forwarded-for'] !== '127.0.0.1')) problems.push('no x-request-id / x-forwarded-for');
  if (seen['user-agent'] !== CLIENT_HEADERS['user-agent']) problems.push('user-agent not forwarded');
  const body = await fetch(`http://127.0.0.1:${s.port}/`).then((r) => r.text());
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  if (problems.length > 0) throw new Error(`scenario ${s.id}: ${problems.join('; ')}`);
}

/**
 * A fresh Node process runs its request path interpreted for the first few thousand requests: on
 * this machine a new gateway spent ~800 µs of main-thread CPU per request in its first 3 s against
 * ~200 µs later. Each process therefore gets PROCESS_WARMUP requests (at most 15 s) first.
 */
function warmUp(s: Scenario): Promise<void> {
  const spec = { url: `http://127.0.0.1:${s.port}/`, connections: CONNECTIONS, warmupS: 0, durationS: 15, headers: CLIENT_HEADERS, warmupRequests: PROCESS_WARMUP };
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/load.ts'), JSON.stringify(spec)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => {
    // 'close', not 'exit': stdout is read to its end first.
    proc.once('close', (code) => {
      if (code !== 0) reject(new Error(`warm-up of ${s.id} exited with ${code}`));
      else {
        const r = JSON.parse(out) as { requests: number; errors: number; non2xx: number };
        console.log(`  warm-up ${s.id.padEnd(16)} ${r.requests} requests${r.errors + r.non2xx > 0 ? `, errors ${r.errors} non2xx ${r.non2xx}` : ''}`);
        resolve();
      }
    });
  });
}

/** One measured run: autocannon in its own process; CPU of the process under test read around it. */
function measure(s: Scenario, upstream: ChildProcess, round: number): Promise<Run> {
  const spec = { url: `http://127.0.0.1:${s.port}/`, connections: CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S, headers: CLIENT_HEADERS };
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/load.ts'), JSON.stringify(spec)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let cpu0 = 0;
    let up0 = 0;
    let done = false;
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { phase?: string } & LoadResult;
        if (msg.phase === 'measure') {
          cpu0 = cpuUs(s.proc.pid!);
          up0 = cpuUs(upstream.pid!);
          return;
        }
        const cpu = cpuUs(s.proc.pid!) - cpu0;
        const up = cpuUs(upstream.pid!) - up0;
        done = true;
        resolve({ scenario: s.id, round, result: msg, cpuUsPerReq: cpu / msg.requests, upstreamCpuUsPerReq: up / msg.requests });
      } catch (err) {
        // e.g. the process under test is gone (/proc/<pid>/stat unreadable)
        done = true;
        reject(new Error(`scenario ${s.id}: ${(err as Error).message}`));
      }
    });
    proc.once('close', (code) => {
      if (!done) reject(new Error(`load generator for ${s.id} exited with ${code} before its result`));
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '—');

async function main(): Promise<void> {
  if (!existsSync(STAMP)) {
    const built = spawnSync(process.execPath, ['--import', 'tsx', 'filters/build.ts'], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('filters/build.ts failed');
  }
  const up = await startServer('upstream');
  const target = `http://127.0.0.1:${up.port}`;
  const defs: { id: string; label: string; stamps: number; gateway: boolean; start: () => Promise<{ proc: ChildProcess; port: number }> }[] = [
    { id: 'direct', label: 'direct to the upstream', stamps: 0, gateway: false, start: async () => up },
    { id: 'http-proxy-3', label: 'http-proxy-3, minimal (no agent: a connection per request)', stamps: 0, gateway: false, start: () => startServer('http-proxy-3', target) },
    { id: 'http-proxy-3-ka', label: 'http-proxy-3 + keep-alive agent', stamps: 0, gateway: false, start: () => startServer('http-proxy-3-ka', target) },
    { id: 'undici', label: 'undici `Pool.stream` proxy', stamps: 0, gateway: false, start: () => startServer('undici', target) },
    { id: 'gw-0', label: 'gateway, no filters', stamps: 0, gateway: true, start: () => startGateway('gw-0', up.port, 0, 'error') },
    { id: 'gw-1', label: 'gateway, 1 filter (stamp)', stamps: 1, gateway: true, start: () => startGateway('gw-1', up.port, 1, 'error') },
    { id: 'gw-3', label: 'gateway, 3 filters (stamp ×3, 3 VMs)', stamps: 3, gateway: true, start: () => startGateway('gw-3', up.port, 3, 'error') },
    { id: 'gw-0-info', label: 'gateway, no filters, log.level info (access log)', stamps: 0, gateway: true, start: () => startGateway('gw-0-info', up.port, 0, 'info') },
  ];
  const wanted = defs.filter((d) => ONLY === undefined || ONLY.includes(d.id));

  const cpu = cpus();
  console.log(`node ${process.version}, ${process.platform}-${process.arch}, ${cpu[0]?.model ?? '?'} × ${cpu.length}, ${new Date().toISOString()}`);
  console.log(`autocannon: ${CONNECTIONS} connections, ${ROUNDS} rounds; each round starts fresh processes, gives each ${PROCESS_WARMUP} warm-up requests, then per run ${WARMUP_S} s warm-up + ${DURATION_S} s measured; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Fresh processes every round: two processes running the same code differ by up to ~10 % in
    // CPU per request (JIT decisions, code placement), so one process per scenario would bias it.
    const scenarios: Scenario[] = [];
    for (const d of wanted) {
      const { proc, port } = await d.start();
      const s = { id: d.id, label: d.label, port, proc };
      scenarios.push(s);
      await check(s, d.stamps, d.gateway);
    }
    for (const s of scenarios) await warmUp(s);
    for (let k = 0; k < scenarios.length; k++) {
      const s = scenarios[(k + round) % scenarios.length];
      const run = await measure(s, up.proc, round);
      runs.push(run);
      const r = run.result;
      console.log(`  round ${round + 1} ${s.id.padEnd(16)} ${fmt(r.reqPerSec).padStart(6)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ${fmt(run.cpuUsPerReq, 1)} µs CPU/req${r.errors + r.non2xx + r.timeouts > 0 ? `  errors ${r.errors} non2xx ${r.non2xx} timeouts ${r.timeouts}` : ''}`);
    }
    for (const s of scenarios) if (s.proc !== up.proc) await stop(s.proc);
  }
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
    const perRound = a.map((ra) => ra.result.reqPerSec / b.find((rb) => rb.round === ra.round)!.result.reqPerSec);
    const paired = median(perRound);
    const ofMedians = median(a.map((r) => r.result.reqPerSec)) / median(b.map((r) => r.result.reqPerSec));
    const ofBests = Math.max(...a.map((r) => r.result.reqPerSec)) / Math.max(...b.map((r) => r.result.reqPerSec));
    const cpuRatio = median(b.map((r) => r.cpuUsPerReq)) / median(a.map((r) => r.cpuUsPerReq));
    const verdict = q.target === undefined ? '' : paired >= q.target ? 'PASS' : 'FAIL';
    console.log(`| ${q.name} | ${fmt(paired, 2)} | ${perRound.map((x) => fmt(x, 2)).join(', ')} | ${fmt(ofMedians, 2)} | ${fmt(ofBests, 2)} | ${q.a === 'direct' || q.b === 'direct' ? '—' : fmt(cpuRatio, 2)} | ${q.target === undefined ? '' : `≥ ${q.target}`} | ${verdict} |`);
  }
  if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, JSON.stringify({ node: process.version, connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S, runs }, null, 2));
}

try {
  await main();
} finally {
  cleanUp();
}
