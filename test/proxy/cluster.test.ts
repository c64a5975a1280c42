import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterSchema } from '../../gateway/config/schema.js';
import { Cluster, createClusters } from '../../gateway/proxy/cluster.js';
import { startUpstream, type Upstream } from '../helpers/gateway.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';

function cluster(doc: Record<string, unknown>, log: CapturedLog = captureLog()): Cluster {
  return new Cluster(clusterSchema.parse({ name: 'backend', ...doc }), log.logger);
}

describe('Cluster', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

  async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
    const u = await startUpstream(handler);
    cleanup.push(u.close);
    return u;
  }

  it('takes its name, timeouts and one endpoint per origin from the config, with the defaults', () => {
    const c = cluster({ endpoints: ['http://127.0.0.1:9000', 'http://10.0.0.2:8080'] });
    cleanup.push(() => c.close());
    expect(c.name).toBe('backend');
    expect(c.connectTimeoutMs).toBe(2000);
    expect(c.timeoutMs).toBe(15000);
    expect(c.endpoints.map((e) => e.origin)).toEqual(['http://127.0.0.1:9000', 'http://10.0.0.2:8080']);
    expect(c.endpoints.map((e) => e.url.host)).toEqual(['127.0.0.1:9000', '10.0.0.2:8080']);
    expect(new Set(c.endpoints.map((e) => e.pool)).size).toBe(2);
  });

  it('picks the endpoints round robin', () => {
    const c = cluster({ endpoints: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://127.0.0.1:9003'] });
    cleanup.push(() => c.close());
    const picked = Array.from({ length: 7 }, () => c.pick().origin.slice(-4));
    expect(picked).toEqual(['9001', '9002', '9003', '9001', '9002', '9003', '9001']);
  });

  it('always picks the only endpoint of a one-endpoint cluster', () => {
    const c = cluster({ endpoints: ['http://127.0.0.1:9001'] });
    cleanup.push(() => c.close());
    expect([c.pick(), c.pick(), c.pick()].every((e) => e === c.endpoints[0])).toBe(true);
  });

  it('reuses one kept-alive upstream connection for sequential requests a tick apart', async () => {
    const u = await upstream();
    const sockets = new Set<Socket>();
    u.server.on('connection', (s: Socket) => sockets.add(s));
    const c = cluster({ endpoints: [u.url] });
    cleanup.push(() => c.close());
    for (let i = 0; i < 5; i++) {
      const res = await c.pick().pool.request({ path: `/n${i}`, method: 'GET' });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      // undici frees the connection for the pool on the next tick after the body ends; a real
      // client's next request always comes later than that (it has a network round trip to make).
      await new Promise((r) => setImmediate(r));
    }
    expect(u.requests.map((r) => r.url)).toEqual(['/n0', '/n1', '/n2', '/n3', '/n4']);
    expect(sockets.size).toBe(1);
  });

  it('applies the cluster timeoutMs to the wait for response headers', async () => {
    const u = await upstream(() => { /* never answers */ });
    const c = cluster({ endpoints: [u.url], timeoutMs: 150 });
    cleanup.push(() => c.destroy());
    const started = performance.now();
    const err = await c.pick().pool.request({ path: '/', method: 'GET' }).then(() => null, (e: unknown) => e as { code: string });
    expect(err?.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('closes every endpoint pool on close()', async () => {
    const c = cluster({ endpoints: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'] });
    await c.close();
    expect(c.endpoints.map((e) => e.pool.closed)).toEqual([true, true]);
  });

  it('destroys every endpoint pool on destroy()', () => {
    const c = cluster({ endpoints: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'] });
    c.destroy();
    expect(c.endpoints.map((e) => e.pool.destroyed)).toEqual([true, true]);
  });

  it('logs a pool that fails to close, naming the cluster and the endpoint, and still resolves', async () => {
    const log = captureLog();
    const c = cluster({ endpoints: ['http://127.0.0.1:9001'] }, log);
    // undici refuses to close a pool already destroyed (ClientDestroyedError): a real close failure.
    c.destroy();
    await c.close();
    await log.flushed();
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => ({ msg: l.msg, cluster: l.cluster, upstream: l.upstream, code: l.code })))
      .toEqual([{ msg: 'upstream pool close failed', cluster: 'backend', upstream: 'http://127.0.0.1:9001', code: 'UND_ERR_DESTROYED' }]);
  });
});

describe('createClusters', () => {
  it('maps each cluster by its name', async () => {
    const map = createClusters([
      clusterSchema.parse({ name: 'a', endpoints: ['http://127.0.0.1:9001'] }),
      clusterSchema.parse({ name: 'b', endpoints: ['http://127.0.0.1:9002'], timeoutMs: 500 }),
    ], captureLog().logger);
    expect([...map.keys()]).toEqual(['a', 'b']);
    expect(map.get('b')!.timeoutMs).toBe(500);
    await Promise.all([...map.values()].map((c) => c.close()));
  });
});
