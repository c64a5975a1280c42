/**
 * The processes and runs of bench/grpc.ts: the gRPC server's process, the checks each scenario
 * must pass before it is measured, and one measured h2load run with the CPU of the process under
 * test and the server's own count of the calls it answered around it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ECHO_MESSAGE, ECHO_PATH, h2Session, unaryCall } from './grpc.js';
import { runH2load, type H2loadResult } from './h2load.js';
import { OTHER_CORE, ROOT, cpuUs, pin, track, type Started } from './processes.js';

/** How many calls the server answered with status 0, and how many it refused, since it started. */
export interface ServerCount { ok: number; bad: number }

/**
 * Forks a process of bench/lib (`grpc-server.ts`, or `h2-proxy.ts PORT`) under tsx, pins it to
 * `core` once it listens, and resolves with its port (it sends `{ port }` over IPC).
 */
export function startGrpcProcess(file: string, args: string[], core: number): Promise<Started> {
  const proc = fork(join(ROOT, 'bench/lib', file), args, {
    execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  track(proc);
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => {
      pin(proc.pid!, core);
      resolve({ proc, port: m.port });
    });
    proc.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

/** The gRPC server, on OTHER_CORE: it shares that core with h2load. */
export const startGrpcServer = (): Promise<Started> => startGrpcProcess('grpc-server.ts', [], OTHER_CORE);

/** The server's count, over IPC (bounded at 5 s). */
export function serverCount(server: ChildProcess): Promise<ServerCount> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gRPC server did not answer its count within 5 s')), 5000);
    server.once('message', (m: ServerCount) => {
      clearTimeout(timer);
      resolve(m);
    });
    server.send({ count: true });
  });
}

/** What a scenario's calls must show besides a correct echo. */
export interface Expect {
  /** `x-served-by` on the response (the stamp filter), or undefined for none. */
  servedBy?: string;
  /** `x-edge-stamp` as the server saw it (the stamp filter's configuration), or undefined for none. */
  stamp?: string;
}

/**
 * `calls` unary calls on one h2c session, one after another: each must get response headers 200
 * with application/grpc, the echoed message, and grpc-status 0 in the trailers (not trailers-only),
 * and the server must have answered exactly `calls` more. Throws, naming the scenario, otherwise.
 */
export async function checkScenario(id: string, port: number, server: ChildProcess, expect: Expect, calls = 100): Promise<void> {
  const before = await serverCount(server);
  const session = h2Session(port);
  const problems = new Set<string>();
  try {
    for (let i = 0; i < calls; i++) {
      const a = await unaryCall(session).catch((err: Error) => { problems.add(`stream error ${err.message}`); return null; });
      if (a === null) continue;
      if (Number(a.headers[':status']) !== 200 || a.headers['content-type'] !== 'application/grpc') problems.add(`answered ${a.headers[':status']} ${a.headers['content-type']}`);
      if (a.trailersOnly || a.status !== 0) problems.add(`grpc-status ${a.status}${a.trailersOnly ? ' (trailers-only)' : ''}: ${String(a.headers['grpc-message'] ?? '')}`);
      if (a.messages === null || a.messages.length !== 1 || !a.messages[0].equals(ECHO_MESSAGE)) problems.add('not the echoed message');
      if (a.headers['x-served-by'] !== expect.servedBy) problems.add(`x-served-by ${a.headers['x-served-by']}, expected ${expect.servedBy}`);
      if (a.headers['x-seen-stamp'] !== expect.stamp) problems.add(`server saw x-edge-stamp ${a.headers['x-seen-stamp']}, expected ${expect.stamp}`);
    }
  } finally {
    session.close();
  }
  const after = await serverCount(server);
  if (after.ok - before.ok !== calls || after.bad !== before.bad) problems.add(`the server answered ${after.ok - before.ok} of ${calls} calls (refused ${after.bad - before.bad})`);
  if (problems.size > 0) throw new Error(`scenario ${id}, ${ECHO_PATH}: ${[...problems].join('; ')}`);
}

/** The request headers of every call h2load makes (besides :method POST and content-length, from -d). */
export const GRPC_HEADERS = { 'content-type': 'application/grpc', te: 'trailers' };

/** Load settings of the bench (BENCH_* environment variables). */
export interface GrpcLoad {
  connections: number;
  /** Calls in flight per connection. */
  streams: number;
  bodyFile: string;
  logFile: string;
}

export interface GrpcRun {
  scenario: string;
  round: number;
  /** The 1-minute load average when the run ended. */
  load: number;
  result: H2loadResult;
  /** Calls that did not get the server's status-0 answer: not 2xx, a stream error, or answered by someone else. */
  errors: number;
  /** What the errors were, when there were any. */
  errorDetail: string;
  /** CPU µs per call of the process under test (the gateway, or the server when direct), and of the server. */
  cpuUsPerCall: number;
  serverCpuUsPerCall: number;
}

/** Runs `calls` calls at `port` with h2load, unmeasured (a process's or a run's warm-up); resolves with the rate. */
export async function warmUp(port: number, calls: number, load: GrpcLoad): Promise<H2loadResult> {
  return runH2load({ url: `http://127.0.0.1:${port}${ECHO_PATH}`, bodyFile: load.bodyFile, headers: GRPC_HEADERS, connections: load.connections, streams: load.streams, calls, logFile: load.logFile }, 120);
}

/**
 * One measured run of `calls` calls against `under`. Every call has ended when h2load exits, so
 * the server's count must have grown by exactly the 2xx calls: fewer means the gateway answered
 * some itself (a trailers-only grpc-status keeps :status 200).
 */
export async function measureRun(scenario: string, round: number, under: Started, server: ChildProcess, calls: number, load: GrpcLoad): Promise<GrpcRun> {
  const before = await serverCount(server);
  const cpu0 = cpuUs(under.proc.pid!);
  const srv0 = cpuUs(server.pid!);
  // Bounded: 20 s more than a run at a tenth of 1000 calls/s would take.
  const result = await runH2load({
    url: `http://127.0.0.1:${under.port}${ECHO_PATH}`, bodyFile: load.bodyFile, headers: GRPC_HEADERS,
    connections: load.connections, streams: load.streams, calls, logFile: load.logFile,
  }, 20 + calls / 100);
  const cpu = cpuUs(under.proc.pid!) - cpu0;
  const srv = cpuUs(server.pid!) - srv0;
  const after = await serverCount(server);
  const answered = after.ok - before.ok;
  const refused = after.bad - before.bad;
  const errors = calls - Math.min(result.status2xx, answered) + refused;
  const errorDetail = errors === 0 ? '' : `2xx ${result.status2xx} of ${calls}, failed ${result.failed}, errored ${result.errored}, timeout ${result.timeout}; server answered ${answered} with status 0, refused ${refused}`;
  return { scenario, round, load: loadavg()[0], result, errors, errorDetail, cpuUsPerCall: cpu / calls, serverCpuUsPerCall: srv / calls };
}
