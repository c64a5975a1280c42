import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './helpers/gateway.js';
import { runCli } from './helpers/cli.js';
import { freePort } from './helpers/redis-server.js';
import { sha, stampVersion, versionFile } from './helpers/versions.js';

const TOKEN = 'cli-token-0123456789abcdef';
const V1 = stampVersion('version-one!');
const V2 = stampVersion('version-two!');
let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'stamp', module: versionFile(V1, 'v1') }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
  });
});
afterAll(async () => {
  await gw.close();
  upstream.server.closeAllConnections();
  await new Promise((resolve) => upstream.server.close(resolve));
});

const cli = (...args: string[]) => runCli([...args, '--admin', gw.adminUrl], { env: { EDGE_GATEWAY_ADMIN_TOKEN: TOKEN } });

async function servedBy(): Promise<string | null> {
  const res = await fetch(`${gw.url}/x`);
  await res.text();
  return res.headers.get('x-served-by');
}

describe('edge-gateway plugins, swap, canary, promote, rollback', () => {
  it('lists the plugins one line each, or as JSON', async () => {
    const listed = await cli('plugins');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^stamp: healthy, stable ${sha(V1).slice(0, 12)} .*v1-\\d+\\.wasm\\n$`));
    const json = await cli('plugins', 'stamp', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'stamp', sha256: sha(V1) });
  });

  it('swaps a module from a file, and reports a refusal with exit code 1 and the error code', async () => {
    const swapped = await cli('swap', 'stamp', versionFile(V2, 'v2'));
    expect(swapped.code).toBe(0);
    expect(swapped.stdout).toBe(`stamp: healthy, stable ${sha(V2).slice(0, 12)} admin upload to stamp\n`);
    expect(await servedBy()).toBe('version-two!');
    const refused = await cli('swap', 'stamp', 'package.json');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^edge-gateway swap: HTTP 422 GW_ERR_MODULE_INVALID: /);
    expect(await servedBy()).toBe('version-two!');
  });

  it('runs a canary from a file, moves its share, rolls it back and promotes the next', async () => {
    await cli('swap', 'stamp', versionFile(V1, 'v1'));
    const started = await cli('canary', 'stamp', versionFile(V2, 'v2'), '--percent', '10', '--sticky', 'header:x-user', '--match-header', 'x-beta=1');
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`; canary ${sha(V2).slice(0, 12)} admin upload to stamp at 10%`);
    const report = JSON.parse((await cli('plugins', 'stamp', '--json')).stdout);
    expect(report.canary).toMatchObject({ percent: 10, sticky: { header: 'x-user' }, match: { header: { name: 'x-beta', exact: '1' } } });
    expect((await cli('canary', 'stamp', '--percent', '40')).stdout).toContain('at 40%');
    expect((await cli('rollback', 'stamp')).code).toBe(0);
    expect(await servedBy()).toBe('version-one!');
    await cli('canary', 'stamp', versionFile(V2, 'v2'), '--percent', '5');
    const promoted = await cli('promote', 'stamp');
    expect(promoted.stdout).toBe(`stamp: healthy, stable ${sha(V2).slice(0, 12)} admin upload to stamp\n`);
    expect(await servedBy()).toBe('version-two!');
  });

  it('turns a plugin off and on, and gives it another configuration', async () => {
    expect((await cli('disable', 'stamp')).stdout).toMatch(/^stamp: disabled, /);
    expect(await servedBy()).toBe(null);
    expect((await cli('enable', 'stamp')).code).toBe(0);
    expect((await cli('configure', 'stamp', '{"x":1}')).code).toBe(0);
    await servedBy();
    expect(upstream.requests.at(-1)!.headers['x-edge-stamp']).toBe('{"x":1}');
  });

  it('needs the token, and says what is wrong with a command line', async () => {
    const denied = await runCli(['swap', 'stamp', versionFile(V1), '--admin', gw.adminUrl]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toBe('edge-gateway swap: HTTP 401 GW_ERR_ADMIN_UNAUTHORIZED: this call needs "Authorization: Bearer <token>" with the admin token\n');
    const usage = await cli('swap', 'stamp');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('edge-gateway swap: edge-gateway swap NAME FILE: FILE is required\n');
    const sticky = await cli('canary', 'stamp', versionFile(V2), '--sticky', 'ip');
    expect(sticky.code).toBe(2);
    expect(sticky.stderr).toBe('edge-gateway canary: --sticky must be header:NAME, cookie:NAME or client, not "ip"\n');
    const port = await freePort();
    const away = await runCli(['plugins', '--admin', `http://127.0.0.1:${port}`]);
    expect(away.code).toBe(1);
    expect(away.stderr).toBe(`edge-gateway plugins: cannot reach the admin API at http://127.0.0.1:${port} (--admin URL or $EDGE_GATEWAY_ADMIN): ECONNREFUSED\n`);
  });
});
