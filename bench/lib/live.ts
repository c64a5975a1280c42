/**
 * The pieces of the live-modules bench (bench/live-modules.ts): versions of the stamp filter that
 * say which of them served a response, the admin API's client, plain requests that read that
 * version, a redis-server of the bench's own, and autocannon runs whose measured phase the caller
 * can act on (swaps start when it starts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLIENT_HEADERS } from './client-headers.js';
import type { LoadResult, LoadSpec } from './load.js';
import { OTHER_CORE, ROOT, cpuUs, freePort, pin, track } from './processes.js';
import { watToBytes } from './wat.js';

/** The bearer token of the bench's gateways (admin.token needs 16+ characters). */
export const ADMIN_TOKEN = 'bench-live-modules-0123456789abcdef';

const STAMP = readFileSync(join(ROOT, 'filters/examples/stamp.wat'), 'utf8');
const LABEL = '(data (i32.const 48) "edge-gateway")';

/** One module version: the stamp filter answering `x-served-by: <label>`. */
export interface Version {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The bytes written to a file of the bench's temporary folder (for the CLI and the configuration). */
  readonly file: string;
}

let dir: string | undefined;

/** The bench's own temporary folder (removed by `removeTemp`). */
export function tempDir(): string {
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'bench-live-'));
    // Also on SIGINT/SIGTERM, which processes.ts answers with cleanUp() and process.exit().
    process.once('exit', removeTemp);
  }
  return dir;
}

export function removeTemp(): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/** The stamp filter with its 12-byte `x-served-by` value replaced, as test/helpers/versions.ts builds them. */
export function stampVersion(label: string): Version {
  if (label.length !== 12) throw new Error(`a version label is 12 characters: "${label}"`);
  if (!STAMP.includes(LABEL)) throw new Error(`filters/examples/stamp.wat no longer holds ${LABEL}`);
  const bytes = watToBytes(STAMP.replace(LABEL, `(data (i32.const 48) "${label}")`), `${label}.wat`);
  const file = join(tempDir(), `${label}.wasm`);
  writeFileSync(file, bytes);
  return { label, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), file };
}

/** What GET /plugins/NAME tells of one version (gateway/control/plugin-report.ts). */
export interface VersionReport {
  sha256: string;
  healthy: boolean;
  counters: { streams: number; failed: number };
}

export interface PluginReport {
  name: string;
  stable: VersionReport;
  canary: (VersionReport & { percent: number }) | null;
}

/** One call of the admin API: wasm bytes go as application/wasm, objects as JSON. Bounded at 10 s. */
export async function adminCall<T = PluginReport>(admin: number, method: string, path: string, body?: Uint8Array | object): Promise<{ status: number; body: T }> {
  const wasm = body instanceof Uint8Array;
  const res = await fetch(`http://127.0.0.1:${admin}${path}`, {
    method,
    signal: AbortSignal.timeout(10_000),
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': wasm ? 'application/wasm' : 'application/json' }) },
    body: body === undefined ? undefined : wasm ? new Uint8Array(body) : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as T };
}

/** The sum of a metric's series on the admin listener's /metrics whose labels contain `labels`. */
export async function metricSum(admin: number, name: string, labels = ''): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${admin}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
  let sum = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** One plain GET / with the browser-like headers: its status and the version that served it. Bounded at 5 s. */
export function servedBy(port: number, agent: Agent): Promise<{ status: number; label: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers: CLIENT_HEADERS, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, label: res.headers['x-served-by'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET / on port ${port} timed out after 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Plain requests to `port` until one is served by `label`, every `everyMs` (at most `limitMs`):
 * the ms from `t0` (performance.now()) to that response, and how many came from another version
 * first; `ms` is NaN when none did in time.
 */
export async function untilServedBy(port: number, agent: Agent, label: string, t0: number, everyMs: number, limitMs: number): Promise<{ ms: number; others: number; errors: number }> {
  let others = 0;
  let errors = 0;
  while (performance.now() - t0 < limitMs) {
    const seen = await servedBy(port, agent).catch(() => null);
    if (seen !== null && seen.status === 200 && seen.label === label) return { ms: performance.now() - t0, others, errors };
    if (seen === null || seen.status !== 200) errors++;
    else others++;
    if (everyMs > 0) await sleep(everyMs);
  }
  return { ms: NaN, others, errors };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A redis-server of the bench's own on a free loopback port, no persistence; ready within 5 s. */
export async function startRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  track(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; i < 100; i++) {
    if (/Ready to accept connections/.test(out)) return { url: `redis://127.0.0.1:${port}`, proc };
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${out}`);
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} not ready after 5 s: ${out}`);
}

export type { LoadSpec };

export interface Measured {
  result: LoadResult;
  /** CPU µs per request of `pid` during the measured phase. */
  cpuUsPerReq: number;
}

/**
 * One autocannon run in its own process on the other core (bench/lib/load.ts). `onMeasure` is
 * called when the measured phase starts; the run is killed if it has not ended 30 s after it should.
 */
export function runLoad(spec: LoadSpec, pid: number, onMeasure?: () => void): Promise<Measured> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/load.ts'), JSON.stringify(spec)], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(proc);
  pin(proc.pid!, OTHER_CORE);
  const limit = setTimeout(() => proc.kill('SIGKILL'), (spec.warmupS + spec.durationS + 30) * 1000);
  let cpu0 = cpuUs(pid);
  let last: Measured | undefined;
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { phase?: string } & LoadResult;
      if (msg.phase === 'measure') {
        cpu0 = cpuUs(pid);
        onMeasure?.();
        return;
      }
      last = { result: msg, cpuUsPerReq: (cpuUs(pid) - cpu0) / msg.requests };
    });
    // 'close', not 'exit': stdout is read to its end first.
    proc.once('close', (code) => {
      clearTimeout(limit);
      if (code === 0 && last !== undefined) resolve(last);
      else reject(new Error(`load generator on ${spec.url} exited with ${code} before its result`));
    });
  });
}

/** Nearest-rank quantile (NaN for no sample). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
