/**
 * Swapping a function while it serves: through the admin API and through a reload, under a
 * steady stream of requests, with no failed request; a refused component leaves the running one.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { parseConfig } from '../../gateway/config/load.js';
import { runCli } from '../helpers/cli.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ENV, FUNCTION_CACHE, HELLO } from '../helpers/functions.js';

const TOKEN = 'function-swap-test-token';

/** Requests from `workers` loops until `stop()`; every answer's status and body kept. */
function load(url: string, workers: number): { stop(): Promise<Array<{ status: number; body: string }>> } {
  const seen: Array<{ status: number; body: string }> = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const res = await request(url);
        seen.push({ status: res.statusCode, body: await res.body.text() });
      } catch (err) {
        seen.push({ status: 0, body: (err as Error).message });
      }
    }
  });
  return { stop: async () => { running = false; await Promise.all(loops); return seen; } };
}

describe('swapping an edge function', () => {
  let gw: TestGateway;
  const doc = (component: string): Record<string, unknown> => ({
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    modules: { cacheDir: FUNCTION_CACHE },
    functions: [{ name: 'hello', component, environment: { SWAPPED: 'yes' } }],
    routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
  });

  beforeAll(async () => {
    gw = await startGateway(doc(HELLO));
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  const swap = (bytes: Uint8Array, token = TOKEN) => request(`${gw.adminUrl}/functions/hello/component`, {
    method: 'PUT', body: bytes, headers: { 'content-type': 'application/wasm', authorization: `Bearer ${token}` },
  });

  it('swaps the component through the admin API under load, with no failed request', async () => {
    const traffic = load(`${gw.url}/x`, 4);
    await new Promise((r) => setTimeout(r, 300));
    const res = await swap(readFileSync(ENV));
    expect(res.statusCode).toBe(200);
    const report = await res.body.json() as { sha256: string; source: string };
    expect(report.source).toBe('admin upload');
    await new Promise((r) => setTimeout(r, 300));
    const seen = await traffic.stop();
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect(seen.some((s) => s.body.startsWith('hello from'))).toBe(true);
    expect(seen.at(-1)!.body).toBe('{"SWAPPED":"yes"}');
    const listed = await (await request(`${gw.adminUrl}/functions`)).body.json() as Array<{ name: string; sha256: string }>;
    expect(listed).toEqual([expect.objectContaining({ name: 'hello', sha256: report.sha256 })]);
  });

  it('swaps back through a reload under load, with no failed request', async () => {
    const traffic = load(`${gw.url}/x`, 4);
    await new Promise((r) => setTimeout(r, 200));
    await gw.gateway.reload(parseConfig({ listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], ...doc(HELLO) }, 'reload.yaml'));
    await new Promise((r) => setTimeout(r, 300));
    const seen = await traffic.stop();
    expect(seen.filter((s) => s.status !== 200)).toEqual([]);
    expect(seen.at(-1)!.body).toBe('hello from /x\n');
  });

  it('refuses a core module or garbage as a component, and the running one keeps serving', async () => {
    const core = await swap(readFileSync('filters/dist/headers.wasm'));
    expect(core.statusCode).toBe(422);
    expect(await core.body.json()).toEqual({ error: 'GW_ERR_FUNCTION_COMPONENT', message: expect.stringContaining('core WebAssembly module, not a component') });
    const junk = await swap(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 9, 9, 9]));
    expect(junk.statusCode).toBe(422);
    await junk.body.dump();
    const still = await request(`${gw.url}/y`);
    expect(await still.body.text()).toBe('hello from /y\n');
    // Counted as changes: the earlier test's swap applied, these two rejected.
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    expect(text).toContain('edge_gateway_function_changes_total{function="hello",change="swap",result="applied"} 1\n');
    expect(text).toContain('edge_gateway_function_changes_total{function="hello",change="swap",result="rejected"} 2\n');
  });

  it('needs the admin token to swap', async () => {
    const res = await swap(readFileSync(ENV), 'not-the-token-at-all');
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });

  it('is driven by the CLI too: functions lists them, swap --function replaces the component', async () => {
    const cli = (...args: string[]) => runCli([...args, '--admin', gw.adminUrl], { env: { EDGE_GATEWAY_ADMIN_TOKEN: TOKEN } });
    const swapped = await cli('swap', 'hello', ENV, '--function');
    expect(swapped.stderr).toBe('');
    expect(swapped.code).toBe(0);
    expect(swapped.stdout).toMatch(new RegExp(`^hello: component [0-9a-f]{12} admin upload, instances 2 \\(ready \\d, busy \\d, queued \\d\\)\\n$`));
    expect(await (await request(`${gw.url}/z`)).body.text()).toBe('{"SWAPPED":"yes"}');
    const listed = await cli('functions');
    expect(listed.stdout).toContain('hello: component ');
    const wrong = await cli('enable', 'hello', '--function');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('enable does not apply to a function');
  });
});

