/**
 * Retries of a route (Envoy's retry_policy) and the retry budget of a cluster: each retryOn
 * condition, numRetries, the back-off, per-try timeouts within the route's timeout, bodies kept
 * for replay (and those too large to keep), nothing retried once the answer started, the budget
 * under concurrency, and the metrics and access-log attempts. Real gateway, real upstreams, real
 * sockets.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffMs, compileRetryPolicy } from '../../gateway/proxy/retry-policy.js';
import { retrySchema } from '../../gateway/config/schema.js';
import { deadOrigin, startGateway, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { Guest, callbackLines, guestLines, loggingFilter, send, waitFor, type Reply } from '../helpers/guests.js';

/**
 * What an upstream does with one try: answer a status (at once or later), a 503 with
 * x-envoy-ratelimited, reset after reading the body or at once, never answer, or reset mid-answer.
 */
type Act = number | { status: number; delayMs: number } | 'ratelimited' | 'reset' | 'reset-early' | 'hang' | 'partial';

interface Seen {
  id: string;
  /** The try of this id, from 0. */
  n: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** When the request head arrived (performance.now()). */
  at: number;
}

interface Scripted {
  url: string;
  seen: Seen[];
  /** Tries of `id` whose head arrived. */
  tries(id: string): number;
  close(): Promise<void>;
}

/** An upstream that does `plan(n, id)` with the n-th try of the request whose x-id is `id`. */
async function scripted(plan: (n: number, id: string) => Act): Promise<Scripted> {
  const seen: Seen[] = [];
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const id = String(req.headers['x-id'] ?? '');
    const n = counts.get(id) ?? 0;
    counts.set(id, n + 1);
    const at = performance.now();
    const act = plan(n, id);
    if (act === 'reset-early') {
      seen.push({ id, n, headers: req.headers, body: Buffer.alloc(0), at });
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ id, n, headers: req.headers, body, at });
      if (act === 'hang') return;
      if (act === 'reset') {
        req.socket.destroy();
      } else if (act === 'partial') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('x'.repeat(10));
        setTimeout(() => req.socket.destroy(), 20);
      } else {
        const status = typeof act === 'number' ? act : act === 'ratelimited' ? 503 : act.status;
        const out = `try ${n} of ${id}: ${body.length} bytes\n`;
        const answer = (): void => {
          if (act === 'ratelimited') res.setHeader('x-envoy-ratelimited', 'true');
          res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(out) });
          res.end(out);
        };
        if (typeof act !== 'object') answer();
        else setTimeout(answer, act.delayMs);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    tries: (id) => counts.get(id) ?? 0,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}


const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function upstream(plan: (n: number, id: string) => Act): Promise<Scripted> {
  const u = await scripted(plan);
  cleanup.push(u.close);
  return u;
}

async function gateway(config: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway({ drainTimeoutMs: 100, ...config });
  cleanup.push(gw.close);
  return gw;
}

/** One request tagged `id` (x-id for the upstream's plan, x-request-id for the access log), timed. */
async function call(gw: TestGateway, path: string, id: string, opts: Parameters<typeof send>[1] = {}): Promise<Reply & { ms: number }> {
  const t0 = performance.now();
  const reply = await send(`${gw.url}${path}`, { ...opts, headers: { 'x-id': id, 'x-request-id': id, ...opts.headers } });
  return { ...reply, ms: performance.now() - t0 };
}

async function accessLine(gw: TestGateway, id: string): Promise<Record<string, unknown>> {
  await waitFor(() => gw.logs.some((l) => l.access === true && l.requestId === id), `the access-log line of ${id}`);
  return gw.logs.find((l) => l.access === true && l.requestId === id)!;
}

/** The value of the metric series `name{labels}` on /metrics (0 when absent). */
async function metric(gw: TestGateway, series: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const retries = (route: string, reason: string): string => `edge_gateway_upstream_retries_total{route="${route}",reason="${reason}"}`;

describe('retries of a route', () => {
  it('retries a connect failure at another endpoint of the cluster and logs two attempts', async () => {
    const good = await upstream(() => 200);
    const dead = await deadOrigin();
    const gw = await gateway({
      clusters: [{ name: 'pair', endpoints: [dead, good.url] }],
      routes: [{ name: 'r', cluster: 'pair', retry: { retryOn: ['connect-failure'] } }],
    });
    const reply = await call(gw, '/x', 'c1');
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('try 0 of c1: 0 bytes\n');
    expect(await accessLine(gw, 'c1')).toMatchObject({ status: 200, upstream: good.url, attempts: 2 });
    expect(await metric(gw, retries('r', 'connect-failure'))).toBe(1);
    expect(await metric(gw, 'edge_gateway_upstream_errors_total{cluster="pair",code="ECONNREFUSED"}')).toBe(1);
  });

  it('sends every retry to another endpoint than the failed one, whatever the round robin does meanwhile', async () => {
    const good = await upstream(() => 200);
    const dead = await deadOrigin();
    const gw = await gateway({
      clusters: [{ name: 'pair', endpoints: [dead, good.url], retryBudget: { percent: 100, minConcurrency: 100 } }],
      routes: [{ name: 'r', cluster: 'pair', retry: { retryOn: ['connect-failure'] } }],
    });
    // Concurrent requests move the round robin between a failure and its retry.
    const ids = Array.from({ length: 20 }, (_, k) => `m${k}`);
    const replies = await Promise.all(ids.map((id) => call(gw, '/x', id)));
    expect(replies.map((r) => r.status)).toEqual(ids.map(() => 200));
    expect(good.seen).toHaveLength(20);
  });

  it('retries an upstream that resets the connection under reset, but not under connect-failure alone', async () => {
    const flaky = await upstream((n) => (n === 0 ? 'reset' : 200));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [
        { name: 'reset', match: { pathPrefix: '/reset' }, cluster: 'flaky', retry: { retryOn: ['reset'] } },
        { name: 'connect', match: { pathPrefix: '/connect' }, cluster: 'flaky', retry: { retryOn: ['connect-failure'] } },
      ],
    });
    expect((await call(gw, '/reset', 'r1')).status).toBe(200);
    expect(await accessLine(gw, 'r1')).toMatchObject({ attempts: 2 });
    expect(await metric(gw, retries('reset', 'reset'))).toBe(1);
    const refused = await call(gw, '/connect', 'r2');
    expect(refused.status).toBe(502);
    expect(await accessLine(gw, 'r2')).toMatchObject({ attempts: 1, error: 'UND_ERR_SOCKET' });
    expect(flaky.tries('r2')).toBe(1);
  });

  it('retries the statuses of 5xx, gateway-error and retriable-status-codes, and only those', async () => {
    // The first try of each id answers the status its id names (rl: a rate-limited 503), the next one 200.
    const flaky = await upstream((n, id) => (n > 0 ? 200 : id.endsWith('-rl') ? 'ratelimited' : Number(id.split('-')[1])));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [
        { name: 'any5xx', match: { pathPrefix: '/5xx' }, cluster: 'flaky', retry: { retryOn: ['5xx'] } },
        { name: 'gateway', match: { pathPrefix: '/gw' }, cluster: 'flaky', retry: { retryOn: ['gateway-error'] } },
        { name: 'codes', match: { pathPrefix: '/codes' }, cluster: 'flaky', retry: { retryOn: ['retriable-status-codes'], retriableStatusCodes: [409] } },
      ],
    });
    const outcomes: Array<[string, string, number, number]> = [
      ['/5xx', 'a-500', 200, 2], ['/5xx', 'b-503', 200, 2], ['/5xx', 'c-409', 409, 1],
      ['/gw', 'd-502', 200, 2], ['/gw', 'e-504', 200, 2], ['/gw', 'f-500', 500, 1], ['/gw', 'i-rl', 503, 1],
      ['/codes', 'g-409', 200, 2], ['/codes', 'h-503', 503, 1],
    ];
    for (const [path, id, status, attempts] of outcomes) {
      const reply = await call(gw, path, id);
      expect([id, reply.status]).toEqual([id, status]);
      // What the client gets is a whole answer from the upstream: the last try's.
      expect(reply.body.toString()).toBe(`try ${attempts - 1} of ${id}: 0 bytes\n`);
      expect([id, (await accessLine(gw, id)).attempts]).toEqual([id, attempts]);
    }
    expect(await metric(gw, retries('any5xx', '5xx'))).toBe(2);
    expect(await metric(gw, retries('gateway', 'gateway-error'))).toBe(2);
    expect(await metric(gw, retries('codes', 'retriable-status-codes'))).toBe(1);
  });

  it('gives up after numRetries and answers with the last try, and numRetries 0 never retries', async () => {
    const down = await upstream(() => 503);
    const gw = await gateway({
      clusters: [{ name: 'down', endpoints: [down.url] }],
      routes: [
        { name: 'twice', match: { pathPrefix: '/twice' }, cluster: 'down', retry: { numRetries: 2, backoff: { baseMs: 1 } } },
        { name: 'never', match: { pathPrefix: '/never' }, cluster: 'down', retry: { numRetries: 0 } },
      ],
    });
    const twice = await call(gw, '/twice', 'n1');
    expect([twice.status, twice.body.toString()]).toEqual([503, 'try 2 of n1: 0 bytes\n']);
    expect(down.tries('n1')).toBe(3);
    expect(await accessLine(gw, 'n1')).toMatchObject({ attempts: 3 });
    expect((await call(gw, '/never', 'n2')).status).toBe(503);
    expect(down.tries('n2')).toBe(1);
    expect(await metric(gw, retries('twice', 'gateway-error'))).toBe(2);
  });

  it('waits a jittered back-off between tries, within Envoy\'s bounds', async () => {
    const flaky = await upstream((n) => (n < 4 ? 503 : 200));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [{ name: 'r', cluster: 'flaky', retry: { numRetries: 4, backoff: { baseMs: 100, maxMs: 100 } } }],
    });
    expect((await call(gw, '/x', 'b1')).status).toBe(200);
    const at = flaky.seen.filter((s) => s.id === 'b1').map((s) => s.at);
    const gaps = at.slice(1).map((t, k) => t - at[k]);
    expect(gaps).toHaveLength(4);
    // Each back-off is uniform in [0, 100): four of them sum to less than 20 ms once in ~15 000 runs.
    const total = gaps.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(20);
    expect(total).toBeLessThan(400 + 300);
  });

  it('computes the back-off as Envoy: uniform in [0, base × 2^(n-1)), the interval capped at maxMs', () => {
    const policy = compileRetryPolicy(retrySchema.parse({}))!;
    expect(policy.maxMs).toBe(250);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(policy, n, () => 0.9999))).toEqual([24, 49, 99, 199, 249, 249]);
    expect(backoffMs(policy, 3, () => 0)).toBe(0);
  });

  it('abandons a try past perTryTimeoutMs and retries it as a reset; connect-failure alone answers 504', async () => {
    const slow = await upstream((n) => (n === 0 ? 'hang' : 200));
    const gw = await gateway({
      clusters: [{ name: 'slow', endpoints: [slow.url] }],
      routes: [
        { name: 'reset', match: { pathPrefix: '/reset' }, cluster: 'slow', retry: { retryOn: ['reset'], perTryTimeoutMs: 150 } },
        { name: 'gateway', match: { pathPrefix: '/gw' }, cluster: 'slow', retry: { retryOn: ['gateway-error'], perTryTimeoutMs: 150 } },
        { name: 'connect', match: { pathPrefix: '/connect' }, cluster: 'slow', retry: { retryOn: ['connect-failure'], perTryTimeoutMs: 150 } },
      ],
    });
    for (const [path, id] of [['/reset', 't1'], ['/gw', 't2']]) {
      const reply = await call(gw, path, id);
      expect(reply.status).toBe(200);
      expect(reply.ms).toBeGreaterThanOrEqual(140);
      expect(reply.ms).toBeLessThan(1000);
      expect(await accessLine(gw, id)).toMatchObject({ attempts: 2 });
    }
    const cut = await call(gw, '/connect', 't3');
    expect([cut.status, cut.body.toString()]).toEqual([504, 'upstream request timeout\n']);
    expect(cut.ms).toBeGreaterThanOrEqual(140);
    expect(cut.ms).toBeLessThan(1000);
    expect(await accessLine(gw, 't3')).toMatchObject({ attempts: 1, error: 'per_try_timeout' });
    expect(await metric(gw, 'edge_gateway_upstream_errors_total{cluster="slow",code="per_try_timeout"}')).toBe(3);
    expect(await metric(gw, retries('reset', 'reset'))).toBe(1);
    expect(await metric(gw, retries('gateway', 'gateway-error'))).toBe(1);
  });

  it('bounds every try together by the route\'s timeout', async () => {
    const never = await upstream(() => 'hang');
    const gw = await gateway({
      clusters: [{ name: 'never', endpoints: [never.url] }],
      routes: [{ name: 'r', cluster: 'never', timeoutMs: 400, retry: { numRetries: 5, perTryTimeoutMs: 250 } }],
    });
    const reply = await call(gw, '/x', 'd1');
    expect(reply.status).toBe(504);
    expect(reply.ms).toBeGreaterThanOrEqual(380);
    expect(reply.ms).toBeLessThan(1000);
    expect(await accessLine(gw, 'd1')).toMatchObject({ attempts: 2, error: 'UND_ERR_HEADERS_TIMEOUT' });
  });

  it('sends a POST body again byte for byte, with its length', async () => {
    const flaky = await upstream((n) => (n === 0 ? 'reset' : 200));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [{ name: 'r', cluster: 'flaky', retry: { retryOn: ['reset'] } }],
    });
    const body = randomBytes(40_000);
    const reply = await call(gw, '/upload', 'p1', { method: 'POST', headers: { 'content-length': body.length }, body: [body.subarray(0, 15_000), body.subarray(15_000)] });
    expect(reply.status).toBe(200);
    const tries = flaky.seen.filter((s) => s.id === 'p1');
    expect(tries).toHaveLength(2);
    for (const t of tries) {
      expect(t.body.equals(body)).toBe(true);
      expect(t.headers['content-length']).toBe('40000');
    }
    expect(await accessLine(gw, 'p1')).toMatchObject({ method: 'POST', attempts: 2, bytesIn: 40_000 });
  });

  it('replays what the request body filters sent, without calling any filter again', async () => {
    const flaky = await upstream((n) => (n === 0 ? 'reset' : 200));
    const g = new Guest();
    // Buffers the whole body (logging each call), then replaces it.
    const rewrite = g.build({
      log: false,
      on: {
        proxy_on_request_body: `(call $log_num2 ${g.lit('size=')} (local.get $size) ${g.lit(' eos=')} (local.get $eos))
          (if (result i32) (local.get $eos)
            (then (drop (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (local.get $size) ${g.lit('filtered body')})) (i32.const 0))
            (else (i32.const 1)))`,
      },
    });
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      plugins: [{ name: 'log', module: wasmFile(loggingFilter(), 'log') }, { name: 'body', module: wasmFile(rewrite, 'body') }],
      routes: [{ name: 'r', cluster: 'flaky', filters: ['log', 'body'], retry: { retryOn: ['reset'] } }],
    });
    const reply = await call(gw, '/upload', 'f1', { method: 'POST', body: ['client ', 'body'] });
    expect(reply.status).toBe(200);
    expect(flaky.seen.map((s) => s.body.toString())).toEqual(['filtered body', 'filtered body']);
    expect(guestLines(gw.logs).filter((l) => l.startsWith('body: '))).toEqual(['body: size=7 eos=0', 'body: size=11 eos=0', 'body: size=11 eos=1']);
    // The dropped answer of the first try never reached the response phase.
    const callbacks = callbackLines(gw.logs).map((l) => l.replace(/ctx=\d+ /, ''));
    expect(callbacks.filter((l) => l.endsWith('cb=request_headers') || l.endsWith('cb=response_headers'))).toEqual(['log: cb=request_headers', 'log: cb=response_headers']);
  });

  it('does not retry a body announced larger than bufferBytes', async () => {
    const flaky = await upstream((n) => (n === 0 ? 'reset' : 200));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [{ name: 'r', cluster: 'flaky', retry: { retryOn: ['reset'], bufferBytes: 1024 } }],
    });
    const reply = await call(gw, '/upload', 'l1', { method: 'PUT', headers: { 'content-length': 4096 }, body: [Buffer.alloc(4096, 1)] });
    expect(reply.status).toBe(502);
    expect(flaky.tries('l1')).toBe(1);
    expect(await accessLine(gw, 'l1')).toMatchObject({ attempts: 1, bytesIn: 4096 });
  });

  it('replays a body still streaming when its try fails, then stops retrying once it grew past bufferBytes', async () => {
    const flaky = await upstream((n) => (n === 0 ? 'reset-early' : 'reset'));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url] }],
      routes: [{ name: 'r', cluster: 'flaky', retry: { retryOn: ['reset'], numRetries: 3, bufferBytes: 1024, backoff: { baseMs: 1 } } }],
    });
    const first = Buffer.alloc(600, 'a');
    const second = Buffer.alloc(600, 'b');
    const reply = await call(gw, '/stream', 's1', {
      method: 'POST', body: [first, second],
      // The second half goes once the retry's try reached the upstream with the first half.
      beforeChunk: (i) => (i === 1 ? waitFor(() => flaky.tries('s1') === 2, 'the second try') : Promise.resolve()),
    });
    expect(reply.status).toBe(502);
    expect(flaky.tries('s1')).toBe(2);
    expect(flaky.seen.find((s) => s.n === 1)!.body.equals(Buffer.concat([first, second]))).toBe(true);
    expect(await accessLine(gw, 's1')).toMatchObject({ attempts: 2, bytesIn: 1200 });
  });

  it('does not retry once the answer started, even when it breaks off', async () => {
    const broken = await upstream(() => 'partial');
    const gw = await gateway({
      clusters: [{ name: 'broken', endpoints: [broken.url] }],
      routes: [{ name: 'r', cluster: 'broken', retry: { retryOn: ['reset', '5xx'] } }],
    });
    await expect(call(gw, '/x', 'a1')).rejects.toThrow();
    expect(await accessLine(gw, 'a1')).toMatchObject({ status: 200, attempts: 1 });
    expect(broken.tries('a1')).toBe(1);
  });

  it('stops retrying at the cluster\'s retry budget while retries are in flight', async () => {
    // Each first try fails at once; a retry takes 600 ms, so the first retry is in flight while the others fail.
    const flaky = await upstream((n) => (n === 0 ? 503 : { status: 200, delayMs: 600 }));
    const gw = await gateway({
      clusters: [{ name: 'flaky', endpoints: [flaky.url], retryBudget: { percent: 0, minConcurrency: 1 } }],
      routes: [{ name: 'r', cluster: 'flaky', retry: { retryOn: ['gateway-error'], backoff: { baseMs: 1 } } }],
    });
    const ids = ['q0', 'q1', 'q2', 'q3', 'q4'];
    const replies = await Promise.all(ids.map((id) => call(gw, '/x', id)));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 503, 503, 503, 503]);
    expect(await metric(gw, 'edge_gateway_upstream_retry_budget_exhausted_total{cluster="flaky"}')).toBe(4);
    expect(await metric(gw, retries('r', 'gateway-error'))).toBe(1);
    // The budget is free again once the retry answered.
    expect((await call(gw, '/x', 'q5')).status).toBe(200);
    expect(await metric(gw, retries('r', 'gateway-error'))).toBe(2);
  });
});
