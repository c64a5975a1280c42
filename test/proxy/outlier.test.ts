import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

/** An upstream named `name` answering `answer.status` with its name. */
async function named(name: string, answer = { status: 200 }): Promise<Upstream & { answer: { status: number } }> {
  const u = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(answer.status, { 'content-type': 'text/plain', 'content-length': String(name.length) });
    res.end(name);
  });
  cleanup.push(u.close);
  return Object.assign(u, { answer });
}

async function closedPort(): Promise<string> {
  const u = await startUpstream();
  await u.close();
  return u.url;
}

async function gateway(endpoints: string[], outlierDetection: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway({
    clusters: [{ name: 'backend', endpoints, outlierDetection }],
    routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'backend' }],
  });
  cleanup.push(gw.close);
  return gw;
}

/** `n` requests one after the other: each answer's status and body. */
async function send(gw: TestGateway, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw.url}/x${i}`);
    out.push(`${res.status} ${res.status < 500 ? await res.text() : (await res.arrayBuffer(), '')}`.trim());
  }
  return out;
}

const logged = (gw: TestGateway, msg: string): Array<Record<string, unknown>> => gw.logs.filter((l) => l.msg === msg);

async function clusters(gw: TestGateway): Promise<Array<{ panic: boolean; endpoints: Array<Record<string, unknown>> }>> {
  return await (await fetch(`${gw.adminUrl}/clusters`)).json() as Array<{ panic: boolean; endpoints: Array<Record<string, unknown>> }>;
}

describe('outlier detection', () => {
  it('ejects an endpoint after consecutive 5xx answers and returns it after the ejection time', async () => {
    const a = await named('a');
    const b = await named('b', { status: 500 });
    const gw = await gateway([a.url, b.url], { consecutive5xx: 3, consecutiveGatewayFailure: 0, baseEjectionTimeMs: 400 });
    // Round robin: b's third 500 comes with the sixth request.
    expect(await send(gw, 6)).toEqual(['200 a', '500', '200 a', '500', '200 a', '500']);
    const ejectedAt = Date.now();
    expect(logged(gw, 'upstream endpoint ejected')).toMatchObject([{
      level: 'warn', cluster: 'backend', endpoint: b.url,
      reason: '3 consecutive 5xx answers or gateway failures: ejected for 400 ms (ejection 1)',
    }]);
    expect(await send(gw, 6)).toEqual(Array(6).fill('200 a'));

    const [report] = await clusters(gw);
    expect(report.endpoints[1]).toMatchObject({ endpoint: b.url, health: 'ejected', ejected: true, ejections: 1 });
    expect(Date.parse(report.endpoints[1].ejectedUntil as string)).toBeGreaterThan(Date.now());
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`edge_gateway_upstream_ejections_total{cluster="backend",endpoint="${b.url}"} 1`);
    expect(metrics).toContain(`edge_gateway_upstream_ejections_total{cluster="backend",endpoint="${a.url}"} 0`);
    expect(metrics).toContain(`edge_gateway_upstream_endpoint_healthy{cluster="backend",endpoint="${b.url}"} 0`);

    b.answer.status = 200;
    expect(await eventually(() => logged(gw, 'upstream endpoint returned').length === 1, 3000)).toBe(true);
    expect(Date.now() - ejectedAt).toBeGreaterThanOrEqual(350);
    expect(logged(gw, 'upstream endpoint returned')[0]).toMatchObject({ level: 'info', endpoint: b.url, reason: 'the ejection time is over' });
    expect(new Set(await send(gw, 4))).toEqual(new Set(['200 a', '200 b']));
  });

  it('ejects an endpoint whose connections are refused (consecutive gateway failures)', async () => {
    const a = await named('a');
    const dead = await closedPort();
    const gw = await gateway([a.url, dead], { consecutive5xx: 0, consecutiveGatewayFailure: 2, baseEjectionTimeMs: 60_000 });
    expect(await send(gw, 4)).toEqual(['200 a', '502', '200 a', '502']);
    expect(logged(gw, 'upstream endpoint ejected')).toMatchObject([{
      endpoint: dead, reason: '2 consecutive gateway failures (connect failure, reset, timeout, 502/503/504): ejected for 60000 ms (ejection 1)',
    }]);
    expect(await send(gw, 6)).toEqual(Array(6).fill('200 a'));
    expect((await clusters(gw))[0].endpoints[1]).toMatchObject({ health: 'ejected', ejections: 1 });
  });

  it('counts a retry policy\'s per-try timeout as a gateway failure of the endpoint', async () => {
    const a = await named('a');
    const hang = await startUpstream(() => { /* never answers */ });
    cleanup.push(hang.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [a.url, hang.url], outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 2, baseEjectionTimeMs: 60_000 } }],
      routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'backend', retry: { retryOn: ['connect-failure'], perTryTimeoutMs: 100 } }],
    });
    cleanup.push(gw.close);
    expect(await send(gw, 4)).toEqual(['200 a', '504', '200 a', '504']);
    expect(logged(gw, 'upstream endpoint ejected').map((l) => l.endpoint)).toEqual([hang.url]);
    expect(await send(gw, 3)).toEqual(Array(3).fill('200 a'));
  });

  it('keeps one endpoint in service whatever maxEjectionPercent allows', async () => {
    const a = await named('a', { status: 503 });
    const b = await named('b', { status: 503 });
    const gw = await gateway([a.url, b.url], { consecutive5xx: 2, maxEjectionPercent: 100, baseEjectionTimeMs: 60_000 });
    await send(gw, 12);
    expect(logged(gw, 'upstream endpoint ejected').map((l) => l.endpoint)).toEqual([a.url]);
    const [report] = await clusters(gw);
    expect(report.panic).toBe(false);
    expect(report.endpoints.map((e) => e.health)).toEqual(['ejected', 'healthy']);
    // b keeps failing, and keeps getting the traffic.
    expect(report.endpoints[1].consecutive5xx).toBeGreaterThanOrEqual(2);
    const served = b.requests.length;
    await send(gw, 3);
    expect(b.requests.length).toBe(served + 3);
  });

  it('does not count a client that leaves in the middle of its upload against the endpoint', async () => {
    const a = await named('a');
    const b = await named('b');
    const gw = await gateway([a.url, b.url], { consecutive5xx: 1, consecutiveGatewayFailure: 1, baseEjectionTimeMs: 60_000 });
    const port = Number(new URL(gw.url).port);
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(`POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(1000)}`);
          setTimeout(() => { socket.destroy(); resolve(); }, 50);
        });
      });
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(logged(gw, 'upstream endpoint ejected')).toEqual([]);
    expect((await clusters(gw))[0].endpoints.map((e) => e.consecutiveGatewayFailures)).toEqual([0, 0]);
  });
});
