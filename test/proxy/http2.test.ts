import { readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request as http1 } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { makeCa, makeLeaf, type Ca, type Leaf } from '../helpers/certificates.js';
import { eventually } from '../helpers/eventually.js';
import { stampVersion, versionFile } from '../helpers/versions.js';

let ca: Ca;
let server: Leaf;
let upstream: Upstream;
const gateways: TestGateway[] = [];
const sessions: ClientHttp2Session[] = [];

beforeAll(async () => {
  ca = makeCa('h2-test-ca');
  server = makeLeaf(ca, 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  upstream = await startUpstream((req, res, body) => {
    if (req.url === '/trailers') {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part one;');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end('part two');
      return;
    }
    const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  });
});
afterAll(async () => {
  for (const s of sessions) s.destroy();
  for (const gw of gateways) await gw.close();
  await upstream.close();
});

async function gateway(listener: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, ...listener }],
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'stamp', module: versionFile(stampVersion('edge-gateway'), 'stamp'), configuration: 'h2-stamp' }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
  });
  gateways.push(gw);
  return gw;
}

const tls = (): Record<string, unknown> => ({ tls: { certFile: server.cert, keyFile: server.key } });

function session(gw: TestGateway, secure: boolean): ClientHttp2Session {
  const port = new URL(gw.url).port;
  const s = secure ? connect(`https://localhost:${port}`, { ca: readFileSync(ca.cert) }) : connect(`http://127.0.0.1:${port}`);
  s.on('error', () => undefined);
  sessions.push(s);
  return s;
}

interface H2Answer { headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders | null }

function h2(s: ClientHttp2Session, path: string, method = 'GET', body?: string, extra: Record<string, string> = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':path': path, ':method': method, ...extra }, { endStream: body === undefined });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers, body: Buffer.concat(chunks).toString('utf8'), trailers }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

describe('HTTP/2 from clients', () => {
  it('speaks h2 over TLS through the filter chain, and HTTP/1.1 on the same listener', async () => {
    const gw = await gateway(tls());
    const s = session(gw, true);
    const answer = await h2(s, '/h2/path?q=1', 'POST', 'hello over h2', { 'x-client': 'h2' });
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['x-served-by']).toBe('edge-gateway');
    const seen = JSON.parse(answer.body) as { method: string; url: string; headers: Record<string, string>; body: string };
    expect({ method: seen.method, url: seen.url, body: seen.body }).toEqual({ method: 'POST', url: '/h2/path?q=1', body: 'hello over h2' });
    expect(seen.headers).toMatchObject({ 'x-client': 'h2', 'x-edge-stamp': 'h2-stamp', 'x-forwarded-proto': 'https', host: `localhost:${new URL(gw.url).port}` });
    expect(Object.keys(seen.headers).some((k) => k.startsWith(':'))).toBe(false);
    // Many streams on one connection, at once.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h2(s, `/many/${i}`)));
    expect(many.map((a) => a.headers[':status'])).toEqual(Array(20).fill(200));
    const viaHttp1 = await new Promise<number>((resolve, reject) => {
      const req = http1({ host: '127.0.0.1', port: Number(new URL(gw.url).port), path: '/h1', ca: readFileSync(ca.cert), servername: 'localhost', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(viaHttp1).toBe(200);
    expect(gw.logs.filter((l) => l.access === true).map((l) => l.status)).toContain(200);
  });

  it('passes the upstream\'s trailers on to an h2 client', async () => {
    const gw = await gateway(tls());
    const answer = await h2(session(gw, true), '/trailers');
    expect(answer.body).toBe('part one;part two');
    expect(answer.trailers).toMatchObject({ 'x-checksum': 'abc123' });
  });

  it('accepts h2c with prior knowledge where enabled, beside HTTP/1.1 on the same port', async () => {
    const gw = await gateway({ http2: { cleartext: true } });
    const answer = await h2(session(gw, false), '/h2c');
    expect(answer.headers[':status']).toBe(200);
    expect(JSON.parse(answer.body).headers['x-forwarded-proto']).toBe('http');
    expect((await fetch(`${gw.url}/h1`)).status).toBe(200);
    // Off by default: the preface is not HTTP/1.1, and the connection is refused as such.
    const plain = await gateway({});
    const refused = session(plain, false);
    await expect(h2(refused, '/h2c')).rejects.toThrow();
  });

  it('announces its stream and header-list limits, and refuses a header list over the limit', async () => {
    const gw = await gateway({ ...tls(), http2: { maxConcurrentStreams: 7, maxHeaderListSize: 4096 } });
    const s = session(gw, true);
    await h2(s, '/settings');
    expect(s.remoteSettings.maxConcurrentStreams).toBe(7);
    expect(s.remoteSettings.maxHeaderListSize).toBe(4096);
    const big = h2(s, '/big', 'GET', undefined, { 'x-big': 'a'.repeat(8000) });
    await expect(big).rejects.toThrow();
    // The gateway is still there for the next client.
    expect((await h2(session(gw, true), '/after')).headers[':status']).toBe(200);
  });

  it('counts streams the client resets, and closes a connection that resets them as fast as it opens them', async () => {
    const gw = await gateway({ ...tls(), http2: { maxPrematureResets: 50 } });
    const s = session(gw, true);
    await h2(s, '/warm');
    let goaway: number | null = null;
    s.on('goaway', (code) => { goaway = code; });
    for (let i = 0; i < 300 && !s.closed && !s.destroyed; i++) {
      try {
        const req = s.request({ ':path': `/reset/${i}` });
        req.on('error', () => undefined);
        req.close(constants.NGHTTP2_CANCEL);
      } catch {
        break; // the session is gone
      }
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    const ended = await eventually(() => goaway === constants.NGHTTP2_ENHANCE_YOUR_CALM || s.destroyed, 5000);
    expect(ended).toBe(true);
    expect(await eventually(async () => /edge_gateway_http2_rapid_reset_closes_total\{listener="public"\} 1/.test(await (await fetch(`${gw.adminUrl}/metrics`)).text()), 5000)).toBe(true);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/edge_gateway_http2_stream_resets_total\{listener="public",code="8"\} \d+/);
    expect(gw.logs.some((l) => String(l.msg).startsWith('HTTP/2 connection closed: its client reset too many streams'))).toBe(true);
    // Others are served; every stream the flood opened has ended.
    expect((await h2(session(gw, true), '/others')).headers[':status']).toBe(200);
    expect(await eventually(() => gw.gateway.generationsAlive() === 1 && (gw.gateway as unknown as { generation: { inflight: number } }).generation.inflight === 0, 5000)).toBe(true);
  });
});
