import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config/load.js';
import { startGateway, startUpstream, type TestGateway } from '../helpers/gateway.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

async function metricsText(gw: TestGateway): Promise<string> {
  return (await fetch(`${gw.adminUrl}/metrics`)).text();
}

/** The value of the one sample line starting with `series` (name and labels as written). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function configHashOf(text: string): string {
  return /^edge_gateway_config_info\{hash="([0-9a-f]{64})"\} 1$/m.exec(text)![1];
}

async function gatewayOn(url: string, extra: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startGateway({ clusters: [{ name: 'backend', endpoints: [url] }], routes: [{ name: 'all', cluster: 'backend' }], ...extra });
  cleanup.push(gw.close);
  return gw;
}

describe('the process metrics', () => {
  it('say which version runs, on which Node.js and CPU architecture', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const text = await metricsText(await gatewayOn(upstream.url));
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(sample(text, `edge_gateway_build_info{version="${version}",node="${process.versions.node}",arch="${process.arch}"}`)).toBe(1);
  });

  it('show one configuration hash for nodes that differ only in their id, and a new one after a reload', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const a = await gatewayOn(upstream.url, { node: { id: 'edge-a' } });
    const b = await gatewayOn(upstream.url, { node: { id: 'edge-b' } });
    const before = configHashOf(await metricsText(a));
    expect(configHashOf(await metricsText(b))).toBe(before);
    await a.gateway.reload(parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], admin: { address: '127.0.0.1', port: 0 },
      node: { id: 'edge-a' }, clusters: [{ name: 'backend', endpoints: [upstream.url] }], routes: [{ name: 'renamed', cluster: 'backend' }],
    }, 'reload.yaml'));
    const after = await metricsText(a);
    expect(configHashOf(after)).not.toBe(before);
    expect(after.match(/^edge_gateway_config_info\{/gm)).toHaveLength(1);
  });

  it('count the requests in flight while the upstream holds one, and time the upstream by cluster', async () => {
    const held: ServerResponse[] = [];
    const upstream = await startUpstream((_req, res) => { held.push(res); });
    cleanup.push(upstream.close);
    const gw = await gatewayOn(upstream.url);
    expect(sample(await metricsText(gw), 'edge_gateway_requests_in_flight')).toBe(0);
    const answer = fetch(`${gw.url}/slow`);
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(sample(await metricsText(gw), 'edge_gateway_requests_in_flight')).toBe(1);
    held[0].end('done');
    expect(await (await answer).text()).toBe('done');
    let text = await metricsText(gw);
    for (let i = 0; i < 100 && sample(text, 'edge_gateway_requests_in_flight') !== 0; i++) text = await metricsText(gw);
    expect(sample(text, 'edge_gateway_requests_in_flight')).toBe(0);
    expect(sample(text, 'edge_gateway_upstream_response_seconds_count{cluster="backend"}')).toBe(1);
  });
});
