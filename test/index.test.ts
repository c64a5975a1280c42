/**
 * The package entry as a library user meets it: everything below comes from gateway/index.ts,
 * the file package.json exports, and nothing from the files behind it.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createGateway, createLogger, isGatewayError, parseConfig } from '../gateway/index.js';
import { startUpstream } from './helpers/gateway.js';

describe('edge-gateway used as a library', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

  it('starts a gateway from a config object on port 0, proxies one request to a real upstream, and stops', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }));
    const config = parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    }, 'inline config');
    const gateway = await createGateway(config, { logger });
    const bound = await gateway.start();
    let stopped = false;
    cleanup.push(() => (stopped ? undefined : gateway.shutdown()));

    const res = await fetch(`http://127.0.0.1:${bound.listeners.get('public')!.port}/hello?x=1`, { headers: { 'x-request-id': 'lib-1' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ method: 'GET', url: '/hello?x=1', headers: { 'x-request-id': 'lib-1' } });
    expect(upstream.requests.map((r) => r.url)).toEqual(['/hello?x=1']);

    await gateway.shutdown();
    stopped = true;
    await expect(fetch(`http://127.0.0.1:${bound.admin!.port}/healthz`)).rejects.toThrow();
    expect(lines.filter((l) => l.access === true).map((l) => ({ status: l.status, route: l.route, requestId: l.requestId })))
      .toEqual([{ status: 200, route: 'all', requestId: 'lib-1' }]);
    expect(lines.at(-1)?.msg).toBe('edge-gateway stopped');
  });

  it('reports a config object with errors as a ConfigError naming each field', () => {
    let err: unknown;
    try {
      parseConfig({ listeners: [{ name: 'public', port: 70000 }], routes: [{ name: 'r', cluster: 'nowhere' }] }, 'inline config');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(isGatewayError(err, 'GW_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as ConfigError).problems).toEqual([
      'listeners[0].port: Too big: expected number to be <=65535',
      'routes[0].cluster: unknown cluster "nowhere"',
    ]);
  });
});
