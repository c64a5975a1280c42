/**
 * Plain HTTP over an `http2: true` cluster (node:http2, gateway/proxy/h2-upstream.ts): requests from
 * HTTP/1.1 clients, multiplexing, failures with undici's codes, and retries that send the body and
 * the request trailers again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { deadOrigin, startGateway, type TestGateway } from '../helpers/gateway.js';
import { h2Session, startH2Upstream, type H2Upstream, type PlainSeen } from '../helpers/grpc.js';
import { waitFor } from '../helpers/guests.js';

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function upstream(plain?: Parameters<typeof startH2Upstream>[1]): Promise<H2Upstream> {
  const u = await startH2Upstream({}, plain);
  cleanup.push(u.close);
  return u;
}

async function gateway(endpoints: string[], cluster: Record<string, unknown> = {}, route: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, http2: { cleartext: true } }],
    clusters: [{ name: 'h2', endpoints, http2: true, ...cluster }],
    routes: [{ name: 'all', cluster: 'h2', ...route }],
  });
  cleanup.push(gw.close);
  return gw;
}


const accessLine = async (gw: TestGateway): Promise<Record<string, unknown>> => {
  await waitFor(() => gw.logs.some((l) => l.access === true), 'the access log line');
  return gw.logs.find((l) => l.access === true)!;
};

/** A POST over h2 with `body`, then `trailers`; resolves with the status. */
function h2Post(url: string, path: string, body: string, trailers: Record<string, string>): Promise<number> {
  const session = h2Session(url);
  cleanup.push(() => { session.destroy(); });
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path }, { waitForTrailers: true });
    let status = 0;
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', () => undefined);
    req.on('end', () => resolve(status));
    req.on('error', reject);
    req.on('wantTrailers', () => req.sendTrailers(trailers));
    req.end(body);
  });
}

describe('an http2 cluster carrying plain HTTP', () => {
  it('forwards an HTTP/1.1 client\'s request over HTTP/2 and its answer back', async () => {
    const u = await upstream();
    const gw = await gateway([u.url]);
    const res = await fetch(`${gw.url}/plain/path?q=1`, { method: 'POST', body: 'over h2', headers: { 'x-client': 'h1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const seen = await res.json() as PlainSeen;
    expect(seen).toMatchObject({ method: 'POST', path: '/plain/path?q=1', authority: new URL(gw.url).host, body: 'over h2' });
    expect(seen.headers).toMatchObject({ 'x-client': 'h1', 'x-forwarded-proto': 'http' });
    expect(seen.headers.host).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    const get = await fetch(`${gw.url}/get`);
    expect((await get.json() as PlainSeen).method).toBe('GET');
  });

  it('multiplexes concurrent requests on one connection', async () => {
    const u = await upstream();
    const gw = await gateway([u.url]);
    const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${gw.url}/many/${i}`).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    })));
    expect(statuses).toEqual(Array(20).fill(200));
    expect(u.plain).toHaveLength(20);
    expect(new Set(u.plain.map((p) => p.headers['x-forwarded-for'])).size).toBe(1);
  });

  it('answers 502 with the socket\'s code when the endpoint cannot be reached, 504 when it does not answer', async () => {
    const dead = await gateway([await deadOrigin()]);
    expect((await fetch(`${dead.url}/x`)).status).toBe(502);
    expect((await accessLine(dead)).error).toBe('ECONNREFUSED');
    const u = await upstream(() => undefined); // never answers
    const slow = await gateway([u.url], {}, { timeoutMs: 150 });
    expect((await fetch(`${slow.url}/slow`)).status).toBe(504);
    expect((await accessLine(slow)).error).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('opens a new connection after the upstream closed the old one', async () => {
    const u = await upstream();
    const gw = await gateway([u.url]);
    expect((await fetch(`${gw.url}/one`)).status).toBe(200);
    await u.dropConnections();
    await new Promise((r) => setImmediate(r));
    expect((await fetch(`${gw.url}/two`)).status).toBe(200);
    expect(u.plain.map((p) => p.path)).toEqual(['/one', '/two']);
  });
});

describe('retries over an http2 cluster', () => {
  it('retries a connect failure at the other endpoint, with the body and the request trailers', async () => {
    const u = await upstream();
    const gw = await gateway([await deadOrigin(), u.url], {}, { retry: { retryOn: ['connect-failure'], numRetries: 1 } });
    expect(await h2Post(gw.url, '/retry', 'again', { 'x-sum': '9' })).toBe(200);
    expect(u.plain.map((p) => [p.body, p.trailers])).toEqual([['again', { 'x-sum': '9' }]]);
    expect((await accessLine(gw)).attempts).toBe(2);
  });

  it('sends a try answered 503 again, whole: the body it kept and the trailers', async () => {
    let tries = 0;
    const u = await upstream((_seen, stream) => {
      tries++;
      stream.respond({ ':status': tries === 1 ? 503 : 200 });
      stream.end(tries === 1 ? 'busy' : 'ok');
    });
    const gw = await gateway([u.url], {}, { retry: { retryOn: ['gateway-error'], numRetries: 1, backoff: { baseMs: 1 } } });
    expect(await h2Post(gw.url, '/retry', 'kept body', { 'x-sum': '5' })).toBe(200);
    expect(u.plain.map((p) => [p.body, p.trailers])).toEqual([['kept body', { 'x-sum': '5' }], ['kept body', { 'x-sum': '5' }]]);
  });

  it('does not retry a request whose body was too large to keep', async () => {
    const u = await upstream((_seen, stream) => {
      stream.respond({ ':status': 503 });
      stream.end('busy');
    });
    const gw = await gateway([u.url], {}, { retry: { retryOn: ['gateway-error'], numRetries: 1, bufferBytes: 4 } });
    expect(await h2Post(gw.url, '/retry', 'longer than four', { 'x-sum': '5' })).toBe(503);
    expect(u.plain).toHaveLength(1);
    expect(u.plain[0].trailers).toEqual({ 'x-sum': '5' });
  });
});
