import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway } from '../helpers/gateway.js';
import { refusingVersion, sha, stampVersion, versionFile } from '../helpers/versions.js';

const TOKEN = 'test-token-0123456789abcdef';
const V1 = stampVersion('version-one!');
const V2 = stampVersion('version-two!');

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function gatewayWith(extra: Record<string, unknown> = {}, delayMs = 0): Promise<TestGateway & { upstream: Awaited<ReturnType<typeof startUpstream>> }> {
  const upstream = await startUpstream(delayMs === 0 ? undefined : (_req, res) => { setTimeout(() => res.end('slow\n'), delayMs); });
  cleanup.push(() => new Promise((resolve) => { upstream.server.closeAllConnections(); upstream.server.close(() => resolve()); }));
  const gw = await startGateway({
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'stamp', module: versionFile(V1, 'v1'), configuration: 'from-file' }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
    ...extra,
  });
  cleanup.push(gw.close);
  return { ...gw, upstream };
}

function call(gw: TestGateway, method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Response> {
  const raw = body instanceof Uint8Array;
  return fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': raw ? 'application/wasm' : 'application/json' }) },
    body: body === undefined ? undefined : raw ? Buffer.from(body) : JSON.stringify(body),
  });
}

async function servedBy(gw: TestGateway): Promise<string | null> {
  const res = await fetch(`${gw.url}/x`);
  await res.text();
  return res.headers.get('x-served-by');
}

describe('the plugin API of the admin listener', () => {
  it('swaps a module sent as wasm bytes: new streams run it and /plugins shows its sha256', async () => {
    const gw = await gatewayWith();
    expect(await servedBy(gw)).toBe('version-one!');
    const res = await call(gw, 'PUT', '/plugins/stamp/module', V2);
    expect(res.status).toBe(200);
    const report = await res.json() as Record<string, any>;
    expect(report).toMatchObject({ name: 'stamp', sha256: sha(V2), enabled: true, stable: { sha256: sha(V2), source: 'admin upload to stamp', healthy: true }, canary: null });
    expect(await servedBy(gw)).toBe('version-two!');
    // The configuration stays the plugin's.
    expect(gw.upstream.requests.at(-1)!.headers['x-edge-stamp']).toBe('from-file');
    expect(gw.logs.some((l) => l.msg === `plugin stamp: swap: module ${sha(V2)} (admin upload to stamp) serves new streams`)).toBe(true);
  });

  it('refuses a change without the bearer token, with a wrong one, and when no token is configured', async () => {
    const gw = await gatewayWith();
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0123456789ab' }, { authorization: TOKEN }];
    for (const headers of attempts) {
      const res = await call(gw, 'PUT', '/plugins/stamp/module', V2, headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'GW_ERR_ADMIN_UNAUTHORIZED', message: 'this call needs "Authorization: Bearer <token>" with the admin token' });
    }
    expect(await servedBy(gw)).toBe('version-one!');
    // Reads stay open on loopback.
    expect((await call(gw, 'GET', '/plugins', undefined, {})).status).toBe(200);

    const off = await gatewayWith({ admin: { address: '127.0.0.1', port: 0 } });
    const res = await call(off, 'POST', '/plugins/stamp/disable');
    expect(res.status).toBe(401);
    expect((await res.json() as { message: string }).message).toMatch(/^changes through the admin API are off: set admin.token or the variable admin.tokenEnv names/);
  });

  it('asks the token of reads from beyond loopback too', async () => {
    const gw = await gatewayWith();
    const read = { method: 'GET', path: '/plugins', loopback: false, body: new Uint8Array() };
    expect(await gw.gateway.live.call(read)).toMatchObject({ status: 401, body: { error: 'GW_ERR_ADMIN_UNAUTHORIZED' } });
    expect(await gw.gateway.live.call({ ...read, authorization: `Bearer ${TOKEN}` })).toMatchObject({ status: 200, body: [{ name: 'stamp' }] });
  });

  it('takes the token from the variable admin.tokenEnv names', async () => {
    process.env.EDGE_TEST_ADMIN_TOKEN = TOKEN;
    cleanup.push(async () => { delete process.env.EDGE_TEST_ADMIN_TOKEN; });
    const gw = await gatewayWith({ admin: { address: '127.0.0.1', port: 0, tokenEnv: 'EDGE_TEST_ADMIN_TOKEN' } });
    expect((await call(gw, 'POST', '/plugins/stamp/disable')).status).toBe(200);
    expect(await servedBy(gw)).toBe(null);
  });

  it('leaves the old module serving when the new one is refused, and says why with the codes of validate', async () => {
    const gw = await gatewayWith();
    const invalid = await call(gw, 'PUT', '/plugins/stamp/module', new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 2]));
    expect(invalid.status).toBe(422);
    expect(await invalid.json()).toMatchObject({ error: 'GW_ERR_MODULE_INVALID' });
    const refusing = await call(gw, 'PUT', '/plugins/stamp/module', refusingVersion());
    expect(refusing.status).toBe(422);
    expect(await refusing.json()).toMatchObject({ error: 'GW_ERR_ABI_CONFIGURE' });
    const missing = await call(gw, 'PUT', '/plugins/stamp/module', { source: { file: '/nonexistent/m.wasm' } });
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ error: 'GW_ERR_MODULE_READ' });
    const notJson = await call(gw, 'PUT', '/plugins/stamp/module', { wasm: 'not base64!' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: 'GW_ERR_PLUGIN_CHANGE' });
    expect(await servedBy(gw)).toBe('version-one!');
    expect(gw.logs.filter((l) => String(l.msg).startsWith('plugin stamp: swap rejected, the running version keeps serving')).length).toBe(3);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('edge_gateway_plugin_changes_total{plugin="stamp",change="swap",result="rejected"} 3');
    expect(metrics).toContain(`edge_gateway_plugin_module_info{plugin="stamp",role="stable",sha256="${sha(V1)}"} 1`);
  });

  it('swaps to a file, to a module of the store by its sha256, and counts each change with the sha256 in force', async () => {
    const gw = await gatewayWith();
    const v2 = versionFile(V2, 'v2');
    expect((await call(gw, 'PUT', '/plugins/stamp/module', { source: { file: v2 } })).status).toBe(200);
    expect(await servedBy(gw)).toBe('version-two!');
    // As written in the configuration, too.
    expect((await call(gw, 'PUT', '/plugins/stamp/module', { file: versionFile(V1, 'v1') })).status).toBe(200);
    expect(await servedBy(gw)).toBe('version-one!');
    expect((await call(gw, 'PUT', '/plugins/stamp/module', { file: v2 })).status).toBe(200);
    const back = await call(gw, 'PUT', '/plugins/stamp/module', { sha256: sha(V1).toUpperCase() });
    expect(back.status).toBe(200);
    expect(await servedBy(gw)).toBe('version-one!');
    const unknown = await call(gw, 'PUT', '/plugins/stamp/module', { sha256: 'ab'.repeat(32) });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ error: 'GW_ERR_PLUGIN_CHANGE', message: `module ${'ab'.repeat(32)} is not in the module store (and no modules.registry is configured to fetch it from)` });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('edge_gateway_plugin_changes_total{plugin="stamp",change="swap",result="applied"} 4');
    expect(metrics).toContain(`edge_gateway_plugin_module_info{plugin="stamp",role="stable",sha256="${sha(V1)}"} 1`);
    expect(metrics).not.toContain(`sha256="${sha(V2)}"`);
  });

  it('changes the configuration, and turns the plugin off and on for new streams', async () => {
    const gw = await gatewayWith();
    expect((await call(gw, 'PUT', '/plugins/stamp/configuration', { configuration: 'from-api' })).status).toBe(200);
    await servedBy(gw);
    expect(gw.upstream.requests.at(-1)!.headers['x-edge-stamp']).toBe('from-api');
    expect((await call(gw, 'POST', '/plugins/stamp/disable')).status).toBe(200);
    expect(await servedBy(gw)).toBe(null);
    expect(gw.upstream.requests.at(-1)!.headers['x-edge-stamp']).toBeUndefined();
    const enabled = await call(gw, 'POST', '/plugins/stamp/enable');
    expect(await enabled.json()).toMatchObject({ enabled: true });
    expect(await servedBy(gw)).toBe('version-one!');
  });

  it('answers 404 for a plugin the configuration lacks and 400 for a call that does not exist', async () => {
    const gw = await gatewayWith();
    const res = await call(gw, 'PUT', '/plugins/nope/module', V2);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'GW_ERR_PLUGIN_UNKNOWN', message: 'no plugin "nope" runs in the configuration in force' });
    const odd = await call(gw, 'POST', '/plugins/stamp/explode');
    expect(odd.status).toBe(400);
    expect(await odd.json()).toMatchObject({ error: 'GW_ERR_PLUGIN_CHANGE' });
    const promote = await call(gw, 'POST', '/plugins/stamp/promote');
    expect(promote.status).toBe(400);
    expect(await promote.json()).toEqual({ error: 'GW_ERR_PLUGIN_CHANGE', message: 'plugin stamp has no canary to promote' });
  });

  it('lets a stream in flight finish on the old VM, which is disposed after it', async () => {
    const gw = await gatewayWith({}, 300);
    const inflight = fetch(`${gw.url}/slow`);
    await sleep(100);
    expect((await call(gw, 'PUT', '/plugins/stamp/module', V2)).status).toBe(200);
    // Two VMs now: the new one, and the old one serving the stream in flight.
    expect(gw.gateway.pool.vms().length).toBe(2);
    const old = await inflight;
    expect(old.headers.get('x-served-by')).toBe('version-one!');
    await old.text();
    expect(await servedBy(gw)).toBe('version-two!');
    expect(gw.gateway.pool.vms().length).toBe(1);
  });
});
