import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config/load.js';
import { clusterSchema } from '../../gateway/config/schema.js';
import { Cluster } from '../../gateway/proxy/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { captureLog } from '../helpers/log-capture.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

/** An upstream named `name`: /healthz answers `health.status`, every other path its name. */
async function named(name: string, health = { status: 200 }): Promise<Upstream & { health: { status: number }; served: () => number; probes: () => number }> {
  const u = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const status = req.url === '/healthz' ? health.status : 200;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(name.length) });
    res.end(name);
  });
  cleanup.push(u.close);
  return Object.assign(u, {
    health,
    served: () => u.requests.filter((r) => r.url !== '/healthz').length,
    probes: () => u.requests.filter((r) => r.url === '/healthz').length,
  });
}

const FAST = { path: '/healthz', intervalMs: 40, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 2 };

async function gateway(endpoints: string[], cluster: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startGateway({
    clusters: [{ name: 'backend', endpoints, healthCheck: FAST, ...cluster }],
    routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'backend' }],
  });
  cleanup.push(gw.close);
  return gw;
}

async function send(gw: TestGateway, n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) bodies.push(await (await fetch(`${gw.url}/x${i}`)).text());
  return bodies;
}

const logged = (gw: TestGateway, msg: string, endpoint?: string): Array<Record<string, unknown>> =>
  gw.logs.filter((l) => l.msg === msg && (endpoint === undefined || l.endpoint === endpoint));

describe('active health checks', () => {
  it('takes an endpoint failing its checks out of the rotation, and puts it back after healthyThreshold passes', async () => {
    const a = await named('a');
    const b = await named('b', { status: 503 });
    const gw = await gateway([a.url, b.url]);
    expect(await eventually(() => logged(gw, 'upstream endpoint unhealthy', b.url).length === 1, 3000)).toBe(true);
    expect(logged(gw, 'upstream endpoint unhealthy', b.url)[0]).toMatchObject({ cluster: 'backend', reason: '2 health checks failed in a row (last: status 503)', level: 'warn' });
    const before = b.served();
    expect(new Set(await send(gw, 10))).toEqual(new Set(['a']));
    expect(b.served()).toBe(before);

    b.health.status = 200;
    const probesAtFix = b.probes();
    expect(await eventually(() => logged(gw, 'upstream endpoint healthy', b.url).length === 1, 3000)).toBe(true);
    // Not before healthyThreshold passes (a probe in flight at the fix may still have seen a 503).
    expect(b.probes() - probesAtFix).toBeGreaterThanOrEqual(2);
    expect(new Set(await send(gw, 10))).toEqual(new Set(['a', 'b']));
  });

  it('keeps a flapping endpoint (pass, fail, pass…) in service below the thresholds', async () => {
    const a = await named('a');
    const b = await named('b');
    let n = 0;
    b.server.removeAllListeners('request');
    b.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const status = req.url === '/healthz' ? (n++ % 2 === 0 ? 200 : 503) : 200;
      b.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      res.writeHead(status, { 'content-length': '1' });
      res.end('b');
    });
    const gw = await gateway([a.url, b.url]);
    expect(await eventually(() => b.probes() >= 12, 3000)).toBe(true);
    expect(logged(gw, 'upstream endpoint unhealthy')).toEqual([]);
    expect(new Set(await send(gw, 4))).toEqual(new Set(['a', 'b']));
  });

  it('probes with the configured path and host, and reports timeouts and refused connections', async () => {
    const hang = await startUpstream(() => { /* never answers */ });
    cleanup.push(hang.close);
    const closed = await startUpstream();
    const closedUrl = closed.url;
    await closed.close();
    const a = await named('a');
    const gw = await gateway([a.url, hang.url, closedUrl], { healthCheck: { ...FAST, timeoutMs: 50, host: 'health.internal' } });
    expect(await eventually(() => logged(gw, 'upstream endpoint unhealthy').length === 2, 3000)).toBe(true);
    expect(logged(gw, 'upstream endpoint unhealthy', hang.url)[0].reason).toBe('2 health checks failed in a row (last: no answer within 50 ms)');
    expect(logged(gw, 'upstream endpoint unhealthy', closedUrl)[0].reason).toBe('2 health checks failed in a row (last: ECONNREFUSED)');
    expect(a.requests[0]).toMatchObject({ method: 'GET', url: '/healthz', headers: { host: 'health.internal', 'user-agent': 'edge-gateway-health-check' } });
    expect(new Set(await send(gw, 6))).toEqual(new Set(['a']));
  });

  it('routes to every endpoint when none passes its checks (panic mode), and shows it on GET /clusters and /metrics', async () => {
    const a = await named('a', { status: 500 });
    const b = await named('b', { status: 500 });
    const gw = await gateway([a.url, b.url]);
    expect(await eventually(() => gw.logs.some((l) => l.msg === 'upstream cluster in panic mode: no endpoint is in service, routing to all of them'), 3000)).toBe(true);
    expect(new Set(await send(gw, 6))).toEqual(new Set(['a', 'b']));

    const clusters = await (await fetch(`${gw.adminUrl}/clusters`)).json() as Array<Record<string, unknown>>;
    expect(clusters).toMatchObject([{
      name: 'backend', panic: true, healthCheck: true, outlierDetection: false,
      endpoints: [
        { endpoint: a.url, health: 'unhealthy', failedHealthChecks: true, ejected: false, ejectedUntil: null, lastCheck: 'status 500' },
        { endpoint: b.url, health: 'unhealthy', failedHealthChecks: true },
      ],
    }]);
    const checks = (clusters[0].endpoints as Array<{ checks: Record<string, number> }>)[0].checks;
    expect(checks.failure).toBeGreaterThanOrEqual(2);

    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`edge_gateway_upstream_endpoint_healthy{cluster="backend",endpoint="${a.url}"} 0`);
    expect(metrics).toContain(`edge_gateway_upstream_endpoint_healthy{cluster="backend",endpoint="${b.url}"} 0`);
    expect(metrics).toMatch(new RegExp(`edge_gateway_upstream_health_checks_total\\{cluster="backend",endpoint="${a.url}",result="failure"\\} [1-9]`));
    // No outlier detection on this cluster: no ejection series.
    expect(metrics).not.toContain('edge_gateway_upstream_ejections_total{');

    a.health.status = 200;
    expect(await eventually(() => gw.logs.some((l) => l.msg === 'upstream cluster out of panic mode'), 3000)).toBe(true);
    expect(new Set(await send(gw, 6))).toEqual(new Set(['a']));
    const after = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(after).toContain(`edge_gateway_upstream_endpoint_healthy{cluster="backend",endpoint="${a.url}"} 1`);
  });

  it('answers GET /clusters on loopback, asks the token from elsewhere, and refuses changes', async () => {
    const a = await named('a');
    const gw = await gateway([a.url]);
    const read = { method: 'GET', path: '/clusters', loopback: false, body: new Uint8Array() };
    expect(await gw.gateway.live.call(read)).toMatchObject({ status: 401, body: { error: 'GW_ERR_ADMIN_UNAUTHORIZED' } });
    expect(await gw.gateway.live.call({ ...read, loopback: true })).toMatchObject({ status: 200, body: [{ name: 'backend', panic: false }] });
    const post = await fetch(`${gw.adminUrl}/clusters`, { method: 'POST' });
    expect(post.status).toBe(401);
  });

  it('stops probing when its cluster is closed, and when a reload retires the generation', async () => {
    const u = await named('u');
    const cluster = new Cluster(clusterSchema.parse({ name: 'c', endpoints: [u.url], healthCheck: { intervalMs: 20, timeoutMs: 100 } }), captureLog().logger);
    expect(await eventually(() => u.probes() >= 3, 3000)).toBe(true);
    await cluster.close();
    await new Promise((r) => setTimeout(r, 30));
    const atClose = u.probes();
    await new Promise((r) => setTimeout(r, 200));
    expect(u.probes()).toBe(atClose);

    const old = await named('old');
    const next = await named('next');
    const gw = await gateway([old.url]);
    expect(await eventually(() => old.probes() >= 2, 3000)).toBe(true);
    await gw.gateway.reload(parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], admin: { address: '127.0.0.1', port: 0 },
      clusters: [{ name: 'backend', endpoints: [next.url], healthCheck: FAST }],
      routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'backend' }],
    }, 'reload.yaml'));
    expect(await eventually(() => next.probes() >= 2, 3000)).toBe(true);
    expect(gw.gateway.generationsAlive()).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    const oldAtReload = old.probes();
    await new Promise((r) => setTimeout(r, 300));
    expect(old.probes()).toBe(oldAtReload);
  });
});
