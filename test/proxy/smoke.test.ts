import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startGateway, startUpstream, wasmFile } from '../helpers/gateway.js';

describe('the gateway end to end', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

  it('forwards through the example filters and answers /admin locally', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const stamp = wasmFile(readFileSync('filters/examples/stamp.wat', 'utf8'), 'stamp');
    const deny = wasmFile(readFileSync('filters/examples/deny.wat', 'utf8'), 'deny');
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'stamp', module: stamp, configuration: 'hi' }, { name: 'deny', module: deny }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['deny', 'stamp'] }],
    });
    cleanup.push(gw.close);
    const ok = await fetch(`${gw.url}/hello`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-served-by')).toBe('edge-gateway');
    const echoed = await ok.json() as { headers: Record<string, string> };
    expect(echoed.headers['x-edge-stamp']).toBe('hi');
    const denied = await fetch(`${gw.url}/admin/x`);
    expect(denied.status).toBe(403);
    expect(denied.headers.get('x-denied-by')).toBe('deny');
    expect(await denied.text()).toBe('forbidden by the deny filter\n');
    expect(upstream.requests).toHaveLength(1);
  });
});
