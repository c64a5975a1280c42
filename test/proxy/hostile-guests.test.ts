/**
 * A filter cannot crash the host: WAT guests hand the gateway every header, status and trailer
 * Node's HTTP writers would throw on, in a real `edge-gateway start` process in front of a real
 * upstream. After each hostile request the process is alive and answers the next request
 * normally, and the hostile request got its documented answer (README "What the host refuses
 * from guests").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, wasmFile, type Upstream } from '../helpers/gateway.js';
import { GatewayProcess, writeConfigFile, type LogLine } from '../helpers/gateway-process.js';
import { Guest, send, type Reply } from '../helpers/guests.js';

const BAD_ARGUMENT = 2;

/** A filter that answers every request with a local reply of `status` and `headers`. */
function localReplyFilter(status: number, headers: ReadonlyArray<readonly [string, string]>): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `(drop (call $proxy_send_local_response (i32.const ${status}) ${g.lit('hostile')} ${g.lit('denied')}
        ${g.pairs(headers)} (i32.const -1))) (i32.const 1)`,
    },
  });
}

/**
 * A filter that runs `write` (a WAT expression giving a hostcall status) in `phase` and reports
 * that status to the client in response header x-ret.
 */
function writeFilter(phase: 'request' | 'response', write: (g: Guest) => string, prelude = ''): string {
  const g = new Guest();
  const report = `(i32.store8 (i32.const 0xA100) (i32.add (i32.const 48) (global.get $ret)))
    (drop (call $proxy_add_header_map_value (i32.const 2) ${g.lit('x-ret')} (i32.const 0xA100) (i32.const 1)))`;
  const act = `${prelude} (global.set $ret ${write(g)})`;
  return g.build({
    log: false,
    extra: '(global $ret (mut i32) (i32.const 9))',
    on: phase === 'request'
      ? { proxy_on_request_headers: `${act} (i32.const 0)`, proxy_on_response_headers: `${report} (i32.const 0)` }
      : { proxy_on_response_headers: `${act} ${report} (i32.const 0)` },
  });
}

const replace = (map: number, name: string, value: string) => (g: Guest) =>
  `(call $proxy_replace_header_map_value (i32.const ${map}) ${g.lit(name)} ${g.lit(value)})`;

/** 2 MiB of 'a' at 0x20000 (memory grown once to hold it) as a request header value. */
const BIG = 2 * 1024 * 1024;
const GROW = `(if (i32.lt_u (memory.size) (i32.const 40)) (then (drop (memory.grow (i32.const 40)))))
  (memory.fill (i32.const 0x20000) (i32.const 97) (i32.const ${BIG}))`;

/** In the end-of-stream response body callback: a trailer with CRLF (refused), then x-ret with its status. */
function trailerFilter(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_response_body: `(if (local.get $eos) (then
        (i32.store8 (i32.const 0xA100) (i32.add (i32.const 48)
          (call $proxy_add_header_map_value (i32.const 3) ${g.lit('x-t')} ${g.lit('a\r\nx-injected: 1')})))
        (drop (call $proxy_add_header_map_value (i32.const 3) ${g.lit('x-ret')} (i32.const 0xA100) (i32.const 1)))))
        (i32.const 0)`,
    },
  });
}

/** Local replies the host cannot send; each costs its request a fail-closed 503. */
const LOCAL_REPLIES: Record<string, [number, Array<[string, string]>]> = {
  'lr-crlf-value': [403, [['x-a', 'a\r\nx-injected: 1']]],
  'lr-crlf-name': [403, [['x-a\r\nx-injected', '1']]],
  'lr-nul': [403, [['x-a', 'a\0b']]],
  'lr-status-99999': [99999, []],
  'lr-status-0': [0, []],
  'lr-status-42': [42, []],
  'lr-pseudo': [403, [[':status', '200']]],
};

/** Header writes the host refuses with BAD_ARGUMENT; the request goes on unchanged. */
const WRITES: Record<string, string> = {
  'status-garbage': writeFilter('response', replace(2, ':status', 'abc')),
  'status-99999': writeFilter('response', replace(2, ':status', '99999')),
  'path-space': writeFilter('request', replace(0, ':path', '/a b')),
  'path-cr': writeFilter('request', replace(0, ':path', '/a\rb')),
  'method-empty': writeFilter('request', replace(0, ':method', '')),
  'authority-crlf': writeFilter('request', replace(0, ':authority', 'evil\r\nx-injected: 1')),
  'name-crlf': writeFilter('request', (g) => `(call $proxy_add_header_map_value (i32.const 0) ${g.lit('x-a\r\nb')} ${g.lit('1')})`),
  'set-pairs-crlf': writeFilter('request', (g) => `(call $proxy_set_header_map_pairs (i32.const 0)
    ${g.pairs([[':method', 'GET'], [':path', '/h/set-pairs-crlf'], ['x-a', '1\r\n2']])})`),
  'big-value': writeFilter('request', (g) => `(call $proxy_add_header_map_value (i32.const 0) ${g.lit('x-big')} (i32.const 0x20000) (i32.const ${BIG}))`, GROW),
  'content-length': writeFilter('response', replace(2, 'content-length', '2, 3')),
};

describe('hostile guest values in a gateway process', () => {
  let upstream: Upstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url!.startsWith('/h/trailer')) {
        // Chunked (no content-length): trailers can follow.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('chunked');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2, 'x-upstream-path': req.url!, 'x-upstream-method': req.method!, 'x-upstream-host': req.headers.host ?? '' });
      res.end('ok');
    });
    const filters: Record<string, { wat: string; policy?: string }> = {
      'lr-valid': { wat: localReplyFilter(403, [['x-a', 'fine']]) },
      'lr-open': { wat: localReplyFilter(99999, []), policy: 'open' },
      trailer: { wat: trailerFilter() },
    };
    for (const [name, [status, headers]] of Object.entries(LOCAL_REPLIES)) filters[name] = { wat: localReplyFilter(status, headers) };
    for (const [name, wat] of Object.entries(WRITES)) filters[name] = { wat };
    gw = await GatewayProcess.start(writeConfigFile({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: Object.entries(filters).map(([name, f]) => ({ name, module: wasmFile(f.wat, name), failurePolicy: f.policy ?? 'closed' })),
      routes: [
        ...Object.keys(filters).map((name) => ({ name, match: { pathPrefix: `/h/${name}` }, cluster: 'backend', filters: [name] })),
        { name: 'ok', cluster: 'backend' },
      ],
    }));
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  /** The access-log line of the request with x-request-id `id`. */
  const accessLine = (id: string): Promise<LogLine> => gw.waitFor((l) => l.access === true && l.requestId === id, `access log ${id}`);

  /** A hostile request, then proof that the process lives and serves the next request normally. */
  async function hostile(name: string): Promise<Reply> {
    const reply = await send(`${gw.url}/h/${name}`, { headers: { 'x-request-id': name } });
    const next = await send(`${gw.url}/ok`);
    expect(next.status).toBe(200);
    expect(next.body.toString()).toBe('ok');
    expect(gw.alive()).toBe(true);
    return reply;
  }

  it('sends a valid local reply as the filter gave it (the checks refuse only what cannot be sent)', async () => {
    const reply = await hostile('lr-valid');
    expect(reply.status).toBe(403);
    expect(reply.headers['x-a']).toBe('fine');
    expect(reply.body.toString()).toBe('denied');
  });

  for (const name of Object.keys(LOCAL_REPLIES)) {
    it(`refuses the local reply ${name} and answers the fail-closed 503, naming the filter in the log`, async () => {
      const reply = await hostile(name);
      expect(reply.status).toBe(503);
      expect(reply.body.length).toBe(0);
      expect(reply.headers['x-injected']).toBeUndefined();
      const line = await accessLine(name);
      expect(line).toMatchObject({ status: 503, failedFilter: name, error: 'wasm_fail_stream' });
      const notice = await gw.waitFor((l) => l.plugin === name && l.msg.startsWith('proxy_send_local_response refused'), `refusal of ${name}`);
      expect(notice.level).toBe('warn');
    });
  }

  it('passes over a fail-open filter whose local reply was refused: the upstream answers', async () => {
    const reply = await hostile('lr-open');
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('ok');
    expect(await accessLine('lr-open')).toMatchObject({ status: 200, failedFilter: 'lr-open' });
  });

  for (const name of Object.keys(WRITES)) {
    it(`answers BAD_ARGUMENT to the header write ${name} and leaves the request and response as they were`, async () => {
      const reply = await hostile(name);
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('ok');
      expect(reply.headers['x-ret']).toBe(String(BAD_ARGUMENT));
      expect(reply.headers['x-injected']).toBeUndefined();
      expect(reply.headers['content-length']).toBe('2');
      // What the upstream received is the client's request, untouched by the refused write.
      expect(reply.headers['x-upstream-path']).toBe(`/h/${name}`);
      expect(reply.headers['x-upstream-method']).toBe('GET');
      expect(reply.headers['x-upstream-host']).toBe(new URL(gw.url).host);
      expect(upstream.requests.at(-2)!.headers['x-big']).toBeUndefined();
      expect(await accessLine(name)).toMatchObject({ status: 200 });
    });
  }

  it('refuses a trailer with CRLF, and sends the trailer the filter added at the end of a body that had none', async () => {
    const reply = await hostile('trailer');
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('chunked');
    expect(reply.trailers).toEqual({ 'x-ret': String(BAD_ARGUMENT) });
  });

  it('logged no write failure: every hostile value was stopped where it entered', () => {
    expect(gw.lines.filter((l) => l.msg.startsWith('response write failed'))).toEqual([]);
    expect(gw.alive()).toBe(true);
  });
});
