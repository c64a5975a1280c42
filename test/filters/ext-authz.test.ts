/**
 * filters/ext-authz end to end: a real gateway on port 0 runs filters/dist/ext-authz.wasm (built by
 * test/global-setup.ts) in front of a real upstream, with a real authorization server on port 0 as
 * the cluster `authz`, and every behaviour of filters/ext-authz/README.md is checked on the wire,
 * configuration errors included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { filterHarness } from '../helpers/filter-gateway.js';
import type { TestGateway, Upstream } from '../helpers/gateway.js';
import { send } from '../helpers/guests.js';
import { refusingUrl } from '../helpers/http-callouts.js';

const MODULE = 'filters/dist/ext-authz.wasm';
const UNAVAILABLE = { error: 'forbidden', message: 'authorization service unavailable' };

/**
 * The authorization service: answers by the client's Authorization header.
 *   Bearer good        200, x-auth-user: alice (and x-other, which is not forwarded)
 *   Bearer groups      200, x-auth-user: bob and two x-auth-group lines
 *   Bearer anonymous   204 without x-auth-user
 *   Bearer weird       600, a status outside HTTP's range
 *   Bearer slow        200 after 400 ms
 *   Bearer slower      200 after 900 ms
 *   Bearer reset       the connection is destroyed: no answer at all
 *   Bearer no-healthy  503 "no healthy upstream" (what Envoy's router answers for an empty cluster)
 *   Bearer connect     503 "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
 *   Bearer busy        504 "authz backend busy" (the service's own 504)
 *   Bearer plain       403 with an empty body
 *   anything else      401 with a JSON body, its content-type and a www-authenticate header
 */
function authorize(req: IncomingMessage, res: ServerResponse): void {
  const auth = req.headers.authorization ?? '';
  const reply = (status: number, headers: Record<string, string>, body = ''): void => {
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (auth === 'Bearer good') reply(200, { 'x-auth-user': 'alice', 'x-other': 'not forwarded' }, 'ok');
  else if (auth === 'Bearer groups') {
    res.writeHead(200, { 'x-auth-user': 'bob', 'x-auth-group': ['admin', 'dev'], 'content-length': 0 });
    res.end();
  } else if (auth === 'Bearer weird') reply(600, { 'content-type': 'text/plain' }, 'what is this');
  else if (auth === 'Bearer anonymous') reply(204, {});
  else if (auth === 'Bearer slow') setTimeout(() => reply(200, { 'x-auth-user': 'slowpoke' }), 400);
  else if (auth === 'Bearer slower') setTimeout(() => reply(200, { 'x-auth-user': 'slowpoke' }), 900);
  else if (auth === 'Bearer reset') req.socket.destroy();
  else if (auth === 'Bearer no-healthy') reply(503, { 'content-type': 'text/plain' }, 'no healthy upstream');
  else if (auth === 'Bearer connect') {
    reply(503, { 'content-type': 'text/plain' }, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
  } else if (auth === 'Bearer busy') reply(504, { 'content-type': 'text/plain' }, 'authz backend busy');
  else if (auth === 'Bearer plain') reply(403, {});
  else reply(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="api"' }, '{"error":"unauthorized"}');
}

describe('the ext-authz filter', () => {
  const h = filterHarness(MODULE, 'authz-check');

  interface Setup { gw: TestGateway; upstream: Upstream; authz: Upstream }

  /** Gateway → ext-authz (cluster `authz` = the service above, unless `authzUrl`) → upstream. */
  async function setup(configuration: Record<string, unknown>, authzUrl?: string): Promise<Setup> {
    const authz = await h.upstream(authorize);
    const { gw, upstream } = await h.start(configuration, { clusters: [{ name: 'authz', endpoints: [authzUrl ?? authz.url] }] });
    return { gw, upstream, authz };
  }

  /** The filter's log lines (bounded wait: pino writes them asynchronously). */
  async function filterLines(gw: TestGateway, count: number): Promise<Array<[string, string]>> {
    const lines = (): Array<[string, string]> => gw.logs
      .filter((l) => l.source === 'wasm' && l.plugin === 'authz-check')
      .map((l) => [l.wasmLevel as string, l.msg as string]);
    for (let i = 0; i < 100 && lines().length < count; i++) await new Promise((r) => setTimeout(r, 10));
    return lines();
  }

  const base = { cluster: 'authz', path: '/check', headers: ['authorization', 'x-user'], forwardHeaders: ['x-auth-user'] };

  describe('allowed requests', () => {
    it('asks GET <path> on the cluster with the configured request headers only, and lets a 2xx answer through', async () => {
      const { gw, upstream, authz } = await setup(base);
      const reply = await send(`${gw.url}/orders?id=7`, {
        headers: { authorization: 'Bearer good', 'x-user': 'u-1', cookie: 'session=secret', 'x-trace': 't' },
      });
      expect(reply.status).toBe(200);
      expect(authz.requests.map((r) => [r.method, r.url, r.headers.host, r.body.length])).toEqual([['GET', '/check', 'authz', 0]]);
      const asked = authz.requests[0].headers;
      expect([asked.authorization, asked['x-user']]).toEqual(['Bearer good', 'u-1']);
      expect([asked.cookie, asked['x-trace'], asked['x-original-path'], asked['x-original-method']]).toEqual([undefined, undefined, undefined, undefined]);
      expect(upstream.requests.map((r) => [r.method, r.url])).toEqual([['GET', '/orders?id=7']]);
      expect(upstream.requests[0].headers.cookie).toBe('session=secret');
    });

    it('copies the forwardHeaders of a 2xx answer onto the upstream request, replacing the client\'s copies', async () => {
      const { gw, upstream } = await setup(base);
      await send(`${gw.url}/`, { headers: { authorization: 'Bearer good', 'x-auth-user': 'mallory' } });
      const seen = upstream.requests[0].headers;
      expect(seen['x-auth-user']).toBe('alice');
      expect(seen['x-other']).toBeUndefined();
    });

    it('copies every value of a repeated header, to the check request and from the answer', async () => {
      const { gw, upstream, authz } = await setup({ ...base, forwardHeaders: ['x-auth-user', 'x-auth-group'] });
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer groups', 'x-user': ['u-1', 'u-2'] as unknown as string } });
      expect(reply.status).toBe(200);
      expect(authz.requests[0].headers['x-user']).toBe('u-1, u-2');
      expect(upstream.requests[0].headers['x-auth-user']).toBe('bob');
      expect(upstream.requests[0].headers['x-auth-group']).toBe('admin, dev');
    });

    it('removes the client\'s forwardHeaders when the 2xx answer does not carry them', async () => {
      const { gw, upstream } = await setup(base);
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer anonymous', 'x-auth-user': 'mallory' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].headers['x-auth-user']).toBeUndefined();
    });

    it('sends x-original-path and x-original-method when includePath is true', async () => {
      const { gw, authz } = await setup({ ...base, includePath: true });
      await send(`${gw.url}/orders/7?full=1`, { method: 'DELETE', headers: { authorization: 'Bearer good' } });
      const asked = authz.requests[0];
      expect([asked.method, asked.url]).toEqual(['GET', '/check']);
      expect([asked.headers['x-original-path'], asked.headers['x-original-method']]).toEqual(['/orders/7?full=1', 'DELETE']);
    });

    it('holds the request body while it waits and then delivers it intact', async () => {
      const { gw, upstream } = await setup(base);
      const reply = await send(`${gw.url}/upload`, {
        method: 'POST', headers: { authorization: 'Bearer slow', 'content-type': 'text/plain' }, body: ['hello ', 'world'],
      });
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].body.toString()).toBe('hello world');
      expect(upstream.requests[0].headers['x-auth-user']).toBe('slowpoke');
    });
  });

  describe('denied requests', () => {
    it('returns the answer\'s status, body and content-type to the client, and nothing else of it', async () => {
      const { gw, upstream } = await setup(base);
      const reply = await send(`${gw.url}/orders`, { headers: { authorization: 'Bearer wrong' } });
      expect(reply.status).toBe(401);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(reply.body.toString()).toBe('{"error":"unauthorized"}');
      expect(reply.headers['www-authenticate']).toBeUndefined();
      expect(upstream.requests).toEqual([]);
    });

    it('returns an answer without a body or content-type as it is', async () => {
      const { gw, upstream } = await setup(base);
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer plain' } });
      expect(reply.status).toBe(403);
      expect(reply.body.length).toBe(0);
      expect(reply.headers['content-type']).toBeUndefined();
      expect(upstream.requests).toEqual([]);
    });

    it('treats the service\'s own 504 as a denial, not as a timeout', async () => {
      const { gw } = await setup({ ...base, onTimeout: 'allow' });
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer busy' } });
      expect(reply.status).toBe(504);
      expect(reply.body.toString()).toBe('authz backend busy');
    });
  });

  describe('timeouts', () => {
    it('answers 403 with a JSON body when the service does not answer in timeoutMs and onTimeout is deny', async () => {
      const { gw, upstream } = await setup({ ...base, timeoutMs: 100, onTimeout: 'deny', onError: 'allow' });
      const started = Date.now();
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer slow' } });
      expect(Date.now() - started).toBeLessThan(390);
      expect(reply.status).toBe(403);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(JSON.parse(reply.body.toString())).toEqual(UNAVAILABLE);
      expect(upstream.requests).toEqual([]);
      expect(await filterLines(gw, 1)).toEqual([
        ['warn', 'ext-authz: the http call to cluster "authz" timed out after 100 ms; onTimeout: deny'],
      ]);
    });

    it('lets the request through without forwardHeaders when the service times out and onTimeout is allow', async () => {
      const { gw, upstream } = await setup({ ...base, timeoutMs: 100, onTimeout: 'allow', onError: 'deny' });
      const reply = await send(`${gw.url}/a`, { headers: { authorization: 'Bearer slow', 'x-auth-user': 'mallory' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests.map((r) => r.url)).toEqual(['/a']);
      expect(upstream.requests[0].headers['x-auth-user']).toBeUndefined();
      expect(await filterLines(gw, 1)).toEqual([
        ['warn', 'ext-authz: the http call to cluster "authz" timed out after 100 ms; onTimeout: allow'],
      ]);
    });

    it('waits 500 ms and denies by default', async () => {
      const { gw } = await setup({ cluster: 'authz', path: '/check', headers: ['authorization'] });
      const started = Date.now();
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer slower' } });
      const waited = Date.now() - started;
      expect(reply.status).toBe(403);
      expect(JSON.parse(reply.body.toString())).toEqual(UNAVAILABLE);
      expect(waited).toBeGreaterThanOrEqual(490);
      expect(waited).toBeLessThan(890);
      expect(await filterLines(gw, 1)).toEqual([
        ['warn', 'ext-authz: the http call to cluster "authz" timed out after 500 ms; onTimeout: deny'],
      ]);
    });
  });

  describe('failed calls', () => {
    it('answers 403 with a JSON body when the call fails (the service resets the connection) and onError is deny', async () => {
      const { gw, upstream } = await setup({ ...base, onError: 'deny', onTimeout: 'allow' });
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer reset' } });
      expect(reply.status).toBe(403);
      expect(JSON.parse(reply.body.toString())).toEqual(UNAVAILABLE);
      expect(upstream.requests).toEqual([]);
      expect(await filterLines(gw, 1)).toEqual([['warn', 'ext-authz: the http call to cluster "authz" failed (11 reset); onError: deny']]);
    });

    it('lets the request through without forwardHeaders when the call fails and onError is allow', async () => {
      const { gw, upstream } = await setup({ ...base, onError: 'allow' });
      const reply = await send(`${gw.url}/b`, { headers: { authorization: 'Bearer reset', 'x-auth-user': 'mallory' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests.map((r) => [r.url, r.headers['x-auth-user']])).toEqual([['/b', undefined]]);
      expect(await filterLines(gw, 1)).toEqual([['warn', 'ext-authz: the http call to cluster "authz" failed (11 reset); onError: allow']]);
    });

    it('treats a refused connection as a failed call', async () => {
      const { gw, upstream } = await setup(base, await refusingUrl());
      const reply = await send(`${gw.url}/`, { headers: { authorization: 'Bearer good' } });
      expect(reply.status).toBe(403);
      expect(JSON.parse(reply.body.toString())).toEqual(UNAVAILABLE);
      expect(upstream.requests).toEqual([]);
    });

    it('treats Envoy\'s router replies for an unreachable service (503 no healthy upstream, upstream connect error) as failed calls', async () => {
      const denying = await setup(base);
      for (const token of ['no-healthy', 'connect']) {
        const reply = await send(`${denying.gw.url}/`, { headers: { authorization: `Bearer ${token}` } });
        expect(reply.status).toBe(403);
        expect(JSON.parse(reply.body.toString())).toEqual(UNAVAILABLE);
      }
      expect(await filterLines(denying.gw, 2)).toEqual([
        ['warn', 'ext-authz: cluster "authz" gave no usable answer (status 503); onError: deny'],
        ['warn', 'ext-authz: cluster "authz" gave no usable answer (status 503); onError: deny'],
      ]);
      const allowing = await setup({ ...base, onError: 'allow' });
      const reply = await send(`${allowing.gw.url}/c`, { headers: { authorization: 'Bearer no-healthy' } });
      expect(reply.status).toBe(200);
      expect(allowing.upstream.requests.map((r) => r.url)).toEqual(['/c']);
    });

    it('treats an answer with a status outside 200-599 as a failed call', async () => {
      const { gw, upstream } = await setup({ ...base, onError: 'allow' });
      const reply = await send(`${gw.url}/e`, { headers: { authorization: 'Bearer weird' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests.map((r) => r.url)).toEqual(['/e']);
      expect(await filterLines(gw, 1)).toEqual([['warn', 'ext-authz: cluster "authz" gave no usable answer (status 600); onError: allow']]);
    });

    it('follows onError, with a log line, when the host refuses the http call (unknown cluster)', async () => {
      const denying = await setup({ ...base, cluster: 'authz-typo' });
      const denied = await send(`${denying.gw.url}/`, { headers: { authorization: 'Bearer good' } });
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body.toString())).toEqual(UNAVAILABLE);
      expect(denying.authz.requests).toEqual([]);
      expect(denying.upstream.requests).toEqual([]);
      expect(await filterLines(denying.gw, 1)).toEqual([
        ['warn', 'ext-authz: the host refused the http call to cluster "authz-typo" (BAD_ARGUMENT); onError: deny'],
      ]);

      const allowing = await setup({ ...base, cluster: 'authz-typo', onError: 'allow' });
      const allowed = await send(`${allowing.gw.url}/d`, { headers: { authorization: 'Bearer good', 'x-auth-user': 'mallory' } });
      expect(allowed.status).toBe(200);
      expect(allowing.upstream.requests.map((r) => [r.url, r.headers['x-auth-user']])).toEqual([['/d', undefined]]);
      expect(await filterLines(allowing.gw, 1)).toEqual([
        ['warn', 'ext-authz: the host refused the http call to cluster "authz-typo" (BAD_ARGUMENT); onError: allow'],
      ]);
    });
  });

  it('does what the README example says', async () => {
    const { gw, upstream, authz } = await setup({
      cluster: 'authz', path: '/check', timeoutMs: 500, headers: ['authorization', 'x-user'], forwardHeaders: ['x-auth-user'],
      onTimeout: 'deny', onError: 'deny', includePath: true,
    });
    const ok = await send(`${gw.url}/orders/7`, { headers: { authorization: 'Bearer good' } });
    expect(ok.status).toBe(200);
    expect(authz.requests[0].headers['x-original-path']).toBe('/orders/7');
    expect(authz.requests[0].headers['x-original-method']).toBe('GET');
    expect(upstream.requests[0].headers['x-auth-user']).toBe('alice');
    const denied = await send(`${gw.url}/orders/7`, { headers: { authorization: 'Bearer nope' } });
    expect([denied.status, denied.body.toString()]).toEqual([401, '{"error":"unauthorized"}']);
    expect(upstream.requests.length).toBe(1);
  });

  describe('configuration errors refuse the plugin at load', () => {
    const ok = { cluster: 'authz', path: '/check' };
    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"cluster":"authz","path":"/check"}'],
      ['text that is not JSON', '{"cluster": "authz"', 'configuration is not valid JSON: unexpected end of input at line 1, column 20'],
      ['not an object', ['authz'], 'configuration must be a JSON object such as {"cluster":"authz","path":"/check"}, got an array'],
      ['an unknown key', { ...ok, timeout: 5 }, 'unknown key "timeout" (expected cluster, path, timeoutMs, headers, forwardHeaders, onTimeout, onError or includePath)'],
      ['no cluster', { path: '/check' }, '"cluster" is required: the cluster of the authorization service, as in {"cluster":"authz","path":"/check"}'],
      ['an empty cluster', { ...ok, cluster: '' }, '"cluster" must be a non-empty string, got ""'],
      ['a cluster that is not a string', { ...ok, cluster: 7 }, '"cluster" must be a non-empty string, got 7'],
      ['no path', { cluster: 'authz' }, '"path" is required: the path of the check request, as in {"cluster":"authz","path":"/check"}'],
      ['a path without a leading slash', { ...ok, path: 'check' }, '"path" must start with "/", got "check"'],
      ['a path with a space', { ...ok, path: '/check me' }, '"path" has a space, a control character or "#": "/check me"'],
      ['a path that is not a string', { ...ok, path: ['/check'] }, '"path" must be a string starting with "/", got an array'],
      ['a zero timeout', { ...ok, timeoutMs: 0 }, '"timeoutMs" must be a whole number of milliseconds from 1 to 60000, got 0'],
      ['a fractional timeout', { ...ok, timeoutMs: 2.5 }, '"timeoutMs" must be a whole number of milliseconds from 1 to 60000, got 2.5'],
      ['a timeout over a minute', { ...ok, timeoutMs: 60001 }, '"timeoutMs" must be a whole number of milliseconds from 1 to 60000, got 60001'],
      ['a timeout that is a string', { ...ok, timeoutMs: '500' }, '"timeoutMs" must be a whole number of milliseconds from 1 to 60000, got "500"'],
      ['headers that are not an array', { ...ok, headers: 'authorization' }, '"headers" must be an array of header names, got a string'],
      ['a header that is not a string', { ...ok, headers: ['authorization', 1] }, '"headers[1]" must be a header name (a string), got a number'],
      ['an empty header name', { ...ok, forwardHeaders: [''] }, '"forwardHeaders[0]" is an empty header name'],
      ['an invalid header name', { ...ok, headers: ['x user'] }, '"headers[0]" has an invalid header name "x user": names are letters, digits and'],
      ['a pseudo-header', { ...ok, headers: [':path'] }, '"headers[0]" cannot be the pseudo-header ":path"'],
      ['a header the proxy sets', { ...ok, forwardHeaders: ['Content-Length'] }, '"forwardHeaders[0]" cannot be "content-length": the proxy sets it on each message'],
      ['host', { ...ok, headers: ['host'] }, '"headers[0]" cannot be "host": the proxy sets it on each message'],
      ['a header listed twice', { ...ok, headers: ['authorization', 'Authorization'] }, '"headers" lists "authorization" twice'],
      ['an unknown onTimeout policy', { ...ok, onTimeout: 'retry' }, '"onTimeout" must be "deny" or "allow", got "retry"'],
      ['an onError policy that is not a string', { ...ok, onError: false }, '"onError" must be "deny" or "allow", got a boolean'],
      ['includePath that is not a boolean', { ...ok, includePath: 'yes' }, '"includePath" must be true or false, got a string'],
      ['copying x-original-path with includePath', { ...ok, includePath: true, headers: ['x-original-path'] },
        '"headers" cannot copy "x-original-path" or "x-original-method" when "includePath" is true: the filter sets them'],
    ];

    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(`(guest said: ext-authz: ${reason}`);
      });
    }
  });
});
