/**
 * The gateway's cost per proxied request in machine instructions, for before/after comparisons
 * of the data plane that the load benches cannot settle on a busy 2-core machine (their CPU µs
 * per request moves ±30% between rounds of the same build).
 *
 *   npm run build:gateway && npx tsx bench/proxy-instructions.ts
 *   BENCH_ONLY=headers npx tsx bench/proxy-instructions.ts     (no filter is always run)
 *
 * For each target (no filter, then each shipped filter alone on the route, as in
 * bench/proxy-filters.ts) one `node dist/gateway/cli.js start` runs under `valgrind
 * --tool=callgrind`. A client in this process sends WARM requests on 4 keep-alive connections,
 * callgrind_control dumps the counters (and zeroes them), MEASURED more requests follow, and a
 * second dump closes the window: its count / MEASURED is the gateway's instructions per request,
 * start-up and warm-up excluded. Every request carries the bench's browser-like headers and the filter's own
 * (bench/lib/filter-cases.ts) and must answer 200.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { FILTER_CASES, type FilterCase } from './lib/filter-cases.js';
import { gatewayConfig } from './lib/filter-gateway.js';
import { CLIENT_HEADERS, ROOT, cleanUp, freePort, startServer } from './lib/processes.js';

const WARM = 3000;
const MEASURED = 3000;
const CONNECTIONS = 4;


/** Ir of the newest dump file of `prefix` (callgrind writes `prefix.N` per dump). */
function lastDump(dir: string, prefix: string, after: Set<string>): number {
  const fresh = readdirSync(dir).filter((f) => f.startsWith(`${prefix}.`) && !after.has(f));
  if (fresh.length !== 1) throw new Error(`expected one new dump of ${prefix}, found ${fresh.join(', ') || 'none'}`);
  after.add(fresh[0]);
  const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(path.join(dir, fresh[0]), 'utf8'));
  if (totals === null) throw new Error(`no totals in ${fresh[0]}`);
  return Number(totals[1]);
}

async function send(pool: Pool, n: number, c: FilterCase | undefined): Promise<void> {
  const headers = { ...CLIENT_HEADERS, ...(c?.request ?? {}) };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const res = await pool.request({ path: '/api/items?limit=50', method: 'GET', headers });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`${c?.name ?? 'none'}: status ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

async function measure(c: FilterCase | undefined, upstream: number, dir: string): Promise<number> {
  const name = c?.name ?? 'none';
  const [port, admin] = [await freePort(), await freePort()];
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(gatewayConfig(port, admin, upstream, c)));
  const prefix = `${name}.out`;
  const proc: ChildProcess = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${path.join(dir, prefix)}`, '--dump-line=no',
    '--compress-strings=no', process.execPath, path.join(ROOT, 'dist/gateway/cli.js'), 'start', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null || i > 1200) throw new Error(`${name}: gateway not ready: ${stderr.slice(-2000)}`);
      if (await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS });
    const seen = new Set<string>();
    await send(pool, WARM, c);
    execFileSync('callgrind_control', ['--dump', String(proc.pid)], { stdio: 'ignore' });
    lastDump(dir, prefix, seen); // start-up and warm-up; a dump zeroes the counters
    await send(pool, MEASURED, c);
    execFileSync('callgrind_control', ['--dump', String(proc.pid)], { stdio: 'ignore' });
    const window = lastDump(dir, prefix, seen);
    await pool.close();
    return window / MEASURED;
  } finally {
    proc.kill('SIGKILL');
  }
}

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['--help'], { stdio: 'ignore' });
} catch {
  console.error('valgrind (with callgrind_control) is not installed: apt-get install valgrind');
  process.exit(2);
}
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const cases: Array<FilterCase | undefined> = [undefined, ...FILTER_CASES.filter((c) => only === undefined || only.includes(c.name))];
const dir = mkdtempSync(path.join(os.tmpdir(), 'proxy-ir-'));
console.log('edge-gateway instructions per proxied request (callgrind)');
console.log(`node ${process.version} · ${os.platform()}-${os.arch()} · ${WARM} warm-up + ${MEASURED} measured requests, ${CONNECTIONS} connections\n`);
try {
  const upstream = await startServer('upstream');
  let base = 0;
  for (const c of cases) {
    const ir = await measure(c, upstream.port, dir);
    if (c === undefined) base = ir;
    console.log(`${(c?.name ?? 'no filter').padEnd(12)} ${ir.toFixed(0).padStart(9)} Ir/req${c === undefined ? '' : `   +${(ir - base).toFixed(0)} over no filter`}`);
  }
} finally {
  cleanUp();
  rmSync(dir, { recursive: true, force: true });
}
