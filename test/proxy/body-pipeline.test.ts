import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { Guest, guestLines, send, waitFor, type Callback } from '../helpers/guests.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/**
 * A body filter for `callback`: logs "size=<n> eos=<0|1>" on every call, returns Pause until the
 * end of the stream, then replaces the whole body with `replacement` (when given) and continues.
 */
function bufferingFilter(callback: Callback & ('proxy_on_request_body' | 'proxy_on_response_body'), replacement?: string): string {
  const g = new Guest();
  const buffer = callback === 'proxy_on_request_body' ? 0 : 1;
  const replace = replacement === undefined ? ''
    : `(drop (call $proxy_set_buffer_bytes (i32.const ${buffer}) (i32.const 0) (local.get $size) ${g.lit(replacement)}))`;
  return g.build({
    log: false,
    on: {
      [callback]: `(call $log_num2 ${g.lit('size=')} (local.get $size) ${g.lit(' eos=')} (local.get $eos))
        (if (result i32) (local.get $eos) (then ${replace} (i32.const 0)) (else (i32.const 1)))`,
    },
  });
}

/** A body filter that logs each call and lets every chunk through. */
function streamingFilter(callback: 'proxy_on_request_body' | 'proxy_on_response_body'): string {
  const g = new Guest();
  return g.build({ log: false, on: { [callback]: `(call $log_num2 ${g.lit('size=')} (local.get $size) ${g.lit(' eos=')} (local.get $eos)) (i32.const 0)` } });
}

describe('bodies through the filter chain', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(wat: string | Record<string, string>, handler?: Handler, bodyLimitBytes?: number): Promise<{ gw: TestGateway; upstream: Upstream }> {
    const upstream = await startUpstream(handler);
    cleanup.push(upstream.close);
    const filters = typeof wat === 'string' ? { body: wat } : wat;
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: Object.entries(filters).map(([name, w]) => ({ name, module: wasmFile(w, name) })),
      routes: [{ name: 'all', cluster: 'backend', filters: Object.keys(filters), ...(bodyLimitBytes ? { bodyLimitBytes } : {}) }],
    });
    cleanup.push(gw.close);
    return { gw, upstream };
  }

  const logged = (gw: TestGateway, line: string) => waitFor(() => guestLines(gw.logs).includes(`body: ${line}`), line);

  it('buffers the request body with cumulative sizes and forwards the body the filter set at the end with correct framing', async () => {
    const { gw, upstream } = await setup(bufferingFilter('proxy_on_request_body', 'replaced body!'));
    const reply = await send(`${gw.url}/upload`, {
      method: 'POST', headers: { 'content-length': 11 }, body: ['hello ', 'world'],
      beforeChunk: (i) => (i === 1 ? logged(gw, 'size=6 eos=0') : Promise.resolve()),
    });
    expect(reply.status).toBe(200);
    expect(guestLines(gw.logs)).toEqual(['body: size=6 eos=0', 'body: size=11 eos=0', 'body: size=11 eos=1']);
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0];
    expect(seen.body.toString()).toBe('replaced body!');
    // The client's content-length (11) is gone: chunked, or the new exact length when the body was
    // complete before undici wrote the request head.
    const framing = [seen.headers['content-length'], seen.headers['transfer-encoding']];
    expect([['14', undefined], [undefined, 'chunked']]).toContainEqual(framing);
  });

  it('streams request chunks through a filter that continues, each with its own size', async () => {
    const { gw, upstream } = await setup(streamingFilter('proxy_on_request_body'));
    const reply = await send(`${gw.url}/stream`, {
      method: 'POST', body: ['first ', 'second'],
      beforeChunk: (i) => (i === 1 ? logged(gw, 'size=6 eos=0') : Promise.resolve()),
    });
    expect(reply.status).toBe(200);
    expect(guestLines(gw.logs)).toEqual(['body: size=6 eos=0', 'body: size=6 eos=0', 'body: size=0 eos=1']);
    expect(upstream.requests[0].body.toString()).toBe('first second');
  });

  it('buffers the response body with cumulative sizes and answers the body the filter set with its exact content-length', async () => {
    let gw!: TestGateway;
    const setupDone = setup(bufferingFilter('proxy_on_response_body', 'new response body'), (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 10 });
      res.write('first');
      void logged(gw, 'size=5 eos=0').then(() => res.end('after'));
    });
    gw = (await setupDone).gw;
    const reply = await send(`${gw.url}/download`);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-length']).toBe('17');
    expect(reply.headers['transfer-encoding']).toBe(undefined);
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.body.toString()).toBe('new response body');
    expect(guestLines(gw.logs)).toEqual(['body: size=5 eos=0', 'body: size=10 eos=0', 'body: size=10 eos=1']);
  });

  it('hands the next filter what the previous one held, with its edits, once it continues', async () => {
    const { gw, upstream } = await setup({ first: bufferingFilter('proxy_on_request_body', 'AB'), second: streamingFilter('proxy_on_request_body') });
    const reply = await send(`${gw.url}/upload`, {
      method: 'POST', body: ['hello ', 'world'],
      beforeChunk: (i) => (i === 1 ? waitFor(() => guestLines(gw.logs).includes('first: size=6 eos=0'), 'the first chunk') : Promise.resolve()),
    });
    expect(reply.status).toBe(200);
    expect(guestLines(gw.logs)).toEqual(['first: size=6 eos=0', 'first: size=11 eos=0', 'first: size=11 eos=1', 'second: size=2 eos=1']);
    expect(upstream.requests[0].body.toString()).toBe('AB');
  });

  it('answers a local reply sent from the request body callback instead of the upstream', async () => {
    const g = new Guest();
    const wat = g.build({
      log: false,
      on: {
        proxy_on_request_body: `(if (result i32) (local.get $eos)
          (then (drop (call $proxy_send_local_response (i32.const 400) ${g.lit('')} ${g.lit('bad body')} ${g.lit('')} (i32.const -1))) (i32.const 0))
          (else (i32.const 1)))`,
      },
    });
    const { gw, upstream } = await setup(wat);
    const reply = await send(`${gw.url}/upload`, { method: 'POST', body: ['some ', 'body'] });
    expect(reply.status).toBe(400);
    expect(reply.headers['content-length']).toBe('8');
    expect(reply.body.toString()).toBe('bad body');
    expect(upstream.requests).toHaveLength(0);
    await waitFor(() => gw.logs.some((l) => l.access === true), 'the access log line');
    const access = gw.logs.find((l) => l.access === true)!;
    expect([access.status, access.localReplyBy, access.error]).toEqual([400, 'body', undefined]);
  });

  it('answers a local reply sent from the response body callback instead of the upstream body', async () => {
    const g = new Guest();
    const wat = g.build({
      log: false,
      on: {
        proxy_on_response_body: `(if (result i32) (local.get $eos)
          (then (drop (call $proxy_send_local_response (i32.const 502) ${g.lit('')} ${g.lit('upstream body rejected')} ${g.lit('')} (i32.const -1))) (i32.const 0))
          (else (i32.const 1)))`,
      },
    });
    const { gw } = await setup(wat, (_req, res) => {
      res.writeHead(200, { 'content-length': 6 });
      res.end('secret');
    });
    const reply = await send(`${gw.url}/download`);
    expect(reply.status).toBe(502);
    expect(reply.body.toString()).toBe('upstream body rejected');
  });

  it('ends a request body that has trailers with on_request_trailers instead of a last body callback', async () => {
    const g = new Guest();
    const wat = g.build({
      log: false,
      on: {
        proxy_on_request_body: `(call $log_num2 ${g.lit('size=')} (local.get $size) ${g.lit(' eos=')} (local.get $eos)) (i32.const 0)`,
        proxy_on_request_trailers: `(call $log_num ${g.lit('trailers=')} (local.get $n)) (call $log_header (i32.const 1) ${g.lit('x-sum')}) (i32.const 0)`,
      },
    });
    const { gw, upstream } = await setup(wat);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/upload`, { method: 'POST', agent: false, headers: { trailer: 'x-sum' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.write('data');
      req.addTrailers({ 'x-sum': '42' });
      req.end();
    });
    expect(status).toBe(200);
    expect(guestLines(gw.logs)).toEqual(['body: size=4 eos=0', 'body: trailers=1', 'body: x-sum=42']);
    expect(upstream.requests[0].body.toString()).toBe('data');
  });

  it('accepts a buffered request body exactly at the route limit', async () => {
    const { gw, upstream } = await setup(bufferingFilter('proxy_on_request_body'), undefined, 16);
    const reply = await send(`${gw.url}/upload`, { method: 'POST', headers: { 'content-length': 16 }, body: ['0123456789abcdef'] });
    expect(reply.status).toBe(200);
    expect(upstream.requests[0].body.toString()).toBe('0123456789abcdef');
  });

  it('answers 413 when a filter buffers a request body over the route limit', async () => {
    const { gw, upstream } = await setup(bufferingFilter('proxy_on_request_body'), undefined, 16);
    const reply = await send(`${gw.url}/upload`, { method: 'POST', headers: { 'content-length': 17 }, body: ['0123456789abcdefg'] });
    expect(reply.status).toBe(413);
    expect(reply.headers['content-length']).toBe('18');
    expect(reply.body.toString()).toBe('Payload Too Large\n');
    expect(upstream.requests).toHaveLength(0);
    await waitFor(() => gw.logs.some((l) => l.access === true), 'the access log line');
    expect(gw.logs.find((l) => l.access === true)!.error).toBe('request_payload_too_large');
  });

  it('answers 500 when a filter buffers a response body over the route limit', async () => {
    const { gw } = await setup(bufferingFilter('proxy_on_response_body'), (_req, res) => {
      res.writeHead(200, { 'content-length': 17 });
      res.end('0123456789abcdefg');
    }, 16);
    const reply = await send(`${gw.url}/download`);
    expect(reply.status).toBe(500);
    expect(reply.headers['content-length']).toBe('22');
    expect(reply.body.toString()).toBe('Internal Server Error\n');
    await waitFor(() => gw.logs.some((l) => l.access === true), 'the access log line');
    expect(gw.logs.find((l) => l.access === true)!.error).toBe('response_payload_too_large');
  });

  describe('trailers a filter adds at the end of a body the peer sent without any (Envoy creates the map then)', () => {
    /** Adds trailer x-added: yes to map `map` in the end-of-stream call of `callback`; `buffer`: Pause until then. */
    function trailerAdder(callback: 'proxy_on_request_body' | 'proxy_on_response_body', buffer = false): string {
      const g = new Guest();
      const map = callback === 'proxy_on_request_body' ? 1 : 3;
      return g.build({
        log: false,
        on: {
          [callback]: `(if (result i32) (local.get $eos)
            (then (call $add_header (i32.const ${map}) ${g.lit('x-added')} ${g.lit('yes')}) (i32.const 0))
            (else (i32.const ${buffer ? 1 : 0})))`,
        },
      });
    }

    /** Logs its body calls and, in its trailers callback, the trailer x-added of map `map`. */
    function trailerReader(direction: 'request' | 'response'): string {
      const g = new Guest();
      const map = direction === 'request' ? 1 : 3;
      return g.build({
        log: false,
        on: {
          [`proxy_on_${direction}_body`]: `(call $log_num2 ${g.lit('size=')} (local.get $size) ${g.lit(' eos=')} (local.get $eos)) (i32.const 0)`,
          [`proxy_on_${direction}_trailers`]: `(call $log_header (i32.const ${map}) ${g.lit('x-added')}) (i32.const 0)`,
        },
      });
    }

    const chunked: Handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('streamed');
    };

    it('sends response trailers added in the last body callback of a chunked upstream answer', async () => {
      const { gw } = await setup({ reader: trailerReader('response'), adder: trailerAdder('proxy_on_response_body') }, chunked);
      const reply = await send(`${gw.url}/t`);
      expect([reply.status, reply.body.toString(), reply.trailers]).toEqual([200, 'streamed', { 'x-added': 'yes' }]);
      // Response order: adder first; the reader after it got the data without end of stream, then trailers.
      await waitFor(() => guestLines(gw.logs).includes('reader: x-added=yes'), 'the reader saw the trailer');
      expect(guestLines(gw.logs).filter((l) => l.startsWith('reader:'))).toEqual(['reader: size=8 eos=0', 'reader: x-added=yes']);
    });

    it('sends them chunked when the filter buffered a content-length answer to its end', async () => {
      const { gw } = await setup({ adder: trailerAdder('proxy_on_response_body', true) }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
        res.end('whole');
      });
      const reply = await send(`${gw.url}/t`);
      expect([reply.status, reply.body.toString(), reply.headers['content-length'], reply.headers['transfer-encoding'], reply.trailers])
        .toEqual([200, 'whole', undefined, 'chunked', { 'x-added': 'yes' }]);
    });

    it('sends them after a local reply with a body', async () => {
      const g = new Guest();
      const deny = g.build({ log: false, on: { proxy_on_request_headers: `(drop (call $proxy_send_local_response (i32.const 403) ${g.lit('')} ${g.lit('denied')} ${g.pairs([])} (i32.const -1))) (i32.const 1)` } });
      const { gw, upstream } = await setup({ adder: trailerAdder('proxy_on_response_body'), deny });
      const reply = await send(`${gw.url}/t`);
      expect([reply.status, reply.body.toString(), reply.trailers]).toEqual([403, 'denied', { 'x-added': 'yes' }]);
      expect(upstream.requests).toHaveLength(0);
    });

    it('hands request trailers added at the end of the request body to the later filters (not forwarded upstream)', async () => {
      const { gw, upstream } = await setup({ adder: trailerAdder('proxy_on_request_body'), reader: trailerReader('request') });
      const reply = await send(`${gw.url}/t`, { method: 'POST', headers: { 'content-length': 5 }, body: ['hello'] });
      expect(reply.status).toBe(200);
      await waitFor(() => guestLines(gw.logs).includes('reader: x-added=yes'), 'the reader saw the trailer');
      expect(guestLines(gw.logs).filter((l) => l.startsWith('reader:'))).toEqual(['reader: size=5 eos=0', 'reader: x-added=yes']);
      expect(upstream.requests[0].body.toString()).toBe('hello');
    });
  });
});
