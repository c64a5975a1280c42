import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { objectToPairs, requestHeaderMap, responseHeaderMap, withoutPseudo } from '../../gateway/proxy/headers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The parts of an IncomingMessage that requestHeaderMap reads, as Node parses them. */
function request(rawHeaders: string[], options: { method?: string; url?: string; remote?: string } = {}): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    headers[name] = name in headers ? `${headers[name]}, ${rawHeaders[i + 1]}` : rawHeaders[i + 1];
  }
  return {
    method: options.method ?? 'GET',
    url: options.url ?? '/',
    rawHeaders,
    headers,
    socket: { remoteAddress: options.remote ?? '10.0.0.9' },
  } as unknown as IncomingMessage;
}

describe('requestHeaderMap', () => {
  it('puts the pseudo-headers first, then the headers in arrival order, then the proxy headers', () => {
    const map = requestHeaderMap(request(['Host', 'api.example.com:8080', 'Accept', '*/*', 'X-Custom', 'A'],
      { method: 'POST', url: '/v1/items?x=1&y=2' }), 'http');
    const id = map.get('x-request-id')!;
    expect(id).toMatch(UUID);
    expect(map.pairs).toEqual([
      ':method', 'POST', ':path', '/v1/items?x=1&y=2', ':authority', 'api.example.com:8080', ':scheme', 'http',
      'accept', '*/*', 'x-custom', 'A',
      'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'api.example.com:8080',
      'x-request-id', id,
    ]);
  });

  it('removes every hop-by-hop header and the headers named in Connection', () => {
    const map = requestHeaderMap(request([
      'Host', 'h', 'Connection', 'keep-alive, X-Hop, Upgrade', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
      'TE', 'trailers', 'Upgrade', 'websocket', 'Proxy-Authorization', 'Basic eA==', 'Proxy-Connection', 'keep-alive',
      'Trailer', 'x-t', 'X-Hop', '1', 'X-Kept', '2', 'X-Request-Id', 'req-1',
    ]), 'http');
    expect(map.pairs).toEqual([
      ':method', 'GET', ':path', '/', ':authority', 'h', ':scheme', 'http',
      'x-kept', '2', 'x-request-id', 'req-1',
      'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'h',
    ]);
  });

  it('appends the client address to every x-forwarded-for value already present, in one header', () => {
    const map = requestHeaderMap(request(['Host', 'h', 'X-Forwarded-For', '1.1.1.1, 2.2.2.2', 'x-forwarded-for', '3.3.3.3']), 'http');
    expect(map.getAll('x-forwarded-for')).toEqual(['1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9']);
  });

  it('keeps x-request-id when the client sent one', () => {
    const map = requestHeaderMap(request(['Host', 'h', 'X-Request-Id', 'abc-123']), 'http');
    expect(map.getAll('x-request-id')).toEqual(['abc-123']);
  });

  it('generates a different x-request-id for each request without one', () => {
    const a = requestHeaderMap(request(['Host', 'h']), 'http').get('x-request-id');
    const b = requestHeaderMap(request(['Host', 'h']), 'http').get('x-request-id');
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
  });

  it('sets x-forwarded-proto to the listener scheme, replacing what the client claimed', () => {
    const map = requestHeaderMap(request(['Host', 'h', 'X-Forwarded-Proto', 'https']), 'http');
    expect(map.getAll('x-forwarded-proto')).toEqual(['http']);
    expect(requestHeaderMap(request(['Host', 'h']), 'https').getAll('x-forwarded-proto')).toEqual(['https']);
  });

  it('appends the Host to an x-forwarded-host already present, in one header', () => {
    const map = requestHeaderMap(request(['Host', 'inner.local', 'X-Forwarded-Host', 'public.example.com']), 'http');
    expect(map.getAll('x-forwarded-host')).toEqual(['public.example.com, inner.local']);
  });

  it('leaves :authority empty and adds no x-forwarded-host when the request has no Host', () => {
    const map = requestHeaderMap(request(['X-Request-Id', 'r']), 'http');
    expect(map.pairs).toEqual([
      ':method', 'GET', ':path', '/', ':authority', '', ':scheme', 'http',
      'x-request-id', 'r', 'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http',
    ]);
  });
});

describe('responseHeaderMap', () => {
  it('puts :status first and keeps repeated values as separate entries', () => {
    const map = responseHeaderMap(201, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'content-length': '5' });
    expect(map.pairs).toEqual([':status', '201', 'content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'content-length', '5']);
  });

  it('removes hop-by-hop headers and the headers named in Connection', () => {
    const map = responseHeaderMap(200, {
      connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', upgrade: 'h2c',
      'proxy-authenticate': 'Basic', 'proxy-connection': 'keep-alive', te: 'trailers', trailer: 'x-t', 'x-hop': '1', 'x-kept': '2',
    });
    expect(map.pairs).toEqual([':status', '200', 'x-kept', '2']);
  });

  it('skips undefined values', () => {
    expect(responseHeaderMap(204, { 'x-a': undefined, 'x-b': 'b' }).pairs).toEqual([':status', '204', 'x-b', 'b']);
  });
});

describe('withoutPseudo', () => {
  it('flattens to [name, value, …] without pseudo-headers or hop-by-hop headers a filter added', () => {
    expect(withoutPseudo([':status', '200', 'x-a', '1', 'connection', 'close', 'transfer-encoding', 'chunked', 'x-b', '2', 'x-a', '3']))
      .toEqual(['x-a', '1', 'x-b', '2', 'x-a', '3']);
  });
});

describe('objectToPairs', () => {
  it('lower-cases names and spreads arrays, skipping undefined', () => {
    expect(objectToPairs({ 'Grpc-Status': '0', 'x-multi': ['a', 'b'], 'x-none': undefined })).toEqual(['grpc-status', '0', 'x-multi', 'a', 'x-multi', 'b']);
  });

  it('gives no pairs for null or undefined', () => {
    expect(objectToPairs(null)).toEqual([]);
    expect(objectToPairs(undefined)).toEqual([]);
  });
});
