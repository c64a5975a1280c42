/**
 * filters/rate-limit end to end: a real gateway on port 0 runs filters/dist/rate-limit.wasm in
 * front of a real upstream. Besides every behaviour of filters/rate-limit/README.md, the buckets
 * are checked in the gateway's shared-data store: another node's entry is seeded there, exactly as
 * that node would write it, and the limit must apply to the sum.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { answerOk, filterHarness, sharedDataOf } from '../helpers/filter-gateway.js';
import type { TestGateway, Upstream } from '../helpers/gateway.js';

const MODULE = 'filters/dist/rate-limit.wasm';
const NODE = 'edge-a';

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

/** One GET on a fresh connection, optionally from another loopback address (Linux routes all of 127/8). */
function get(url: string, opts: { headers?: Record<string, string>; from?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: opts.headers, agent: false, localAddress: opts.from }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The rate-limit headers of a reply, as [limit, remaining, reset]. */
const rate = (r: Reply): Array<string | undefined> =>
  [r.headers['x-ratelimit-limit'], r.headers['x-ratelimit-remaining'], r.headers['x-ratelimit-reset']] as Array<string | undefined>;

/** A node's entry as the filter writes it: net tokens (f64) then the time in ns (u64), little-endian. */
function entry(net: number, atNs: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeDoubleLE(net, 0);
  b.writeBigUInt64LE(atNs, 8);
  return b;
}

function readEntry(gw: TestGateway, name: string): { net: number; atNs: bigint } | undefined {
  const e = sharedDataOf(gw).get('', name);
  if (e === undefined) return undefined;
  const b = Buffer.from(e.value);
  return { net: b.readDoubleLE(0), atNs: b.readBigUInt64LE(8) };
}

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

describe('the rate-limit filter', () => {
  const h = filterHarness(MODULE, 'rl');

  function upstream(): Promise<Upstream> {
    return h.upstream(answerOk());
  }

  async function setup(configuration: unknown, upstreamHeaders: Record<string, string> = {}): Promise<{ gw: TestGateway; backend: Upstream }> {
    const { gw, upstream: backend } = await h.start(configuration, { handler: answerOk(upstreamHeaders), extra: { node: { id: NODE } } });
    return { gw, backend };
  }

  it('allows a burst up to the capacity, then answers 429 with Retry-After and a JSON body', async () => {
    const { gw, backend } = await setup({ key: { source: 'client' }, capacity: 3, refillPerSecond: 0.5 });
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await get(`${gw.url}/`));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    // One token every 2 s: the next one is back 2 s after each request; on the 429, that is retry-after.
    expect(replies.map(rate)).toEqual([['3', '2', '2'], ['3', '1', '2'], ['3', '0', '2'], ['3', '0', '2']]);
    const refused = replies[3];
    expect(refused.headers['retry-after']).toBe('2');
    expect(refused.headers['content-type']).toBe('application/json');
    expect(JSON.parse(refused.body)).toEqual({ error: 'rate_limited', message: 'rate limit exceeded', retryAfterSeconds: 2 });
    expect(replies[0].headers['retry-after']).toBeUndefined();
    expect(backend.requests).toHaveLength(3);
  });

  it('refills over time, never beyond the capacity', async () => {
    const { gw } = await setup({ key: { source: 'client' }, capacity: 2, refillPerSecond: 4 });
    const statuses = async (n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await get(`${gw.url}/`)).status);
      return out;
    };
    const burst = [await get(`${gw.url}/`), await get(`${gw.url}/`), await get(`${gw.url}/`)];
    expect(burst.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(burst[2].headers['retry-after']).toBe('1');
    await sleep(300); // about 1.2 tokens
    expect(await statuses(2)).toEqual([200, 429]);
    await sleep(1100); // 4.4 tokens, capped at 2
    expect(await statuses(3)).toEqual([200, 200, 429]);
  });

  it('keeps one bucket per client address, without the port', async () => {
    const { gw } = await setup({ key: { source: 'client' }, capacity: 1, refillPerSecond: 0.001 });
    // Every request is a new connection from a new port: the port is not part of the key.
    expect((await get(`${gw.url}/`, { from: '127.0.0.2' })).status).toBe(200);
    expect((await get(`${gw.url}/`, { from: '127.0.0.2' })).status).toBe(429);
    expect((await get(`${gw.url}/`, { from: '127.0.0.3' })).status).toBe(200);
    expect(Buffer.from(sharedDataOf(gw).get('', 'rl/rl/127.0.0.2/nodes')!.value).toString()).toBe(NODE);
    expect(readEntry(gw, `rl/rl/127.0.0.2/node/${NODE}`)!.net).toBe(1);
    expect(readEntry(gw, `rl/rl/127.0.0.3/node/${NODE}`)!.net).toBe(1);
  });

  it('keys IPv6 clients by the bare address', async () => {
    const backend = await upstream();
    const gw = await h.gateway({
      listeners: [{ name: 'public', address: '::1', port: 0 }],
      node: { id: NODE },
      clusters: [{ name: 'backend', endpoints: [backend.url] }],
      plugins: [{ name: 'rl', module: MODULE, configuration: { key: { source: 'client' }, capacity: 1, refillPerSecond: 0.001 } }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['rl'] }],
    });
    const url = `http://[::1]:${new URL(gw.url).port}/`;
    expect([(await get(url)).status, (await get(url)).status]).toEqual([200, 429]);
    expect(readEntry(gw, `rl/rl/::1/node/${NODE}`)!.net).toBe(1);
  });

  it('keeps one bucket per header value; requests without the header are not limited', async () => {
    const { gw } = await setup({ key: { source: 'header', header: 'X-Tenant' }, capacity: 1, refillPerSecond: 0.001 });
    expect((await get(`${gw.url}/`, { headers: { 'x-tenant': 'a' } })).status).toBe(200);
    expect((await get(`${gw.url}/`, { headers: { 'x-tenant': 'a' } })).status).toBe(429);
    expect((await get(`${gw.url}/`, { headers: { 'x-tenant': 'b/c%' } })).status).toBe(200);
    expect(sharedDataOf(gw).get('', 'rl/rl/b%2Fc%25/nodes')).toBeDefined();
    for (let i = 0; i < 3; i++) {
      const free = await get(`${gw.url}/`);
      expect(free.status).toBe(200);
      expect(rate(free)).toEqual([undefined, undefined, undefined]);
    }
  });

  it('limits by the API key name the api-key filter forwards, which clients cannot forge', async () => {
    const backend = await upstream();
    const { createHash } = await import('node:crypto');
    const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
    const gw = await h.gateway({
      node: { id: NODE },
      clusters: [{ name: 'backend', endpoints: [backend.url] }],
      plugins: [
        { name: 'auth', module: 'filters/dist/api-key.wasm', configuration: { keys: [{ name: 'a', sha256: sha('key-a') }, { name: 'b', sha256: sha('key-b') }] } },
        { name: 'rl', module: MODULE, configuration: { key: { source: 'header', header: 'x-api-key-name' }, capacity: 1, refillPerSecond: 0.001 } },
      ],
      routes: [{ name: 'all', cluster: 'backend', filters: ['auth', 'rl'] }],
    });
    expect((await get(`${gw.url}/`, { headers: { 'x-api-key': 'key-a' } })).status).toBe(200);
    expect((await get(`${gw.url}/`, { headers: { 'x-api-key': 'key-a', 'x-api-key-name': 'b' } })).status).toBe(429);
    expect((await get(`${gw.url}/`, { headers: { 'x-api-key': 'key-b' } })).status).toBe(200);
  });

  it('does what the README example says', async () => {
    const backend = await upstream();
    const { createHash } = await import('node:crypto');
    const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
    const gw = await h.gateway({
      clusters: [{ name: 'backend', endpoints: [backend.url] }],
      plugins: [
        { name: 'api-key', module: 'filters/dist/api-key.wasm', configuration: { keys: [{ name: 'partner-a', sha256: sha('a') }, { name: 'partner-b', sha256: sha('b') }] } },
        { name: 'per-partner', module: MODULE, configuration: { key: { source: 'header', header: 'x-api-key-name' }, capacity: 10, refillPerSecond: 5, statusCode: 429 } },
      ],
      routes: [{ name: 'api', cluster: 'backend', filters: ['api-key', 'per-partner'] }],
    });
    const a = { headers: { 'x-api-key': 'a' } };
    let allowed = 0;
    let refused: Reply | null = null;
    while (refused === null && allowed < 15) {
      const reply = await get(`${gw.url}/`, a);
      if (reply.status === 200) allowed++;
      else refused = reply;
    }
    // 10 in the same instant; an 11th only if the 10 took over 200 ms (one token of refill).
    expect(allowed).toBeGreaterThanOrEqual(10);
    expect(allowed).toBeLessThanOrEqual(11);
    expect(refused!.status).toBe(429);
    // x-ratelimit-reset says what retry-after says: one token (0.2 s at 5/s) away, rounded up.
    expect([refused!.headers['retry-after'], ...rate(refused!)]).toEqual(['1', '10', '0', '1']);
    expect((await get(`${gw.url}/`, { headers: { 'x-api-key': 'b' } })).status).toBe(200);
  });

  it('adds the rate-limit headers to allowed responses, replacing the upstream\'s own', async () => {
    const { gw } = await setup({ key: { source: 'client' }, capacity: 5, refillPerSecond: 1 }, { 'x-ratelimit-limit': '999', 'x-ratelimit-remaining': '998' });
    const reply = await get(`${gw.url}/`);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ok');
    expect(rate(reply)).toEqual(['5', '4', '1']);
  });

  it('answers refused requests with the configured status code', async () => {
    const { gw } = await setup({ key: { source: 'client' }, capacity: 1, refillPerSecond: 0.25, statusCode: 503 });
    await get(`${gw.url}/`);
    const refused = await get(`${gw.url}/`);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('4');
    expect(rate(refused)).toEqual(['1', '0', '4']);
  });

  describe('across gateway nodes sharing the data', () => {
    it('applies the limit to the sum of every node\'s consumption', async () => {
      const { gw } = await setup({ key: { source: 'client' }, capacity: 5, refillPerSecond: 0.001 });
      // Node b has consumed 4 of the 5 tokens of 127.0.0.1 just now.
      const seeded = entry(4, nowNs());
      sharedDataOf(gw).set('', 'rl/rl/127.0.0.1/nodes', Buffer.from('node-b'), 0);
      sharedDataOf(gw).set('', 'rl/rl/127.0.0.1/node/node-b', seeded, 0);
      const cas = sharedDataOf(gw).get('', 'rl/rl/127.0.0.1/node/node-b')!.cas;

      const first = await get(`${gw.url}/`);
      expect(first.status).toBe(200);
      expect(rate(first)).toEqual(['5', '0', expect.any(String)]);
      const ownCas = sharedDataOf(gw).get('', `rl/rl/127.0.0.1/node/${NODE}`)!.cas;
      expect((await get(`${gw.url}/`)).status).toBe(429);
      // A refused request takes no token: nothing is written.
      expect(sharedDataOf(gw).get('', `rl/rl/127.0.0.1/node/${NODE}`)!.cas).toBe(ownCas);

      // This node listed itself next to node b, wrote only its own entry, and left b's alone.
      expect(Buffer.from(sharedDataOf(gw).get('', 'rl/rl/127.0.0.1/nodes')!.value).toString()).toBe(`node-b\n${NODE}`);
      expect(sharedDataOf(gw).get('', 'rl/rl/127.0.0.1/node/node-b')!.cas).toBe(cas);
      expect(Buffer.from(sharedDataOf(gw).get('', 'rl/rl/127.0.0.1/node/node-b')!.value)).toEqual(seeded);
      expect(readEntry(gw, `rl/rl/127.0.0.1/node/${NODE}`)!.net).toBeCloseTo(1, 3);
    });

    it('sees consumption another node adds later', async () => {
      const { gw } = await setup({ key: { source: 'header', header: 'x-user' }, capacity: 5, refillPerSecond: 0.001 });
      const user = { headers: { 'x-user': 'u1' } };
      for (let i = 0; i < 3; i++) expect((await get(`${gw.url}/`, user)).status).toBe(200);
      // Node b joins and consumes 2 tokens: the bucket is now empty for everyone.
      const nodes = sharedDataOf(gw).get('', 'rl/rl/u1/nodes')!;
      expect(sharedDataOf(gw).set('', 'rl/rl/u1/nodes', Buffer.from(`${Buffer.from(nodes.value).toString()}\nnode-b`), nodes.cas)).toBe(0);
      sharedDataOf(gw).set('', 'rl/rl/u1/node/node-b', entry(2, nowNs()), 0);
      expect((await get(`${gw.url}/`, user)).status).toBe(429);
    });

    it('credits refill once, from the latest write of any node', async () => {
      const { gw } = await setup({ key: { source: 'header', header: 'x-user' }, capacity: 5, refillPerSecond: 1 });
      // Nodes b and c emptied the bucket 2 s ago (2 + 3 tokens): 2 tokens are back, not 2 per node.
      const then = nowNs() - 2_000_000_000n;
      sharedDataOf(gw).set('', 'rl/rl/u2/nodes', Buffer.from('node-b\nnode-c'), 0);
      sharedDataOf(gw).set('', 'rl/rl/u2/node/node-b', entry(2, then), 0);
      sharedDataOf(gw).set('', 'rl/rl/u2/node/node-c', entry(3, then), 0);
      const user = { headers: { 'x-user': 'u2' } };
      const replies = [await get(`${gw.url}/`, user), await get(`${gw.url}/`, user), await get(`${gw.url}/`, user)];
      expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
      expect(replies.map((r) => r.headers['x-ratelimit-remaining'])).toEqual(['1', '0', '0']);
      // This node took the refill into its own entry: 5 − 2 + 2 = 5 in all, so its part is about 0.
      const own = readEntry(gw, `rl/rl/u2/node/${NODE}`)!;
      expect(own.net).toBeGreaterThan(-0.1);
      expect(own.net).toBeLessThan(0.1);
    });
  });

  it('keeps plugins apart by domain (the plugin name unless configured)', async () => {
    const backend = await upstream();
    const start = async (domain?: string): Promise<TestGateway> => {
      const configuration = (d?: string): unknown => ({ key: { source: 'client' }, capacity: 1, refillPerSecond: 0.001, ...(d ? { domain: d } : {}) });
      const gw = await h.gateway({
        clusters: [{ name: 'backend', endpoints: [backend.url] }],
        plugins: [{ name: 'rl-a', module: MODULE, configuration: configuration(domain) }, { name: 'rl-b', module: MODULE, configuration: configuration(domain) }],
        routes: [
          { name: 'a', match: { pathPrefix: '/a' }, cluster: 'backend', filters: ['rl-a'] },
          { name: 'b', match: { pathPrefix: '/b' }, cluster: 'backend', filters: ['rl-b'] },
        ],
      });
      return gw;
    };
    const apart = await start();
    expect([(await get(`${apart.url}/a`)).status, (await get(`${apart.url}/b`)).status]).toEqual([200, 200]);
    const shared = await start('public');
    expect([(await get(`${shared.url}/a`)).status, (await get(`${shared.url}/b`)).status]).toEqual([200, 429]);
    expect(sharedDataOf(shared).get('', 'rl/public/127.0.0.1/nodes')).toBeDefined();
  });

  describe('configuration errors refuse the plugin at load', () => {
    const ok = { key: { source: 'client' }, capacity: 10, refillPerSecond: 5 };
    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"key":{"source":"client"},"capacity":10,"refillPerSecond":5}'],
      ['text that is not JSON', '{"capacity": 10', 'configuration is not valid JSON: unexpected end of input at line 1, column 16'],
      ['not an object', [ok], 'configuration must be a JSON object such as'],
      ['an unknown key', { ...ok, burst: 3 }, 'unknown key "burst" (expected key, capacity, refillPerSecond, statusCode, domain)'],
      ['no key', { capacity: 10, refillPerSecond: 5 }, '"key" is required: {"source": "client"} or {"source": "header", "header": "x-…"}'],
      ['a key that is not an object', { ...ok, key: 'client' }, '"key" must be an object such as {"source": "client"}, got a string'],
      ['an unknown key source', { ...ok, key: { source: 'ip' } }, '"key.source" must be "client" or "header", got "ip"'],
      ['a key without a source', { ...ok, key: {} }, '"key.source" must be "client" or "header"'],
      ['a header source without a header', { ...ok, key: { source: 'header' } }, '"key.header" is required with "source": "header"'],
      ['an invalid key header', { ...ok, key: { source: 'header', header: 'x user' } }, '"key.header" must be a header name (letters, digits and !#$%&\'*+-.^_`|~), got "x user"'],
      ['a header with the client source', { ...ok, key: { source: 'client', header: 'x-a' } }, '"key.header" is only for "source": "header"'],
      ['an unknown field in key', { ...ok, key: { source: 'client', name: 'x' } }, 'unknown key "key.name" (expected source, header)'],
      ['no capacity', { key: { source: 'client' }, refillPerSecond: 5 }, '"capacity" is required'],
      ['a capacity of 0', { ...ok, capacity: 0 }, '"capacity" must be an integer from 1 to 1000000000, got 0'],
      ['a fractional capacity', { ...ok, capacity: 2.5 }, '"capacity" must be an integer from 1 to 1000000000, got 2.5'],
      ['a capacity given as text', { ...ok, capacity: '10' }, '"capacity" must be an integer from 1 to 1000000000, got "10"'],
      ['no refill', { key: { source: 'client' }, capacity: 10 }, '"refillPerSecond" is required'],
      ['a refill of 0', { ...ok, refillPerSecond: 0 }, '"refillPerSecond" must be a number above 0 and at most 1000000000, got 0'],
      ['a negative refill', { ...ok, refillPerSecond: -1 }, '"refillPerSecond" must be a number above 0 and at most 1000000000, got -1'],
      ['a status code that is not an error', { ...ok, statusCode: 200 }, '"statusCode" must be an integer from 400 to 599, got 200'],
      ['an empty domain', { ...ok, domain: '' }, '"domain" must be a non-empty string without control characters, got ""'],
    ];
    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(`(guest said: rate-limit: ${reason}`);
      });
    }
  });
});
