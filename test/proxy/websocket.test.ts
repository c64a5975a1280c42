import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/host.js';
import { stampVersion, versionFile } from '../helpers/versions.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface EchoServer {
  url: string;
  server: Server;
  wss: WebSocketServer;
  /** Path and headers of every upgrade the server accepted. */
  upgrades: Array<{ url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** A WebSocket echo server on port 0: answers each message with `${name}:${message}`. */
async function startEcho(name: string): Promise<EchoServer> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required\n');
  });
  const wss = new WebSocketServer({ server });
  const upgrades: EchoServer['upgrades'] = [];
  wss.on('connection', (socket, req) => {
    upgrades.push({ url: req.url!, headers: req.headers });
    socket.on('message', (data: RawData, binary: boolean) => {
      if (binary) socket.send(Buffer.concat([Buffer.from(`${name}:`), data as Buffer]));
      else socket.send(`${name}:${(data as Buffer).toString()}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, server, wss, upgrades,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Opens a client and resolves once it is open, or rejects with the HTTP status it got instead. */
function connect(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString() })));
      res.on('error', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, body: '' })));
    });
    ws.once('error', reject);
  });
}

/** Sends `data` and resolves with the next message. */
function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ text: string; binary: boolean }> {
  return new Promise((resolve) => {
    ws.once('message', (msg: RawData, binary: boolean) => resolve({ text: (msg as Buffer).toString(), binary }));
    ws.send(data);
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(-1);
    else ws.once('close', (code: number) => resolve(code));
  });
}

describe('WebSocket through the gateway', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

  async function echo(name: string): Promise<EchoServer> {
    const e = await startEcho(name);
    cleanup.push(e.close);
    return e;
  }

  async function gateway(config: Record<string, unknown>): Promise<TestGateway> {
    const gw = await startGateway(config);
    cleanup.push(gw.close);
    return gw;
  }

  function client(ws: WebSocket): WebSocket {
    cleanup.push(() => ws.terminate());
    return ws;
  }

  it('echoes text and binary messages through a matched route', async () => {
    const upstream = await echo('up');
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    const ws = client(await connect(`${gw.url.replace('http', 'ws')}/chat?room=1`));
    expect(await roundTrip(ws, 'hello')).toEqual({ text: 'up:hello', binary: false });
    expect(await roundTrip(ws, 'again')).toEqual({ text: 'up:again', binary: false });
    expect(await roundTrip(ws, Buffer.from([0x62, 0x69, 0x6e]))).toEqual({ text: 'up:bin', binary: true });
    const big = 'x'.repeat(200_000);
    expect(await roundTrip(ws, big)).toEqual({ text: `up:${big}`, binary: false });
    expect(upstream.upgrades.map((u) => u.url)).toEqual(['/chat?room=1']);
    ws.close(1000);
    expect(await closed(ws)).toBe(1000);
  });

  it('adds x-forwarded-* and x-request-id to the upgrade request as for plain HTTP', async () => {
    const upstream = await echo('up');
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    const host = gw.url.slice('http://'.length);
    client(await connect(`${gw.url.replace('http', 'ws')}/a`, { 'x-forwarded-for': '203.0.113.7' }));
    client(await connect(`${gw.url.replace('http', 'ws')}/b`, { 'x-request-id': 'ws-1' }));
    const [a, b] = upstream.upgrades.map((u) => u.headers);
    expect(a['x-request-id']).toMatch(UUID);
    expect([a.host, a['x-forwarded-for'], a['x-forwarded-proto'], a['x-forwarded-host'], a.upgrade, a.connection])
      .toEqual([host, '203.0.113.7, 127.0.0.1', 'http', host, 'websocket', 'Upgrade']);
    expect([b['x-forwarded-for'], b['x-request-id']]).toEqual(['127.0.0.1', 'ws-1']);
  });

  it('routes upgrades by the same rules as requests', async () => {
    const [chat, feed] = await Promise.all([echo('chat'), echo('feed')]);
    const gw = await gateway({
      clusters: [{ name: 'chat', endpoints: [chat.url] }, { name: 'feed', endpoints: [feed.url] }],
      routes: [
        { name: 'chat', match: { pathPrefix: '/chat' }, cluster: 'chat' },
        { name: 'feed', match: { pathPrefix: '/feed', headers: [{ name: 'x-feed', present: true }] }, cluster: 'feed' },
      ],
    });
    const base = gw.url.replace('http', 'ws');
    const a = client(await connect(`${base}/chat`));
    const b = client(await connect(`${base}/feed`, { 'x-feed': '1' }));
    expect((await roundTrip(a, 'm')).text).toBe('chat:m');
    expect((await roundTrip(b, 'm')).text).toBe('feed:m');
    await expect(connect(`${base}/feed`)).rejects.toMatchObject({ status: 404 });
  });

  it('normalizes and checks an upgrade\'s target like any request\'s, before routing', async () => {
    const upstream = await echo('up');
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', match: { path: '/ws' }, cluster: 'ws' }] });
    const ws = client(await connect(`${gw.url.replace('http', 'ws')}/x/..//%77s?q=/../a`));
    expect((await roundTrip(ws, 'm')).text).toBe('up:m');
    expect(upstream.upgrades.map((u) => u.url)).toEqual(['/ws?q=/../a']);
    await expect(connect(`${gw.url.replace('http', 'ws')}/ws`, { host: 'user@h' })).rejects.toMatchObject({ status: 400 });
    expect(upstream.upgrades).toHaveLength(1);
  });

  it('answers 404 to an upgrade that matches no route', async () => {
    const upstream = await echo('up');
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', match: { path: '/ws' }, cluster: 'ws' }] });
    await expect(connect(`${gw.url.replace('http', 'ws')}/other`)).rejects.toMatchObject({ status: 404, body: '' });
    expect(upstream.upgrades).toHaveLength(0);
  });

  it('relays the upstream answer when the upstream refuses the upgrade', async () => {
    const plain = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'text/plain', 'content-length': 7 });
      res.end('nope ws');
    });
    plain.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n\r\nnope ws');
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => { plain.closeAllConnections(); plain.close(() => r()); }));
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [`http://127.0.0.1:${(plain.address() as AddressInfo).port}`] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    await expect(connect(`${gw.url.replace('http', 'ws')}/x`)).rejects.toMatchObject({ status: 403, body: 'nope ws' });
  });

  it('answers 502 to an upgrade when the upstream is unreachable, and logs the error', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [`http://127.0.0.1:${port}`] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    await expect(connect(`${gw.url.replace('http', 'ws')}/x`)).rejects.toMatchObject({ status: 502 });
    await until(() => gw.logs.some((l) => l.msg === 'websocket proxy error'));
    expect(gw.logs.find((l) => l.msg === 'websocket proxy error')!.path).toBe('/x');
  });

  it('closes the tunnel when the upstream closes the WebSocket', async () => {
    const upstream = await echo('up');
    const gw = await gateway({ clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    const ws = client(await connect(`${gw.url.replace('http', 'ws')}/x`));
    await until(() => upstream.wss.clients.size === 1);
    for (const c of upstream.wss.clients) c.close(4001, 'bye');
    expect(await closed(ws)).toBe(4001);
  });

  it('closes tunnels still open at the end of the drain when the gateway shuts down', async () => {
    const upstream = await echo('up');
    const gw = await startGateway({ drainTimeoutMs: 300, clusters: [{ name: 'ws', endpoints: [upstream.url] }], routes: [{ name: 'ws', cluster: 'ws' }] });
    const ws = client(await connect(`${gw.url.replace('http', 'ws')}/x`));
    const code = closed(ws);
    const started = performance.now();
    await gw.close();
    expect(performance.now() - started).toBeLessThan(3000);
    expect(await code).toBe(1006);
  });

  it('runs the route\'s filters on the upgrade request: they change its headers, or refuse it with their own answer', async () => {
    const upstream = await echo('up');
    const gw = await gateway({
      clusters: [{ name: 'ws', endpoints: [upstream.url] }],
      plugins: [
        { name: 'stamp', module: versionFile(stampVersion('edge-gateway'), 'stamp'), configuration: 'ws-stamp' },
        { name: 'deny', module: 'filters/dist/deny.wasm' },
      ],
      routes: [
        { name: 'closed', match: { pathPrefix: '/admin' }, cluster: 'ws', filters: ['deny'] },
        { name: 'open', cluster: 'ws', filters: ['stamp'] },
      ],
    });
    const ws = client(await connect(`${gw.url.replace('http', 'ws')}/chat`));
    expect(await roundTrip(ws, 'through')).toEqual({ text: 'up:through', binary: false });
    expect(upstream.upgrades[0].headers['x-edge-stamp']).toBe('ws-stamp');
    const refused = await connect(`${gw.url.replace('http', 'ws')}/admin/x`).catch((err: { status: number; body: string }) => err);
    expect(refused).toMatchObject({ status: 403 });
    expect(upstream.upgrades.length).toBe(1);
    ws.close(1000);
    await closed(ws);
    // One access-log line each: the tunnel with 101 once it ended, the refusal with the filter's status.
    await until(() => gw.logs.filter((l) => l.access === true).length === 2);
    const lines = gw.logs.filter((l) => l.access === true);
    expect(lines.map((l) => [l.path, l.status, l.route])).toEqual([['/admin/x', 403, 'closed'], ['/chat', 101, 'open']]);
    expect(lines[0].localReplyBy).toBe('deny');
    expect(lines[1].error).toBeUndefined();
  });
});
