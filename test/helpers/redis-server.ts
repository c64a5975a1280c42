/**
 * Real `redis-server` processes for the tests, on free loopback ports, without persistence:
 * started, stopped (by pid) and started again on the same port, as a Redis restart is.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: an outage, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** A plain client for the test's own looks at Redis (closed with `stop`). */
  client(): Redis;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function launch(port: number, extra: readonly string[] = []): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; i < 100; i++) {
    if (/Ready to accept connections/.test(out)) return proc;
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} not ready after 5 s: ${out}`);
}

function stopped(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

/** A server on `port` (default: a free one) with `extra` arguments. */
export async function startRedis(extra: readonly string[] = [], port?: number): Promise<RedisServer> {
  port ??= await freePort();
  let proc = await launch(port, extra);
  const clients: Redis[] = [];
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => stopped(proc),
    restart: async () => {
      proc = await launch(port!, extra);
    },
    client: () => {
      const c = new Redis(port!, '127.0.0.1');
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await stopped(proc);
    },
  };
}

export interface RedisCluster {
  /** One master's URL: what `sharedState.url` names with `cluster: true`. */
  readonly url: string;
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

/** `masters` redis-servers in cluster mode (no replicas), their slots assigned by redis-cli, state ok. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-gw-cluster-'));
  const servers: RedisServer[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir]));
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    for (let i = 0; i < 200; i++) {
      const info = spawnSync('redis-cli', ['-p', String(servers[0].port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (/cluster_state:ok/.test(info)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: servers[0].url,
    ports: servers.map((s) => s.port),
    stop: async () => {
      for (const s of servers) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
