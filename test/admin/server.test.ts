import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { parseConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/log.js';
import { startGateway, startUpstream, wasmFile } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

const STAMP = readFileSync('filters/examples/stamp.wat', 'utf8');

/** Traps in on_request_headers. */
const TRAP = guestWat({
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)`,
});

/** Answers false from on_configure: its root context cannot start. */
const REFUSE_CONFIGURE = guestWat({
  body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))`,
});

async function listening(port = 0): Promise<Server> {
  const server = createServer((_req, res) => res.end('blocker\n'));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
}

/** A port nobody listens on right now (the kernel handed it out and it was released). */
async function freePort(): Promise<number> {
  const server = await listening();
  const { port } = server.address() as AddressInfo;
  await closeServer(server);
  return port;
}

/** 'connected', or the error code of the attempt (ECONNREFUSED when nothing listens). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve('connected'); });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

function silentLogger() {
  return createLogger('info', new Writable({ write(_c, _e, cb) { cb(); } }));
}

describe('the admin listener', () => {
  it('answers /healthz with 200 ok', async () => {
    const gw = await startGateway({});
    cleanup.push(gw.close);
    const res = await fetch(`${gw.adminUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toBe('ok\n');
  });

  it('answers /readyz with 200 once start() has bound every listener, which then accept traffic', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }, { name: 'second', address: '127.0.0.1', port: 0 }],
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    const ready = await fetch(`${gw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
    const forwarded = await fetch(`${gw.url}/ping`);
    expect(forwarded.status).toBe(200);
    expect(((await forwarded.json()) as { url: string }).url).toBe('/ping');
  });

  it('never comes up when a listener cannot bind: start() rejects and nothing it bound stays open', async () => {
    const blocker = await listening();
    cleanup.push(() => closeServer(blocker));
    const taken = (blocker.address() as AddressInfo).port;
    const first = await freePort();
    const admin = await freePort();
    const config = parseConfig({
      listeners: [{ name: 'first', address: '127.0.0.1', port: first }, { name: 'second', address: '127.0.0.1', port: taken }],
      admin: { address: '127.0.0.1', port: admin },
    }, 'test-config.yaml');
    const gateway = await Gateway.create(config, { logger: silentLogger() });
    cleanup.push(() => gateway.shutdown());
    await expect(gateway.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // The admin listener binds only after every public listener, so /readyz was never reachable.
    expect(await tryConnect(admin)).toBe('ECONNREFUSED');
    expect(await tryConnect(first)).toBe('ECONNREFUSED');
  });

  it('never comes up when a service cannot start: Gateway.create rejects naming the plugin', async () => {
    const module = wasmFile(REFUSE_CONFIGURE, 'refuse');
    const config = parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      plugins: [{ name: 'token-sync', module, rootId: 'sync' }],
      services: ['token-sync'],
    }, 'test-config.yaml');
    await expect(Gateway.create(config, { logger: silentLogger() })).rejects.toMatchObject({
      code: 'GW_ERR_ABI_CONFIGURE',
      message: `1 plugin could not start:\n  plugins[0] (token-sync): GW_ERR_ABI_CONFIGURE: plugin token-sync (root id "sync", module ${module}): proxy_on_configure returned false`,
    });
  });

  it('answers /readyz with 503 draining while shutdown() waits for a request in flight, then closes', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const upstream = await startUpstream((_req, res: ServerResponse) => {
      void held.then(() => res.end('late answer\n'));
    });
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
      drainTimeoutMs: 10_000,
    });
    cleanup.push(gw.close);
    const inflight = fetch(`${gw.url}/slow`);
    await until(() => (upstream.requests.length === 1 ? true : undefined), 'the upstream to receive the request');
    expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(200);

    let stopped = false;
    const stopping = gw.gateway.shutdown().then(() => { stopped = true; });
    const draining = await fetch(`${gw.adminUrl}/readyz`);
    expect(draining.status).toBe(503);
    expect(await draining.text()).toBe('not ready: draining\n');
    const health = await fetch(`${gw.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    expect(stopped).toBe(false);

    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('late answer\n');
    await stopping;
    expect(await tryConnect(Number(new URL(gw.adminUrl).port))).toBe('ECONNREFUSED');
  });

  it('lets a second shutdown() wait for the drain the first one started', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const upstream = await startUpstream((_req, res: ServerResponse) => { void held.then(() => res.end('done\n')); });
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    const inflight = fetch(`${gw.url}/slow`);
    await until(() => (upstream.requests.length === 1 ? true : undefined), 'the upstream to receive the request');
    const order: string[] = [];
    const first = gw.gateway.shutdown().then(() => order.push('first'));
    const second = gw.gateway.shutdown().then(() => order.push('second'));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    release();
    expect((await inflight).status).toBe(200);
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
  });

  it('lists the plugins with their health on /plugins', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const stamp = wasmFile(STAMP, 'stamp');
    const trap = wasmFile(TRAP, 'trap');
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [
        { name: 'stamp', module: stamp, rootId: 'stamper', vmId: 'vm-a', configuration: 'x' },
        { name: 'trap', module: trap, failurePolicy: 'open' },
      ],
      routes: [{ name: 'all', cluster: 'backend', filters: ['stamp', 'trap'] }],
    });
    cleanup.push(gw.close);
    const before = await fetch(`${gw.adminUrl}/plugins`);
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toBe('application/json');
    const stampEntry = {
      name: 'stamp', rootId: 'stamper', vmId: 'vm-a', module: stamp, sha256: sha(stamp),
      failurePolicy: 'closed', healthy: true, reloads: 0, recycles: 0, failure: null,
    };
    const listed = await before.json() as Array<Record<string, unknown>>;
    expect(listed).toMatchObject([
      { ...stampEntry, enabled: true, canary: null, stable: { sha256: sha(stamp), source: stamp, signedBy: null, healthy: true, counters: { streams: 0 } } },
      { name: 'trap', rootId: '', vmId: '', module: trap, sha256: sha(trap), failurePolicy: 'open', healthy: true, reloads: 0, recycles: 0, failure: null },
    ]);

    // Fail-open: the trap costs the filter, the request passes.
    expect((await fetch(`${gw.url}/x`)).status).toBe(200);
    const after = await fetch(`${gw.adminUrl}/plugins`);
    expect(await after.json()).toMatchObject([
      { ...stampEntry, stable: { counters: { streams: 1, failed: 0 } } },
      {
        name: 'trap', rootId: '', vmId: '', module: trap, sha256: sha(trap), failurePolicy: 'open', healthy: false, reloads: 0, recycles: 0, failure: 'trap: unreachable',
        stable: { counters: { streams: 1, failed: 1, traps: 1 } },
      },
    ]);
  });

  it('answers 404 with the list of endpoints for any other path', async () => {
    const gw = await startGateway({});
    cleanup.push(gw.close);
    const res = await fetch(`${gw.adminUrl}/nope`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('not found: try /healthz /readyz /metrics /plugins /clusters\n');
  });
});
