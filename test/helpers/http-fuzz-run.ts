/**
 * Runs fuzz cases (http-fuzz-cases.ts) against a real gateway process on raw sockets, and checks:
 * the process stays up; each answer fits the case (4xx or a close for invalid requests, never a
 * 5xx but 505); a valid request on a fresh connection after each case answers 200; the upstream
 * never sees a request hidden in another one, nor a path that normalizes to the denied /admin,
 * nor any request the gateway did not log as routed (no desync between what the gateway parsed
 * and what went upstream).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startUpstream, type Upstream } from './gateway.js';
import { GatewayProcess } from './gateway-process.js';
import { PROBE, type FuzzCase } from './http-fuzz-cases.js';
import { statusesOf } from './raw-http.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface FuzzTarget {
  readonly port: number;
  readonly adminPort: number;
  readonly upstream: Upstream;
  /** The gateway's JSON log lines so far. */
  readonly lines: Array<Record<string, unknown>>;
  stderr(): string;
  alive(): boolean;
  stop(): Promise<void>;
}

/** A gateway process (short client timeouts, the deny filter on every route) in front of an echo upstream. */
export async function startFuzzTarget(): Promise<FuzzTarget> {
  const upstream = await startUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'edge-gw-fuzz-'));
  const config = join(dir, 'fuzz.json');
  writeFileSync(config, JSON.stringify({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, headersTimeoutMs: 1000, requestTimeoutMs: 2000, bodyTimeoutMs: 1000, idleTimeoutMs: 1000 }],
    admin: { address: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    drainTimeoutMs: 500,
    clusters: [{ name: 'backend', endpoints: [upstream.url], maxConnections: 64 }],
    plugins: [{ name: 'deny-admin', module: join(ROOT, 'filters/dist/deny.wasm') }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['deny-admin'] }],
  }));
  const gw = GatewayProcess.launch(config);
  try {
    await gw.started(30_000);
  } catch (err) {
    await gw.stop();
    await upstream.close();
    throw err;
  }
  const portOf = (url: string): number => Number(new URL(url).port);
  return {
    port: portOf(gw.url),
    adminPort: portOf(gw.adminUrl),
    upstream,
    lines: gw.lines,
    alive: () => gw.alive(),
    stderr: () => gw.stderr,
    stop: async () => {
      await gw.stop();
      await upstream.close();
    },
  };
}

interface Exchange {
  statuses: number[];
  closed: boolean;
}

/**
 * Writes `bytes` on a fresh connection and reads until the gateway closes. A gateway still
 * waiting for more after `quietMs` gets a half-close (end of input), which must end it too.
 */
function exchange(port: number, bytes: Buffer, quietMs: number): Promise<Exchange> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      if (timer !== null) clearTimeout(timer);
      socket.destroy();
      done({ statuses: statusesOf(data), closed });
    };
    socket.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.once('connect', () => {
      socket.write(bytes);
      timer = setTimeout(() => {
        socket.end();
        timer = setTimeout(() => finish(false), quietMs * 4);
      }, quietMs);
    });
  });
}

export interface Violation {
  readonly index: number;
  readonly family: string;
  readonly problem: string;
  readonly request: string;
}

export interface FuzzReport {
  ran: number;
  readonly statuses: Record<string, number>;
  readonly families: Record<string, number>;
  readonly violations: Violation[];
}

function judge(c: FuzzCase, got: Exchange): string | null {
  if (!got.closed) return 'the connection stayed open after the end of input';
  const bad5xx = got.statuses.find((s) => s >= 500 && s !== 505);
  if (bad5xx !== undefined) return `answered ${bad5xx}`;
  if (c.expect === 'reject') {
    const accepted = got.statuses.find((s) => s < 400);
    if (accepted !== undefined) return `an invalid request was answered ${accepted}`;
  } else if (c.expect !== 'any') {
    const want = Array.from({ length: c.expect.pipelined }, () => 200);
    if (JSON.stringify(got.statuses) !== JSON.stringify(want)) return `pipelined answers ${JSON.stringify(got.statuses)}`;
  }
  return null;
}

/** Runs `cases` with `concurrency` connections at a time, stopping early at `deadline` (Date.now()). */
export async function runFuzz(target: FuzzTarget, cases: readonly FuzzCase[], concurrency: number, deadline: number): Promise<FuzzReport> {
  const report: FuzzReport = { ran: 0, statuses: {}, families: {}, violations: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length && Date.now() < deadline && target.alive()) {
      const index = next++;
      const c = cases[index];
      // Valid pipelined requests end with Connection: close; give them time (an end of input would abort them).
      const got = await exchange(target.port, c.bytes, typeof c.expect === 'object' ? 2000 : 150);
      report.ran++;
      report.families[c.family] = (report.families[c.family] ?? 0) + 1;
      for (const s of got.statuses.length === 0 ? ['close'] : got.statuses) report.statuses[s] = (report.statuses[s] ?? 0) + 1;
      const request = c.bytes.toString('latin1').slice(0, 160);
      const problem = judge(c, got);
      if (problem !== null) report.violations.push({ index, family: c.family, problem, request });
      const probe = await exchange(target.port, PROBE, 2000);
      if (JSON.stringify(probe.statuses) !== '[200]') {
        report.violations.push({ index, family: c.family, problem: `the next valid request got ${JSON.stringify(probe.statuses)}`, request });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return report;
}

const UNRESERVED = /%(2[dDeE]|5[fF]|7[eE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])/g;

/** Whether an upstream path is /admin… once normalized by a reader other than the gateway (WHATWG URL). */
export function reachesAdmin(url: string): boolean {
  try {
    const decoded = new URL(`http://x${url}`).pathname.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
    return new URL(`http://x${decoded}`).pathname.replace(/\/{2,}/g, '/').startsWith('/admin');
  } catch {
    return false;
  }
}

/** The checks on the whole run: the process, and everything the upstream saw. */
export function finalViolations(target: FuzzTarget): string[] {
  const problems: string[] = [];
  if (!target.alive()) problems.push(`the gateway process exited: ${target.stderr()}`);
  if (/uncaught|unhandled/i.test(target.stderr())) problems.push(`the gateway wrote an uncaught error: ${target.stderr().slice(0, 500)}`);
  const routed = new Set(target.lines.filter((l) => l.access === true && l.route === 'all').map((l) => l.requestId));
  for (const seen of target.upstream.requests) {
    if (seen.url.includes('smuggled')) problems.push(`the upstream saw a hidden request: ${seen.method} ${seen.url}`);
    if (reachesAdmin(seen.url)) problems.push(`the upstream saw a path past the deny filter: ${seen.url}`);
    if (!routed.has(seen.headers['x-request-id'])) problems.push(`the upstream saw a request the gateway did not log as routed: ${seen.method} ${seen.url}`);
  }
  return problems;
}
