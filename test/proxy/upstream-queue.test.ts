/**
 * The bounded queue of a cluster (Envoy's max_pending_requests, plus a queue timeout): a cluster
 * whose connections are all taken answers 503 from its queue instead of holding requests for
 * ever, and another cluster keeps serving. Real gateway, real upstreams, real sockets.
 */
import { createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster } from '../../gateway/proxy/cluster.js';
import { startGateway, startUpstream, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/host.js';

interface Held {
  server: Server;
  url: string;
  /** Requests that arrived, with their response held until the test releases it. */
  arrived: Array<{ url: string; res: ServerResponse }>;
}

/** An upstream that takes requests and answers only when the test says so. */
async function heldUpstream(): Promise<Held> {
  const arrived: Held['arrived'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    req.resume();
    arrived.push({ url: req.url!, res });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrived };
}

interface Outcome {
  status: number;
  body: string;
  ms: number;
}

/** A request whose answer (or failure) is collected; `body` chunks are written and the request left open when `open`. */
function send(base: string, path: string, opts: { method?: string; open?: boolean } = {}): { req: ClientRequest; done: Promise<Outcome> } {
  const started = Date.now();
  let req!: ClientRequest;
  const done = new Promise<Outcome>((resolve) => {
    req = httpRequest(`${base}${path}`, {
      method: opts.method ?? 'GET', agent: false,
      headers: opts.open ? { 'content-length': 1_000_000 } : undefined,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: Date.now() - started }));
      res.on('error', () => resolve({ status: res.statusCode!, body, ms: Date.now() - started }));
    });
    req.on('error', () => resolve({ status: 0, body: '', ms: Date.now() - started }));
    if (opts.open) req.write('first bytes of a slow upload');
    else req.end();
  });
  return { req, done };
}

function accessFor(gw: TestGateway, path: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.access === true && l.path === path);
}

function clusterOf(gw: TestGateway, name: string): Cluster {
  return (gw.gateway as unknown as { generation: { clusters: Map<string, Cluster> } }).generation.clusters.get(name)!;
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('the cluster queue', () => {
  it('answers 503 from its queue limit and its queue timeout while slow uploads hold every connection, and another cluster keeps serving', async () => {
    const slow = await startUpstream(); // answers only at the end of a body, which never comes
    const fast = await startUpstream();
    const gw = await startGateway({
      drainTimeoutMs: 100,
      clusters: [
        { name: 'slow', endpoints: [slow.url], maxConnections: 2, maxPendingRequests: 2, queueTimeoutMs: 400 },
        { name: 'fast', endpoints: [fast.url] },
      ],
      routes: [{ name: 'fast', match: { pathPrefix: '/fast' }, cluster: 'fast' }, { name: 'slow', cluster: 'slow' }],
    });
    const uploads = [send(gw.url, '/up/1', { method: 'POST', open: true }), send(gw.url, '/up/2', { method: 'POST', open: true })];
    cleanup.push(() => gw.close(), () => fast.close(), () => slow.close(), () => uploads.forEach((u) => u.req.destroy()));
    await until(() => clusterOf(gw, 'slow').endpoints[0].queue.active === 2);

    const queued = [send(gw.url, '/q/3'), send(gw.url, '/q/4')];
    await until(() => clusterOf(gw, 'slow').admission.pending === 2);
    const overflow = await send(gw.url, '/q/5').done;
    expect(overflow.status).toBe(503);
    expect(overflow.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow\n');
    expect(overflow.ms).toBeLessThan(300);

    const other = await send(gw.url, '/fast/ok').done;
    expect([other.status, other.ms < 300]).toEqual([200, true]);

    const timedOut = await Promise.all(queued.map((q) => q.done));
    for (const t of timedOut) {
      expect(t.status).toBe(503);
      expect(t.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: queue timeout\n');
      expect(t.ms).toBeGreaterThanOrEqual(350);
      expect(t.ms).toBeLessThan(1500);
    }
    await until(() => accessFor(gw, '/q/4') !== undefined && accessFor(gw, '/q/5') !== undefined);
    expect(['/q/3', '/q/4', '/q/5'].map((p) => [accessFor(gw, p)!.status, accessFor(gw, p)!.error]))
      .toEqual([[503, 'queue_timeout'], [503, 'queue_timeout'], [503, 'cluster_overflow']]);
    expect(clusterOf(gw, 'slow').admission).toMatchObject({ pending: 0, overflows: 1, timeouts: 2 });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics.split('\n').filter((l) => /^edge_gateway_upstream_(overflows|queue_timeouts)_total\{cluster="slow"\}/.test(l)))
      .toEqual(['edge_gateway_upstream_overflows_total{cluster="slow"} 1', 'edge_gateway_upstream_queue_timeouts_total{cluster="slow"} 2']);
    expect(gw.logs.some((l) => l.msg === 'upstream error' && l.code === 'cluster_overflow' && l.cluster === 'slow')).toBe(true);
    // Only the two uploads ever reached the slow upstream's side (it records requests at their end: none).
    expect(slow.requests).toEqual([]);
  });

  it('sends a waiting request upstream, in order, as soon as a connection frees', async () => {
    const held = await heldUpstream();
    const gw = await startGateway({
      drainTimeoutMs: 100,
      clusters: [{ name: 'one', endpoints: [held.url], maxConnections: 1, queueTimeoutMs: 5000 }],
      routes: [{ name: 'all', cluster: 'one' }],
    });
    cleanup.push(() => gw.close(), () => { held.server.closeAllConnections(); held.server.close(); });
    const first = send(gw.url, '/a');
    await until(() => held.arrived.length === 1);
    const second = send(gw.url, '/b');
    const third = send(gw.url, '/c');
    await until(() => clusterOf(gw, 'one').admission.pending === 2);
    expect(held.arrived.map((a) => a.url)).toEqual(['/a']);
    for (const expected of ['/a', '/b', '/c']) {
      await until(() => held.arrived.length >= ['/a', '/b', '/c'].indexOf(expected) + 1);
      const next = held.arrived.find((a) => a.url === expected)!;
      next.res.end(`answer ${expected}`);
    }
    expect((await Promise.all([first.done, second.done, third.done])).map((o) => [o.status, o.body]))
      .toEqual([[200, 'answer /a'], [200, 'answer /b'], [200, 'answer /c']]);
    expect(held.arrived.map((a) => a.url)).toEqual(['/a', '/b', '/c']);
    expect(clusterOf(gw, 'one').endpoints[0].queue.active).toBe(0);
  });

  it('takes a request out of the queue when its client leaves, so it neither counts nor reaches the upstream', async () => {
    const held = await heldUpstream();
    const gw = await startGateway({
      drainTimeoutMs: 100,
      clusters: [{ name: 'one', endpoints: [held.url], maxConnections: 1, maxPendingRequests: 1, queueTimeoutMs: 5000 }],
      routes: [{ name: 'all', cluster: 'one' }],
    });
    cleanup.push(() => gw.close(), () => { held.server.closeAllConnections(); held.server.close(); });
    const first = send(gw.url, '/a');
    await until(() => held.arrived.length === 1);
    const leaving = send(gw.url, '/leaves');
    await until(() => clusterOf(gw, 'one').admission.pending === 1);
    leaving.req.destroy();
    await until(() => clusterOf(gw, 'one').admission.pending === 0);
    // Its place is free again: the next request waits instead of overflowing.
    const next = send(gw.url, '/next');
    await until(() => clusterOf(gw, 'one').admission.pending === 1);
    held.arrived[0].res.end('a');
    await until(() => held.arrived.length === 2);
    held.arrived[1].res.end('next');
    expect((await next.done).status).toBe(200);
    expect((await first.done).status).toBe(200);
    expect(held.arrived.map((a) => a.url)).toEqual(['/a', '/next']);
    expect(clusterOf(gw, 'one').admission.overflows).toBe(0);
    await until(() => accessFor(gw, '/leaves') !== undefined);
    expect(accessFor(gw, '/leaves')!.error).toBe('downstream_remote_disconnect');
  });

  it('passes over an endpoint whose connections are all taken when another has one free', async () => {
    const a = await heldUpstream();
    const b = await heldUpstream();
    const gw = await startGateway({
      drainTimeoutMs: 100,
      clusters: [{ name: 'two', endpoints: [a.url, b.url], maxConnections: 1, queueTimeoutMs: 5000 }],
      routes: [{ name: 'all', cluster: 'two' }],
    });
    cleanup.push(() => gw.close(), () => { for (const u of [a, b]) { u.server.closeAllConnections(); u.server.close(); } });
    const first = send(gw.url, '/1');
    await until(() => a.arrived.length === 1);
    const second = send(gw.url, '/2');
    await until(() => b.arrived.length === 1);
    b.arrived[0].res.end('2');
    expect((await second.done).status).toBe(200);
    await until(() => clusterOf(gw, 'two').endpoints[1].queue.active === 0);
    // Round robin says a, which is busy: b takes it at once instead of a queue behind /1.
    const third = send(gw.url, '/3');
    await until(() => b.arrived.length === 2);
    expect([a.arrived.length, clusterOf(gw, 'two').admission.pending]).toEqual([1, 0]);
    b.arrived[1].res.end('3');
    a.arrived[0].res.end('1');
    expect((await Promise.all([first.done, third.done])).map((o) => o.status)).toEqual([200, 200]);
  });
});
