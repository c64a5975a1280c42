/**
 * Edge functions in a box (`workers: 2`): each worker runs its own warm pool; a swap through the
 * primary's admin API reaches every worker; /metrics sums the workers' function counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';
import { ENV, FUNCTION_CACHE, HELLO } from '../helpers/functions.js';

const TOKEN = 'box-functions-token-0123456789';

describe('edge functions in a box of two workers', () => {
  let box: GatewayProcess;

  beforeAll(async () => {
    box = await GatewayProcess.start(writeConfigFile({
      workers: 2,
      admin: { address: '127.0.0.1', port: 0, token: TOKEN },
      modules: { cacheDir: FUNCTION_CACHE },
      functions: [{ name: 'hello', component: HELLO, instances: 1, environment: { BOX: 'yes' } }],
      routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
    }));
  }, 60_000);

  afterAll(async () => {
    box?.signal('SIGTERM');
    await box?.exited;
  });

  /** New connections land on either worker. */
  const bodies = async (n: number): Promise<Set<string>> => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add(await (await fetch(`${box.url}/q`, { headers: { connection: 'close' } })).text());
    return seen;
  };

  it('answers from every worker and sums their counts in /metrics', async () => {
    expect(await bodies(12)).toEqual(new Set(['hello from /q\n']));
    const text = await (await fetch(`${box.adminUrl}/metrics`)).text();
    expect(text).toContain('edge_gateway_function_requests_total{function="hello",result="ok"} 12');
  });

  it('swaps the component in every worker through the primary', async () => {
    const res = await fetch(`${box.adminUrl}/functions/hello/component`, {
      method: 'PUT', body: readFileSync(ENV), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/wasm' },
    });
    expect(res.status).toBe(200);
    await res.text();
    expect(await bodies(12)).toEqual(new Set(['{"BOX":"yes"}']));
  });
});
