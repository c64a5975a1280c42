import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream } from '../helpers/gateway.js';
import { stampVersion, versionFile } from '../helpers/versions.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

describe('a route\'s own configuration of a plugin', () => {
  it('runs as another root context in the plugin\'s one VM, never another VM', async () => {
    const upstream = await startUpstream();
    cleanup.push(() => new Promise((resolve) => { upstream.server.closeAllConnections(); upstream.server.close(() => resolve()); }));
    const tier = (name: string): Record<string, unknown> => ({ request: { set: { 'x-tier': name } } });
    // The headers filter (AssemblyScript SDK) keeps its configuration per root context, as every SDK does.
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'headers', module: 'filters/dist/headers.wasm', configuration: tier('plugin-own') }],
      routes: [
        { name: 'gold', match: { pathPrefix: '/gold' }, cluster: 'backend', filters: [{ plugin: 'headers', configuration: tier('gold') }] },
        { name: 'gold-too', match: { pathPrefix: '/also-gold' }, cluster: 'backend', filters: [{ plugin: 'headers', configuration: tier('gold') }] },
        { name: 'silver', match: { pathPrefix: '/silver' }, cluster: 'backend', filters: [{ plugin: 'headers', configuration: tier('silver') }] },
        { name: 'plain', cluster: 'backend', filters: ['headers'] },
      ],
    });
    cleanup.push(gw.close);
    const tierOf = async (path: string): Promise<unknown> => {
      await (await fetch(`${gw.url}${path}`)).text();
      return upstream.requests.at(-1)!.headers['x-tier'];
    };
    expect(await tierOf('/gold')).toBe('gold');
    expect(await tierOf('/also-gold')).toBe('gold');
    expect(await tierOf('/silver')).toBe('silver');
    expect(await tierOf('/plain')).toBe('plugin-own');
    // One VM; a root per distinct configuration: the plugin's own, gold (shared by two routes) and silver.
    const vms = gw.gateway.pool.vms();
    expect(vms.length).toBe(1);
    expect([...vms[0].roots()].length).toBe(3);
  });

  it('follows a module swap of its plugin: every configuration moves to the new module', async () => {
    const upstream = await startUpstream();
    cleanup.push(() => new Promise((resolve) => { upstream.server.closeAllConnections(); upstream.server.close(() => resolve()); }));
    const token = 'test-token-0123456789abcdef';
    const gw = await startGateway({
      admin: { address: '127.0.0.1', port: 0, token },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'stamp', module: versionFile(stampVersion('version-one!')) }],
      routes: [
        { name: 'tier', match: { pathPrefix: '/tier' }, cluster: 'backend', filters: [{ plugin: 'stamp', configuration: 'tier' }] },
        { name: 'plain', cluster: 'backend', filters: ['stamp'] },
      ],
    });
    cleanup.push(gw.close);
    const res = await fetch(`${gw.adminUrl}/plugins/stamp/module`, {
      method: 'PUT', body: Buffer.from(stampVersion('version-two!')), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/wasm' },
    });
    expect(res.status).toBe(200);
    for (const path of ['/tier', '/plain']) expect((await fetch(`${gw.url}${path}`)).headers.get('x-served-by')).toBe('version-two!');
    expect(gw.gateway.pool.vms().length).toBe(1);
  });
});
