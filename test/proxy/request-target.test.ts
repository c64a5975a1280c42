/**
 * The request target as routing, filters and the upstream see it, over raw sockets: absolute-form
 * to origin-form, normalized paths (so the deny filter cannot be walked around), Host checks and
 * version checks, each refusal a 400/505 that closes the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { get, rawExchange } from '../helpers/raw-http.js';

const DENY = 'filters/dist/deny.wasm';
const FORBIDDEN = 'forbidden by the deny filter\n';

function portOf(gw: TestGateway): number {
  return Number(new URL(gw.url).port);
}

function body(data: string): string {
  return data.slice(data.indexOf('\r\n\r\n') + 4);
}

describe('the request target at the edge', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny-admin', module: DENY }],
      routes: [
        { name: 'api-host', match: { host: 'api.example' }, cluster: 'backend' },
        { name: 'api', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['deny-admin'] },
      ],
    });
    port = portOf(gw);
  });
  afterAll(async () => {
    await gw.close();
    await upstream.close();
  });

  it('denies /admin however the path is spelled, absolute-form included, and the upstream never sees it', async () => {
    const spellings = [
      '/admin', '/admin/users', 'http://gw.test/admin/users', 'HTTP://gw.test:80/admin?x=1', '//admin', '///admin/users',
      '/./admin', '/%61dmin', '/%61%64%6D%69%6E/users', '/x/../admin', '/x/y/../../admin', '/%2e%2e/admin', '/x/%2E%2E/admin',
      '/.%2e/admin', '/\\admin', '/x\\..\\admin',
    ];
    const before = upstream.requests.length;
    for (const target of spellings) {
      const reply = await rawExchange(port, [get(target)]);
      expect([target, reply.statuses, body(reply.data)]).toEqual([target, [403], FORBIDDEN]);
    }
    expect(upstream.requests.length).toBe(before);
  });

  it('forwards the normalized path with the query untouched, and filters and the access log see the same', async () => {
    const reply = await rawExchange(port, [get('/x/../ok//./y/%7e%61?q=/../a&b=%2e')]);
    expect(reply.statuses).toEqual([200]);
    expect(upstream.requests.at(-1)!.url).toBe('/ok/y/~a?q=/../a&b=%2e');
    const line = gw.logs.filter((l) => l.access === true).at(-1)!;
    expect([line.path, line.route, line.status]).toEqual(['/ok/y/~a?q=/../a&b=%2e', 'api', 200]);
  });

  it('routes an absolute-form request by its URI\'s authority, which replaces a disagreeing Host', async () => {
    const reply = await rawExchange(port, ['GET http://api.example:8443/hello/../v1?x=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n']);
    expect(reply.statuses).toEqual([200]);
    const seen = upstream.requests.at(-1)!;
    expect([seen.url, seen.headers.host, seen.headers['x-forwarded-host']]).toEqual(['/v1?x=1', 'api.example:8443', 'api.example:8443']);
    expect(gw.logs.filter((l) => l.access === true).at(-1)!.route).toBe('api-host');
    // No path at all is "/"; only a query is "/?query".
    await rawExchange(port, ['GET https://api.example HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(upstream.requests.at(-1)!.url).toBe('/');
    await rawExchange(port, ['GET http://api.example?a=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    expect(upstream.requests.at(-1)!.url).toBe('/?a=b');
  });

  it('answers 400 and closes for a duplicate Host, a bad Host, a bad absolute URI, a fragment and * outside OPTIONS', async () => {
    const cases: Array<[string, string]> = [
      ['GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 'duplicate_host'],
      ['GET / HTTP/1.1\r\nhost: a.example\r\nHOST: a.example\r\n\r\n', 'duplicate_host'],
      ['GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'invalid_host'],
      ['GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n', 'invalid_host'],
      ['GET / HTTP/1.1\r\nHost: a.example:99999x\r\n\r\n', 'invalid_host'],
      ['GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_url'],
      ['GET http://user:pw@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_url'],
      ['GET http:///admin HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_url'],
      ['GET http://[::1/x HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_url'],
      ['GET /admin#x HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_path'],
      ['GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_path'],
      ['GET * HTTP/1.1\r\nHost: a\r\n\r\n', 'invalid_path'],
    ];
    const before = upstream.requests.length;
    for (const [raw, reason] of cases) {
      // A second request pipelined behind the bad one must not be served: the connection closes.
      const reply = await rawExchange(port, [raw + get('/pipelined')]);
      expect([raw, reply.statuses, reply.closed]).toEqual([raw, [400], true]);
      expect(reply.data).toMatch(/\r\nconnection: close\r\n/i);
      expect(gw.logs.filter((l) => l.access === true).at(-1)!.error).toBe(reason);
    }
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses HTTP/0.9 (no version) with 400 and other major versions with 505, serves HTTP/1.0 and answers OPTIONS *', async () => {
    expect((await rawExchange(port, ['GET /\r\n\r\n'])).statuses).toEqual([400]);
    expect(gw.logs.filter((l) => l.access === true).at(-1)!.error).toBe('http_0_9_not_supported');
    expect((await rawExchange(port, ['GET / HTTP/2.0\r\nHost: a\r\n\r\n'])).statuses).toEqual([505]);
    expect((await rawExchange(port, ['GET /ten HTTP/1.0\r\n\r\n'])).statuses).toEqual([200]);
    expect(upstream.requests.at(-1)!.url).toBe('/ten');
    // The server-wide OPTIONS is answered by the gateway (undici cannot send an asterisk-form target).
    const star = await rawExchange(port, ['OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    expect(star.statuses).toEqual([200]);
    expect(star.data).toMatch(/\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i);
    expect(upstream.requests.at(-1)!.url).toBe('/ten');
  });

  it('answers 400 for what Node\'s parser refuses, and logs it with the parser\'s code', async () => {
    const reply = await rawExchange(port, ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']);
    expect([reply.statuses, reply.closed]).toEqual([[400], true]);
    const line = gw.logs.filter((l) => l.access === true).at(-1)!;
    expect([line.error, line.details]).toEqual(['http1.codec_error', 'HPE_INVALID_TRANSFER_ENCODING']);
    const big = await rawExchange(port, [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expect(big.statuses).toEqual([431]);
  });
});

describe('a listener with normalization turned off', () => {
  it('passes the path as sent, so the deny filter only stops the exact spelling', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, normalizePath: false, mergeSlashes: false }],
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny-admin', module: DENY }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['deny-admin'] }],
    });
    try {
      const port = portOf(gw);
      expect((await rawExchange(port, [get('/admin')])).statuses).toEqual([403]);
      expect((await rawExchange(port, [get('/x/../admin')])).statuses).toEqual([200]);
      expect(upstream.requests.at(-1)!.url).toBe('/x/../admin');
      // The absolute form still becomes origin-form: that is not optional.
      expect((await rawExchange(port, [get('http://gw.test/admin')])).statuses).toEqual([403]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  it('refuses escaped slashes with 400 when escapedSlashes is reject, and decodes them with unescape', async () => {
    const upstream = await startUpstream();
    const make = (escapedSlashes: string) => startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, escapedSlashes }],
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'deny-admin', module: DENY }],
      routes: [{ name: 'api', cluster: 'backend', filters: ['deny-admin'] }],
    });
    const keep = await make('keep');
    const rejecting = await make('reject');
    const unescaping = await make('unescape');
    try {
      expect((await rawExchange(portOf(keep), [get('/x%2F..%2Fadmin')])).statuses).toEqual([200]);
      expect(upstream.requests.at(-1)!.url).toBe('/x%2F..%2Fadmin');
      expect((await rawExchange(portOf(rejecting), [get('/x%2F..%2Fadmin')])).statuses).toEqual([400]);
      expect(rejecting.logs.filter((l) => l.access === true).at(-1)!.error).toBe('escaped_slash_rejected');
      expect((await rawExchange(portOf(unescaping), [get('/x%2F..%2Fadmin')])).statuses).toEqual([403]);
    } finally {
      await Promise.all([keep.close(), rejecting.close(), unescaping.close()]);
      await upstream.close();
    }
  });
});
