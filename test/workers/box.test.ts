/**
 * `workers: N`: a real gateway process whose primary forks workers on the shared listener. Both
 * workers answer; the shipped rate-limit filter stays exact across them without Redis; /metrics
 * sums the workers'; a killed worker is replaced within a second; SIGHUP reloads and SIGTERM
 * stops the whole box; a worker that cannot start stops the box with its code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';
import { stampVersion } from '../helpers/versions.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

/** Answers 200 with the node.id property of the process that ran it (workers are "<id>-<index>"). */
const WHO_GUEST = guestWat({
  imports: `
  (import "env" "proxy_get_property" (func $property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "node\\00id")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $property (i32.const 0x100) (i32.const 7) (i32.const 0x20) (i32.const 0x24)))
    (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0) (i32.load (i32.const 0x20)) (i32.load (i32.const 0x24))
      (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))`,
});

/**
 * A queue across the workers: every worker's root registers "jobs" and, on on_queue_ready,
 * dequeues an item and writes it to shared data as "last". A request with `x-enqueue: V`
 * resolves "jobs" in vm_id "box" and enqueues V (202); any other answers "last" (200) or 404.
 */
const QUEUE_GUEST = guestWat({
  imports: `
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "jobs")
  (data (i32.const 0x110) "box")
  (data (i32.const 0x120) "x-enqueue")
  (data (i32.const 0x130) "last")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $register (i32.const 0x100) (i32.const 4) (i32.const 0x40)))
    (i32.const 1))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (if (i32.eqz (call $dequeue (local.get 1) (i32.const 0x44) (i32.const 0x48)))
      (then (drop (call $set (i32.const 0x130) (i32.const 4) (i32.load (i32.const 0x44)) (i32.load (i32.const 0x48)) (i32.const 0))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $header (i32.const 0) (i32.const 0x120) (i32.const 9) (i32.const 0x20) (i32.const 0x24)))
      (then
        (drop (call $resolve (i32.const 0x110) (i32.const 3) (i32.const 0x100) (i32.const 4) (i32.const 0x4c)))
        (drop (call $enqueue (i32.load (i32.const 0x4c)) (i32.load (i32.const 0x20)) (i32.load (i32.const 0x24))))
        (drop (call $reply (i32.const 202) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1))))
      (else
        (if (i32.eqz (call $get (i32.const 0x130) (i32.const 4) (i32.const 0x30) (i32.const 0x34) (i32.const 0x38)))
          (then (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0) (i32.load (i32.const 0x30)) (i32.load (i32.const 0x34))
            (i32.const 0) (i32.const 0) (i32.const -1))))
          (else (drop (call $reply (i32.const 404) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))))))
    (i32.const 1))`,
});

/** One request on a connection of its own (the cluster hands connections, not requests, to workers). */
function once(url: string, headers: Record<string, string> = {}): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve([res.statusCode!, body]));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a box of two workers', () => {
  let box: GatewayProcess;
  let upstream: Server;
  const dir = mkdtempSync(join(tmpdir(), 'edge-gw-box-'));

  beforeAll(async () => {
    upstream = createServer((_req, res) => res.end('upstream'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const who = join(dir, 'who.wasm');
    writeFileSync(who, watToBytes(WHO_GUEST));
    const queue = join(dir, 'queue.wasm');
    writeFileSync(queue, watToBytes(QUEUE_GUEST));
    box = await GatewayProcess.start(writeConfigFile({
      node: { id: 'box', cluster: 'edge' },
      workers: 2,
      clusters: [{ name: 'backend', endpoints: [`http://127.0.0.1:${(upstream.address() as { port: number }).port}`] }],
      plugins: [
        { name: 'who', module: who },
        { name: 'queue', module: queue, vmId: 'box' },
        { name: 'limit', module: join(import.meta.dirname, '../../filters/dist/rate-limit.wasm'),
          configuration: { key: { source: 'header', header: 'x-client' }, capacity: 20, refillPerSecond: 0.001 } },
      ],
      routes: [
        { name: 'who', match: { pathPrefix: '/who' }, cluster: 'backend', filters: ['who'] },
        { name: 'queue', match: { pathPrefix: '/queue' }, cluster: 'backend', filters: ['queue'] },
        { name: 'api', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['limit'] },
      ],
    }));
  }, 60_000);

  afterAll(async () => {
    await box?.stop();
    upstream?.close();
  });

  it('answers from both workers, each with a node id of its own', async () => {
    expect(box.lines.filter((l) => l.msg === 'worker serving')).toHaveLength(2);
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await once(`${box.url}/who`))[1]);
    expect([...ids].sort()).toEqual(['box-0', 'box-1']);
  });

  it('keeps the shipped rate limit exact across the workers, through the primary, without Redis', async () => {
    // The first request of a key lists its worker in the key's index; until that write has
    // replicated (sub-millisecond here), another worker's first request could list itself over
    // it (README, "Every core"): the rest are exact from then on.
    const statuses = [(await once(`${box.url}/api`, { 'x-client': 'c1' }))[0]];
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 1; i < 30; i++) statuses.push((await once(`${box.url}/api`, { 'x-client': 'c1' }))[0]);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.slice(20)).toEqual(new Array(10).fill(429));
  });

  it('serves one /metrics for the box, the workers\' counts summed, and /readyz once every worker is', async () => {
    expect((await fetch(`${box.adminUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${box.adminUrl}/metrics`)).text();
    const count = (status: string): number => Number(
      [...metrics.matchAll(/^edge_gateway_requests_total\{route="api",status="(\d+)"\} (\d+)$/gm)].find((m) => m[1] === status)?.[2]);
    expect(count('200')).toBe(20);
    expect(count('429')).toBe(10);
    const plugins = await (await fetch(`${box.adminUrl}/plugins`)).json() as Array<{ name: string }>;
    expect(plugins.map((p) => p.name).sort()).toEqual(['limit', 'queue', 'who']);
    // GET /clusters is a worker's view, forwarded like the plugin API's reads; the health gauge is
    // the minimum over the workers (not their sum).
    const clusters = await (await fetch(`${box.adminUrl}/clusters`)).json() as Array<{ name: string; endpoints: Array<{ health: string }> }>;
    expect(clusters.map((c) => [c.name, c.endpoints.map((e) => e.health)])).toEqual([['backend', ['healthy']]]);
    expect(metrics).toMatch(/^edge_gateway_upstream_endpoint_healthy\{cluster="backend",endpoint="http:\/\/127\.0\.0\.1:\d+"\} 1$/m);
  });

  it('hands what any worker enqueues to a worker that registered the queue, without Redis', async () => {
    expect((await once(`${box.url}/queue`))[0]).toBe(404);
    for (let i = 1; i <= 6; i++) {
      expect((await once(`${box.url}/queue`, { 'x-enqueue': `job-${i}` }))[0]).toBe(202);
      // The consuming root wrote the item to shared data; every worker reads it.
      expect(await eventually(async () => (await once(`${box.url}/queue`))[1] === `job-${i}`, 5000)).toBe(true);
      expect(await eventually(async () => (await once(`${box.url}/queue`))[1] === `job-${i}`, 5000)).toBe(true);
    }
  });

  it('replaces a killed worker within a second and keeps serving', async () => {
    const serving = (): number => box.lines.filter((l) => l.msg === 'worker serving').length;
    const before = serving();
    // A worker's pid, from its own line; it is a child of the box's primary.
    const pid = Number(box.lines.find((l) => l.msg === 'worker serving')!.pid);
    const children = execFileSync('pgrep', ['-P', String(box.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    expect(children).toContain(pid);
    // Two workers with a core each or less collect garbage on their main thread (workers/gc-threads.ts).
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--single-threaded-gc')).toBe(availableParallelism() <= 2);
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    // Replaced at once (the fork is logged with the exit); serving as soon as its gateway is built.
    expect(await eventually(() => box.lines.some((l) => l.msg === 'a worker exited: starting another'), 5000)).toBe(true);
    const replacedAt = Date.parse(String(box.lines.find((l) => l.msg === 'a worker exited: starting another')!.time));
    expect(replacedAt - killedAt).toBeLessThan(1000);
    expect(await eventually(() => serving() === before + 1, 10_000)).toBe(true);
    for (let i = 0; i < 6; i++) expect((await once(`${box.url}/who`))[0]).toBe(200);
  });

  it('reloads every worker on SIGHUP and stops the whole box on SIGTERM, exit 0', async () => {
    box.signal('SIGHUP');
    expect(await eventually(() => box.lines.filter((l) => l.msg === 'configuration reloaded').length === 2, 10_000)).toBe(true);
    box.signal('SIGTERM');
    expect(await box.exited).toEqual({ code: 0, signal: null });
  });
});

describe('a box whose workers cannot start', () => {
  it('stops with the worker\'s exit code and its message, rather than forking again and again', async () => {
    // The file is there (the primary's checks pass) but is no WebAssembly: each worker fails to compile it.
    const junk = join(mkdtempSync(join(tmpdir(), 'edge-gw-junk-')), 'junk.wasm');
    writeFileSync(junk, 'not wasm');
    const gw = GatewayProcess.launch(writeConfigFile({
      workers: 2,
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      plugins: [{ name: 'junk', module: junk }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['junk'] }],
    }));
    expect(await gw.exited).toEqual({ code: 2, signal: null });
    expect(gw.stderr).toMatch(/plugins\[0\] \(junk\): GW_ERR_MODULE_INVALID: module .*junk\.wasm is not valid WebAssembly/);
    expect(gw.lines.filter((l) => l.msg === 'a worker exited before it served: stopping the box').length).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('the plugin API of a box', () => {
  it('applies a swap in every worker and answers once all have, and reads from one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-gw-box-swap-'));
    const v1 = join(dir, 'v1.wasm');
    writeFileSync(v1, stampVersion('version-one!'));
    const upstream = createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const token = 'box-token-0123456789abcdef';
    const box = await GatewayProcess.start(writeConfigFile({
      workers: 2,
      admin: { address: '127.0.0.1', port: 0, token },
      clusters: [{ name: 'backend', endpoints: [`http://127.0.0.1:${(upstream.address() as { port: number }).port}`] }],
      plugins: [{ name: 'stamp', module: v1 }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['stamp'] }],
    }));
    try {
      const res = await fetch(`${box.adminUrl}/plugins/stamp/module`, {
        method: 'PUT', body: Buffer.from(stampVersion('version-two!')), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/wasm' },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ name: 'stamp', stable: { source: 'admin upload to stamp' } });
      // New connections land on either worker: every one of them serves the new version.
      const seen = new Set<string | null>();
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`${box.url}/x`, { headers: { connection: 'close' } });
        await r.text();
        seen.add(r.headers.get('x-served-by'));
      }
      expect(seen).toEqual(new Set(['version-two!']));
      const refused = await fetch(`${box.adminUrl}/plugins/stamp/module`, { method: 'PUT', body: 'junk', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/wasm' } });
      expect(refused.status).toBe(422);
      expect(await refused.json()).toMatchObject({ error: 'GW_ERR_MODULE_INVALID' });
      const listed = await (await fetch(`${box.adminUrl}/plugins`)).json() as Array<{ name: string }>;
      expect(listed.map((p) => p.name)).toEqual(['stamp']);
    } finally {
      box.signal('SIGTERM');
      await box.exited;
      upstream.close();
    }
  }, 30_000);
});
