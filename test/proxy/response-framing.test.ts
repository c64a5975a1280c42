import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

/** Exports a response body callback that passes every chunk on untouched. */
const passBody = guestWat({ body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))` });

/** Holds the whole response body (Pause until end of stream), without editing it. */
const holdBody = guestWat({ body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_body") (param i32) (param i32) (param $eos i32) (result i32)
    (if (result i32) (local.get $eos) (then (i32.const 0)) (else (i32.const 1))))` });

function get(url: string): Promise<{ headers: http.IncomingHttpHeaders; body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ headers: res.headers, body, trailers: res.trailers }));
    }).on('error', reject);
  });
}

describe('response framing with body filters', () => {
  let gw: TestGateway | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function start(filter: string, handler: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void): Promise<string> {
    upstream = await startUpstream(handler);
    gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'f', module: wasmFile(filter, 'framing') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['f'] }],
    });
    return gw.url;
  }

  it('keeps the upstream content-length when body filters pass a streamed body on untouched', async () => {
    const url = await start(passBody, (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('hello');
      setTimeout(() => res.end('world'), 20);
    });
    const res = await get(`${url}/x`);
    expect(res.headers['content-length']).toBe('10');
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.body).toBe('helloworld');
  });

  it('keeps response trailers when a filter holds the whole body', async () => {
    const url = await start(holdBody, (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('abc');
      res.addTrailers({ 'x-checksum': '42' });
      res.end();
    });
    const res = await get(`${url}/x`);
    expect(res.body).toBe('abc');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.trailers['x-checksum']).toBe('42');
  });
});
