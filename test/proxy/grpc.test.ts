/**
 * gRPC through the gateway end to end: a client over HTTP/2 (gRPC framed by hand) → the gateway's h2c
 * listener → an `http2: true` cluster (node:http2, h2-upstream.ts) → a real HTTP/2 gRPC server.
 */
import type { ClientHttp2Session } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { grpcCall, h2Session, startH2Upstream, type H2Upstream, type ServerCall } from '../helpers/grpc.js';
import { Guest, guestLines, waitFor } from '../helpers/guests.js';

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** Resolves after `fn` is true, or rejects after `ms` (a held stream must fail the test, not hang it). */
function until(fn: () => boolean, what: string, ms = 3000): Promise<void> {
  return waitFor(fn, what, ms);
}

async function upstream(methods: Record<string, (call: ServerCall) => void>): Promise<H2Upstream> {
  const u = await startH2Upstream(methods);
  cleanup.push(u.close);
  return u;
}

async function gateway(u: H2Upstream, filters: Record<string, string> = {}, route: Record<string, unknown> = {}): Promise<{ gw: TestGateway; session: ClientHttp2Session }> {
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, http2: { cleartext: true } }],
    clusters: [{ name: 'grpc', endpoints: [u.url], http2: true }],
    plugins: Object.entries(filters).map(([name, wat]) => ({ name, module: wasmFile(wat, name) })),
    routes: [{ name: 'all', cluster: 'grpc', filters: Object.keys(filters), ...route }],
  });
  cleanup.push(gw.close);
  const session = h2Session(gw.url);
  cleanup.push(() => { session.destroy(); });
  return { gw, session };
}

/** Answers each call with "echo:<message>" for every message, then OK with a message. */
const echo = (call: ServerCall): void => {
  void call.ended.then(() => {
    call.respond({ 'x-served-by': 'grpc-upstream' });
    for (const m of call.messages) call.send(`echo:${m.toString()}`);
    call.finish(0, 'all good', { 'x-trailing': 'meta' });
  });
};

/**
 * Logs what gRPC filters see: each body callback's size, end_of_stream and bytes (hex), the
 * response's grpc-status in headers and trailers.
 */
function observer(): string {
  const g = new Guest();
  const bodyLog = (buffer: number, tag: string): string => `(call $log_num2 ${g.lit(`${tag} size=`)} (local.get $size) ${g.lit(' eos=')} (local.get $eos))
    (if (i32.and (i32.gt_u (local.get $size) (i32.const 0))
          (i32.eqz (call $proxy_get_buffer_bytes (i32.const ${buffer}) (i32.const 0) (local.get $size) (i32.const 0x10) (i32.const 0x14))))
      (then
        (call $hex (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)) (i32.const 0xA000))
        (call $log (i32.const 0xA000) (i32.shl (i32.load (i32.const 0x14)) (i32.const 1)))))
    (i32.const 0)`;
  return g.build({
    log: false,
    on: {
      proxy_on_request_body: bodyLog(0, 'request'),
      proxy_on_response_headers: `(call $log_num ${g.lit('response_headers eos=')} (local.get $eos)) (call $log_header (i32.const 2) ${g.lit('grpc-status')}) (i32.const 0)`,
      proxy_on_response_body: bodyLog(1, 'response'),
      proxy_on_response_trailers: `(call $log_header (i32.const 3) ${g.lit('grpc-status')}) (call $log_header (i32.const 3) ${g.lit('grpc-message')}) (i32.const 0)`,
    },
  });
}

const hex = (s: string): string => Buffer.concat([Buffer.from([0, 0, 0, 0, s.length]), Buffer.from(s)]).toString('hex');

describe('gRPC through an http2 cluster', () => {
  it('passes a unary call end to end, with the status and trailing metadata in the trailers', async () => {
    const u = await upstream({ '/test.Echo/Unary': echo });
    const { session } = await gateway(u);
    const answer = await grpcCall(session, '/test.Echo/Unary', ['hello'], { metadata: { 'x-client-meta': 'm1' } });
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['content-type']).toBe('application/grpc');
    expect(answer.headers['x-served-by']).toBe('grpc-upstream');
    expect(answer.messages.map(String)).toEqual(['echo:hello']);
    expect(answer.endedWithHeaders).toBe(false);
    expect([answer.status, answer.message]).toEqual([0, 'all good']);
    expect(answer.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'all%20good', 'x-trailing': 'meta' });
    // The upstream got a gRPC request over HTTP/2: the frames, the metadata, te: trailers.
    const call = u.calls[0];
    expect(call.messages.map(String)).toEqual(['hello']);
    expect(call.headers).toMatchObject({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'x-client-meta': 'm1' });
    expect(call.headers['x-forwarded-proto']).toBe('http');
  });

  it('streams a server-streaming answer message by message', async () => {
    let received = 0;
    const u = await upstream({
      '/test.Echo/Watch': (call) => {
        void call.ended.then(async () => {
          call.respond();
          call.send('tick-1');
          // The next message waits until the client has the first one: nothing may buffer the answer.
          await until(() => received >= 1, 'the client to receive the first message');
          call.send('tick-2');
          call.send('tick-3');
          call.finish(0);
        });
      },
    });
    const { session } = await gateway(u);
    const answer = await grpcCall(session, '/test.Echo/Watch', ['from'], { onMessage: () => { received++; } });
    expect(answer.messages.map(String)).toEqual(['tick-1', 'tick-2', 'tick-3']);
    expect(answer.status).toBe(0);
  });

  it('carries a bidirectional stream both ways at once', async () => {
    const u = await upstream({
      '/test.Echo/Chat': (call) => {
        call.respond();
        call.onMessage((m) => call.send(`re:${m.toString()}`));
        void call.ended.then(() => call.finish(0, 'bye'));
      },
    });
    const { session } = await gateway(u);
    const got: string[] = [];
    // Each message goes only after the answer to the one before arrived: a half-duplex path deadlocks.
    const answer = await grpcCall(session, '/test.Echo/Chat', ['one', 'two', 'three'], {
      onMessage: (m) => got.push(m.toString()),
      beforeMessage: (i) => until(() => got.length >= i, `the answer to message ${i}`),
    });
    expect(answer.messages.map(String)).toEqual(['re:one', 're:two', 're:three']);
    expect([answer.status, answer.message]).toEqual([0, 'bye']);
  });

  it('passes a trailers-only answer as one HEADERS frame that ends the stream', async () => {
    const u = await upstream({ '/test.Echo/Missing': (call) => { void call.ended.then(() => call.trailersOnly(5, 'no such thing')); } });
    const { gw, session } = await gateway(u, { observer: observer() });
    const answer = await grpcCall(session, '/test.Echo/Missing', ['x']);
    expect(answer.endedWithHeaders).toBe(true);
    expect(answer.headers).toMatchObject({ ':status': 200, 'grpc-status': '5', 'grpc-message': 'no%20such%20thing' });
    expect([answer.status, answer.message, answer.trailers, answer.messages]).toEqual([5, 'no such thing', null, []]);
    // The filter sees the status in headers that end the stream, and no body or trailers callback.
    await waitFor(() => gw.logs.some((l) => l.access === true), 'the access log line');
    const lines = guestLines(gw.logs);
    expect(lines.slice(lines.indexOf('observer: response_headers eos=1'))).toEqual(['observer: response_headers eos=1', 'observer: grpc-status=5']);
  });

  it('hands filters the length-prefixed frames as body bytes and grpc-status in the response trailers', async () => {
    const u = await upstream({ '/test.Echo/Unary': echo });
    const { gw, session } = await gateway(u, { observer: observer() });
    const answer = await grpcCall(session, '/test.Echo/Unary', ['hello']);
    expect(answer.status).toBe(0);
    await waitFor(() => guestLines(gw.logs).includes('observer: grpc-message=all%20good'), 'the response trailers callback');
    expect(guestLines(gw.logs)).toEqual([
      'observer: request size=10 eos=0', `observer: ${hex('hello')}`,
      'observer: request size=0 eos=1',
      'observer: response_headers eos=0', 'observer: grpc-status!1',
      'observer: response size=15 eos=0', `observer: ${hex('echo:hello')}`,
      'observer: grpc-status=0', 'observer: grpc-message=all%20good',
    ]);
  });

  it('answers a filter\'s local reply to a gRPC call over h2 as a trailers-only gRPC answer', async () => {
    const u = await upstream({ '/test.Echo/Unary': echo });
    const g = new Guest();
    const deny = g.build({
      log: false,
      on: { proxy_on_request_headers: `(drop (call $proxy_send_local_response (i32.const 403) ${g.lit('denied')} ${g.lit('not for you')} ${g.pairs([['x-denied-by', 'filter']])} (i32.const 7))) (i32.const 1)` },
    });
    const { session } = await gateway(u, { deny });
    const answer = await grpcCall(session, '/test.Echo/Unary', ['hello']);
    expect(answer.endedWithHeaders).toBe(true);
    expect(answer.headers).toMatchObject({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7', 'x-denied-by': 'filter' });
    expect([answer.status, answer.message, answer.messages, answer.trailers]).toEqual([7, 'not for you', [], null]);
    expect(u.calls).toHaveLength(0);
  });

  it('answers an unreachable gRPC upstream as a trailers-only UNAVAILABLE', async () => {
    const u = await upstream({});
    const { session } = await gateway(u);
    await u.close();
    const answer = await grpcCall(session, '/test.Echo/Unary', ['hello']);
    expect(answer.endedWithHeaders).toBe(true);
    expect(answer.headers[':status']).toBe(200);
    expect(answer.status).toBe(14);
  });
});
