/**
 * filters/headers end to end: a real gateway on port 0 runs filters/dist/headers.wasm (built by
 * test/global-setup.ts) in front of a real upstream, and every behaviour of
 * filters/headers/README.md is checked on the wire, configuration errors included.
 */
import { describe, expect, it } from 'vitest';
import { answerOkAndEcho, filterHarness, type FilterGateway } from '../helpers/filter-gateway.js';
import { send } from '../helpers/guests.js';

const MODULE = 'filters/dist/headers.wasm';

describe('the headers filter', () => {
  const h = filterHarness(MODULE, 'headers');

  function setup(configuration: unknown, upstreamHeaders: Record<string, string | string[]> = {}): Promise<FilterGateway> {
    return h.start(configuration, { handler: answerOkAndEcho(upstreamHeaders) });
  }

  /** Raw [name, value] pairs, lower-cased, in wire order, for the names given. */
  function pairs(raw: string[], names: string[]): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 0; i < raw.length; i += 2) if (names.includes(raw[i].toLowerCase())) out.push([raw[i].toLowerCase(), raw[i + 1]]);
    return out;
  }

  describe('request headers', () => {
    it('add appends values, keeping the ones the client sent', async () => {
      const { gw, upstream } = await setup({ request: { add: { 'x-tag': ['edge', 'public'], 'x-one': 'only' } } });
      const reply = await send(`${gw.url}/a`, { headers: { 'x-tag': 'client' } });
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].headers['x-tag']).toBe('client, edge, public');
      expect(upstream.requests[0].headers['x-one']).toBe('only');
    });

    it('set replaces what the client sent, or adds the header when absent', async () => {
      const { gw, upstream } = await setup({ request: { set: { 'x-user': 'anonymous', 'x-edge': 'true' } } });
      await send(`${gw.url}/a`, { headers: { 'x-user': 'admin' } });
      expect(upstream.requests[0].headers['x-user']).toBe('anonymous');
      expect(upstream.requests[0].headers['x-edge']).toBe('true');
    });

    it('remove drops every value of each name; absent names are fine', async () => {
      const { gw, upstream } = await setup({ request: { remove: ['x-internal-debug', 'x-not-there'] } });
      await send(`${gw.url}/a`, { headers: { 'x-internal-debug': '1', 'x-keep': 'yes' } });
      expect(upstream.requests[0].headers['x-internal-debug']).toBeUndefined();
      expect(upstream.requests[0].headers['x-keep']).toBe('yes');
    });

    it('rename moves every value to the new name, replacing what the new name had', async () => {
      const { gw, upstream } = await setup({ request: { rename: { 'x-client-id': 'x-consumer-id' } } });
      // Two x-client-id lines, and an x-consumer-id the client made up.
      const headers = { 'x-client-id': ['1', '2'], 'x-consumer-id': 'forged' } as unknown as Record<string, string>;
      expect((await send(`${gw.url}/a`, { headers })).status).toBe(200);
      const seen = upstream.requests[0].headers;
      expect(seen['x-client-id']).toBeUndefined();
      expect(seen['x-consumer-id']).toBe('1, 2');
    });

    it('rename leaves the headers alone when the old name is absent', async () => {
      const { gw, upstream } = await setup({ request: { rename: { 'x-client-id': 'x-consumer-id' } } });
      await send(`${gw.url}/a`, { headers: { 'x-consumer-id': 'kept' } });
      expect(upstream.requests[0].headers['x-consumer-id']).toBe('kept');
      expect(Object.keys(upstream.requests[0].headers)).not.toContain('x-client-id');
    });

    it('applies rename, remove, set and add in that order', async () => {
      const { gw, upstream } = await setup({
        request: {
          add: { 'x-b': 'added' },
          set: { 'x-b': 'set' },
          remove: ['x-b', 'x-c'],
          rename: { 'x-a': 'x-c' },
        },
      });
      // rename x-a → x-c, then remove x-b and x-c (so the renamed value goes too), set x-b, add x-b.
      await send(`${gw.url}/a`, { headers: { 'x-a': 'from-a', 'x-b': 'client' } });
      const seen = upstream.requests[0].headers;
      expect(seen['x-a']).toBeUndefined();
      expect(seen['x-c']).toBeUndefined();
      expect(seen['x-b']).toBe('set, added');
    });

    it('sends numbers as written and booleans as true/false, under lower-cased names', async () => {
      const { gw, upstream } = await setup({ request: { set: { 'X-Api-Version': 2, 'x-ratio': 1.5, 'x-edge': true, 'x-big': 1e21 } } });
      await send(`${gw.url}/a`);
      const seen = upstream.requests[0].headers;
      expect([seen['x-api-version'], seen['x-ratio'], seen['x-edge'], seen['x-big']]).toEqual(['2', '1.5', 'true', '1e+21']);
    });

    it('changes nothing else: method, path, other headers and the body reach the upstream intact', async () => {
      const { gw, upstream } = await setup({ request: { set: { 'x-a': '1' } } });
      const reply = await send(`${gw.url}/path?q=1`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-other': 'o' }, body: ['hello'] });
      const seen = upstream.requests[0];
      expect([seen.method, seen.url, seen.headers['x-other'], seen.body.toString()]).toEqual(['POST', '/path?q=1', 'o', 'hello']);
      expect(reply.body.toString()).toBe('okhello');
    });
  });

  describe('response headers', () => {
    it('rename, remove, set and add work on the response the client gets', async () => {
      const { gw } = await setup({
        response: {
          rename: { 'x-upstream-id': 'x-request-ref' },
          remove: ['server', 'x-powered-by'],
          set: { 'cache-control': 'no-store' },
          add: { 'x-served-by': 'edge-gateway', vary: 'x-tenant' },
        },
      }, { server: 'upstream/1.0', 'x-powered-by': 'node', 'x-upstream-id': 'u-7', 'cache-control': 'max-age=60', vary: 'accept' });
      const reply = await send(`${gw.url}/a`);
      expect(reply.status).toBe(200);
      expect(reply.headers.server).toBeUndefined();
      expect(reply.headers['x-powered-by']).toBeUndefined();
      expect(reply.headers['x-upstream-id']).toBeUndefined();
      expect(reply.headers['x-request-ref']).toBe('u-7');
      expect(reply.headers['cache-control']).toBe('no-store');
      expect(reply.headers['x-served-by']).toBe('edge-gateway');
      expect(pairs(reply.rawHeaders, ['vary'])).toEqual([['vary', 'accept'], ['vary', 'x-tenant']]);
      expect(reply.body.toString()).toBe('ok');
    });

    it('leaves the request alone when only the response is configured, and the reverse', async () => {
      const { gw, upstream } = await setup({ response: { set: { 'x-r': 'r' } } });
      const reply = await send(`${gw.url}/a`, { headers: { 'x-r': 'client' } });
      expect(upstream.requests[0].headers['x-r']).toBe('client');
      expect(reply.headers['x-r']).toBe('r');
    });
  });

  it('does what the README example says', async () => {
    const { gw, upstream } = await setup({
      request: {
        rename: { 'x-client-id': 'x-consumer-id' },
        remove: ['x-internal-debug', 'x-forwarded-user'],
        set: { 'x-edge': 'true', 'x-api-version': 2 },
        add: { 'x-tag': ['edge', 'public'] },
      },
      response: {
        remove: ['server', 'x-powered-by'],
        set: { 'strict-transport-security': 'max-age=31536000' },
        add: { 'x-served-by': 'edge-gateway' },
      },
    }, { server: 'upstream/1.0', 'x-powered-by': 'node' });
    const reply = await send(`${gw.url}/`, { headers: { 'x-client-id': '42', 'x-internal-debug': '1' } });
    const seen = upstream.requests[0].headers;
    expect([seen['x-consumer-id'], seen['x-edge'], seen['x-api-version'], seen['x-tag']]).toEqual(['42', 'true', '2', 'edge, public']);
    expect([seen['x-client-id'], seen['x-internal-debug'], seen['x-forwarded-user']]).toEqual([undefined, undefined, undefined]);
    expect([reply.headers.server, reply.headers['x-powered-by']]).toEqual([undefined, undefined]);
    expect(reply.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(reply.headers['x-served-by']).toBe('edge-gateway');
  });

  describe('configuration errors refuse the plugin at load', () => {
    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"request":{"set":{"x-a":"1"}}}'],
      ['only whitespace', ' \n ', 'configuration is empty'],
      ['text that is not JSON', '{"request": {"set": {"x-a": "1"}}', 'configuration is not valid JSON: unexpected end of input at line 1, column 34'],
      ['not an object', ['x'], 'configuration must be a JSON object such as {"request":{"set":{"x-a":"1"}}}, got an array'],
      ['nothing to do', { request: {}, response: { add: {} } }, 'configuration changes no header'],
      ['an unknown key', { requests: { set: { 'x-a': '1' } } }, 'unknown key "requests" (expected "request" or "response")'],
      ['a section that is not an object', { request: 'x-a' }, '"request" must be an object, got a string'],
      ['an unknown operation', { request: { append: { 'x-a': '1' } } }, 'unknown operation "request.append" (expected add, set, remove or rename)'],
      ['remove that is not an array', { request: { remove: { 'x-a': true } } }, '"request.remove" must be an array of header names, got an object'],
      ['remove of a non-string', { response: { remove: ['x-a', 7] } }, '"response.remove[1]" must be a header name (a string), got a number'],
      ['set that is not an object', { request: { set: ['x-a'] } }, '"request.set" must be an object of header names to values, got an array'],
      ['a value that is an object', { request: { set: { 'x-a': {} } } }, '"request.set.x-a" must be a string, a number or a boolean, got an object'],
      ['an add value of the wrong kind', { request: { add: { 'x-a': null } } }, '"request.add.x-a" must be a string, a number or a boolean, got null or an array of them'],
      ['an add list item of the wrong kind', { request: { add: { 'x-a': ['1', []] } } }, '"request.add.x-a[1]" must be a string, a number or a boolean, got an array'],
      ['a value with a line break', { request: { set: { 'x-a': 'one\r\nx-b: two' } } }, 'the value of "request.set.x-a" contains a control character'],
      ['an invalid header name', { request: { set: { 'x a': '1' } } }, '"request.set" has an invalid header name "x a": names are letters, digits and'],
      ['an empty header name', { request: { remove: [''] } }, '"request.remove" has an empty header name'],
      ['a pseudo-header', { request: { set: { ':path': '/admin' } } }, '"request.set" cannot change the pseudo-header ":path"'],
      ['a framing header', { response: { remove: ['Content-Length'] } }, '"response.remove" cannot change "content-length": it controls message framing'],
      ['a rename target that is not a string', { request: { rename: { 'x-a': 1 } } }, '"request.rename.x-a" must be the new header name (a string), got a number'],
      ['a rename to the same name', { request: { rename: { 'x-a': 'X-A' } } }, '"request.rename.x-a" renames a header to itself'],
    ];

    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(`(guest said: headers: ${reason}`);
      });
    }
  });
});
