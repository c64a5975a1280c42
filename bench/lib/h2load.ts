/**
 * h2load (nghttp2-client) as the load generator of bench/grpc.ts: a C client on one thread, far
 * lighter on the load core than a Node HTTP/2 client, which shares that core with the gRPC server.
 * It posts the same pre-framed request body on every stream (`-d`), keeps `streams` calls in flight
 * on each of `connections` h2c connections (prior knowledge), and runs a fixed number of calls, so
 * that every call has ended when it exits and the server's count can be compared exactly.
 *
 * h2load reads neither trailers nor bodies: its 2xx count says a call got response headers with
 * :status 2xx, not that its grpc-status was 0 (bench/lib/grpc-server.ts counts those). Latency
 * comes from its per-request log (`--log-file`: start µs, status, µs to the end of the response).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { OTHER_CORE, PINNED, track } from './processes.js';

export const H2LOAD: string | undefined = spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout?.trim() || undefined;

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface H2loadSpec {
  url: string;
  /** A file holding one length-prefixed gRPC message: the body of every call. */
  bodyFile: string;
  headers: Record<string, string>;
  connections: number;
  /** Calls in flight per connection (-m). */
  streams: number;
  calls: number;
  /** Where h2load writes its per-request log (read, then removed). */
  logFile: string;
}

export interface H2loadResult {
  calls: number;
  seconds: number;
  callsPerSec: number;
  succeeded: number;
  /** Streams h2load saw fail (reset, connection lost), error out, or time out. */
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the h2load process (its user + system time, from this process's waited-for children), µs per call. */
  loadCpuUsPerCall: number;
}

/** utime + stime of this process's waited-for children (cutime, cstime of /proc/self/stat), in µs. */
function childrenCpuUs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1e6) / CLK_TCK;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function parse(out: string, spec: H2loadSpec, loadCpuUs: number): H2loadResult {
  const finished = /finished in ([\d.]+)(s|ms|us),/.exec(out);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const status = /status codes: (\d+) 2xx/.exec(out);
  if (finished === null || requests === null || status === null) throw new Error(`h2load: unexpected output:\n${out}`);
  const seconds = Number(finished[1]) / { s: 1, ms: 1e3, us: 1e6 }[finished[2] as 's' | 'ms' | 'us'];
  const durations: number[] = [];
  for (const line of readFileSync(spec.logFile, 'utf8').split('\n')) {
    const cols = line.split('\t');
    if (cols.length >= 3 && cols[1].startsWith('2')) durations.push(Number(cols[2]) / 1000);
  }
  rmSync(spec.logFile, { force: true });
  const sorted = Float64Array.from(durations).sort();
  return {
    calls: spec.calls, seconds, callsPerSec: Number(requests[4]) / seconds,
    succeeded: Number(requests[4]), failed: Number(requests[5]), errored: Number(requests[6]), timeout: Number(requests[7]),
    status2xx: Number(status[1]), p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99),
    loadCpuUsPerCall: loadCpuUs / spec.calls,
  };
}

/**
 * Runs h2load once, pinned to OTHER_CORE, and resolves with its figures. Bounded: killed after
 * `limitS` seconds (then it rejects), so a gateway that hangs a stream cannot hang the bench.
 */
export function runH2load(spec: H2loadSpec, limitS: number): Promise<H2loadResult> {
  if (H2LOAD === undefined) throw new Error('h2load is not installed (Debian/Ubuntu: apt-get install nghttp2-client)');
  const args = [
    spec.url, '-n', String(spec.calls), '-c', String(spec.connections), '-m', String(spec.streams), '-t', '1',
    '-d', spec.bodyFile, '--log-file', spec.logFile,
    ...Object.entries(spec.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
  ];
  const cpu0 = childrenCpuUs();
  // taskset execs h2load in the same process, so the pid (and its CPU) is h2load's.
  const proc = PINNED ? spawn('taskset', ['-c', String(OTHER_CORE), 'h2load', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.kill('SIGKILL');
  }, limitS * 1000);
  return new Promise((resolve, reject) => {
    proc.once('close', (code) => {
      clearTimeout(timer);
      if (killed) return reject(new Error(`h2load did not finish ${spec.calls} calls to ${spec.url} within ${limitS} s (a hung stream?):\n${out}`));
      if (code !== 0) return reject(new Error(`h2load exited with ${code}:\n${out}`));
      try {
        resolve(parse(out, spec, childrenCpuUs() - cpu0));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
