import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { callbackLines, Guest, guestLines, loggingFilter, send, STREAM_CALLBACKS, waitFor, type Callback } from '../helpers/guests.js';

type Handler = Parameters<typeof startUpstream>[0];

/** A logging filter whose listed callbacks run a snippet too (the rest just log and continue). */
function filterWith(g: Guest, on: Partial<Record<Callback, string>>): string {
  return g.build({ on: { ...Object.fromEntries(STREAM_CALLBACKS.map((c) => [c, true])), ...on } });
}

/** Sends the local reply `status` with `body` and header `x-local: <tag>` (not gRPC). */
function localReply(g: Guest, status: number, body: string, tag: string): string {
  return `(drop (call $proxy_send_local_response (i32.const ${status}) ${g.lit('')} ${g.lit(body)} ${g.pairs([['x-local', tag]])} (i32.const -1)))`;
}

const okUpstream: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
  res.end('ok');
};

describe('the request flow', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(plugins: Array<{ name: string; wat: string }>, handler?: Handler): Promise<{ gw: TestGateway; upstream: Upstream }> {
    const upstream = await startUpstream(handler);
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: plugins.map(({ wat, name }) => ({ name, module: wasmFile(wat, name) })),
      routes: [{ name: 'all', cluster: 'backend', filters: plugins.map((p) => p.name) }],
    });
    cleanup.push(gw.close);
    return { gw, upstream };
  }

  const deletes = (gw: TestGateway, n: number) => waitFor(() => callbackLines(gw.logs).filter((l) => l.endsWith('cb=delete')).length === n,
    `${n} on_delete callbacks`);

  it('runs the request phase in filter order and the response phase in reverse order', async () => {
    const wat = loggingFilter();
    const { gw } = await setup([{ name: 'a', wat }, { name: 'b', wat }, { name: 'c', wat }], okUpstream);
    const reply = await send(`${gw.url}/order`);
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('ok');
    await deletes(gw, 3);
    // The three plugins share one VM (same module): roots 1-3, streams 4-6.
    expect(callbackLines(gw.logs)).toEqual([
      'a: ctx=4 cb=context_create', 'a: ctx=4 cb=request_headers',
      'b: ctx=5 cb=context_create', 'b: ctx=5 cb=request_headers',
      'c: ctx=6 cb=context_create', 'c: ctx=6 cb=request_headers',
      'c: ctx=6 cb=response_headers', 'b: ctx=5 cb=response_headers', 'a: ctx=4 cb=response_headers',
      // The body chunk, then end of stream as an empty chunk (as Envoy's HTTP/1 codec delivers it).
      'c: ctx=6 cb=response_body', 'b: ctx=5 cb=response_body', 'a: ctx=4 cb=response_body',
      'c: ctx=6 cb=response_body', 'b: ctx=5 cb=response_body', 'a: ctx=4 cb=response_body',
      // Envoy logs every filter of the stream, then destroys them.
      'a: ctx=4 cb=log', 'b: ctx=5 cb=log', 'c: ctx=6 cb=log',
      'a: ctx=4 cb=done', 'a: ctx=4 cb=delete',
      'b: ctx=5 cb=done', 'b: ctx=5 cb=delete',
      'c: ctx=6 cb=done', 'c: ctx=6 cb=delete',
    ]);
  });

  it('shows filters the pseudo-headers :method :path :authority :scheme and :status', async () => {
    const g = new Guest();
    const wat = g.build({
      log: false,
      on: {
        proxy_on_request_headers: `${[':method', ':path', ':authority', ':scheme'].map((h) => `(call $log_header (i32.const 0) ${g.lit(h)})`).join(' ')} (i32.const 0)`,
        proxy_on_response_headers: `(call $log_header (i32.const 2) ${g.lit(':status')}) (i32.const 0)`,
      },
    });
    const { gw } = await setup([{ name: 'pseudo', wat }], (_req, res) => { res.writeHead(201, { 'content-length': 0 }); res.end(); });
    const reply = await send(`${gw.url}/pseudo?x=1`, { method: 'POST', headers: { 'content-length': 0 } });
    expect(reply.status).toBe(201);
    const authority = new URL(gw.url).host;
    expect(guestLines(gw.logs)).toEqual([
      'pseudo: :method=POST', 'pseudo: :path=/pseudo?x=1', `pseudo: :authority=${authority}`, 'pseudo: :scheme=http',
      'pseudo: :status=201',
    ]);
  });

  it('forwards request header changes (add, replace, remove, :path, :authority) upstream and response header changes to the client', async () => {
    const g = new Guest();
    const wat = g.build({
      log: false,
      on: {
        proxy_on_request_headers: `
          (call $add_header (i32.const 0) ${g.lit('x-added')} ${g.lit('yes')})
          (drop (call $proxy_replace_header_map_value (i32.const 0) ${g.lit('x-replaced')} ${g.lit('new')}))
          (drop (call $proxy_remove_header_map_value (i32.const 0) ${g.lit('x-removed')}))
          (drop (call $proxy_replace_header_map_value (i32.const 0) ${g.lit(':path')} ${g.lit('/rewritten?q=2')}))
          (drop (call $proxy_replace_header_map_value (i32.const 0) ${g.lit(':authority')} ${g.lit('rewritten.example')}))
          (i32.const 0)`,
        proxy_on_response_headers: `
          (call $add_header (i32.const 2) ${g.lit('x-resp-added')} ${g.lit('yes')})
          (drop (call $proxy_replace_header_map_value (i32.const 2) ${g.lit('x-resp-replaced')} ${g.lit('new')}))
          (drop (call $proxy_remove_header_map_value (i32.const 2) ${g.lit('x-resp-removed')}))
          (drop (call $proxy_replace_header_map_value (i32.const 2) ${g.lit(':status')} ${g.lit('203')}))
          (i32.const 0)`,
      },
    });
    const { gw, upstream } = await setup([{ name: 'mutate', wat }], (_req, res) => {
      res.writeHead(200, { 'x-resp-replaced': 'old', 'x-resp-removed': 'gone', 'x-resp-kept': 'kept', 'content-length': 2 });
      res.end('ok');
    });
    const reply = await send(`${gw.url}/original?q=1`, { headers: { 'x-replaced': 'old', 'x-removed': 'gone', 'x-kept': 'kept' } });
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0];
    expect(seen.url).toBe('/rewritten?q=2');
    expect(seen.headers.host).toBe('rewritten.example');
    expect(seen.headers['x-added']).toBe('yes');
    expect(seen.headers['x-replaced']).toBe('new');
    expect(seen.headers['x-removed']).toBe(undefined);
    expect(seen.headers['x-kept']).toBe('kept');
    expect(reply.status).toBe(203);
    expect(reply.headers['x-resp-added']).toBe('yes');
    expect(reply.headers['x-resp-replaced']).toBe('new');
    expect(reply.headers['x-resp-removed']).toBe(undefined);
    expect(reply.headers['x-resp-kept']).toBe('kept');
    expect(reply.body.toString()).toBe('ok');
  });

  it('passes a local reply from filter 2 of 3 through the response phase of filters 2 and 1 only, without the upstream', async () => {
    const plain = loggingFilter();
    const g = new Guest();
    const deny = filterWith(g, { proxy_on_request_headers: `${localReply(g, 403, 'denied by b', 'b')} (i32.const 1)` });
    const { gw, upstream } = await setup([{ name: 'a', wat: plain }, { name: 'b', wat: deny }, { name: 'c', wat: plain }], okUpstream);
    const reply = await send(`${gw.url}/deny`);
    expect(reply.status).toBe(403);
    expect(reply.headers['x-local']).toBe('b');
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.headers['content-length']).toBe('11');
    expect(reply.body.toString()).toBe('denied by b');
    await deletes(gw, 3);
    expect(upstream.requests).toHaveLength(0);
    // a and c share a VM (roots 1, 2; streams 4, 5); b has its own (root 1, stream 2).
    expect(callbackLines(gw.logs)).toEqual([
      'a: ctx=3 cb=context_create', 'a: ctx=3 cb=request_headers',
      'b: ctx=2 cb=context_create', 'b: ctx=2 cb=request_headers',
      'b: ctx=2 cb=response_headers', 'a: ctx=3 cb=response_headers',
      'b: ctx=2 cb=response_body', 'a: ctx=3 cb=response_body',
      'a: ctx=3 cb=log', 'b: ctx=2 cb=log',
      // c never ran: its context is created for on_log, as Envoy does.
      'c: ctx=4 cb=context_create', 'c: ctx=4 cb=log',
      'a: ctx=3 cb=done', 'a: ctx=3 cb=delete',
      'b: ctx=2 cb=done', 'b: ctx=2 cb=delete',
      'c: ctx=4 cb=done', 'c: ctx=4 cb=delete',
    ]);
    const access = gw.logs.find((l) => l.access === true)!;
    expect(access.status).toBe(403);
    expect(access.localReplyBy).toBe('b');
    expect(access.upstream).toBe(null);
  });

  it('goes on at once when a filter calls continue_stream in the same callback that returns Pause', async () => {
    const g = new Guest();
    const early = filterWith(g, {
      proxy_on_request_headers: '(drop (call $proxy_continue_stream (i32.const 0))) (i32.const 1)',
      proxy_on_response_headers: '(drop (call $proxy_continue_stream (i32.const 1))) (i32.const 1)',
    });
    const { gw, upstream } = await setup([{ name: 'early', wat: early }], okUpstream);
    const reply = await send(`${gw.url}/early`);
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('ok');
    expect(upstream.requests).toHaveLength(1);
  });

  it('replaces the upstream response with a local reply from on_response_headers, through the filters after it', async () => {
    const plain = loggingFilter();
    const g = new Guest();
    const replace = filterWith(g, { proxy_on_response_headers: `${localReply(g, 418, 'teapot from b', 'b')} (i32.const 0)` });
    const { gw, upstream } = await setup([{ name: 'a', wat: plain }, { name: 'b', wat: replace }], okUpstream);
    const reply = await send(`${gw.url}/replace`);
    expect(reply.status).toBe(418);
    expect(reply.headers['x-local']).toBe('b');
    expect(reply.headers['content-length']).toBe('13');
    expect(reply.body.toString()).toBe('teapot from b');
    await deletes(gw, 2);
    expect(upstream.requests).toHaveLength(1);
    expect(callbackLines(gw.logs)).toEqual([
      'a: ctx=2 cb=context_create', 'a: ctx=2 cb=request_headers',
      'b: ctx=2 cb=context_create', 'b: ctx=2 cb=request_headers',
      // b answers on the upstream's headers; only a (after b in response order) sees the reply.
      'b: ctx=2 cb=response_headers', 'a: ctx=2 cb=response_headers', 'a: ctx=2 cb=response_body',
      'a: ctx=2 cb=log', 'b: ctx=2 cb=log',
      'a: ctx=2 cb=done', 'a: ctx=2 cb=delete',
      'b: ctx=2 cb=done', 'b: ctx=2 cb=delete',
    ]);
  });

  it('ignores a second local reply from the same stream', async () => {
    const g = new Guest();
    const twice = filterWith(g, {
      proxy_on_request_headers: `${localReply(g, 403, 'first', 'first')} ${localReply(g, 404, 'second', 'second')} (i32.const 1)`,
      proxy_on_response_headers: `${localReply(g, 500, 'third', 'third')} (i32.const 0)`,
    });
    const { gw, upstream } = await setup([{ name: 'twice', wat: twice }], okUpstream);
    const reply = await send(`${gw.url}/twice`);
    expect(reply.status).toBe(403);
    expect(reply.headers['x-local']).toBe('first');
    expect(reply.body.toString()).toBe('first');
    await deletes(gw, 1);
    expect(upstream.requests).toHaveLength(0);
    expect(callbackLines(gw.logs)).toEqual([
      'twice: ctx=2 cb=context_create', 'twice: ctx=2 cb=request_headers', 'twice: ctx=2 cb=response_headers',
      'twice: ctx=2 cb=response_body', 'twice: ctx=2 cb=log', 'twice: ctx=2 cb=done', 'twice: ctx=2 cb=delete',
    ]);
  });

  it('resets the client connection on proxy_close_stream and still ends the stream with on_log, on_done, on_delete', async () => {
    const g = new Guest();
    const close = filterWith(g, { proxy_on_request_headers: '(drop (call $proxy_close_stream (i32.const 0))) (i32.const 1)' });
    const { gw, upstream } = await setup([{ name: 'close', wat: close }], okUpstream);
    await expect(send(`${gw.url}/close`)).rejects.toThrow(/socket hang up|ECONNRESET/);
    await deletes(gw, 1);
    expect(upstream.requests).toHaveLength(0);
    expect(callbackLines(gw.logs)).toEqual([
      'close: ctx=2 cb=context_create', 'close: ctx=2 cb=request_headers',
      'close: ctx=2 cb=log', 'close: ctx=2 cb=done', 'close: ctx=2 cb=delete',
    ]);
    const access = gw.logs.find((l) => l.access === true)!;
    expect(access.error).toBe('wasm_close_stream');
    expect(access.failedFilter).toBe('close');
  });

  it('ends a stream paused by a filter with on_log, on_done, on_delete when the client goes away', async () => {
    const g = new Guest();
    const hold = filterWith(g, { proxy_on_request_headers: '(i32.const 1)' });
    const { gw, upstream } = await setup([{ name: 'hold', wat: hold }], okUpstream);
    const req = request(`${gw.url}/held`, { method: 'POST', headers: { 'content-length': 10 }, agent: false });
    const failed = new Promise<Error>((resolve) => req.on('error', resolve));
    req.write('12345');
    await waitFor(() => callbackLines(gw.logs).includes('hold: ctx=2 cb=request_headers'), 'on_request_headers');
    req.destroy();
    expect((await failed).message).toMatch(/socket hang up|aborted/);
    await deletes(gw, 1);
    expect(upstream.requests).toHaveLength(0);
    expect(callbackLines(gw.logs)).toEqual([
      'hold: ctx=2 cb=context_create', 'hold: ctx=2 cb=request_headers',
      'hold: ctx=2 cb=log', 'hold: ctx=2 cb=done', 'hold: ctx=2 cb=delete',
    ]);
    const access = gw.logs.find((l) => l.access === true)!;
    expect(access.error).toBe('downstream_remote_disconnect');
  });

  it('delivers response trailers from the upstream to on_response_trailers and, with the filter\'s additions, to the client', async () => {
    const g = new Guest();
    const trailers = filterWith(g, {
      proxy_on_response_trailers: `(call $log_header (i32.const 3) ${g.lit('x-checksum')}) (call $add_header (i32.const 3) ${g.lit('x-filter')} ${g.lit('seen')}) (i32.const 0)`,
    });
    const { gw } = await setup([{ name: 'trailers', wat: trailers }], (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part1,part2');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    });
    const reply = await send(`${gw.url}/trailers`);
    expect(reply.status).toBe(200);
    expect(reply.headers['transfer-encoding']).toBe('chunked');
    expect(reply.body.toString()).toBe('part1,part2');
    expect(reply.trailers).toEqual({ 'x-checksum': 'abc123', 'x-filter': 'seen' });
    await deletes(gw, 1);
    expect(guestLines(gw.logs).filter((l) => !l.includes('cb=root'))).toEqual([
      'trailers: ctx=2 cb=context_create', 'trailers: ctx=2 cb=request_headers', 'trailers: ctx=2 cb=response_headers',
      'trailers: ctx=2 cb=response_body',
      // The trailers end the stream: no last body callback with end_of_stream after them (Envoy).
      'trailers: ctx=2 cb=response_trailers', 'trailers: x-checksum=abc123',
      'trailers: ctx=2 cb=log', 'trailers: ctx=2 cb=done', 'trailers: ctx=2 cb=delete',
    ]);
  });

  describe('writes to the maps of a callout answer (types 4–7)', () => {
    /** Logs `<op><type>=<status>` for add, replace and set_pairs on each of maps 4–7 (read-only: 2, BAD_ARGUMENT). */
    function writesToAnswerMaps(g: Guest, prefix: string): string {
      return [4, 5, 6, 7].map((type) => `
        (call $log_num ${g.lit(`${prefix}add${type}=`)} (call $proxy_add_header_map_value (i32.const ${type}) ${g.lit(`x-leak-${type}`)} ${g.lit('add')}))
        (call $log_num ${g.lit(`${prefix}replace${type}=`)} (call $proxy_replace_header_map_value (i32.const ${type}) ${g.lit(`x-leak-${type}`)} ${g.lit('replace')}))
        (call $log_num ${g.lit(`${prefix}set${type}=`)} (call $proxy_set_header_map_pairs (i32.const ${type}) ${g.pairs([[`x-leak-${type}`, 'set']])}))`).join('');
    }
    const refused = (prefix: string) => [4, 5, 6, 7].flatMap((t) => [`${prefix}add${t}=2`, `${prefix}replace${t}=2`, `${prefix}set${t}=2`]);

    it('never reach the client\'s response trailers from on_response_trailers', async () => {
      const g = new Guest();
      const wat = g.build({ log: false, on: {
        proxy_on_response_trailers: `${writesToAnswerMaps(g, '')} (call $add_header (i32.const 3) ${g.lit('x-filter')} ${g.lit('seen')}) (i32.const 0)`,
      } });
      const { gw } = await setup([{ name: 'writer', wat }], (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
      });
      const reply = await send(`${gw.url}/trailers`);
      expect(reply.body.toString()).toBe('body');
      // Map 3 is the stream's: the write there arrives, so trailers do reach the client.
      expect(reply.trailers).toEqual({ 'x-checksum': 'abc123', 'x-filter': 'seen' });
      await waitFor(() => guestLines(gw.logs).length === 12, 'the twelve writes');
      expect(guestLines(gw.logs)).toEqual(refused('').map((l) => `writer: ${l}`));
    });

    it('never create response trailers from the end-of-stream body callback', async () => {
      const g = new Guest();
      const wat = g.build({ log: false, on: {
        proxy_on_response_body: `(if (local.get $eos) (then ${writesToAnswerMaps(g, 'eos ')})) (i32.const 0)`,
      } });
      // Chunked, so that trailers a filter added could reach the client.
      const { gw } = await setup([{ name: 'writer', wat }], (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
      const reply = await send(`${gw.url}/body`);
      expect(reply.body.toString()).toBe('ok');
      expect(reply.trailers).toEqual({});
      await waitFor(() => guestLines(gw.logs).length === 12, 'the twelve writes');
      expect(guestLines(gw.logs)).toEqual(refused('eos ').map((l) => `writer: ${l}`));
    });
  });
});
