/**
 * The processes of the proxy benches (bench/proxy.ts, bench/proxy-filters.ts): servers and
 * gateways under test, the load generator, and the rounds that measure them.
 *
 * Every party has its own process, so no two share an event loop. On a 2-core machine they still
 * share cores, so the processes under test are pinned to one core (PROXY_CORE) and the upstream
 * and the load generator to the other, every process is started once, checked and warmed up,
 * and then the scenarios are measured in rounds, in an order rotated by one per round (ABAB…).
 * The figure that moves least with contention is the CPU time the process under test spends per
 * request (/proc/PID/stat); ratios are taken between runs of the same round, whose drift cancels.
 */
import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LoadResult } from './load.js';
import { CLIENT_HEADERS } from './client-headers.js';
import { fmt } from './stats.js';
import { idleRssOver, type IdleRss } from './idle-rss.js';

export const ROOT = join(import.meta.dirname, '../..');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Load settings shared by every run of a bench (from the BENCH_* environment variables). */
export interface LoadSettings {
  connections: number;
  warmupS: number;
  durationS: number;
  /** Requests each fresh process gets before it is measured, so that its JIT is warm. */
  processWarmup: number;
}

/** What a run of a proxy bench was asked for, from BENCH_* and `--json <file>`. */
export interface BenchOptions extends LoadSettings {
  rounds: number;
  /** BENCH_ONLY: the scenario ids to run (all when undefined). */
  only: string[] | undefined;
  jsonOut: string | undefined;
  /**
   * BENCH_BASELINE: another checkout, built (`npm run build` there), whose gateway runs beside
   * this one in the same rounds, as `base-<id>` rows: a change measured against the code before it.
   */
  baseline: string | undefined;
}

export function benchOptions(): BenchOptions {
  const jsonAt = process.argv.indexOf('--json');
  return {
    // Many short rounds rather than a few long ones: this machine's noise comes in stretches of
    // ~10 s, and 12 rounds of 0.5 + 1.5 s put both runs of a pair in one stretch more often than
    // 5 of 1 + 4 s (same time per scenario; the control agreed within 2% where it had read 1.08).
    rounds: Math.max(1, Number(process.env.BENCH_ROUNDS ?? '12')),
    only: process.env.BENCH_ONLY?.split(',').filter(Boolean),
    jsonOut: jsonAt > 0 ? process.argv[jsonAt + 1] : undefined,
    baseline: process.env.BENCH_BASELINE || undefined,
    connections: Number(process.env.BENCH_CONNECTIONS ?? '50'),
    warmupS: Number(process.env.BENCH_WARMUP ?? '0.5'),
    durationS: Number(process.env.BENCH_DURATION ?? '1.5'),
    processWarmup: Number(process.env.BENCH_PROCESS_WARMUP ?? '10000'),
  };
}

/** The core the processes under test run on; the upstream, the load generator and this bench run on the other. */
export const PROXY_CORE = 0;
export const OTHER_CORE = 1;
/** Pinning needs two cores and taskset (util-linux); without them the bench runs unpinned and says so. */
export const PINNED = cpus().length >= 2 && spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;

/**
 * Node flags of every Node process under test (the gateways and the Node proxies they are compared
 * with, not the upstream). Pinned to one core, a process runs V8's garbage collector on its main
 * thread (`--single-threaded-gc`), as the README advises for a gateway given one core: V8's
 * concurrent marking and sweeping threads then share the core with the requests, and a process
 * streaming 64 KB responses fell, once in two or three starts, into a mark-compact after every
 * scavenge (bench/README.md, "One core: the garbage collector on the main thread").
 * BENCH_GC=concurrent keeps V8's default.
 */
export const UNDER_TEST_FLAGS: readonly string[] = PINNED && process.env.BENCH_GC !== 'concurrent' ? ['--single-threaded-gc'] : [];

/** Pins every thread of `pid` to `core` (a no-op when the machine cannot pin, PINNED). */
export function pin(pid: number, core: number): void {
  if (!PINNED) return;
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`taskset could not pin process ${pid} to core ${core}`);
}

export interface Started {
  proc: ChildProcess;
  port: number;
  /** The admin port of a gateway. */
  admin?: number;
}

/** One scenario: how to start its process, how to check it, and what each request carries. */
export interface ScenarioDef {
  id: string;
  label: string;
  /** Not a process under test (the upstream itself): left on the other core. */
  unpinned?: boolean;
  /** The path requested (default `/`: the upstream's 1 KB answer; bench/lib/servers.ts). */
  path?: string;
  /** Request headers besides host. */
  headers: Record<string, string>;
  start: () => Promise<Started>;
  /** Throws, naming the scenario, when it does not do what its row claims. */
  check: (under: Started) => Promise<void>;
}

export interface Run {
  scenario: string;
  round: number;
  /** The 1-minute load average when the run ended. */
  load: number;
  result: LoadResult;
  /** CPU µs per request of the process under test, and of the upstream, during the measured run. */
  cpuUsPerReq: number;
  upstreamCpuUsPerReq: number;
  /**
   * A gateway's time in garbage collection per request, from its own /metrics
   * (nodejs_gc_duration_seconds, over the warm-up and the measured run), and its collections of
   * the young generation per 1000 requests. Absent for the other proxies.
   */
  gc?: { usPerReq: number; minorPer1k: number };
}

const children: ChildProcess[] = [];
let tmp: string | undefined;

/** A file in this run's temporary folder (removed by `cleanUp`). */
export function tempFile(name: string, text: string): string {
  tmp ??= mkdtempSync(join(tmpdir(), 'bench-proxy-'));
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

/** Ends `proc` with the bench (cleanUp). */
export function track(proc: ChildProcess): void {
  children.push(proc);
}

/** Ends every process this bench started and removes its temporary folder. */
export function cleanUp(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(code);
  });
}

/** SIGTERM to one process we started, then wait (bounded) for it to exit; SIGKILL after 10 s. */
export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process (all threads), in µs. */
export function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

/** Resident memory of a process, in MB (VmRSS of /proc/PID/status). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** Forks bench/lib/servers.ts in `role` and waits for its port; the upstream goes to the other core, a proxy to PROXY_CORE. */
export function startServer(role: string, target?: string): Promise<Started> {
  const proc = fork(join(ROOT, 'bench/lib/servers.ts'), target === undefined ? [role] : [role, target], {
    execArgv: ['--import', 'tsx', ...(role === 'upstream' ? [] : UNDER_TEST_FLAGS)], cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => {
      pin(proc.pid!, role === 'upstream' ? OTHER_CORE : PROXY_CORE);
      resolve({ proc, port: m.port });
    });
    proc.once('exit', (code) => reject(new Error(`${role} server exited with ${code}`)));
  });
}

let built = false;

/**
 * Builds the gateway (tsc into dist/) once per bench run, so that every gateway runs the current
 * sources as users run them: `node dist/gateway/cli.js`. Under tsx the same gateway read ~12 µs
 * more CPU per request with one filter (and the same without), which is not what users run.
 */
export function buildGateway(): void {
  if (built) return;
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building the gateway (tsc -p tsconfig.build.json) failed');
  built = true;
}

/**
 * Starts `edge-gateway start` in its own process, as users run it (the built dist/gateway/cli.js),
 * on the configuration `config` builds for a listener and an admin port, and waits (bounded)
 * until /readyz answers 200. Pinned to PROXY_CORE unless `pinned` is false. `root` is the
 * checkout whose dist/ runs: this one (built first), or a baseline built beforehand
 * (BENCH_BASELINE, see bench/README.md).
 */
export async function startGateway(id: string, config: (port: number, admin: number) => object, pinned = true, root = ROOT): Promise<Started> {
  const [port, admin] = [await freePort(), await freePort()];
  const file = tempFile(`${id}.json`, JSON.stringify(config(port, admin), null, 2));
  // stdout (pino's JSON lines) goes to /dev/null.
  if (root === ROOT) buildGateway();
  else if (!existsSync(join(root, 'dist/gateway/cli.js'))) throw new Error(`${root}/dist/gateway/cli.js is missing: build the baseline first (npm run build there)`);
  // BENCH_GATEWAY_FLAGS: node flags for the gateways, e.g. "--cpu-prof --cpu-prof-dir=prof" to profile them.
  const flags = [...UNDER_TEST_FLAGS, ...process.env.BENCH_GATEWAY_FLAGS?.split(' ').filter(Boolean) ?? []];
  const proc = spawn(process.execPath, [...flags, 'dist/gateway/cli.js', 'start', '--config', file], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(proc);
  // NB: before it forks: the workers of `workers: N` inherit the core (pinned = false leaves a box on every core).
  if (pinned) pin(proc.pid!, PROXY_CORE);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`gateway ${id} exited with ${proc.exitCode}: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return { proc, port, admin };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway ${id} not ready after 15 s: ${stderr}`);
}

/** Spawns bench/lib/load.ts (autocannon) with one JSON spec, on OTHER_CORE; its stdout lines go to `onLine`. */
export function load(spec: object, onLine: (line: string) => void): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/load.ts'), JSON.stringify(spec)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(proc);
  pin(proc.pid!, OTHER_CORE);
  createInterface({ input: proc.stdout! }).on('line', onLine);
  return proc;
}

/**
 * A fresh Node process runs its request path interpreted for the first few thousand requests: on
 * this machine a new gateway spent ~800 µs of main-thread CPU per request in its first 3 s against
 * ~200 µs later. Each process therefore gets `processWarmup` requests (at most 15 s) first.
 */
function warmUp(def: ScenarioDef, port: number, settings: LoadSettings): Promise<void> {
  const spec = { url: `http://127.0.0.1:${port}${def.path ?? '/'}`, connections: settings.connections, warmupS: 0, durationS: 15, headers: def.headers, warmupRequests: settings.processWarmup };
  let out = '';
  const proc = load(spec, (line) => { out = line; });
  return new Promise((resolve, reject) => {
    // 'close', not 'exit': stdout is read to its end first.
    proc.once('close', (code) => {
      if (code !== 0) return reject(new Error(`warm-up of ${def.id} exited with ${code}`));
      const r = JSON.parse(out) as { requests: number; errors: number; non2xx: number };
      console.log(`  warm-up ${def.id.padEnd(16)} ${r.requests} requests${r.errors + r.non2xx > 0 ? `, errors ${r.errors} non2xx ${r.non2xx}` : ''}`);
      resolve();
    });
  });
}

/** What a gateway's /metrics says of its collections and requests so far (null for the other proxies). */
async function gcFigures(under: Started): Promise<{ gcSeconds: number; minor: number; requests: number } | null> {
  if (under.admin === undefined) return null;
  const text = await fetch(`http://127.0.0.1:${under.admin}/metrics`).then((r) => r.text());
  const sum = (pattern: RegExp): number => [...text.matchAll(pattern)].reduce((n, m) => n + Number(m[1]), 0);
  return {
    gcSeconds: sum(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
    minor: sum(/^nodejs_gc_duration_seconds_count\{kind="minor"\} (\S+)$/gm),
    requests: sum(/^edge_gateway_requests_total\{[^}]*\} (\S+)$/gm),
  };
}

/**
 * One measured run (autocannon in its own process; CPU of the process under test read around
 * it), and a gateway's GC figures, scraped before the load starts and after its CPU is read.
 */
async function measure(def: ScenarioDef, under: Started, upstream: ChildProcess, round: number, settings: LoadSettings): Promise<Run> {
  const before = await gcFigures(under);
  const run = await measured(def, under, upstream, round, settings);
  const after = await gcFigures(under);
  if (before === null || after === null || after.requests <= before.requests) return run;
  const requests = after.requests - before.requests;
  return { ...run, gc: { usPerReq: ((after.gcSeconds - before.gcSeconds) * 1e6) / requests, minorPer1k: ((after.minor - before.minor) * 1000) / requests } };
}

function measured(def: ScenarioDef, under: Started, upstream: ChildProcess, round: number, settings: LoadSettings): Promise<Run> {
  const spec = { url: `http://127.0.0.1:${under.port}${def.path ?? '/'}`, connections: settings.connections, warmupS: settings.warmupS, durationS: settings.durationS, headers: def.headers };
  return new Promise((resolve, reject) => {
    let cpu0 = 0;
    let up0 = 0;
    let done = false;
    const proc = load(spec, (line) => {
      try {
        const msg = JSON.parse(line) as { phase?: string } & LoadResult;
        if (msg.phase === 'measure') {
          cpu0 = cpuUs(under.proc.pid!);
          up0 = cpuUs(upstream.pid!);
          return;
        }
        const cpu = cpuUs(under.proc.pid!) - cpu0;
        const up = cpuUs(upstream.pid!) - up0;
        done = true;
        resolve({ scenario: def.id, round, load: loadavg()[0], result: msg, cpuUsPerReq: cpu / msg.requests, upstreamCpuUsPerReq: up / msg.requests });
      } catch (err) {
        // e.g. the process under test is gone (/proc/<pid>/stat unreadable)
        done = true;
        reject(new Error(`scenario ${def.id}: ${(err as Error).message}`));
      }
    });
    proc.once('close', (code) => {
      if (!done) reject(new Error(`load generator for ${def.id} exited with ${code} before its result`));
    });
  });
}

/**
 * Starts every scenario's process once, checks it and warms it up, then measures all of them in
 * `rounds` rounds, in an order rotated by one per round. Warm processes matter: a fresh Node
 * process runs its request path interpreted for its first thousands of requests, and two fresh
 * processes of the same code differ by up to ~10% (JIT decisions, code placement), which rounds
 * of fresh processes mix into every ratio.
 */
/** Resident memory (MB) of each scenario's process once started, checked and idle (the lowest RSS of a window: idle-rss.ts), before any load (runRounds). */
export const idleRssMb = new Map<string, number>();

export async function runRounds(defs: ScenarioDef[], upstream: Started, settings: BenchOptions): Promise<Run[]> {
  pin(process.pid, OTHER_CORE); // this driver wakes up between runs: keep it off the proxies' core
  const runs: Run[] = [];
  const started: Array<{ def: ScenarioDef; under: Started }> = [];
  for (const def of defs) {
    const under = await def.start();
    if (def.unpinned !== true) pin(under.proc.pid!, PROXY_CORE);
    started.push({ def, under });
    await def.check(under);
  }
  // Read at rest, all at once (bench/lib/idle-rss.ts).
  // Once per process (a same-process pair shares one); a reading still falling is said so.
  const idle = new Map<ChildProcess, Promise<IdleRss>>();
  for (const { under } of started) if (!idle.has(under.proc)) idle.set(under.proc, idleRssOver(() => rssMb(under.proc.pid!)));
  for (const { def, under } of started) {
    const { mb, settled } = await idle.get(under.proc)!;
    idleRssMb.set(def.id, mb);
    if (!settled) console.log(`  idle RSS of ${def.id} was still falling after 30 s: ${mb.toFixed(1)} MB is an upper bound`);
  }
  for (const { def, under } of started) await warmUp(def, under.port, settings);
  for (let round = 0; round < settings.rounds; round++) {
    for (let k = 0; k < started.length; k++) {
      const { def, under } = started[(k + round) % started.length];
      const run = await measure(def, under, upstream.proc, round, settings);
      runs.push(run);
      const r = run.result;
      console.log(`  round ${round + 1} ${def.id.padEnd(16)} ${fmt(r.reqPerSec).padStart(6)} req/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  ${fmt(run.cpuUsPerReq, 1)} µs CPU/req${run.gc === undefined ? '' : `  GC ${fmt(run.gc.usPerReq, 1)} µs/req`}  load ${run.load.toFixed(2)}${r.errors + r.non2xx + r.timeouts > 0 ? `  errors ${r.errors} non2xx ${r.non2xx} timeouts ${r.timeouts}` : ''}`);
    }
  }
  for (const { under } of started) if (under.proc !== upstream.proc) await stop(under.proc);
  return runs;
}


/** Builds filters/dist when a module the bench needs is missing. */
export function ensureFilters(names: string[] = ['stamp']): void {
  if (names.every((name) => existsSync(join(ROOT, 'filters/dist', `${name}.wasm`)))) return;
  const built = spawnSync(process.execPath, ['--import', 'tsx', 'filters/build.ts'], { cwd: ROOT, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('filters/build.ts failed');
}

/** The machine and the load settings, printed before any figure. */
export function printSetup(settings: BenchOptions): void {
  const cpu = cpus();
  console.log(`node ${process.version}, ${process.platform}-${process.arch}, ${cpu[0]?.model ?? '?'} × ${cpu.length}, ${new Date().toISOString()}`);
  console.log(`autocannon: ${settings.connections} connections, ${Object.keys(CLIENT_HEADERS).length} request headers; every process started once and warmed up with ${settings.processWarmup} requests, then ${settings.rounds} rounds of ${settings.warmupS} s warm-up + ${settings.durationS} s measured per scenario`);
  console.log(PINNED ? `processes under test pinned to core ${PROXY_CORE}, upstream and load generator to core ${OTHER_CORE}` : 'NOT PINNED (fewer than 2 cores or no taskset): figures are noisier');
  if (UNDER_TEST_FLAGS.length > 0) console.log(`Node processes under test run with ${UNDER_TEST_FLAGS.join(' ')} (BENCH_GC=concurrent: without)`);
  console.log(`load average at the start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (settings.baseline !== undefined) console.log(`base-… rows: the gateway built in ${settings.baseline}`);
}

/**
 * With BENCH_BASELINE, a `base-` twin of each gateway scenario of `defs` that `twin` makes (the
 * same configuration, started from the baseline's dist/); none without it.
 */
export function baselineTwins(defs: ScenarioDef[], twin: (def: ScenarioDef, root: string) => ScenarioDef | null, settings: BenchOptions): ScenarioDef[] {
  const root = settings.baseline;
  if (root === undefined) return [];
  return defs.flatMap((d) => twin(d, root) ?? []);
}

/**
 * Runs a bench's `main` with a time limit: past `limitMs` it says so, cleans up and exits 1; either
 * way every process it started is stopped (cleanUp) and `cleanup` runs.
 */
export async function runBounded(name: string, limitMs: number, main: () => Promise<void>, cleanup: () => void = () => undefined): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`${name}: still running after ${limitMs / 60_000} min: stopped`);
    cleanUp();
    cleanup();
    process.exit(1);
  }, limitMs);
  try {
    await main();
  } finally {
    clearTimeout(limit);
    cleanUp();
    cleanup();
  }
}
