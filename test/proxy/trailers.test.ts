/**
 * Trailers both ways through an `http2: true` cluster: request trailers from HTTP/2 and HTTP/1.1
 * clients reach the upstream, through the filters' on_request_trailers (which may change them);
 * response trailers reach HTTP/2 and chunked HTTP/1.1 clients through on_response_trailers.
 */
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { grpcCall, h2Session, startH2Upstream, type H2Upstream, type PlainSeen } from '../helpers/grpc.js';
import { Guest, guestLines, waitFor } from '../helpers/guests.js';

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setup(filters: Record<string, string> = {}): Promise<{ u: H2Upstream; gw: TestGateway; session: ClientHttp2Session }> {
  const u = await startH2Upstream({
    '/test.Echo/Sum': (call) => {
      void call.ended.then(() => {
        call.respond();
        call.send(`sum=${String(call.trailers?.['x-sum'])}`);
        call.finish(0);
      });
    },
  });
  cleanup.push(u.close);
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, http2: { cleartext: true } }],
    clusters: [{ name: 'h2', endpoints: [u.url], http2: true }],
    plugins: Object.entries(filters).map(([name, wat]) => ({ name, module: wasmFile(wat, name) })),
    routes: [{ name: 'all', cluster: 'h2', filters: Object.keys(filters) }],
  });
  cleanup.push(gw.close);
  const session = h2Session(gw.url);
  cleanup.push(() => { session.destroy(); });
  return { u, gw, session };
}

interface H2Reply { headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders | null }

/** A POST over h2 with `body` and then `trailers`. */
function h2Post(session: ClientHttp2Session, path: string, body: string, trailers: Record<string, string>): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path }, { waitForTrailers: true });
    const reply: H2Reply = { headers: {}, body: '', trailers: null };
    req.on('response', (h) => { reply.headers = h; });
    req.on('data', (c: Buffer) => { reply.body += c.toString(); });
    req.on('trailers', (t) => { reply.trailers = t; });
    req.on('end', () => resolve(reply));
    req.on('error', reject);
    req.on('wantTrailers', () => req.sendTrailers(trailers));
    req.end(body);
  });
}

/** A chunked HTTP/1.1 POST with trailers; resolves with the response and its trailers. */
function http1Post(url: string, body: string, trailers: Record<string, string>): Promise<{ status: number; body: string; headers: Record<string, unknown>; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { trailer: Object.keys(trailers).join(', ') } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers, trailers: res.trailers }));
    });
    req.on('error', reject);
    req.write(body);
    req.addTrailers(trailers);
    req.end();
  });
}

/**
 * A filter that exports on_request_trailers only: logs x-sum, replaces it, adds x-filter and
 * removes x-secret; and on_response_trailers: logs x-upstream-trailer and adds x-gateway.
 */
function trailerEditor(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_trailers: `(call $log_num ${g.lit('request trailers=')} (local.get $n))
        (call $log_header (i32.const 1) ${g.lit('x-sum')})
        (drop (call $proxy_replace_header_map_value (i32.const 1) ${g.lit('x-sum')} ${g.lit('43')}))
        (call $add_header (i32.const 1) ${g.lit('x-filter')} ${g.lit('seen')})
        (drop (call $proxy_remove_header_map_value (i32.const 1) ${g.lit('x-secret')}))
        (i32.const 0)`,
      proxy_on_response_trailers: `(call $log_header (i32.const 3) ${g.lit('x-upstream-trailer')})
        (call $add_header (i32.const 3) ${g.lit('x-gateway')} ${g.lit('added')})
        (i32.const 0)`,
    },
  });
}

describe('request trailers to an http2 upstream', () => {
  it('forwards an HTTP/2 client\'s request trailers after the body', async () => {
    const { session } = await setup();
    const reply = await h2Post(session, '/upload', 'payload', { 'x-sum': '42', 'x-two': 'b' });
    expect(reply.headers[':status']).toBe(200);
    const seen = JSON.parse(reply.body) as PlainSeen;
    expect(seen.body).toBe('payload');
    expect(seen.trailers).toEqual({ 'x-sum': '42', 'x-two': 'b' });
  });

  it('forwards them as a filter changed them in on_request_trailers', async () => {
    const { u, gw, session } = await setup({ editor: trailerEditor() });
    await h2Post(session, '/upload', 'payload', { 'x-sum': '42', 'x-secret': 'hidden' });
    expect(u.plain[0].trailers).toEqual({ 'x-sum': '43', 'x-filter': 'seen' });
    expect(u.plain[0].body).toBe('payload');
    expect(guestLines(gw.logs).slice(0, 2)).toEqual(['editor: request trailers=2', 'editor: x-sum=42']);
  });

  it('forwards an HTTP/1.1 client\'s chunked trailers', async () => {
    const { u, gw } = await setup();
    const reply = await http1Post(`${gw.url}/upload`, 'from http/1.1', { 'x-sum': '7' });
    expect(reply.status).toBe(200);
    expect(u.plain[0]).toMatchObject({ body: 'from http/1.1', trailers: { 'x-sum': '7' } });
  });

  it('forwards a gRPC client\'s trailers after its messages', async () => {
    const { u, session } = await setup({ editor: trailerEditor() });
    const answer = await grpcCall(session, '/test.Echo/Sum', ['1', '2'], { trailers: { 'x-sum': '3' } });
    expect(answer.messages.map(String)).toEqual(['sum=43']);
    expect(answer.status).toBe(0);
    expect(u.calls[0].messages.map(String)).toEqual(['1', '2']);
    expect(u.calls[0].trailers).toMatchObject({ 'x-sum': '43', 'x-filter': 'seen' });
  });

  it('forwards trailers a filter added at the end of a body the client sent without any', async () => {
    const g = new Guest();
    const adder = g.build({
      log: false,
      on: { proxy_on_request_body: `(if (local.get $eos) (then (call $add_header (i32.const 1) ${g.lit('x-added')} ${g.lit('yes')}))) (i32.const 0)` },
    });
    const { u, gw } = await setup({ adder });
    const res = await fetch(`${gw.url}/plain`, { method: 'POST', body: 'bare body' });
    expect(res.status).toBe(200);
    expect(u.plain[0]).toMatchObject({ body: 'bare body', trailers: { 'x-added': 'yes' } });
  });

  it('ends a request without trailers with its body alone', async () => {
    const { u, gw } = await setup({ editor: trailerEditor() });
    const res = await fetch(`${gw.url}/plain`, { method: 'POST', body: 'no trailers' });
    expect(res.status).toBe(200);
    expect(u.plain[0]).toMatchObject({ body: 'no trailers', trailers: null });
    expect(guestLines(gw.logs).filter((l) => l.includes('request trailers'))).toEqual([]);
  });
});

describe('response trailers from an http2 upstream', () => {
  it('reach an HTTP/2 client through on_response_trailers, with what the filter added', async () => {
    const { gw, session } = await setup({ editor: trailerEditor() });
    const reply = await h2Post(session, '/t', 'x', {});
    expect(reply.trailers).toMatchObject({ 'x-upstream-trailer': 'yes', 'x-gateway': 'added' });
    await waitFor(() => guestLines(gw.logs).includes('editor: x-upstream-trailer=yes'), 'the response trailers callback');
  });

  it('reach an HTTP/1.1 client with chunked framing', async () => {
    const { gw } = await setup({ editor: trailerEditor() });
    const reply = await http1Post(`${gw.url}/t`, 'x', { 'x-sum': '1' });
    expect(reply.headers['transfer-encoding']).toBe('chunked');
    expect(reply.trailers).toEqual({ 'x-upstream-trailer': 'yes', 'x-gateway': 'added' });
  });

  it('none in a trailers-only answer, which ends the client\'s stream with its headers (no filter)', async () => {
    const u2 = await startH2Upstream({ '/test.Echo/Gone': (call) => { void call.ended.then(() => call.trailersOnly(12, 'unimplemented')); } });
    cleanup.push(u2.close);
    const gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, http2: { cleartext: true } }],
      clusters: [{ name: 'h2', endpoints: [u2.url], http2: true }],
      routes: [{ name: 'all', cluster: 'h2' }],
    });
    cleanup.push(gw.close);
    const s = h2Session(gw.url);
    cleanup.push(() => { s.destroy(); });
    const answer = await grpcCall(s, '/test.Echo/Gone', ['x']);
    expect([answer.endedWithHeaders, answer.status, answer.message, answer.trailers]).toEqual([true, 12, 'unimplemented', null]);
  });
});
