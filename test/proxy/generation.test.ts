/**
 * Generations (gateway/proxy/generation.ts): a reload builds a new one beside the old, the old one
 * is disposed when its last request ends and tells its owner, and while both run each request's
 * callouts and node properties come from the configuration it started on (design invariant 4).
 */
import { ModuleSources } from '../../gateway/control/module-sources.js';
import { VersionStats } from '../../gateway/proxy/version-stats.js';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { VmPool } from '../../gateway/abi/vm-pool.js';
import { parseConfig } from '../../gateway/config/load.js';
import { abiLogger, createLogger } from '../../gateway/log.js';
import { createModuleStore } from '../../gateway/modules/module-store.js';
import { Generation } from '../../gateway/proxy/generation.js';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { Guest, guestLines, send, waitFor } from '../helpers/guests.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A filter that logs its roots' and streams' on_done, and lets everything continue. */
function endingFilter(): string {
  return new Guest().build({ on: { proxy_on_request_headers: true, proxy_on_done: true } });
}

/** A plain upstream, and one that holds every request to /held until `release()`. */
async function upstreams(): Promise<{ upstream: Upstream; held: ServerResponse[]; release(): void }> {
  const held: ServerResponse[] = [];
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/held') {
      held.push(res);
      return;
    }
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  cleanup.push(upstream.close);
  return {
    upstream, held,
    release: () => { for (const res of held.splice(0)) { res.writeHead(200, { 'content-length': 4 }); res.end('held'); } },
  };
}

function document(upstream: Upstream, module: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'filter', module }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['filter'] }],
    ...extra,
  };
}

async function gateway(doc: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway(doc);
  cleanup.push(gw.close);
  return gw;
}

const reload = (gw: TestGateway, doc: Record<string, unknown>): Promise<void> => gw.gateway.reload(parseConfig({
  listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], admin: { address: '127.0.0.1', port: 0 }, log: { level: 'debug' }, ...doc,
}, 'next.yaml'));

const done = (gw: TestGateway): string[] => guestLines(gw.logs).filter((l) => l.endsWith(' cb=done'));

describe('a generation retiring', () => {
  it('is disposed at once when no request is in flight: its root gets on_done and the gateway keeps only the new one', async () => {
    const { upstream } = await upstreams();
    const doc = document(upstream, wasmFile(endingFilter(), 'ending'));
    const gw = await gateway(doc);
    await reload(gw, doc);
    // The VM is shared by both generations (same module and VM configuration): root 1 was the old one.
    await waitFor(() => done(gw).length === 1, 'the old root\'s on_done');
    expect(done(gw)).toEqual(['filter: ctx=1 cb=done']);
    expect(gw.gateway.generationsAlive()).toBe(1);
    expect((await send(`${gw.url}/after`)).status).toBe(200);
  });

  it('stays while a request runs on it, then is disposed with its last request and forgotten', async () => {
    const { upstream, held, release } = await upstreams();
    const doc = document(upstream, wasmFile(endingFilter(), 'ending'));
    const gw = await gateway(doc);
    const inflight = send(`${gw.url}/held`);
    await waitFor(() => held.length === 1, 'the held request upstream');
    await reload(gw, doc);
    expect(gw.gateway.generationsAlive()).toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(done(gw)).toEqual([]);
    release();
    expect((await inflight).body.toString()).toBe('held');
    // The stream (ctx 2) ends first, then the root of the old generation (ctx 1).
    await waitFor(() => done(gw).length === 2, 'the old stream and root on_done');
    expect(done(gw)).toEqual(['filter: ctx=2 cb=done', 'filter: ctx=1 cb=done']);
    expect(gw.gateway.generationsAlive()).toBe(1);
  });

  it('tells its owner once, however often it is retired or disposed, and ends each root once', async () => {
    const { upstream } = await upstreams();
    const config = parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
      ...document(upstream, wasmFile(endingFilter(), 'ending')),
    }, 'generation.yaml');
    const logger = createLogger('error');
    const pool = new VmPool({ logger: abiLogger(logger) });
    const disposed: Generation[] = [];
    const sources = new ModuleSources(createModuleStore(), config.modules);
    const generation = await Generation.build(config, {
      sources: {
        load: (source, plugin) => sources.load(source, plugin),
        state: (plugin, stable) => ({ enabled: true, stable: { ...stable, configuration: plugin.configuration, stats: new VersionStats() }, canary: null }),
      },
      pool, logger,
      hooks: { requestDone: () => undefined, upstreamError: () => undefined, disposed: (g) => disposed.push(g) },
    });
    const [vm] = pool.vms();
    const root = [...vm.roots()][0];
    generation.retire();
    generation.retire();
    generation.dispose();
    expect(disposed).toEqual([generation]);
    expect(root.alive).toBe(false);
    expect(pool.vms()).toEqual([]);
  });
});

/**
 * In on_response_headers: adds x-node (node.id in hex), then calls cluster "old-only" and pauses;
 * the answer copies its :status into x-callout-status and continues. A refused call adds
 * x-callout: refused and continues at once.
 */
function calloutOnResponse(): string {
  const g = new Guest();
  return g.build({
    log: false,
    extra: '(global $stream (mut i32) (i32.const 0))',
    on: {
      proxy_on_response_headers: `
        (global.set $stream (local.get $ctx))
        (call $prop_header ${g.lit('node\0id')} (i32.const 2) ${g.lit('x-node')})
        (if (result i32) (call $proxy_http_call ${g.lit('old-only')} ${g.pairs([[':method', 'GET'], [':path', '/callout'], [':authority', 'old-only']])}
            ${g.lit('')} ${g.lit('')} (i32.const 5000) (i32.const 0x18))
          (then (call $add_header (i32.const 2) ${g.lit('x-callout')} ${g.lit('refused')}) (i32.const 0))
          (else (i32.const 1)))`,
      proxy_on_http_call_response: `
        (drop (call $proxy_set_effective_context (global.get $stream)))
        (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) ${g.lit(':status')} (i32.const 0x10) (i32.const 0x14)))
          (then (call $add_header (i32.const 2) ${g.lit('x-callout-status')} (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))))
        (drop (call $proxy_continue_stream (i32.const 1)))`,
    },
  });
}

const hex = (s: string): string => Buffer.from(s).toString('hex');

describe('two generations side by side', () => {
  it('sends an old request\'s http_call to the cluster of its own configuration, which the new one no longer has', async () => {
    const { upstream, held, release } = await upstreams();
    const side = await startUpstream();
    cleanup.push(side.close);
    const module = wasmFile(calloutOnResponse(), 'callout');
    const gw = await gateway(document(upstream, module, {
      node: { id: 'edge-old', cluster: 'edge' },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, { name: 'old-only', endpoints: [side.url] }],
    }));
    const old = send(`${gw.url}/held`);
    await waitFor(() => held.length === 1, 'the held request upstream');
    // The same plugin, so the new generation's root lives in the same VM as the old one's.
    await reload(gw, document(upstream, module, { node: { id: 'edge-new', cluster: 'edge' } }));
    const fresh = await send(`${gw.url}/now`);
    expect(fresh.headers['x-callout']).toBe('refused');
    expect(fresh.headers['x-node']).toBe(hex('edge-new'));
    // The old request reaches its response phase only now, after the reload.
    release();
    const reply = await old;
    expect(reply.status).toBe(200);
    expect(reply.headers['x-callout']).toBeUndefined();
    expect(reply.headers['x-callout-status']).toBe('200');
    expect(reply.headers['x-node']).toBe(hex('edge-old'));
    expect(side.requests.map((r) => r.url)).toEqual(['/callout']);
  });

  it('sends a callout made from on_configure at a reload to the new configuration\'s cluster', async () => {
    const first = await startUpstream();
    const second = await startUpstream();
    cleanup.push(first.close, second.close);
    const g = new Guest();
    const module = wasmFile(g.build({
      log: false,
      on: {
        proxy_on_configure: `
          (drop (call $proxy_http_call ${g.lit('backend')} ${g.pairs([[':method', 'GET'], [':path', '/from-configure'], [':authority', 'backend']])}
            ${g.lit('')} ${g.lit('')} (i32.const 5000) (i32.const 0x18)))
          (i32.const 1)`,
        proxy_on_http_call_response: true,
      },
    }), 'configure-call');
    const doc = (upstream: Upstream): Record<string, unknown> => ({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'caller', module }],
      services: ['caller'],
    });
    const gw = await gateway(doc(first));
    await waitFor(() => first.requests.length === 1, 'the first start\'s callout');
    await reload(gw, doc(second));
    await waitFor(() => second.requests.length === 1, 'the reload\'s callout');
    expect(first.requests).toHaveLength(1);
  });
});
