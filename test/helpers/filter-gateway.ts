/**
 * End-to-end set-up for the filters of filters/dist (test/filters/*.test.ts): a real gateway on
 * port 0 (helpers/gateway.ts) running one filter on a catch-all route in front of a real upstream,
 * the check that a configuration is refused at load with the guest's reason, and the closing of
 * every gateway and upstream a test opened.
 *
 *   const h = filterHarness('filters/dist/cors.wasm', 'cors');   // in a describe block
 *   const { gw, upstream } = await h.start({ allowOrigins: ['*'] });
 *   const error = await h.refused({ maxAge: -1 });
 */
import { basename } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, expect } from 'vitest';
import type { GatewayError } from '../../gateway/errors.js';
import { PluginsError } from '../../gateway/proxy/generation.js';
import type { MemorySharedData } from '../../gateway/shared-state/memory.js';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './gateway.js';

/** How a test upstream answers; `body` is the whole request body. */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** Where the filter runs, beyond the default: upstream `backend`, the filter, route `all` through it. */
export interface FilterOptions {
  /** The upstream's answers (default: startUpstream's JSON echo of the request). */
  handler?: UpstreamHandler;
  /** The plugin's `rootId` (left out by default). */
  rootId?: string;
  /** Clusters besides `backend`. */
  clusters?: Array<Record<string, unknown>>;
  /** Plugins besides the filter. */
  plugins?: Array<Record<string, unknown>>;
  /** Routes instead of `all`, which sends every path to `backend` through the filter. */
  routes?: Array<Record<string, unknown>>;
  /** The rest of the gateway config (`node`, `services`, `listeners`…). */
  extra?: Record<string, unknown>;
}

/** A gateway running the filter, the upstream behind it, and how to close both. */
export interface FilterGateway {
  gw: TestGateway;
  upstream: Upstream;
  close(): Promise<void>;
}

/**
 * Starts an upstream and a gateway running `module` as plugin `plugin` with `configuration` (left
 * out of the plugin entry when undefined). The caller closes both; `filterHarness` does it for you.
 */
export async function startFilterGateway(module: string, plugin: string, configuration: unknown, options: FilterOptions = {}): Promise<FilterGateway> {
  const upstream = await startUpstream(options.handler);
  let gw: TestGateway;
  try {
    gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }, ...(options.clusters ?? [])],
      plugins: [
        {
          name: plugin, module,
          ...(options.rootId === undefined ? {} : { rootId: options.rootId }),
          ...(configuration === undefined ? {} : { configuration }),
        },
        ...(options.plugins ?? []),
      ],
      routes: options.routes ?? [{ name: 'all', cluster: 'backend', filters: [plugin] }],
      ...options.extra,
    });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return { gw, upstream, close: async () => { await gw.close(); await upstream.close(); } };
}

/** A filter's tests: gateways and upstreams they start are closed after each test, last first. */
export class FilterHarness {
  private closers: Array<() => Promise<void>> = [];

  constructor(readonly module: string, readonly plugin: string) {}

  /** Closes `close` after the current test. */
  track(close: () => Promise<void>): void {
    this.closers.push(close);
  }

  async closeAll(): Promise<void> {
    const closers = this.closers.reverse();
    this.closers = [];
    for (const close of closers) await close();
  }

  /** An upstream of its own (a key server, an authorization service…). */
  async upstream(handler?: UpstreamHandler): Promise<Upstream> {
    const upstream = await startUpstream(handler);
    this.track(upstream.close);
    return upstream;
  }

  /** A gateway configured by hand, for set-ups `start` does not cover. */
  async gateway(config: Record<string, unknown>): Promise<TestGateway> {
    const gw = await startGateway(config);
    this.track(gw.close);
    return gw;
  }

  /** The filter with `configuration` in front of a new upstream (see `startFilterGateway`). */
  async start(configuration: unknown, options: FilterOptions = {}): Promise<FilterGateway> {
    const started = await startFilterGateway(this.module, this.plugin, configuration, options);
    this.track(started.close);
    return started;
  }

  /**
   * Starts the filter with `configuration`, which it must refuse: the gateway fails with
   * GW_ERR_ABI_CONFIGURE, naming the plugin, its root id and module, and quoting the guest's
   * critical line, which starts with the root id (or the module's name) and a colon.
   */
  async refused(configuration: unknown, options: FilterOptions = {}): Promise<GatewayError> {
    let error: unknown;
    try {
      await this.start(configuration, options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PluginsError);
    const failures = (error as PluginsError).failures;
    expect(failures.length).toBe(1);
    const gwError = failures[0].error;
    expect(gwError.code).toBe('GW_ERR_ABI_CONFIGURE');
    const file = basename(this.module);
    const guest = options.rootId || basename(this.module, '.wasm');
    expect(gwError.message).toMatch(new RegExp(`^plugin ${escape(this.plugin)} \\(root id "${escape(options.rootId ?? '')}", module .*${escape(file)}\\): `
      + `proxy_on_configure returned false \\(guest said: ${escape(guest)}: `));
    return gwError;
  }
}

/** A `FilterHarness` for `module` as plugin `plugin`; call it in a describe block (it registers an afterEach). */
export function filterHarness(module: string, plugin: string): FilterHarness {
  const harness = new FilterHarness(module, plugin);
  afterEach(() => harness.closeAll());
  return harness;
}

/** Answers 200 `ok` as text/plain, with `headers`. */
export function answerOk(headers: Record<string, string | number | string[]> = {}): UpstreamHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2, ...headers });
    res.end('ok');
  };
}

/** Answers 200 `ok` followed by the request body, as text/plain, with `headers`. */
export function answerOkAndEcho(headers: Record<string, string | number | string[]> = {}): UpstreamHandler {
  return (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length + 2, ...headers });
    res.end(Buffer.concat([Buffer.from('ok'), body]));
  };
}

/** The gateway's in-memory shared-data store, to read what filters wrote or seed what they read. */
export function sharedDataOf(gw: TestGateway): MemorySharedData {
  return (gw.gateway.pool as unknown as { ports: { sharedData: MemorySharedData } }).ports.sharedData;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
