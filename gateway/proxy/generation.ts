/**
 * A generation: everything one configuration runs — clusters, plugins (filters and services) and
 * the router. Requests stay on the generation they started on; a reload builds a new generation,
 * points new requests at it, and the old one is disposed when its last request ends (design
 * invariant 4). VMs are shared across generations through the VM pool when their key is equal.
 */
import type { GatewayConfig, PluginConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LoadedModule, ModuleStore } from '../modules/module-store.js';
import type { VmPool } from '../modules/vm-pool.js';
import { createClusters, type Cluster } from './cluster.js';
import type { RequestFlow } from './flow.js';
import { PluginRuntime } from './plugin-runtime.js';
import { Router, compileRoute } from './router.js';
import type { FlowEnv, NodeInfo, RouteRuntime } from './types.js';

/** Hooks the generation reports to (metrics and the access log live above the proxy layer). */
export interface GenerationHooks {
  requestDone(flow: RequestFlow): void;
  upstreamError(flow: RequestFlow, code: string): void;
}

export interface GenerationDeps {
  readonly store: ModuleStore;
  readonly pool: VmPool;
  readonly logger: Logger;
  readonly hooks: GenerationHooks;
}

async function loadModule(store: ModuleStore, plugin: PluginConfig, index: number): Promise<LoadedModule> {
  const source = typeof plugin.module === 'string' ? { file: plugin.module } : plugin.module;
  try {
    return await store.load(source);
  } catch (err) {
    if (err instanceof GatewayError) {
      throw new GatewayError(err.code, `plugins[${index}] (${plugin.name}): ${err.message}`, { cause: err });
    }
    throw err;
  }
}

export class Generation implements FlowEnv {
  readonly scheme = 'http';
  readonly node: NodeInfo;
  readonly router: Router<RouteRuntime>;
  inflight = 0;
  retired = false;
  private disposed = false;

  private constructor(readonly config: GatewayConfig, readonly clusters: Map<string, Cluster>,
    readonly plugins: Map<string, PluginRuntime>, private readonly deps: GenerationDeps) {
    this.node = config.node;
    this.router = new Router(config.routes.map((route) => compileRoute<RouteRuntime>(route, {
      name: route.name,
      cluster: clusters.get(route.cluster)!,
      plugins: route.filters.map((f) => plugins.get(f)!),
      bodyLimit: route.bodyLimitBytes,
      timeoutMs: route.timeoutMs ?? clusters.get(route.cluster)!.timeoutMs,
    })));
  }

  /**
   * Loads every module, starts every plugin used by a route or listed as a service, and builds
   * the router. On failure nothing of it is left running and the error names the plugin.
   */
  static async build(config: GatewayConfig, deps: GenerationDeps): Promise<Generation> {
    const used = new Set([...config.routes.flatMap((r) => r.filters), ...config.services]);
    const wanted = config.plugins.map((p, i) => ({ p, i })).filter(({ p }) => used.has(p.name));
    // Distinct module sources load in parallel; repeats load after them and so are cache hits,
    // not joins of a compile in flight (which would make the module-cache metrics racy).
    const source = (k: number): string => JSON.stringify(wanted[k].p.module);
    const load = (k: number): Promise<LoadedModule> => loadModule(deps.store, wanted[k].p, wanted[k].i);
    const firsts = await Promise.all(wanted.map((_, k) => (wanted.findIndex((_w, j) => source(j) === source(k)) === k ? load(k) : null)));
    const modules = await Promise.all(firsts.map((m, k) => m ?? load(k)));
    const plugins = new Map<string, PluginRuntime>();
    try {
      wanted.forEach(({ p }, k) => {
        const runtime = new PluginRuntime(p, modules[k], deps.pool, deps.logger);
        runtime.start();
        plugins.set(p.name, runtime);
      });
    } catch (err) {
      for (const runtime of plugins.values()) runtime.stop();
      throw err;
    }
    return new Generation(config, createClusters(config.clusters), plugins, deps);
  }

  done(flow: RequestFlow): void {
    this.inflight--;
    this.deps.hooks.requestDone(flow);
    if (this.retired && this.inflight === 0) this.dispose();
  }

  upstreamError(flow: RequestFlow, code: string): void {
    this.deps.hooks.upstreamError(flow, code);
  }

  writeFailed(flow: RequestFlow, err: unknown): void {
    const error = err as { code?: string; message?: string };
    this.deps.logger.error({
      route: flow.route.name, localReplyBy: flow.localReplyBy ?? undefined,
      filters: flow.slots.map((s) => s.plugin.name), path: flow.req.url,
      code: error?.code, err: error?.message ?? String(err),
    }, 'response write failed: answered for this request alone');
  }

  /** New requests go elsewhere now; dispose once the last one here has ended. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) this.dispose();
  }

  /** Ends every root context (on_done → on_delete) and closes the upstream pools. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const plugin of this.plugins.values()) plugin.stop();
    for (const cluster of this.clusters.values()) void cluster.close();
  }
}
