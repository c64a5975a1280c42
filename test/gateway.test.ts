import { afterEach, describe, expect, it } from 'vitest';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { parseConfig } from '../gateway/config/load.js';
import { startGateway, startUpstream } from './helpers/gateway.js';

describe('the gateway stopping', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

  it('answers /readyz 503 while draining, finishes the request in flight, then closes the admin listener', async () => {
    const held: ServerResponse[] = [];
    let arrived: () => void = () => undefined;
    const upstream = await startUpstream((_req, res) => { held.push(res); arrived(); });
    cleanup.push(upstream.close);
    const gw = await startGateway({
      drainTimeoutMs: 5000,
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    });
    cleanup.push(gw.close);
    expect(await (await fetch(`${gw.adminUrl}/readyz`)).text()).toBe('ready\n');

    const reached = new Promise<void>((r) => { arrived = r; });
    const inflight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request(`${gw.url}/slow`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      }).on('error', reject).end();
    });
    await reached;

    const stopped = gw.gateway.shutdown();
    const readyz = await fetch(`${gw.adminUrl}/readyz`, { headers: { connection: 'close' } });
    expect(readyz.status).toBe(503);
    expect(await readyz.text()).toBe('not ready: draining\n');
    await expect(fetch(`${gw.url}/new`)).rejects.toThrow('fetch failed');

    held[0].writeHead(200, { 'content-length': '4' });
    held[0].end('done');
    expect(await inflight).toEqual({ status: 200, body: 'done' });
    await stopped;
    await expect(fetch(`${gw.adminUrl}/healthz`)).rejects.toThrow('fetch failed');
    expect(gw.logs.at(-1)!.msg).toBe('edge-gateway stopped');
  });

  it('closes an open WebSocket at the drain timeout instead of waiting for it forever', async () => {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (socket) => socket.on('message', (m) => socket.send(m)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => { wss.close(); server.closeAllConnections(); server.close(() => r()); }));
    const gw = await startGateway({
      drainTimeoutMs: 200,
      clusters: [{ name: 'ws', endpoints: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] }],
      routes: [{ name: 'all', cluster: 'ws' }],
    });
    cleanup.push(gw.close);

    const ws = new WebSocket(`${gw.url.replace('http:', 'ws:')}/echo`);
    await new Promise((r) => ws.once('open', r));
    ws.send('ping');
    expect(String(await new Promise((r) => ws.once('message', r)))).toBe('ping');
    const closed = new Promise((r) => ws.once('close', r));

    const started = Date.now();
    const outcome = await Promise.race([
      gw.gateway.shutdown().then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000)),
    ]);
    expect(outcome).toBe('stopped');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    await closed;
    expect(ws.readyState).toBe(WebSocket.CLOSED);
  });

  it('refuses to reload once draining', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const doc = {
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      admin: { address: '127.0.0.1', port: 0 },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      routes: [{ name: 'all', cluster: 'backend' }],
    };
    const gw = await startGateway(doc);
    cleanup.push(gw.close);
    const stopped = gw.gateway.shutdown();
    await expect(gw.gateway.reload(parseConfig(doc, 'next.yaml'))).rejects.toThrow('the gateway is draining: the configuration is not reloaded');
    await stopped;
    expect(gw.logs.some((l) => l.msg === 'configuration reloaded')).toBe(false);
  });
});
