import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config/load.js';
import { startGateway, startUpstream, type TestGateway } from '../helpers/gateway.js';
import { eventually } from '../helpers/eventually.js';
import { sha, stampVersion, trappingVersion, versionFile } from '../helpers/versions.js';

const TOKEN = 'test-token-0123456789abcdef';
const STABLE = stampVersion('stable-v1...');
const CANARY = stampVersion('canary-v2...');
const wasm = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

function document(upstream: string, plugin: Record<string, unknown> = {}, extraRoutes: unknown[] = []): Record<string, unknown> {
  return {
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    log: { level: 'info' },
    clusters: [{ name: 'backend', endpoints: [upstream] }],
    plugins: [{ name: 'stamp', module: stableFile, failurePolicy: 'closed', ...plugin }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }, ...extraRoutes],
  };
}
const stableFile = versionFile(STABLE, 'stable');

async function gateway(plugin: Record<string, unknown> = {}): Promise<TestGateway & { upstream: string }> {
  const upstream = await startUpstream();
  cleanup.push(() => new Promise((resolve) => { upstream.server.closeAllConnections(); upstream.server.close(() => resolve()); }));
  const gw = await startGateway(document(upstream.url, plugin));
  cleanup.push(gw.close);
  return { ...gw, upstream: upstream.url };
}

function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${gw.adminUrl}${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  });
}

async function served(gw: TestGateway, headers: Record<string, string> = {}): Promise<{ status: number; by: string | null }> {
  const res = await fetch(`${gw.url}/x`, { headers });
  await res.text();
  return { status: res.status, by: res.headers.get('x-served-by') };
}

async function tally(gw: TestGateway, n: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const { by, status } = await served(gw, headers(i));
    const key = by ?? String(status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe('a canary of a filter version', () => {
  it('takes exactly its share of streams, and /plugins counts each version', async () => {
    const gw = await gateway();
    const res = await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, percent: 5 });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ canary: { sha256: sha(CANARY), percent: 5 } });
    const counts = await tally(gw, 400);
    expect(counts.get('canary-v2...')).toBe(20);
    expect(counts.get('stable-v1...')).toBe(380);
    const report = await (await admin(gw, 'GET', '/plugins/stamp')).json() as Record<string, any>;
    expect(report.stable.counters.streams).toBe(380);
    expect(report.canary.counters.streams).toBe(20);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`edge_gateway_plugin_version_streams_total{plugin="stamp",role="canary",sha256="${sha(CANARY)}"} 20`);
  });

  it('sends streams matching a header or a cookie to the canary whatever the share', async () => {
    const gw = await gateway();
    await admin(gw, 'POST', '/plugins/stamp/canary', {
      module: { wasm: wasm(CANARY) }, percent: 0, match: { header: { name: 'X-Canary', exact: 'yes' }, cookie: { name: 'beta' } },
    });
    expect((await served(gw)).by).toBe('stable-v1...');
    expect((await served(gw, { 'x-canary': 'yes' })).by).toBe('canary-v2...');
    expect((await served(gw, { 'x-canary': 'no' })).by).toBe('stable-v1...');
    expect((await served(gw, { cookie: 'a=1; beta=anything' })).by).toBe('canary-v2...');
    expect((await served(gw, { cookie: 'betamax=1' })).by).toBe('stable-v1...');
  });

  it('keeps one client on one version when sticky, and splits clients by the share', async () => {
    const gw = await gateway();
    await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, percent: 50, sticky: { cookie: 'uid' } });
    const versions = new Set<string>();
    for (let user = 0; user < 20; user++) {
      const seen = await tally(gw, 5, () => ({ cookie: `uid=user-${user}` }));
      expect(seen.size, `user-${user} saw ${[...seen.keys()].join(', ')}`).toBe(1);
      versions.add([...seen.keys()][0]);
    }
    expect(versions).toEqual(new Set(['stable-v1...', 'canary-v2...']));
  });

  it('rolls a canary that traps back by itself, and the stable version serves every stream again', async () => {
    const gw = await gateway();
    await admin(gw, 'POST', '/plugins/stamp/canary', {
      module: { wasm: wasm(trappingVersion()) }, percent: 50, rollback: { windowMs: 60_000, minStreams: 10, margin: 0.05 },
    });
    const counts = await tally(gw, 30);
    expect(counts.get('503')).toBeGreaterThan(0);
    expect(await eventually(async () => (await (await admin(gw, 'GET', '/plugins/stamp')).json() as { canary: unknown }).canary === null, 3000)).toBe(true);
    expect(await tally(gw, 20)).toEqual(new Map([['stable-v1...', 20]]));
    const line = gw.logs.find((l) => String(l.msg).startsWith('plugin stamp: rollback: canary'));
    expect(line?.msg).toMatch(/rolled back \(its failure rate 100\.0% \(\d+ of \d+ streams\) passed the stable version's 0\.0% by more than 5\.0%\)/);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('edge_gateway_plugin_changes_total{plugin="stamp",change="rollback",result="applied"} 1');
  });

  it('moves through its steps after each hold and is promoted at 100%', async () => {
    const gw = await gateway();
    await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, steps: [10, 50, 100], holdMs: 1000 });
    const percent = async (): Promise<number | null> => ((await (await admin(gw, 'GET', '/plugins/stamp')).json() as { canary: { percent: number } | null }).canary?.percent ?? null);
    expect(await percent()).toBe(10);
    expect(await eventually(async () => (await percent()) === 50, 3000)).toBe(true);
    expect(await eventually(async () => (await percent()) === null, 3000)).toBe(true);
    const report = await (await admin(gw, 'GET', '/plugins/stamp')).json() as Record<string, any>;
    expect(report.stable.sha256).toBe(sha(CANARY));
    expect(await tally(gw, 10)).toEqual(new Map([['canary-v2...', 10]]));
    expect(gw.logs.some((l) => String(l.msg).startsWith('plugin stamp: promote: canary') && String(l.msg).includes('promoted (its last step held 1000 ms without a rollback)'))).toBe(true);
  });

  it('is promoted or rolled back by hand, and its share moved', async () => {
    const gw = await gateway();
    await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, percent: 5 });
    expect(await (await admin(gw, 'PATCH', '/plugins/stamp/canary', { percent: 100 - 1e-9 })).json()).toMatchObject({ canary: { percent: 100 - 1e-9 } });
    expect((await admin(gw, 'POST', '/plugins/stamp/rollback')).status).toBe(200);
    expect(await tally(gw, 5)).toEqual(new Map([['stable-v1...', 5]]));
    await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, percent: 5 });
    expect((await admin(gw, 'POST', '/plugins/stamp/promote')).status).toBe(200);
    expect(await tally(gw, 5)).toEqual(new Map([['canary-v2...', 5]]));
  });

  it('runs from the configuration file, and survives a reload of an unrelated part', async () => {
    const gw = await gateway({ canary: { module: versionFile(CANARY, 'canary'), percent: 25 } });
    expect(await tally(gw, 8)).toEqual(new Map([['stable-v1...', 6], ['canary-v2...', 2]]));
    await admin(gw, 'PATCH', '/plugins/stamp/canary', { percent: 50 });
    const upstream = (gw.gateway as unknown as { config: { clusters: Array<{ endpoints: string[] }> } }).config.clusters[0].endpoints[0];
    const base = document(upstream, { canary: { module: (gw.gateway as any).config.plugins[0].canary.module, percent: 25 } });
    await gw.gateway.reload(parseConfig({ ...base, listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], routes: [...base.routes as unknown[], { name: 'other', match: { pathPrefix: '/other' }, cluster: 'backend' }] }, 'reload.yaml'));
    const kept = await (await admin(gw, 'GET', '/plugins/stamp')).json() as Record<string, any>;
    expect(kept.canary).toMatchObject({ sha256: sha(CANARY), percent: 50 });
    // A changed entry is the newest intent: the file's canary starts again.
    await gw.gateway.reload(parseConfig({ ...base, listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], plugins: [{ ...(base.plugins as any[])[0], configuration: 'changed' }] }, 'reload.yaml'));
    expect((await (await admin(gw, 'GET', '/plugins/stamp')).json() as Record<string, any>).canary).toMatchObject({ percent: 25 });
    // A reload that fails changes nothing, and every reload is counted.
    await expect(gw.gateway.reload(parseConfig({ ...base, listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], plugins: [{ name: 'stamp', module: versionFile(new Uint8Array([1, 2, 3]), 'junk') }] }, 'reload.yaml')))
      .rejects.toMatchObject({ code: 'GW_ERR_MODULE_INVALID' });
    expect((await (await admin(gw, 'GET', '/plugins/stamp')).json() as Record<string, any>).canary).toMatchObject({ percent: 25 });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain('edge_gateway_config_reloads_total{result="applied"} 2');
    expect(metrics).toContain('edge_gateway_config_reloads_total{result="rejected"} 1');
  });

  it('refuses a canary on a service, on a plugin that does not exist, and a share over 100', async () => {
    const upstream = await startUpstream();
    cleanup.push(() => new Promise((resolve) => { upstream.server.closeAllConnections(); upstream.server.close(() => resolve()); }));
    const gw = await startGateway({ ...document(upstream.url), plugins: [{ name: 'stamp', module: stableFile }, { name: 'svc', module: stableFile, vmId: 'svc' }], services: ['svc'] });
    cleanup.push(gw.close);
    const service = await admin(gw, 'POST', '/plugins/svc/canary', { module: { wasm: wasm(CANARY) } });
    expect(service.status).toBe(400);
    expect(await service.json()).toEqual({ error: 'GW_ERR_PLUGIN_CHANGE', message: 'plugin svc runs as a service, which has no streams to split' });
    const res = await admin(gw, 'POST', '/plugins/nope/canary', { module: { wasm: wasm(CANARY) } });
    expect(res.status).toBe(404);
    const bad = await admin(gw, 'POST', '/plugins/stamp/canary', { module: { wasm: wasm(CANARY) }, percent: 150 });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'GW_ERR_PLUGIN_CHANGE' });
  });
});
