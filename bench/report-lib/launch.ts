/**
 * Starting a fresh process of a target and timing it to its first proxied 200: the same path for
 * the warm processes of the rounds and for the cold starts, so that both start alike.
 *
 * A pinned process is started through `taskset -c CORE` (taskset execs the command, so the pid is
 * the process's own): it is on its core from its first instruction, where pinning after spawn()
 * would leave its start-up to the scheduler.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { PINNED, PROXY_CORE, ROOT, track } from '../lib/processes.js';

/** How to start one fresh process of a target; each call of a target's `launch` gets new ports. */
export interface Launch {
  command: string;
  args: string[];
  /** The port the process proxies on, or `ipc` when it tells it ({ port } over IPC, as bench/lib/servers.ts does). */
  port: number | 'ipc';
  /** A gateway's admin port. */
  admin?: number;
}

/** A running process of a target. */
export interface Live {
  proc: ChildProcess;
  port: number;
  admin?: number;
}

export interface Launched {
  live: Live;
  /** spawn() → the end of the first 200. */
  ms: number;
  /** The successful request alone. */
  firstRequestMs: number;
}

/** How long a process may take to answer its first 200 (a function's first start transpiles with jco: ~4 s). */
const START_LIMIT_MS = 30_000;
/** Between two refused requests: the resolution of the cold-start figure. */
const POLL_MS = 2;

/** One GET with the given headers on a connection of its own; resolves the status, 0 on a network error. */
export function getStatus(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', () => resolve(0));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

function ipcPort(proc: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not listen within ${START_LIMIT_MS / 1000} s`)), START_LIMIT_MS);
    proc.once('message', (m: { port: number }) => { clearTimeout(timer); resolve(m.port); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code} before it listened`)); });
  });
}

/** Spawns `launch` (pinned to PROXY_CORE when `pinned`) and waits, bounded, for its first 200 on `path`. */
export async function startTimed(name: string, launch: Launch, pinned: boolean, path: string, headers: Record<string, string>): Promise<Launched> {
  const [command, args] = pinned && PINNED
    ? ['taskset', ['-c', String(PROXY_CORE), launch.command, ...launch.args]]
    : [launch.command, launch.args];
  const stdio = launch.port === 'ipc' ? ['ignore', 'ignore', 'pipe', 'ipc'] as const : ['ignore', 'ignore', 'pipe'] as const;
  const t0 = performance.now();
  const proc = spawn(command, args, { cwd: ROOT, stdio: [...stdio] });
  track(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const fail = (why: string): Error => new Error(`${name}: ${why}${stderr === '' ? '' : `\n${stderr}`}`);
  const port = launch.port === 'ipc' ? await ipcPort(proc).catch((err: Error) => { throw fail(err.message); }) : launch.port;
  while (performance.now() - t0 < START_LIMIT_MS) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw fail(`exited with ${proc.exitCode ?? proc.signalCode} before its first 200`);
    const t = performance.now();
    const status = await getStatus(port, path, headers);
    const end = performance.now();
    if (status === 200) return { live: { proc, port, admin: launch.admin }, ms: end - t0, firstRequestMs: end - t };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw fail(`no 200 on ${path} within ${START_LIMIT_MS / 1000} s`);
}
