/**
 * Two real gateway processes on one real redis-server, as two edge nodes: a guest on one node
 * reads what a guest on the other wrote with proxy_set_shared_data, and through a Redis restart
 * neither node fails a request and both end with the last value.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_TIME_SCALE } from '../helpers/gateway-command.js';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/**
 * On each request: with `x-set: V`, proxy_set_shared_data("shared-key", V); then answers 200 with
 * the key's value as the body, or 404 when the node has none.
 */
const SHARED_GUEST = guestWat({
  imports: `
  (import "env" "proxy_get_header_map_value" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "x-set")
  (data (i32.const 0x110) "shared-key")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $header (i32.const 0) (i32.const 0x100) (i32.const 5) (i32.const 0x20) (i32.const 0x24)))
      (then (drop (call $set (i32.const 0x110) (i32.const 10) (i32.load (i32.const 0x20)) (i32.load (i32.const 0x24)) (i32.const 0)))))
    (if (i32.eqz (call $get (i32.const 0x110) (i32.const 10) (i32.const 0x30) (i32.const 0x34) (i32.const 0x38)))
      (then (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0) (i32.load (i32.const 0x30)) (i32.load (i32.const 0x34))
        (i32.const 0) (i32.const 0) (i32.const -1))))
      (else (drop (call $reply (i32.const 404) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))))
    (i32.const 1))`,
});

async function ask(node: GatewayProcess, set?: string): Promise<[number, string]> {
  const res = await fetch(`${node.url}/`, { headers: set === undefined ? {} : { 'x-set': set } });
  return [res.status, await res.text()];
}


/** Connected to Redis with nothing of its own left to send, as the node's /metrics say. */
async function caughtUp(node: GatewayProcess): Promise<boolean> {
  const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
  return /^edge_gateway_shared_state_connected 1$/m.test(metrics) && /^edge_gateway_shared_state_waiting_writes 0$/m.test(metrics);
}

describe('shared data across two gateway processes through Redis', () => {
  let redis: RedisServer;
  const nodes: GatewayProcess[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'edge-gw-redis-'));
    const module = join(dir, 'shared.wasm');
    writeFileSync(module, watToBytes(SHARED_GUEST));
    const config = writeConfigFile({
      sharedState: { backend: 'redis', url: redis.url, prefix: 'nodes:' },
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      plugins: [{ name: 'shared', module, vmId: 'fleet' }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['shared'] }],
    });
    nodes.push(...await Promise.all([GatewayProcess.start(config), GatewayProcess.start(config)]));
    for (const node of nodes) await node.waitFor((l) => l.msg === 'shared state: connected to Redis', 'connected to Redis');
  }, 60_000 * GATEWAY_TIME_SCALE);

  afterAll(async () => {
    for (const node of nodes) await node.stop();
    await redis?.stop();
  });

  it('lets a guest on one node read what a guest on the other wrote', async () => {
    const [a, b] = nodes;
    expect(await ask(b)).toEqual([404, '']); // b uses the vm_id from here on
    expect(await ask(a, 'from-a')).toEqual([200, 'from-a']);
    expect(await eventually(async () => (await ask(b))[1] === 'from-a', 3000)).toBe(true);
  });

  it('fails no request of a load on both nodes while Redis is killed and restarted under it', async () => {
    const [a, b] = nodes;
    const autocannon = createRequire(import.meta.url)('autocannon') as (o: object) => Promise<{ errors: number; timeouts: number; non2xx: number; '2xx': number }>;
    const load = (node: GatewayProcess) => autocannon({ url: `${node.url}/`, connections: 10, duration: 3, headers: { 'x-set': 'under-load' } });
    const runs = Promise.all([load(a), load(b)]);
    await new Promise((r) => setTimeout(r, 800));
    await redis.kill();
    await new Promise((r) => setTimeout(r, 800));
    await redis.restart();
    const results = await runs;
    for (const r of results) {
      expect({ errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
      expect(r['2xx']).toBeGreaterThan(100 / GATEWAY_TIME_SCALE); // a real load, from a Node that may run slower
    }
    // The last write to reach Redis wins: a node still reconnecting (ioredis backs off up to 2 s)
    // or still sending what it wrote meanwhile would win over a write made before it is back.
    expect(await eventually(async () => (await Promise.all(nodes.map(caughtUp))).every(Boolean), 10_000)).toBe(true);
    expect(await ask(a, 'after-load')).toEqual([200, 'after-load']);
    expect(await eventually(async () => (await ask(b))[1] === 'after-load', 10_000)).toBe(true);
  }, 30_000);

  it('fails no request while Redis restarts, and both nodes end with the last value', async () => {
    const [a, b] = nodes;
    await redis.kill();
    const metrics = async () => (await fetch(`${a.adminUrl}/metrics`)).text();
    expect(await eventually(async () => /^edge_gateway_shared_state_connected 0$/m.test(await metrics()), 5000)).toBe(true);
    // The log line may reach stdout after /metrics answers: waited for, bounded.
    await a.waitFor((l) => /Redis unreachable/.test(l.msg), 'Redis unreachable', 5000);
    for (let i = 0; i < 20; i++) {
      expect(await ask(a, `during-${i}`)).toEqual([200, `during-${i}`]);
      expect((await ask(b))[0]).toBe(200);
    }
    await redis.restart();
    expect(await eventually(async () => (await ask(b))[1] === 'during-19', 10_000)).toBe(true);
    expect(await metrics()).toMatch(/^edge_gateway_shared_state_connected 1$/m);
    expect(await metrics()).toMatch(/^edge_gateway_shared_state_waiting_writes 0$/m);
    expect(await redis.client().hget('nodes:{666c656574}:values', 'shared-key')).toBe('during-19');
    expect(nodes.every((n) => n.alive())).toBe(true);
  }, 30_000);
});

describe('shared data through a Redis that speaks TLS (rediss://)', () => {
  it('replicates between two gateway processes that trust its certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-gw-rediss-'));
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    expect(made.status).toBe(0);
    const port = await freePort();
    const redis = await startRedis(['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'cert.pem'),
      '--tls-key-file', join(dir, 'key.pem'), '--tls-auth-clients', 'no'], port);
    const module = join(dir, 'shared.wasm');
    writeFileSync(module, watToBytes(SHARED_GUEST));
    const config = writeConfigFile({
      sharedState: { backend: 'redis', url: `rediss://127.0.0.1:${port}` },
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      plugins: [{ name: 'shared', module }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['shared'] }],
    });
    // The certificate is self-signed: the processes trust it as users trust a private CA.
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = join(dir, 'cert.pem');
    const started = await Promise.all([GatewayProcess.start(config), GatewayProcess.start(config)]).finally(() => {
      if (extra === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = extra;
    });
    try {
      const [a, b] = started;
      for (const node of started) await node.waitFor((l) => l.msg === 'shared state: connected to Redis', 'connected to Redis', 10_000);
      expect(await ask(b)).toEqual([404, '']);
      expect(await ask(a, 'over-tls')).toEqual([200, 'over-tls']);
      expect(await eventually(async () => (await ask(b))[1] === 'over-tls', 3000)).toBe(true);
    } finally {
      for (const node of started) await node.stop();
      await redis.stop();
    }
  }, 60_000 * GATEWAY_TIME_SCALE);
});

describe('the shipped rate-limit filter across two gateway processes on one Redis', () => {
  it('lets exactly its capacity through for requests alternating between two nodes of one file (--node-id)', async () => {
    const redis = await startRedis();
    const upstream: Server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as { port: number }).port;
    const config = writeConfigFile({
      sharedState: { backend: 'redis', url: redis.url, prefix: 'rl:' },
      clusters: [{ name: 'backend', endpoints: [`http://127.0.0.1:${port}`] }],
      plugins: [{
        name: 'limit', module: join(import.meta.dirname, '../../filters/dist/rate-limit.wasm'),
        configuration: { key: { source: 'header', header: 'x-client' }, capacity: 20, refillPerSecond: 0.001 },
        // The default 50 ms budget, scaled: under emulation one GC step of the guest can take longer.
        limits: { cpuMs: 50 * GATEWAY_TIME_SCALE },
      }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['limit'] }],
    });
    const started = await Promise.all(['edge-a', 'edge-b'].map((id) => GatewayProcess.start(config, [], ['--node-id', id])));
    try {
      for (const node of started) await node.waitFor((l) => l.msg === 'shared state: connected to Redis', 'connected to Redis', 10_000);
      // As across workers (test/workers/box.test.ts): the key's first request, then the rest.
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) {
        if (i === 1) await new Promise((r) => setTimeout(r, 50));
        const res = await fetch(`${started[i % 2].url}/`, { headers: { 'x-client': 'partner-1' } });
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      expect(statuses.filter((s) => s === 200).length).toBe(20);
      expect(statuses.slice(40)).toEqual(new Array(20).fill(429));
      // Another client has its own bucket, on both nodes.
      expect((await fetch(`${started[1].url}/`, { headers: { 'x-client': 'partner-2' } })).status).toBe(200);
    } finally {
      for (const node of started) await node.stop();
      upstream.close();
      await redis.stop();
    }
  }, 60_000 * GATEWAY_TIME_SCALE);
});
