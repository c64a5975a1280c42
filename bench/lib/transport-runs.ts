/**
 * The measured runs of the transport bench (bench/transport.ts), one load generator process per
 * run, pinned to the other core: TLS handshakes (bench/lib/handshakes.ts), HTTP/1.1 keep-alive
 * over TLS or not (autocannon, bench/lib/load.ts) and HTTP/2 (h2load, over TLS or h2c). Each reads the CPU time of
 * the process under test at the two lines where its load generator's measured window starts and
 * ends, and returns one Measurement in the same units: per handshake, or per request.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { HandshakeResult } from './handshakes.js';
import type { LoadResult } from './load.js';
import { OTHER_CORE, ROOT, cpuUs, pin, track } from './processes.js';

export type Kind = 'handshake' | 'https' | 'http' | 'h2' | 'h2c';

export interface Window {
  warmupS: number;
  durationS: number;
}

export interface Measurement {
  /** Handshakes or requests per second in the measured window. */
  rate: number;
  units: number;
  /** CPU µs of the process under test per handshake or request. */
  cpuUsPerUnit: number;
  /** Failed handshakes or requests, non-2xx answers, timeouts. */
  errors: number;
  firstError: string;
  /** Latency: p50 and p99 (h2load reports only the mean, in p50Ms; p99Ms is NaN). */
  p50Ms: number;
  p99Ms: number;
  /** The 1-minute load average when the run ended. */
  load: number;
  /** What h2load negotiated (`TLSv1.3 TLS_AES_128_GCM_SHA256 X25519 h2`); '' for the others. */
  negotiated: string;
}

/**
 * Spawns `command` on OTHER_CORE and reads `pid`'s CPU between the line `starts` matches and the
 * line `ends` matches; resolves with every stdout line once it exits, killed after `limitS`.
 */
function measured(command: string, args: string[], pid: number, starts: (l: string) => boolean, ends: (l: string) => boolean, limitS: number): Promise<{ lines: string[]; cpu: number }> {
  // NODE_NO_WARNINGS: autocannon sets the TLS server name to the IP (DEP0123), once per process.
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  track(proc);
  pin(proc.pid!, OTHER_CORE);
  const limit = setTimeout(() => proc.kill('SIGKILL'), limitS * 1000);
  const lines: string[] = [];
  let stderr = '';
  let cpu0 = NaN;
  let cpu = NaN;
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    if (Number.isNaN(cpu0) && starts(line)) cpu0 = cpuUs(pid);
    else if (!Number.isNaN(cpu0) && Number.isNaN(cpu) && ends(line)) cpu = cpuUs(pid) - cpu0;
  });
  return new Promise((resolve, reject) => {
    proc.once('error', (err) => {
      clearTimeout(limit);
      reject(new Error(`${command}: ${err.message}`));
    });
    // 'close', not 'exit': stdout is read to its end first.
    proc.once('close', (code) => {
      clearTimeout(limit);
      if (code === 0 && !Number.isNaN(cpu)) resolve({ lines, cpu });
      else reject(new Error(`${command} ${args.at(-1)} exited with ${code} before its result: ${stderr.slice(0, 500)}${lines.slice(-5).join('\n')}`));
    });
  });
}

const tsx = (file: string, spec: object): string[] => ['--import', 'tsx', join(ROOT, file), JSON.stringify(spec)];
const isPhase = (l: string): boolean => l.startsWith('{"phase":"measure"}');
const isResult = (l: string): boolean => l.startsWith('{') && !isPhase(l);

/** New connections, each a full handshake and one request, `parallel` at a time. */
export async function handshakes(port: number, pid: number, headers: Record<string, string>, parallel: number, w: Window): Promise<Measurement> {
  const spec = { port, parallel, headers, ...w };
  const { lines, cpu } = await measured(process.execPath, tsx('bench/lib/handshakes.ts', spec), pid, isPhase, isResult, w.warmupS + w.durationS + 30);
  const r = JSON.parse(lines.find(isResult)!) as HandshakeResult;
  return { rate: r.perSec, units: r.handshakes, cpuUsPerUnit: cpu / r.handshakes, errors: r.errors, firstError: r.firstError, p50Ms: r.p50Ms, p99Ms: r.p99Ms, load: loadavg()[0], negotiated: '' };
}

/** autocannon over HTTP/1.1 with keep-alive, `https:` or `http:` (it does not verify the certificate). */
export async function keepAlive(url: string, pid: number, headers: Record<string, string>, connections: number, w: Window): Promise<Measurement> {
  const spec = { url, connections, headers, ...w };
  const { lines, cpu } = await measured(process.execPath, tsx('bench/lib/load.ts', spec), pid, isPhase, isResult, w.warmupS + w.durationS + 30);
  const r = JSON.parse(lines.find(isResult)!) as LoadResult;
  const errors = r.errors + r.non2xx + r.timeouts;
  return { rate: r.reqPerSec, units: r.requests, cpuUsPerUnit: cpu / r.requests, errors, firstError: errors > 0 ? `errors ${r.errors}, non-2xx ${r.non2xx}, timeouts ${r.timeouts}` : '', p50Ms: r.p50Ms, p99Ms: r.p99Ms, load: loadavg()[0], negotiated: '' };
}

/**
 * h2load: `clients` connections with `streams` requests in flight on each, over TLS (ALPN h2) or
 * h2c with prior knowledge; its warm-up (connections and handshakes included) is outside the window.
 */
export async function h2load(url: string, pid: number, headers: Record<string, string>, clients: number, streams: number, w: Window): Promise<Measurement> {
  const args = ['-c', String(clients), '-m', String(streams), '-t', '1', `--warm-up-time=${Math.round(w.warmupS * 1000)}ms`, '-D', `${Math.round(w.durationS * 1000)}ms`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { lines, cpu } = await measured('h2load', args, pid, (l) => l.startsWith('Main benchmark duration is started'), (l) => l.startsWith('Main benchmark duration is over'), w.warmupS + w.durationS + 30);
  const text = lines.join('\n');
  const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  const done = num(/requests: \d+ total, \d+ started, (\d+) done/);
  const succeeded = num(/(\d+) succeeded/);
  const bad = num(/(\d+) failed/) + num(/(\d+) errored/) + num(/(\d+) timeout/) + num(/\d+ 2xx, (\d+) 3xx/) + num(/(\d+) 4xx/) + num(/(\d+) 5xx/);
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  const meanMs = mean === null ? NaN : Number(mean[1]) * (mean[2] === 'us' ? 1e-3 : mean[2] === 's' ? 1e3 : 1);
  const said = (name: string): string => new RegExp(`^${name}: (\\S+)`, 'm').exec(text)?.[1] ?? '';
  const negotiated = url.startsWith('https:') ? `${said('TLS Protocol')} ${said('Cipher')} ${said('Server Temp Key')} ${said('Application protocol')}` : said('Application protocol');
  if (!Number.isFinite(done) || done === 0) throw new Error(`h2load ${url}: no request done:\n${text.slice(-800)}`);
  const errors = bad + (done - succeeded);
  const firstError = errors > 0 ? text.split('\n').filter((l) => /^(requests|status codes):/.test(l)).join('; ') : '';
  const rate = num(/finished in [\d.]+m?s, ([\d.]+) req\/s/);
  return { rate, units: done, cpuUsPerUnit: cpu / done, errors, firstError, p50Ms: meanMs, p99Ms: NaN, load: loadavg()[0], negotiated };
}
