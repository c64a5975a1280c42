/**
 * filters/api-key end to end: a real gateway on port 0 runs filters/dist/api-key.wasm in front of
 * a real upstream; the key sync service runs as a gateway service against a real key server. Every
 * behaviour of filters/api-key/README.md is checked on the wire, configuration errors included.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { GatewayError } from '../../gateway/errors.js';
import { filterHarness, sharedDataOf } from '../helpers/filter-gateway.js';
import type { TestGateway, Upstream } from '../helpers/gateway.js';
import { send, waitFor } from '../helpers/guests.js';

const MODULE = 'filters/dist/api-key.wasm';
const sha = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');
const KEYS = [{ name: 'partner-a', sha256: sha('key-a') }, { name: 'partner-b', sha256: sha('key-b').toUpperCase() }];
const MISSING = { error: 'unauthorized', message: 'missing API key' };
const INVALID = { error: 'unauthorized', message: 'invalid API key' };

/** `<plugin>: <message>` of the guest's log lines. */
function guestLog(gw: TestGateway): string[] {
  return gw.logs.filter((l) => l.source === 'wasm').map((l) => `${l.plugin as string}: ${l.msg as string}`);
}

describe('the api-key filter', () => {
  const h = filterHarness(MODULE, 'auth');

  async function setup(configuration: unknown): Promise<{ gw: TestGateway; backend: Upstream }> {
    const { gw, upstream: backend } = await h.start(configuration);
    return { gw, backend };
  }

  async function expect401(url: string, headers: Record<string, string>, body: unknown): Promise<void> {
    const reply = await send(url, { headers });
    expect(reply.status).toBe(401);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(reply.body.toString())).toEqual(body);
  }

  describe('with keys from its configuration', () => {
    it('admits a valid key in the header, forwards its name and removes the key', async () => {
      const { gw, backend } = await setup({ keys: KEYS, header: 'x-api-key' });
      const reply = await send(`${gw.url}/orders?id=7`, { headers: { 'x-api-key': 'key-a' } });
      expect(reply.status).toBe(200);
      expect(backend.requests).toHaveLength(1);
      expect(backend.requests[0].url).toBe('/orders?id=7');
      expect(backend.requests[0].headers['x-api-key-name']).toBe('partner-a');
      expect(backend.requests[0].headers['x-api-key']).toBeUndefined();
    });

    it('accepts digests written in upper-case hex', async () => {
      const { gw, backend } = await setup({ keys: KEYS });
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'key-b' } })).status).toBe(200);
      expect(backend.requests[0].headers['x-api-key-name']).toBe('partner-b');
    });

    it('reads the x-api-key header when neither header nor query is configured', async () => {
      const { gw, backend } = await setup({ keys: KEYS });
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'key-a' } })).status).toBe(200);
      await expect401(`${gw.url}/?api_key=key-a`, {}, MISSING);
      expect(backend.requests).toHaveLength(1);
    });

    it('admits a valid key in the query and removes only that parameter from the path', async () => {
      const { gw, backend } = await setup({ keys: KEYS, query: 'api_key' });
      const reply = await send(`${gw.url}/search?q=a%20b&api_key=key-a&page=2`);
      expect(reply.status).toBe(200);
      expect(backend.requests[0].url).toBe('/search?q=a%20b&page=2');
      expect(backend.requests[0].headers['x-api-key-name']).toBe('partner-a');
    });

    it('percent-decodes the query value and drops the "?" when the key was the only parameter', async () => {
      const keys = [{ name: 'odd', sha256: sha('a b/c=d') }];
      const { gw, backend } = await setup({ keys, query: 'key' });
      expect((await send(`${gw.url}/x?key=a+b%2Fc%3Dd`)).status).toBe(200);
      expect(backend.requests[0].url).toBe('/x');
      expect(backend.requests[0].headers['x-api-key-name']).toBe('odd');
    });

    it('prefers the header when both are configured, and removes the key from both places', async () => {
      const { gw, backend } = await setup({ keys: KEYS, header: 'x-api-key', query: 'api_key' });
      expect((await send(`${gw.url}/a?api_key=key-b&x=1`, { headers: { 'x-api-key': 'key-a' } })).status).toBe(200);
      expect(backend.requests[0].headers['x-api-key-name']).toBe('partner-a');
      expect(backend.requests[0].headers['x-api-key']).toBeUndefined();
      expect(backend.requests[0].url).toBe('/a?x=1');
      // Only the query: the query key is used.
      expect((await send(`${gw.url}/a?api_key=key-b`)).status).toBe(200);
      expect(backend.requests[1].headers['x-api-key-name']).toBe('partner-b');
      // A wrong header key is not rescued by a right query key.
      await expect401(`${gw.url}/a?api_key=key-b`, { 'x-api-key': 'nope' }, INVALID);
    });

    it('keeps the key in the request when removeKey is false', async () => {
      const { gw, backend } = await setup({ keys: KEYS, header: 'x-api-key', query: 'api_key', removeKey: false });
      await send(`${gw.url}/a?api_key=key-a`);
      await send(`${gw.url}/b`, { headers: { 'x-api-key': 'key-b' } });
      expect(backend.requests[0].url).toBe('/a?api_key=key-a');
      expect(backend.requests[1].headers['x-api-key']).toBe('key-b');
    });

    it('forwards the name in the configured header, replacing what the client sent', async () => {
      const { gw, backend } = await setup({ keys: KEYS, header: 'authorization-key', forwardNameHeader: 'x-consumer' });
      await send(`${gw.url}/`, { headers: { 'authorization-key': 'key-a', 'x-consumer': 'admin' } });
      expect(backend.requests[0].headers['x-consumer']).toBe('partner-a');
      expect(backend.requests[0].headers['authorization-key']).toBeUndefined();
    });

    it('answers 401 "missing API key" without a key, or with an empty one, and never calls the upstream', async () => {
      const { gw, backend } = await setup({ keys: KEYS, header: 'x-api-key', query: 'api_key' });
      await expect401(`${gw.url}/`, {}, MISSING);
      await expect401(`${gw.url}/`, { 'x-api-key': '' }, MISSING);
      await expect401(`${gw.url}/?api_key=`, {}, MISSING);
      await expect401(`${gw.url}/?other=key-a`, {}, MISSING);
      expect(backend.requests).toHaveLength(0);
    });

    it('answers 401 "invalid API key" for a wrong key, whatever name header the client sent', async () => {
      const { gw, backend } = await setup({ keys: KEYS, query: 'api_key' });
      await expect401(`${gw.url}/?api_key=key-c`, { 'x-api-key-name': 'partner-a' }, INVALID);
      await expect401(`${gw.url}/?api_key=KEY-A`, {}, INVALID);
      expect(backend.requests).toHaveLength(0);
    });

    it('admits every key of a name (an old and a new key during a rotation)', async () => {
      const keys = [{ name: 'partner-a', sha256: sha('old') }, { name: 'partner-a', sha256: sha('new') }];
      const { gw, backend } = await setup({ keys });
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'old' } })).status).toBe(200);
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'new' } })).status).toBe(200);
      expect(backend.requests.map((r) => r.headers['x-api-key-name'])).toEqual(['partner-a', 'partner-a']);
    });

    it('refuses every key when the list is empty and nothing is published', async () => {
      const { gw } = await setup({ keys: [] });
      await expect401(`${gw.url}/`, { 'x-api-key': 'key-a' }, INVALID);
    });
  });

  it('does what the README example says', async () => {
    const { gw, backend } = await setup({
      keys: [
        { name: 'partner-a', sha256: 'eea8347814f0c5b7b7e0022248627c596b771aa09549345d07a418dbac640e04' },
        { name: 'partner-b', sha256: 'b0a42aaf4da85be7bcfc15c5038c57ad9556d63877098523e55a43ec33517153' },
      ],
      header: 'x-api-key', query: 'api_key', forwardNameHeader: 'x-api-key-name', removeKey: true,
    });
    expect((await send(`${gw.url}/orders`, { headers: { 'x-api-key': 'partner-a-secret' } })).status).toBe(200);
    expect((await send(`${gw.url}/orders?api_key=partner-b-secret&page=2`)).status).toBe(200);
    expect(backend.requests.map((r) => [r.url, r.headers['x-api-key-name'], r.headers['x-api-key']]))
      .toEqual([['/orders', 'partner-a', undefined], ['/orders?page=2', 'partner-b', undefined]]);
  });

  describe('with keys rotated by the sync service', () => {
    async function withSync(opts: { served: () => { status: number; body: string }; filterVmId?: string; intervalMs?: number }): Promise<{
      gw: TestGateway; backend: Upstream; keyServer: Upstream;
    }> {
      const backend = await h.upstream();
      const keyServer = await h.upstream((_req, res) => {
        const { status, body } = opts.served();
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      const gw = await h.gateway({
        clusters: [{ name: 'backend', endpoints: [backend.url] }, { name: 'key-server', endpoints: [keyServer.url] }],
        plugins: [
          { name: 'auth', module: MODULE, rootId: 'api-key', vmId: opts.filterVmId ?? 'auth', configuration: { keys: [{ name: 'static', sha256: sha('static-key') }] } },
          { name: 'auth-sync', module: MODULE, rootId: 'api-key-sync', vmId: 'auth',
            configuration: { cluster: 'key-server', path: '/v1/keys', intervalMs: opts.intervalMs ?? 40, headers: { authorization: 'Bearer sync' } } },
        ],
        services: ['auth-sync'],
        routes: [{ name: 'all', cluster: 'backend', filters: ['auth'] }],
      });
      return { gw, backend, keyServer };
    }

    const list = (...entries: Array<[string, string]>): string => JSON.stringify({ keys: entries.map(([name, key]) => ({ name, sha256: sha(key) })) });

    it('publishes the served keys, which replace the configured ones; a rotated-out key stops working', async () => {
      let served = list(['old', 'old-key']);
      const { gw, backend, keyServer } = await withSync({ served: () => ({ status: 200, body: served }) });
      await waitFor(() => guestLog(gw).includes('auth-sync: api-key-sync: published 1 keys (old) under "api-key/keys/v1"'), 'the first publication');
      expect(keyServer.requests[0].method).toBe('GET');
      expect(keyServer.requests[0].url).toBe('/v1/keys');
      expect(keyServer.requests[0].headers.host).toBe('key-server');
      expect(keyServer.requests[0].headers.accept).toBe('application/json');
      expect(keyServer.requests[0].headers.authorization).toBe('Bearer sync');
      const stored = sharedDataOf(gw).get('auth', 'api-key/keys/v1');
      expect(JSON.parse(Buffer.from(stored!.value).toString())).toEqual({ keys: [{ name: 'old', sha256: sha('old-key') }] });

      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'old-key' } })).status).toBe(200);
      expect(backend.requests[0].headers['x-api-key-name']).toBe('old');
      await expect401(`${gw.url}/`, { 'x-api-key': 'static-key' }, INVALID);

      served = list(['new', 'new-key'], ['newer', 'newer-key']);
      await waitFor(() => guestLog(gw).includes('auth-sync: api-key-sync: published 2 keys (new, newer) under "api-key/keys/v1"'), 'the rotation');
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'new-key' } })).status).toBe(200);
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'newer-key' } })).status).toBe(200);
      expect(backend.requests.slice(1).map((r) => r.headers['x-api-key-name'])).toEqual(['new', 'newer']);
      await expect401(`${gw.url}/`, { 'x-api-key': 'old-key' }, INVALID);
      await expect401(`${gw.url}/`, { 'x-api-key': 'static-key' }, INVALID);
    });

    it('does not rewrite an unchanged list', async () => {
      const { gw, keyServer } = await withSync({ served: () => ({ status: 200, body: list(['a', 'a-key']) }) });
      await waitFor(() => guestLog(gw).some((l) => l.includes('published 1 keys (a)')), 'the publication');
      const cas = sharedDataOf(gw).get('auth', 'api-key/keys/v1')!.cas;
      const calls = keyServer.requests.length;
      await waitFor(() => keyServer.requests.length >= calls + 2, 'two more syncs');
      expect(sharedDataOf(gw).get('auth', 'api-key/keys/v1')!.cas).toBe(cas);
      expect(guestLog(gw).filter((l) => l.includes('published'))).toHaveLength(1);
    });

    it('keeps the keys in force when the key server fails or serves a bad list', async () => {
      let answer = { status: 500, body: '{"error":"down"}' };
      const { gw } = await withSync({ served: () => answer });
      await waitFor(() => guestLog(gw).includes('auth-sync: api-key-sync: GET /v1/keys on cluster "key-server" answered 500; the published keys stay in force'), 'the 500');
      // Nothing published yet: the configured keys are in force.
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'static-key' } })).status).toBe(200);

      answer = { status: 200, body: list(['ok', 'ok-key']) };
      await waitFor(() => guestLog(gw).some((l) => l.includes('published 1 keys (ok)')), 'the publication');
      answer = { status: 200, body: JSON.stringify({ keys: [{ name: 'bad', sha256: 'abc' }] }) };
      await waitFor(() => guestLog(gw).includes('auth-sync: api-key-sync: GET /v1/keys on cluster "key-server" answered a bad key list '
        + '("keys[0].sha256" must be the SHA-256 of the key as 64 hex digits); the published keys stay in force'), 'the bad list');
      answer = { status: 200, body: 'not json' };
      await waitFor(() => guestLog(gw).some((l) => l.includes('answered invalid JSON (')), 'the bad JSON');
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'ok-key' } })).status).toBe(200);
      await expect401(`${gw.url}/`, { 'x-api-key': 'static-key' }, INVALID);
    });

    it('keeps at most one call in flight when the key server is slower than the interval', async () => {
      const backend = await h.upstream();
      const keyServer = await h.upstream((_req, res) => {
        setTimeout(() => {
          const body = list(['slow', 'slow-key']);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }, 300);
      });
      const gw = await h.gateway({
        clusters: [{ name: 'backend', endpoints: [backend.url] }, { name: 'key-server', endpoints: [keyServer.url] }],
        plugins: [{ name: 'auth-sync', module: MODULE, rootId: 'api-key-sync', configuration: { cluster: 'key-server', path: '/keys', intervalMs: 10 } }],
        services: ['auth-sync'],
      });
      await waitFor(() => guestLog(gw).some((l) => l.includes('published 1 keys (slow)')), 'the publication');
      // 300 ms at 10 ms a tick, but one call at a time.
      expect(keyServer.requests.length).toBeLessThanOrEqual(2);
    });

    it('logs a call that cannot be made and tries again on the next tick', async () => {
      const backend = await h.upstream();
      const gw = await h.gateway({
        clusters: [{ name: 'backend', endpoints: [backend.url] }],
        plugins: [{ name: 'auth-sync', module: MODULE, rootId: 'api-key-sync', configuration: { cluster: 'nowhere', path: '/keys', intervalMs: 20 } }],
        services: ['auth-sync'],
      });
      const line = 'auth-sync: api-key-sync: cannot call cluster "nowhere": BAD_ARGUMENT';
      await waitFor(() => guestLog(gw).filter((l) => l === line).length >= 2, 'two failed calls');
    });

    it('publishes to filters of the same vmId only: shared data is scoped by vm_id', async () => {
      const { gw } = await withSync({ served: () => ({ status: 200, body: list(['new', 'new-key']) }), filterVmId: 'other' });
      await waitFor(() => guestLog(gw).some((l) => l.includes('published 1 keys (new)')), 'the publication');
      await expect401(`${gw.url}/`, { 'x-api-key': 'new-key' }, INVALID);
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'static-key' } })).status).toBe(200);
    });

    it('falls back to the configured keys when the published entry is not a usable list', async () => {
      const { gw } = await setup({ keys: KEYS });
      sharedDataOf(gw).set('', 'api-key/keys/v1', Buffer.from('{"keys": 3}'), 0);
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 'key-a' } })).status).toBe(200);
      expect(guestLog(gw)).toContain('auth: api-key: the key list in shared data "api-key/keys/v1" is not usable '
        + '("keys" must be an array of {"name", "sha256"} objects, got a number); using the configured keys');
      // Parsed once per CAS: a second request logs nothing new.
      await send(`${gw.url}/`, { headers: { 'x-api-key': 'key-a' } });
      expect(guestLog(gw).filter((l) => l.includes('not usable'))).toHaveLength(1);
      // A usable list under another sharedDataKey is ignored by this filter.
      sharedDataOf(gw).set('', 'keys/elsewhere', Buffer.from(list(['x', 'x-key'])), 0);
      await expect401(`${gw.url}/`, { 'x-api-key': 'x-key' }, INVALID);
    });

    it('reads the published list under the configured sharedDataKey', async () => {
      const { gw } = await setup({ keys: KEYS, sharedDataKey: 'keys/tenant-1' });
      sharedDataOf(gw).set('', 'keys/tenant-1', Buffer.from(list(['t1', 't1-key'])), 0);
      expect((await send(`${gw.url}/`, { headers: { 'x-api-key': 't1-key' } })).status).toBe(200);
      await expect401(`${gw.url}/`, { 'x-api-key': 'key-a' }, INVALID);
    });
  });

  describe('configuration errors refuse the plugin at load', () => {
    /** The filter's root on a route, or the sync service's as a service. */
    function refused(rootId: string, configuration: unknown): Promise<GatewayError> {
      return h.refused(configuration, rootId === 'api-key-sync' ? { rootId, routes: [], extra: { services: ['auth'] } } : { rootId });
    }

    const good = { name: 'a', sha256: sha('a') };
    const filterCases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"keys":[{"name":"partner-a","sha256":"<64 hex digits>"}],"header":"x-api-key"}'],
      ['text that is not JSON', '{"keys": [}', 'configuration is not valid JSON: '],
      ['not an object', [good], 'configuration must be a JSON object such as'],
      ['an unknown key', { keys: [good], headers: 'x' }, 'unknown key "headers" (expected keys, header, query, forwardNameHeader, removeKey, sharedDataKey)'],
      ['no keys', { header: 'x-api-key' }, '"keys" is required'],
      ['keys that are not a list', { keys: { a: sha('a') } }, '"keys" must be an array of {"name", "sha256"} objects, got an object'],
      ['a key that is not an object', { keys: ['a'] }, '"keys[0]" must be an object {"name", "sha256"}, got a string'],
      ['a key with a plain-text field', { keys: [{ name: 'a', key: 'secret' }] }, '"keys[0]" has an unknown field "key" (expected "name" and "sha256")'],
      ['a key without a name', { keys: [{ sha256: sha('a') }] }, '"keys[0].name" must be a non-empty string'],
      ['a name with a line break', { keys: [{ name: 'a\nb', sha256: sha('a') }] }, '"keys[0].name" contains a control character'],
      ['a digest that is too short', { keys: [good, { name: 'b', sha256: 'abcd' }] }, '"keys[1].sha256" must be the SHA-256 of the key as 64 hex digits'],
      ['a digest that is not hex', { keys: [{ name: 'b', sha256: 'g'.repeat(64) }] }, '"keys[0].sha256" must be the SHA-256 of the key as 64 hex digits'],
      ['the same key twice', { keys: [good, { name: 'b', sha256: sha('a').toUpperCase() }] }, '"keys[1]" repeats the key of "keys[0]"'],
      ['an invalid header name', { keys: [good], header: 'x api key' }, '"header" is not a valid header name: "x api key"'],
      ['a header that is not a string', { keys: [good], header: 1 }, '"header" must be a header name (a string), got a number'],
      ['a query name with a delimiter', { keys: [good], query: 'a&b' }, '"query" must be a plain parameter name (no &, =, #, ?, %, + or space), got "a&b"'],
      ['an empty query name', { keys: [good], query: '' }, '"query" must not be empty'],
      ['the name forwarded in the key header', { keys: [good], header: 'x-key', forwardNameHeader: 'X-Key' }, '"forwardNameHeader" and "header" are both "x-key"'],
      ['removeKey that is not a boolean', { keys: [good], removeKey: 'yes' }, '"removeKey" must be true or false, got a string'],
      ['an empty sharedDataKey', { keys: [good], sharedDataKey: '' }, '"sharedDataKey" must not be empty'],
    ];
    for (const [what, configuration, reason] of filterCases) {
      it(`the filter refuses ${what}`, async () => {
        const error = await refused('api-key', configuration);
        expect(error.message).toContain(`(guest said: api-key: ${reason}`);
      });
    }

    const syncCases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"cluster":"key-server","path":"/keys","intervalMs":30000}'],
      ['an unknown key', { cluster: 'k', path: '/k', every: 5 }, 'unknown key "every" (expected cluster, path, authority, intervalMs, timeoutMs, headers, sharedDataKey)'],
      ['no cluster', { path: '/keys' }, '"cluster" is required'],
      ['no path', { cluster: 'k' }, '"path" is required'],
      ['a path without "/"', { cluster: 'k', path: 'keys' }, '"path" must start with "/", got "keys"'],
      ['an interval too short', { cluster: 'k', path: '/k', intervalMs: 5 }, '"intervalMs" must be an integer from 10 to 86400000, got 5'],
      ['a fractional timeout', { cluster: 'k', path: '/k', timeoutMs: 1.5 }, '"timeoutMs" must be an integer from 1 to 600000, got 1.5'],
      ['headers that are not an object', { cluster: 'k', path: '/k', headers: ['a'] }, '"headers" must be an object of header names to values, got an array'],
      ['a header value that is not a string', { cluster: 'k', path: '/k', headers: { authorization: 1 } }, '"headers.authorization" must be a string, got a number'],
    ];
    for (const [what, configuration, reason] of syncCases) {
      it(`the sync service refuses ${what}`, async () => {
        const error = await refused('api-key-sync', configuration);
        expect(error.message).toContain(`(guest said: api-key-sync: ${reason}`);
      });
    }
  });
});
