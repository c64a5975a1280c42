/**
 * filters/cors end to end: a real gateway on port 0 runs filters/dist/cors.wasm (built by
 * test/global-setup.ts) in front of a real upstream, and every behaviour of filters/cors/README.md
 * is checked on the wire, configuration errors included.
 */
import { describe, expect, it } from 'vitest';
import { answerOkAndEcho, filterHarness, type FilterGateway } from '../helpers/filter-gateway.js';
import type { TestGateway } from '../helpers/gateway.js';
import { send, type Reply } from '../helpers/guests.js';

const MODULE = 'filters/dist/cors.wasm';

/** The README's example. */
const CONFIG = {
  allowOrigins: ['https://app.example.com'],
  allowOriginPatterns: ['*.example.com'],
  allowMethods: ['GET', 'POST'],
  allowHeaders: ['content-type', 'authorization'],
  exposeHeaders: ['x-request-id'],
  allowCredentials: true,
  maxAge: 600,
};

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';

describe('the cors filter', () => {
  const h = filterHarness(MODULE, 'cors');

  function setup(configuration: unknown, upstreamHeaders: Record<string, string | string[]> = {}): Promise<FilterGateway> {
    return h.start(configuration, { handler: answerOkAndEcho(upstreamHeaders) });
  }

  function preflight(gw: TestGateway, origin: string, method: string, requestHeaders?: string): Promise<Reply> {
    const headers: Record<string, string> = { origin, 'access-control-request-method': method };
    if (requestHeaders !== undefined) headers['access-control-request-headers'] = requestHeaders;
    return send(`${gw.url}/api/items`, { method: 'OPTIONS', headers });
  }

  /** Every access-control-* and vary header of a reply, lower-cased names, in wire order. */
  function corsHeaders(reply: Reply): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 0; i < reply.rawHeaders.length; i += 2) {
      const name = reply.rawHeaders[i].toLowerCase();
      if (name.startsWith('access-control-') || name === 'vary') out.push([name, reply.rawHeaders[i + 1]]);
    }
    return out;
  }

  describe('preflight requests', () => {
    it('answers an allowed preflight itself with 204 and the configured headers, without calling the upstream', async () => {
      const { gw, upstream } = await setup(CONFIG);
      const reply = await preflight(gw, 'https://app.example.com', 'POST', 'content-type,authorization');
      expect(reply.status).toBe(204);
      expect(reply.body.length).toBe(0);
      expect(corsHeaders(reply)).toEqual([
        ['access-control-allow-origin', 'https://app.example.com'],
        ['access-control-allow-methods', 'GET, POST'],
        ['access-control-allow-headers', 'content-type, authorization'],
        ['access-control-max-age', '600'],
        ['access-control-allow-credentials', 'true'],
        ['vary', PREFLIGHT_VARY],
      ]);
      expect(upstream.requests).toEqual([]);
    });

    it('echoes only the requested headers that are allowed, lower-cased', async () => {
      const { gw } = await setup(CONFIG);
      const reply = await preflight(gw, 'https://app.example.com', 'GET', 'X-Custom, Content-Type ,\tAuthorization');
      expect(reply.status).toBe(204);
      expect(reply.headers['access-control-allow-headers']).toBe('content-type, authorization');
    });

    it('sends no Access-Control-Allow-Headers when no header is requested or none of them is allowed', async () => {
      const { gw } = await setup(CONFIG);
      const none = await preflight(gw, 'https://app.example.com', 'GET');
      const unknown = await preflight(gw, 'https://app.example.com', 'GET', 'x-custom, x-other');
      expect([none.status, unknown.status]).toEqual([204, 204]);
      expect(none.headers['access-control-allow-headers']).toBeUndefined();
      expect(unknown.headers['access-control-allow-headers']).toBeUndefined();
      expect(unknown.headers['access-control-allow-origin']).toBe('https://app.example.com');
    });

    it('allows the subdomains a pattern names, with the scheme and port it names', async () => {
      const { gw } = await setup({ allowOriginPatterns: ['*.example.com', 'https://*.partner.net:8443'] });
      const status = async (origin: string): Promise<number> => (await preflight(gw, origin, 'GET')).status;
      expect(await status('https://api.example.com')).toBe(204);
      expect(await status('http://a.b.example.com')).toBe(204);
      expect(await status('https://a.partner.net:8443')).toBe(204);
      // The bare domain, look-alikes, other ports, other schemes, user info.
      expect(await status('https://example.com')).toBe(403);
      expect(await status('https://evilexample.com')).toBe(403);
      expect(await status('https://api.example.com.evil.net')).toBe(403);
      expect(await status('https://api.example.com:8443')).toBe(403);
      expect(await status('http://a.partner.net:8443')).toBe(403);
      expect(await status('https://a.partner.net')).toBe(403);
      expect(await status('https://evil.net@a.example.com')).toBe(403);
      const reply = await preflight(gw, 'https://api.example.com', 'GET');
      expect(reply.headers['access-control-allow-origin']).toBe('https://api.example.com');
    });

    it('compares origins with the configured entries lower-cased, and answers with the request\'s origin', async () => {
      const { gw } = await setup({ allowOrigins: ['HTTPS://App.Example.COM:8443'] });
      const reply = await preflight(gw, 'https://app.example.com:8443', 'GET');
      expect(reply.status).toBe(204);
      expect(reply.headers['access-control-allow-origin']).toBe('https://app.example.com:8443');
      expect((await preflight(gw, 'https://app.example.com', 'GET')).status).toBe(403);
    });

    it('answers "*" for any origin when allowOrigins is ["*"], with the defaults for everything else', async () => {
      const { gw } = await setup({ allowOrigins: ['*'] });
      const reply = await preflight(gw, 'https://anyone.test', 'HEAD', 'content-type');
      expect(reply.status).toBe(204);
      expect(corsHeaders(reply)).toEqual([
        ['access-control-allow-origin', '*'],
        ['access-control-allow-methods', 'GET, HEAD, POST'],
        ['vary', PREFLIGHT_VARY],
      ]);
    });

    it('sends Access-Control-Max-Age: 0 when maxAge is 0', async () => {
      const { gw } = await setup({ allowOrigins: ['https://app.example.com'], maxAge: 0 });
      expect((await preflight(gw, 'https://app.example.com', 'GET')).headers['access-control-max-age']).toBe('0');
    });

    it('refuses a preflight from an origin that is not allowed with 403, a JSON body and no CORS headers', async () => {
      const { gw, upstream } = await setup(CONFIG);
      const reply = await preflight(gw, 'https://evil.test', 'GET', 'content-type');
      expect(reply.status).toBe(403);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(JSON.parse(reply.body.toString())).toEqual({ error: 'forbidden', message: 'CORS preflight refused: origin not allowed' });
      expect(corsHeaders(reply)).toEqual([]);
      expect(upstream.requests).toEqual([]);
    });

    it('refuses a preflight for a method that is not allowed (compared case-sensitively) with 403 and no CORS headers', async () => {
      const { gw, upstream } = await setup(CONFIG);
      for (const method of ['DELETE', 'post']) {
        const reply = await preflight(gw, 'https://app.example.com', method);
        expect(reply.status).toBe(403);
        expect(JSON.parse(reply.body.toString())).toEqual({ error: 'forbidden', message: 'CORS preflight refused: method not allowed' });
        expect(corsHeaders(reply)).toEqual([]);
      }
      expect(upstream.requests).toEqual([]);
    });

    it('forwards an OPTIONS request without Access-Control-Request-Method: it is not a preflight', async () => {
      const { gw, upstream } = await setup(CONFIG);
      const reply = await send(`${gw.url}/api/items`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests.map((r) => [r.method, r.url])).toEqual([['OPTIONS', '/api/items']]);
      expect(reply.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(reply.headers['access-control-allow-methods']).toBeUndefined();
    });
  });

  describe('actual requests', () => {
    it('adds Allow-Origin, Expose-Headers, Allow-Credentials and appends Vary: Origin for an allowed origin', async () => {
      const { gw, upstream } = await setup(CONFIG, { vary: 'Accept-Encoding', 'x-request-id': 'r-1' });
      const reply = await send(`${gw.url}/api/items`, {
        method: 'POST', headers: { origin: 'https://app.example.com', 'content-type': 'text/plain' }, body: ['hello'],
      });
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('okhello');
      expect(corsHeaders(reply)).toEqual([
        ['vary', 'Accept-Encoding'],
        ['access-control-allow-origin', 'https://app.example.com'],
        ['access-control-expose-headers', 'x-request-id'],
        ['access-control-allow-credentials', 'true'],
        ['vary', 'Origin'],
      ]);
      expect(upstream.requests[0].headers.origin).toBe('https://app.example.com');
      expect(upstream.requests[0].body.toString()).toBe('hello');
    });

    it('answers an origin matching a pattern with that origin', async () => {
      const { gw } = await setup(CONFIG);
      const reply = await send(`${gw.url}/`, { headers: { origin: 'https://api.example.com' } });
      expect(reply.headers['access-control-allow-origin']).toBe('https://api.example.com');
    });

    it('answers "*" when any origin is allowed, and leaves out the headers that are not configured', async () => {
      const { gw } = await setup({ allowOrigins: ['*'] });
      const reply = await send(`${gw.url}/`, { headers: { origin: 'https://anyone.test' } });
      expect(corsHeaders(reply)).toEqual([['access-control-allow-origin', '*'], ['vary', 'Origin']]);
    });

    it('keeps a Vary that already names Origin, or is "*", instead of adding another', async () => {
      const names = await setup(CONFIG, { vary: 'accept-encoding, ORIGIN' });
      const star = await setup(CONFIG, { vary: '*' });
      const a = await send(`${names.gw.url}/`, { headers: { origin: 'https://app.example.com' } });
      const b = await send(`${star.gw.url}/`, { headers: { origin: 'https://app.example.com' } });
      expect(corsHeaders(a).filter(([n]) => n === 'vary')).toEqual([['vary', 'accept-encoding, ORIGIN']]);
      expect(corsHeaders(b).filter(([n]) => n === 'vary')).toEqual([['vary', '*']]);
    });

    it('replaces the upstream\'s own CORS headers for an allowed origin, and removes those it does not configure', async () => {
      const upstreamCors = {
        'access-control-allow-origin': 'https://elsewhere.test',
        'access-control-expose-headers': 'x-secret',
        'access-control-allow-credentials': 'true',
      };
      const full = await setup(CONFIG, upstreamCors);
      const bare = await setup({ allowOrigins: ['https://app.example.com'] }, upstreamCors);
      const a = await send(`${full.gw.url}/`, { headers: { origin: 'https://app.example.com' } });
      const b = await send(`${bare.gw.url}/`, { headers: { origin: 'https://app.example.com' } });
      expect(corsHeaders(a)).toEqual([
        ['access-control-allow-origin', 'https://app.example.com'],
        ['access-control-expose-headers', 'x-request-id'],
        ['access-control-allow-credentials', 'true'],
        ['vary', 'Origin'],
      ]);
      expect(corsHeaders(b)).toEqual([['access-control-allow-origin', 'https://app.example.com'], ['vary', 'Origin']]);
    });

    it('gives an origin that is not allowed no CORS headers (the upstream\'s are removed), but Vary: Origin', async () => {
      const { gw, upstream } = await setup(CONFIG, { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true' });
      const reply = await send(`${gw.url}/data`, { headers: { origin: 'https://evil.test' } });
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('ok');
      expect(corsHeaders(reply)).toEqual([['vary', 'Origin']]);
      expect(upstream.requests.map((r) => r.url)).toEqual(['/data']);
    });

    it('leaves a request without Origin and its response untouched', async () => {
      const { gw, upstream } = await setup(CONFIG, { 'access-control-allow-origin': 'https://elsewhere.test', vary: 'accept' });
      const reply = await send(`${gw.url}/x`, { headers: { 'access-control-request-method': 'PUT' } });
      expect(reply.status).toBe(200);
      expect(corsHeaders(reply)).toEqual([['access-control-allow-origin', 'https://elsewhere.test'], ['vary', 'accept']]);
      expect(upstream.requests[0].headers['access-control-request-method']).toBe('PUT');
    });

    it('does not treat an OPTIONS request without Origin as a preflight', async () => {
      const { gw, upstream } = await setup(CONFIG);
      const reply = await send(`${gw.url}/x`, { method: 'OPTIONS', headers: { 'access-control-request-method': 'PUT' } });
      expect(reply.status).toBe(200);
      expect(corsHeaders(reply)).toEqual([]);
      expect(upstream.requests.map((r) => r.method)).toEqual(['OPTIONS']);
    });
  });

  it('does what the README example says', async () => {
    const { gw, upstream } = await setup(CONFIG, { 'x-request-id': 'r-9' });
    const pre = await preflight(gw, 'https://app.example.com', 'POST', 'content-type');
    expect(pre.status).toBe(204);
    expect(corsHeaders(pre)).toEqual([
      ['access-control-allow-origin', 'https://app.example.com'],
      ['access-control-allow-methods', 'GET, POST'],
      ['access-control-allow-headers', 'content-type'],
      ['access-control-max-age', '600'],
      ['access-control-allow-credentials', 'true'],
      ['vary', PREFLIGHT_VARY],
    ]);
    const actual = await send(`${gw.url}/api/items`, { method: 'POST', headers: { origin: 'https://api.example.com' }, body: ['{}'] });
    expect(actual.status).toBe(200);
    expect(corsHeaders(actual)).toEqual([
      ['access-control-allow-origin', 'https://api.example.com'],
      ['access-control-expose-headers', 'x-request-id'],
      ['access-control-allow-credentials', 'true'],
      ['vary', 'Origin'],
    ]);
    expect(upstream.requests.map((r) => [r.method, r.url])).toEqual([['POST', '/api/items']]);
  });

  it('answers preflights before a later filter runs, and adds its headers to that filter\'s local replies', async () => {
    const { gw, upstream } = await h.start(CONFIG, {
      plugins: [{ name: 'deny', module: 'filters/dist/deny.wasm' }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['cors', 'deny'] }],
    });
    // filters/examples/deny.wat answers 403 for paths under /admin.
    const pre = await send(`${gw.url}/admin/users`, {
      method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    expect(pre.status).toBe(204);
    const denied = await send(`${gw.url}/admin/users`, { headers: { origin: 'https://app.example.com' } });
    expect(denied.status).toBe(403);
    expect(denied.headers['x-denied-by']).toBe('deny');
    expect(corsHeaders(denied)).toEqual([
      ['access-control-allow-origin', 'https://app.example.com'],
      ['access-control-expose-headers', 'x-request-id'],
      ['access-control-allow-credentials', 'true'],
      ['vary', 'Origin'],
    ]);
    expect(upstream.requests).toEqual([]);
  });

  describe('configuration errors refuse the plugin at load', () => {
    const origin = { allowOrigins: ['https://app.example.com'] };
    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"allowOrigins":["https://app.example.com"]}'],
      ['text that is not JSON', '{"allowOrigins": [', 'configuration is not valid JSON: unexpected end of input at line 1, column 19'],
      ['not an object', ['https://app.example.com'], 'configuration must be a JSON object such as {"allowOrigins":["https://app.example.com"]}, got an array'],
      ['a configuration that allows no origin', { allowMethods: ['GET'] }, 'configuration allows no origin; expected "allowOrigins" and/or "allowOriginPatterns"'],
      ['empty origin lists', { allowOrigins: [], allowOriginPatterns: [] }, 'configuration allows no origin'],
      ['an unknown key', { ...origin, allowOrigin: ['x'] }, 'unknown key "allowOrigin" (expected allowOrigins, allowOriginPatterns, allowMethods, allowHeaders, exposeHeaders, allowCredentials or maxAge)'],
      ['origins that are not an array', { allowOrigins: 'https://app.example.com' }, '"allowOrigins" must be an array of strings, got a string'],
      ['an origin that is not a string', { allowOrigins: ['https://a.test', 7] }, '"allowOrigins[1]" must be a string, got a number'],
      ['an empty origin', { allowOrigins: [''] }, '"allowOrigins[0]" is empty'],
      ['an origin listed twice', { allowOrigins: ['https://a.test', 'https://A.test'] }, '"allowOrigins" lists "https://A.test" twice'],
      ['an origin with a path', { allowOrigins: ['https://app.example.com/'] },
        '"allowOrigins[0]" must be an origin such as "https://app.example.com" or "*", got "https://app.example.com/": it has "/" in its host'],
      ['an origin without a scheme', { allowOrigins: ['app.example.com'] }, '"allowOrigins[0]" must be an origin such as "https://app.example.com" or "*", got "app.example.com": it must start with a scheme'],
      ['an origin with a bad port', { allowOrigins: ['https://app.example.com:99999'] },
        '"allowOrigins[0]" must be an origin such as "https://app.example.com" or "*", got "https://app.example.com:99999": it has an invalid port'],
      ['the "null" origin', { allowOrigins: ['null'] }, '"allowOrigins[0]" must be an origin such as "https://app.example.com" or "*", got "null"'],
      ['"*" with credentials', { allowOrigins: ['*'], allowCredentials: true },
        '"allowOrigins" cannot contain "*" when "allowCredentials" is true: browsers refuse a wildcard origin on requests with credentials; list the origins instead'],
      ['a pattern without "*."', { allowOriginPatterns: ['example.com'] }, '"allowOriginPatterns[0]" "example.com" must start with "*." (after an optional scheme), as in "*.example.com"'],
      ['a pattern with "*" inside', { allowOriginPatterns: ['*.*.example.com'] }, '"allowOriginPatterns[0]" "*.*.example.com" may have "*" only as its first label'],
      ['a pattern with a path', { allowOriginPatterns: ['*.example.com/app'] }, '"allowOriginPatterns[0]" "*.example.com/app" has "/" in its host'],
      ['a pattern with a bad scheme', { allowOriginPatterns: ['1x://*.example.com'] }, '"allowOriginPatterns[0]" "1x://*.example.com" has an invalid scheme'],
      ['methods that are not an array', { ...origin, allowMethods: 'GET' }, '"allowMethods" must be an array of strings, got a string'],
      ['an empty method list', { ...origin, allowMethods: [] }, '"allowMethods" is empty: list the methods cross-origin requests may use'],
      ['an invalid method', { ...origin, allowMethods: ['GET', 'PO ST'] }, '"allowMethods[1]" has an invalid method "PO ST"'],
      ['a wildcard method', { ...origin, allowMethods: ['*'] }, '"allowMethods[0]" is "*": wildcards are not supported, list each method'],
      ['an invalid allowed header', { ...origin, allowHeaders: ['content type'] }, '"allowHeaders[0]" has an invalid header name "content type"'],
      ['a wildcard exposed header', { ...origin, exposeHeaders: ['*'] }, '"exposeHeaders[0]" is "*": wildcards are not supported, list each header name'],
      ['a header listed twice', { ...origin, allowHeaders: ['x-a', 'X-A'] }, '"allowHeaders" lists "X-A" twice'],
      ['credentials that are not a boolean', { ...origin, allowCredentials: 'yes' }, '"allowCredentials" must be true or false, got a string'],
      ['a negative maxAge', { ...origin, maxAge: -1 }, '"maxAge" must be a whole number of seconds from 0 to 86400, got -1'],
      ['a fractional maxAge', { ...origin, maxAge: 1.5 }, '"maxAge" must be a whole number of seconds from 0 to 86400, got 1.5'],
      ['a maxAge over a day', { ...origin, maxAge: 86401 }, '"maxAge" must be a whole number of seconds from 0 to 86400, got 86401'],
      ['a maxAge that is a string', { ...origin, maxAge: '600' }, '"maxAge" must be a whole number of seconds from 0 to 86400, got "600"'],
    ];

    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(`(guest said: cors: ${reason}`);
      });
    }
  });
});
