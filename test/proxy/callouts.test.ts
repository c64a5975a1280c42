import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { Guest, guestLines, send, waitFor } from '../helpers/guests.js';
import { refusingUrl, startGrpcServer, startHttpServer, type SeenGrpcCall, type SeenRequest } from '../helpers/http-callouts.js';

/** Copies header `from` of map `src` into request header `to` (map 0) when present. */
function copyHeader(g: Guest, src: number, from: string, to: string): string {
  return `(if (i32.eqz (call $proxy_get_header_map_value (i32.const ${src}) ${g.lit(from)} (i32.const 0x10) (i32.const 0x14)))
    (then (call $add_header (i32.const 0) ${g.lit(to)} (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))))`;
}

/** Copies the first `size` bytes of buffer `buffer` into request header `to`. */
function copyBuffer(g: Guest, buffer: number, to: string): string {
  return `(if (i32.eqz (call $proxy_get_buffer_bytes (i32.const ${buffer}) (i32.const 0) (local.get $size) (i32.const 0x10) (i32.const 0x14)))
    (then (call $add_header (i32.const 0) ${g.lit(to)} (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))))`;
}

/** Logs "status=<code>" and then the message of proxy_get_status. */
function logStatus(g: Guest): string {
  return `(drop (call $proxy_get_status (i32.const 0x20) (i32.const 0x10) (i32.const 0x14)))
    (call $log_num ${g.lit('status=')} (i32.load (i32.const 0x20)))
    (call $log (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))`;
}

/**
 * A filter whose on_request_headers makes an http call to `cluster` with `headers` and pauses
 * when the call started (logging "http_call=<status>"); the answer on the root logs its counts and
 * :status, switches to the stream and runs `answer`.
 */
function httpCallFilter(opts: { cluster: string; headers: Array<[string, string]>; timeoutMs?: number; answer: (g: Guest) => string }): string {
  const g = new Guest();
  return g.build({
    extra: '(global $stream (mut i32) (i32.const 0))',
    on: {
      proxy_on_context_create: true,
      proxy_on_request_headers: `
        (global.set $stream (local.get $ctx))
        (local.set $t (call $proxy_http_call ${g.lit(opts.cluster)} ${g.pairs(opts.headers)} ${g.lit('callout body')} ${g.lit('')}
          (i32.const ${opts.timeoutMs ?? 5000}) (i32.const 0x18)))
        (call $log_num ${g.lit('http_call=')} (local.get $t))
        (if (result i32) (local.get $t) (then (i32.const 0)) (else (i32.const 1)))`,
      proxy_on_http_call_response: `
        (call $log_num2 ${g.lit('token=')} (local.get $token) ${g.lit(' headers=')} (local.get $nh))
        (call $log_num2 ${g.lit('body=')} (local.get $size) ${g.lit(' trailers=')} (local.get $nt))
        (call $log_header (i32.const 6) ${g.lit(':status')})
        (drop (call $proxy_set_effective_context (global.get $stream)))
        ${opts.answer(g)}`,
      proxy_on_response_headers: true,
      proxy_on_log: true,
      proxy_on_done: true,
      proxy_on_delete: true,
    },
  });
}

const AUTH_HEADERS: Array<[string, string]> = [[':method', 'POST'], [':path', '/check?who=me'], [':authority', 'auth.internal'], ['x-ask', 'yes']];

/** Continue with the callout's x-auth-user, :status and body copied into the request. */
const continueWithAnswer = (g: Guest): string => `
  ${copyHeader(g, 6, 'x-auth-user', 'x-user')}
  ${copyHeader(g, 6, ':status', 'x-callout-status')}
  ${copyBuffer(g, 4, 'x-callout-body')}
  (drop (call $proxy_continue_stream (i32.const 0)))`;

describe('callouts from filters', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(wat: string, clusters: Array<Record<string, unknown>>): Promise<{ gw: TestGateway; upstream: Upstream }> {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, ...clusters],
      plugins: [{ name: 'callout', module: wasmFile(wat, 'callout') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['callout'] }],
    });
    cleanup.push(gw.close);
    return { gw, upstream };
  }

  async function authServer(handler: Parameters<typeof startHttpServer>[0]): Promise<{ url: string; seen: SeenRequest[] }> {
    const seen: SeenRequest[] = [];
    const server = await startHttpServer(handler, seen);
    cleanup.push(server.close);
    return { url: server.url, seen };
  }

  const ended = (gw: TestGateway) => waitFor(() => guestLines(gw.logs).some((l) => l.endsWith('cb=delete')), 'on_delete');

  it('holds the request on Pause until the callout answer continues it, with a header taken from the answer', async () => {
    const auth = await authServer((_req, res) => {
      res.writeHead(200, { 'x-auth-user': 'alice', 'content-length': 2 });
      res.end('ok');
    });
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers: AUTH_HEADERS, answer: continueWithAnswer }),
      [{ name: 'auth', endpoints: [auth.url] }]);
    const reply = await send(`${gw.url}/api`, { method: 'POST', headers: { 'content-length': 7 }, body: ['payload'] });
    expect(reply.status).toBe(200);
    expect(auth.seen).toHaveLength(1);
    expect(auth.seen[0].method).toBe('POST');
    expect(auth.seen[0].path).toBe('/check?who=me');
    expect(auth.seen[0].headers.host).toBe('auth.internal');
    expect(auth.seen[0].headers['x-ask']).toBe('yes');
    expect(auth.seen[0].headers['content-length']).toBe('12');
    expect(auth.seen[0].body.toString()).toBe('callout body');
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0].headers['x-user']).toBe('alice');
    expect(upstream.requests[0].headers['x-callout-status']).toBe('200');
    expect(upstream.requests[0].headers['x-callout-body']).toBe('ok');
    expect(upstream.requests[0].body.toString()).toBe('payload');
    await ended(gw);
    const lines = guestLines(gw.logs);
    // The answer goes to the root (ctx 1) with the token, never to the stream (ctx 2).
    expect(lines.slice(lines.indexOf('callout: ctx=2 cb=context_create'))).toEqual([
      'callout: ctx=2 cb=context_create', 'callout: ctx=2 cb=request_headers', 'callout: http_call=0',
      // :status, x-auth-user, content-length and node's date, connection, keep-alive.
      'callout: ctx=1 cb=http_call_response', 'callout: token=4 headers=6', 'callout: body=2 trailers=0', 'callout: :status=200',
      'callout: ctx=2 cb=response_headers', 'callout: ctx=2 cb=log', 'callout: ctx=2 cb=done', 'callout: ctx=2 cb=delete',
    ]);
  });

  it('answers with a local 403 sent from the callout answer, without contacting the upstream', async () => {
    const auth = await authServer((_req, res) => {
      res.writeHead(401, { 'content-length': 0 });
      res.end();
    });
    const deny = (g: Guest): string =>
      `(drop (call $proxy_send_local_response (i32.const 403) ${g.lit('')} ${g.lit('denied by callout')} ${g.lit('')} (i32.const -1)))`;
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers: AUTH_HEADERS, answer: deny }),
      [{ name: 'auth', endpoints: [auth.url] }]);
    const reply = await send(`${gw.url}/api`);
    expect(reply.status).toBe(403);
    expect(reply.body.toString()).toBe('denied by callout');
    expect(upstream.requests).toHaveLength(0);
    await ended(gw);
    const lines = guestLines(gw.logs);
    expect(lines.slice(lines.indexOf('callout: ctx=2 cb=request_headers'))).toEqual([
      'callout: ctx=2 cb=request_headers', 'callout: http_call=0',
      'callout: ctx=1 cb=http_call_response', 'callout: token=4 headers=5', 'callout: body=0 trailers=0', 'callout: :status=401',
      // The local reply passes through the response phase of the filter that sent it.
      'callout: ctx=2 cb=response_headers', 'callout: ctx=2 cb=log', 'callout: ctx=2 cb=done', 'callout: ctx=2 cb=delete',
    ]);
  });

  it('holds the response on Pause in on_response_headers until the callout answer continues it', async () => {
    const auth = await authServer((_req, res) => {
      res.writeHead(200, { 'x-verdict': 'approved', 'content-length': 0 });
      res.end();
    });
    const g = new Guest();
    const wat = g.build({
      log: false,
      extra: '(global $stream (mut i32) (i32.const 0))',
      on: {
        proxy_on_response_headers: `
          (global.set $stream (local.get $ctx))
          (drop (call $proxy_http_call ${g.lit('auth')} ${g.pairs(AUTH_HEADERS)} ${g.lit('')} ${g.lit('')} (i32.const 5000) (i32.const 0x18)))
          (i32.const 1)`,
        proxy_on_http_call_response: `
          (drop (call $proxy_set_effective_context (global.get $stream)))
          (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) ${g.lit('x-verdict')} (i32.const 0x10) (i32.const 0x14)))
            (then (call $add_header (i32.const 2) ${g.lit('x-verdict')} (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))))
          (drop (call $proxy_continue_stream (i32.const 1)))`,
      },
    });
    const { gw, upstream } = await setup(wat, [{ name: 'auth', endpoints: [auth.url] }]);
    const reply = await send(`${gw.url}/api`);
    expect(reply.status).toBe(200);
    expect(reply.headers['x-verdict']).toBe('approved');
    expect(JSON.parse(reply.body.toString()).url).toBe('/api');
    expect(upstream.requests).toHaveLength(1);
    expect(auth.seen).toHaveLength(1);
  });

  it('lets an answer for a stream the client has left do nothing: set_effective_context is BAD_ARGUMENT', async () => {
    let answer: (() => void) | null = null;
    // The first call is answered once the client has left, later ones at once.
    const auth = await authServer((_req, res) => {
      if (answer === null) answer = () => res.end('late');
      else res.end('now');
    });
    const afterAnswer = (g: Guest): string => `
      (call $log_num ${g.lit('effective=')} (call $proxy_set_effective_context (global.get $stream)))
      (call $log_num ${g.lit('continue=')} (call $proxy_continue_stream (i32.const 0)))`;
    // httpCallFilter already switches to the stream before `answer`; this logs what a second switch says.
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers: AUTH_HEADERS, answer: afterAnswer }),
      [{ name: 'auth', endpoints: [auth.url] }]);
    const req = request(`${gw.url}/api`, { agent: false });
    const gone = new Promise<Error>((resolve) => req.on('error', resolve));
    req.end();
    await waitFor(() => auth.seen.length === 1, 'the callout');
    // Leave: the stream ends (on_log, on_done, on_delete) while its callout is outstanding.
    req.destroy();
    expect((await gone).message).toBe('socket hang up');
    await ended(gw);
    answer!();
    await waitFor(() => guestLines(gw.logs).includes('callout: ctx=1 cb=http_call_response'), 'the late answer');
    const lines = guestLines(gw.logs);
    expect(lines.slice(lines.indexOf('callout: ctx=1 cb=http_call_response'))).toEqual([
      'callout: ctx=1 cb=http_call_response', 'callout: token=4 headers=5', 'callout: body=4 trailers=0', 'callout: :status=200',
      'callout: effective=2', 'callout: continue=0',
    ]);
    expect(upstream.requests).toHaveLength(0);
    expect((await send(`${gw.url}/next`)).status).toBe(200);
  });

  it('refuses an http_call to an unknown cluster with BAD_ARGUMENT', async () => {
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'nowhere', headers: AUTH_HEADERS, answer: continueWithAnswer }), []);
    const reply = await send(`${gw.url}/api`);
    expect(reply.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(guestLines(gw.logs)).toContain('callout: http_call=2');
  });

  it('refuses an http_call without :authority with BAD_ARGUMENT', async () => {
    const auth = await authServer((_req, res) => res.end());
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers: [[':method', 'GET'], [':path', '/check']], answer: continueWithAnswer }),
      [{ name: 'auth', endpoints: [auth.url] }]);
    const reply = await send(`${gw.url}/api`);
    expect(reply.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(auth.seen).toHaveLength(0);
    expect(guestLines(gw.logs)).toContain('callout: http_call=2');
  });

  it('refuses an http_call whose headers the host could not send (CRLF, NUL, a bad :path or :method) with BAD_ARGUMENT', async () => {
    const auth = await authServer((_req, res) => res.end());
    for (const headers of [
      [...AUTH_HEADERS, ['x-ask', 'a\r\nx-injected: 1']], [...AUTH_HEADERS, ['x-a\r\nb', '1']], [...AUTH_HEADERS, ['x-nul', 'a\0b']],
      [[':method', 'GET'], [':path', '/a b'], [':authority', 'auth']], [[':method', 'G T'], [':path', '/'], [':authority', 'auth']],
      [[':method', 'GET'], [':path', '/'], [':authority', 'auth\r\nx: 1']],
    ] as Array<Array<[string, string]>>) {
      const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers, answer: continueWithAnswer }), [{ name: 'auth', endpoints: [auth.url] }]);
      const reply = await send(`${gw.url}/api`);
      expect(reply.status).toBe(200);
      expect(upstream.requests).toHaveLength(1);
      expect(guestLines(gw.logs)).toContain('callout: http_call=2');
    }
    expect(auth.seen).toHaveLength(0);
  });

  it('delivers a callout timeout as the 504 answer Envoy\'s router gives', async () => {
    const auth = await authServer((_req, res) => { setTimeout(() => res.end('late'), 2000).unref(); });
    const { gw, upstream } = await setup(httpCallFilter({ cluster: 'auth', headers: AUTH_HEADERS, timeoutMs: 100, answer: continueWithAnswer }),
      [{ name: 'auth', endpoints: [auth.url] }]);
    const started = Date.now();
    const reply = await send(`${gw.url}/api`);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(reply.status).toBe(200);
    expect(upstream.requests[0].headers['x-callout-status']).toBe('504');
    expect(upstream.requests[0].headers['x-callout-body']).toBe('upstream request timeout');
    const lines = guestLines(gw.logs);
    // :status, content-length, content-type, as Envoy's router answers "upstream request timeout".
    expect(lines.slice(lines.indexOf('callout: ctx=1 cb=http_call_response'), lines.indexOf('callout: ctx=2 cb=response_headers'))).toEqual([
      'callout: ctx=1 cb=http_call_response', 'callout: token=4 headers=3', 'callout: body=24 trailers=0', 'callout: :status=504',
    ]);
  });

  it('delivers a refused callout as (root, token, 0, 0, 0) with status 11 "reset"', async () => {
    const refusing = await refusingUrl();
    const { gw, upstream } = await setup(httpCallFilter({
      cluster: 'auth', headers: AUTH_HEADERS, answer: (g) => `${logStatus(g)} ${continueWithAnswer(g)}`,
    }), [{ name: 'auth', endpoints: [refusing] }]);
    const reply = await send(`${gw.url}/api`);
    expect(reply.status).toBe(200);
    expect(upstream.requests[0].headers['x-callout-status']).toBe(undefined);
    const lines = guestLines(gw.logs);
    expect(lines.slice(lines.indexOf('callout: ctx=1 cb=http_call_response'), lines.indexOf('callout: ctx=2 cb=response_headers'))).toEqual([
      'callout: ctx=1 cb=http_call_response', 'callout: token=4 headers=0', 'callout: body=0 trailers=0', 'callout: :status!2',
      'callout: status=11', 'callout: reset',
    ]);
  });

  describe('gRPC', () => {
    /** on_request_headers calls test.Echo/Say on `cluster` with "ping" and pauses; the answer is copied into the request. */
    function grpcFilter(cluster: string, metadata: Array<[string, string]> = [['x-md', 'v1']]): string {
      const g = new Guest();
      return g.build({
        extra: '(global $stream (mut i32) (i32.const 0))',
        on: {
          proxy_on_request_headers: `
            (global.set $stream (local.get $ctx))
            (local.set $t (call $proxy_grpc_call ${g.lit(cluster)} ${g.lit('test.Echo')} ${g.lit('Say')} ${g.pairs(metadata)}
              ${g.lit('ping')} (i32.const 5000) (i32.const 0x18)))
            (call $log_num2 ${g.lit('grpc_call=')} (local.get $t) ${g.lit(' token=')} (i32.load (i32.const 0x18)))
            (if (result i32) (local.get $t) (then (i32.const 0)) (else (i32.const 1)))`,
          proxy_on_grpc_receive: `
            (call $log_num2 ${g.lit('token=')} (local.get $token) ${g.lit(' size=')} (local.get $size))
            (drop (call $proxy_set_effective_context (global.get $stream)))
            ${copyBuffer(g, 5, 'x-grpc-reply')}
            ${copyHeader(g, 4, 'x-served-by', 'x-grpc-metadata')}
            (drop (call $proxy_continue_stream (i32.const 0)))`,
          proxy_on_grpc_close: `
            (call $log_num2 ${g.lit('token=')} (local.get $token) ${g.lit(' status=')} (local.get $status))
            ${logStatus(g)}
            (drop (call $proxy_set_effective_context (global.get $stream)))
            (drop (call $proxy_continue_stream (i32.const 0)))`,
        },
      });
    }

    async function grpcServer(answer: Parameters<typeof startGrpcServer>[0]): Promise<{ url: string; seen: SeenGrpcCall[] }> {
      const seen: SeenGrpcCall[] = [];
      const server = await startGrpcServer(answer, seen);
      cleanup.push(server.close);
      return { url: server.url, seen };
    }

    it('makes a unary call over HTTP/2 and delivers the answer and its metadata through on_grpc_receive', async () => {
      const grpc = await grpcServer((call) => ({
        status: 0, message: Buffer.concat([Buffer.from('pong:'), call.message!]), metadata: { 'x-served-by': 'echo' },
      }));
      const { gw, upstream } = await setup(grpcFilter('grpc'), [{ name: 'grpc', endpoints: [grpc.url], http2: true }]);
      const reply = await send(`${gw.url}/api`);
      expect(reply.status).toBe(200);
      expect(grpc.seen).toHaveLength(1);
      expect(grpc.seen[0].path).toBe('/test.Echo/Say');
      expect(grpc.seen[0].headers['content-type']).toBe('application/grpc');
      expect(grpc.seen[0].headers['x-md']).toBe('v1');
      expect(grpc.seen[0].headers['grpc-timeout']).toBe('5000m');
      expect(Buffer.from(grpc.seen[0].message!).toString()).toBe('ping');
      expect(upstream.requests[0].headers['x-grpc-reply']).toBe('pong:ping');
      // The initial metadata (map 4) stays readable during on_grpc_receive.
      expect(upstream.requests[0].headers['x-grpc-metadata']).toBe('echo');
      expect(guestLines(gw.logs).filter((l) => !l.includes(' cb='))).toEqual(['callout: grpc_call=0 token=5', 'callout: token=5 size=9']);
    });

    it('refuses metadata node:http2 could not send (CRLF in a value, a name that is no token) with BAD_ARGUMENT', async () => {
      const grpc = await grpcServer(() => ({ status: 0, message: Buffer.from('x') }));
      for (const metadata of [[['x-md', 'a\r\nb']], [['x md', 'v']]] as Array<Array<[string, string]>>) {
        const { gw, upstream } = await setup(grpcFilter('grpc', metadata), [{ name: 'grpc', endpoints: [grpc.url], http2: true }]);
        expect((await send(`${gw.url}/api`)).status).toBe(200);
        expect(upstream.requests).toHaveLength(1);
        expect(guestLines(gw.logs)).toContain('callout: grpc_call=2 token=0');
      }
      expect(grpc.seen).toHaveLength(0);
    });

    it('delivers a failed call through on_grpc_close with its status and message', async () => {
      const grpc = await grpcServer(() => ({ status: 5, statusMessage: 'no such thing' }));
      const { gw, upstream } = await setup(grpcFilter('grpc'), [{ name: 'grpc', endpoints: [grpc.url], http2: true }]);
      const reply = await send(`${gw.url}/api`);
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].headers['x-grpc-reply']).toBe(undefined);
      expect(guestLines(gw.logs).filter((l) => !l.includes(' cb='))).toEqual([
        'callout: grpc_call=0 token=5', 'callout: token=5 status=5', 'callout: status=5', 'callout: no such thing',
      ]);
    });

    it('delivers an unreachable gRPC cluster as UNAVAILABLE (14) through on_grpc_close, and logs why the connection failed', async () => {
      const origin = await refusingUrl();
      const { gw } = await setup(grpcFilter('grpc'), [{ name: 'grpc', endpoints: [origin], http2: true }]);
      const reply = await send(`${gw.url}/api`);
      expect(reply.status).toBe(200);
      expect(guestLines(gw.logs).filter((l) => !l.includes(' cb=')).slice(0, 3)).toEqual([
        'callout: grpc_call=0 token=5', 'callout: token=5 status=14', 'callout: status=14',
      ]);
      const failures = gw.logs.filter((l) => l.msg === 'gRPC callout connection failed');
      expect(failures).toEqual([expect.objectContaining({ level: 'warn', origin, code: 'ECONNREFUSED', err: expect.stringContaining('ECONNREFUSED') })]);
    });
  });
});
