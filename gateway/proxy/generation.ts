/**
 * A generation: everything one configuration runs — clusters, plugins (filters and services) and
 * the router. Requests stay on the generation they started on; a reload builds a new generation,
 * points new requests at it, and the old one is disposed when its last request ends (design
 * invariant 4). VMs are shared across generations through the VM pool when their key is equal.
 *
 * A generation owns what its configuration names: its clusters, the callouts to them and the node
 * facts its plugins read (each plugin's ports, so a stream of an old generation still reaches the
 * old clusters during an overlap), and its plugins' roots. Disposing ends them all and tells the
 * owner of the set of generations (`hooks.disposed`), which forgets it.
 */
import { filterPlugin, type GatewayConfig, type ModuleSourceConfig, type PluginConfig } from '../config/schema.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { LoadedModule } from '../modules/module-store.js';
import type { PluginPorts } from '../abi/ports.js';
import type { VmPool } from '../abi/vm-pool.js';
import { ClusterCallouts } from './callouts.js';
import { createClusters, type Cluster } from './cluster.js';
import type { RequestFlow } from './flow.js';
import { nodeProperties } from './node-properties.js';
import { LivePlugin, type LiveState } from './live-plugin.js';
import { compileRetryPolicy, type RetryReason } from './retry-policy.js';
import { Router, compileRoute } from './router.js';
import type { FunctionTarget } from './function-exchange.js';
import type { FlowEnv, NodeInfo, RouteFilter, RouteRuntime } from './types.js';

/** Hooks the generation reports to (metrics and the access log live above the proxy layer). */
export interface GenerationHooks {
  requestDone(flow: RequestFlow): void;
  upstreamError(flow: RequestFlow, code: string): void;
  /** A retry was scheduled (left out: not counted). */
  upstreamRetry?(flow: RequestFlow, reason: RetryReason): void;
  /** A retry was refused by the cluster's retry budget (left out: not counted). */
  retryBudgetExhausted?(flow: RequestFlow): void;
  /** The generation was disposed (once): whoever holds it drops it now. */
  disposed(generation: Generation): void;
}

/** A module as a source gave it: compiled, its pin and signature checked. */
export interface SourcedModule {
  readonly module: LoadedModule;
  /** For /plugins and logs: the file, URL or registry tag it came from. */
  readonly source: string;
  /** The trusted key that signed it, or null. */
  readonly signedBy: string | null;
}

/**
 * Where the generation gets its plugins' modules and their live state from (control/): module
 * sources beyond files and URLs (the registry), signatures, and state kept across reloads.
 */
export interface PluginSources {
  /** Reads, verifies and compiles the module of `source` for `plugin`; rejects with a GatewayError. */
  load(source: ModuleSourceConfig, plugin: PluginConfig): Promise<SourcedModule>;
  /** The state `plugin` starts in: kept from the generation before when its entry did not change, else new. */
  state(plugin: PluginConfig, stable: SourcedModule, canary: SourcedModule | null): LiveState;
}

export interface GenerationDeps {
  readonly sources: PluginSources;
  /** The edge functions routes may name (absent: none). */
  readonly functions?: { get(name: string): FunctionTarget | undefined };
  readonly pool: VmPool;
  readonly logger: Logger;
  readonly hooks: GenerationHooks;
}

/**
 * One plugin that could not be loaded or started. `field` is the configuration field at fault
 * as far as the code tells (`plugins[2].module` for a module error, `plugins[2].configuration`
 * when on_configure refused it, `plugins[2]` otherwise).
 */
export interface PluginFailure {
  readonly index: number;
  readonly plugin: string;
  readonly field: string;
  readonly error: GatewayError;
}

const FIELD_BY_CODE: Partial<Record<ErrorCode, string>> = {
  GW_ERR_MODULE_READ: 'module', GW_ERR_MODULE_FETCH: 'module', GW_ERR_MODULE_SHA256: 'module.sha256',
  GW_ERR_MODULE_INVALID: 'module', GW_ERR_MODULE_COMPILE: 'module', GW_ERR_MODULE_SIGNATURE: 'module', GW_ERR_MODULE_REGISTRY: 'module', GW_ERR_ABI_VM_START: 'vmConfiguration',
  GW_ERR_ABI_CONFIGURE: 'configuration', GW_ERR_ABI_CAPABILITY: 'allowedHostcalls', GW_ERR_ABI_MEMORY: 'limits.memoryMb',
};

/** `canary`: the failure is the canary's (its module is at `plugins[i].canary.module`). */
function failure(plugin: PluginConfig, index: number, error: GatewayError, canary = false): PluginFailure {
  const sub = FIELD_BY_CODE[error.code];
  const at = `plugins[${index}]${canary ? '.canary' : ''}`;
  return { index, plugin: plugin.name, field: sub === undefined ? at : `${at}.${sub}`, error };
}

/** `plugins[2] (deny): GW_ERR_MODULE_SHA256: module deny.wasm does not match …`: one line per failure. */
export function describeFailure(f: PluginFailure): string {
  return `plugins[${f.index}] (${f.plugin}): ${f.error.code}: ${f.error.message}`;
}

/**
 * Every plugin of a configuration that could not be loaded or started, reported together (as
 * configuration errors are) so that one run of `validate` or `start` lists them all. The code is
 * the first failure's; each failure keeps its own.
 */
export class PluginsError extends GatewayError {
  readonly problems: readonly string[];

  constructor(readonly failures: readonly PluginFailure[]) {
    const problems = failures.map(describeFailure);
    const count = failures.length === 1 ? '1 plugin' : `${failures.length} plugins`;
    super(failures[0].error.code, `${count} could not start:\n  ${problems.join('\n  ')}`, { cause: failures[0].error });
    this.name = 'PluginsError';
    this.problems = problems;
  }
}

/** The module of every wanted plugin and canary, or why it could not be had; never rejects for a GatewayError. */
async function loadModules(sources: PluginSources, wanted: ReadonlyArray<{ p: PluginConfig; i: number; canary: boolean }>): Promise<Array<SourcedModule | PluginFailure>> {
  const sourceOf = (k: number): ModuleSourceConfig => (wanted[k].canary ? wanted[k].p.canary!.module : wanted[k].p.module);
  const load = async (k: number): Promise<SourcedModule | PluginFailure> => {
    const { p, i, canary } = wanted[k];
    try {
      return await sources.load(sourceOf(k), p);
    } catch (err) {
      if (err instanceof GatewayError) return failure(p, i, err, canary);
      throw err;
    }
  };
  // Distinct module sources load in parallel; repeats load after them and so are cache hits,
  // not joins of a compile in flight (which would make the module-cache metrics racy).
  const source = (k: number): string => JSON.stringify(sourceOf(k));
  const firsts = await Promise.all(wanted.map((_, k) => (wanted.findIndex((_w, j) => source(j) === source(k)) === k ? load(k) : null)));
  return Promise.all(firsts.map((m, k) => m ?? load(k)));
}

function isFailure(m: SourcedModule | PluginFailure): m is PluginFailure {
  return 'error' in m;
}

/** Per plugin, the distinct configurations routes give it, and each route filter's index among them (0: the plugin's own). */
function routeVariants(config: GatewayConfig): { variants: Map<string, PluginConfig['configuration'][]>; index: (entry: GatewayConfig['routes'][number]['filters'][number]) => number } {
  const variants = new Map<string, PluginConfig['configuration'][]>();
  const keys = new Map<string, number>();
  const index = (entry: GatewayConfig['routes'][number]['filters'][number]): number => {
    if (typeof entry === 'string') return 0;
    const key = `${entry.plugin}\0${JSON.stringify(entry.configuration)}`;
    let i = keys.get(key);
    if (i === undefined) {
      const list = variants.get(entry.plugin) ?? [];
      list.push(entry.configuration);
      variants.set(entry.plugin, list);
      keys.set(key, i = list.length);
    }
    return i;
  };
  for (const route of config.routes) route.filters.forEach(index);
  return { variants, index };
}

export class Generation implements FlowEnv {
  readonly node: NodeInfo;
  readonly router: Router<RouteRuntime>;
  inflight = 0;
  retired = false;
  private disposed = false;

  private constructor(readonly config: GatewayConfig, readonly clusters: Map<string, Cluster>,
    readonly plugins: Map<string, LivePlugin>, private readonly callouts: ClusterCallouts, private readonly deps: GenerationDeps,
    variantIndex: (entry: GatewayConfig['routes'][number]['filters'][number]) => number) {
    this.node = config.node;
    this.router = new Router(config.routes.map((route) => compileRoute<RouteRuntime>(route, {
      name: route.name,
      cluster: route.cluster === undefined ? null : clusters.get(route.cluster)!,
      fn: route.function ?? null,
      filters: route.filters.map((f): RouteFilter => ({ plugin: plugins.get(filterPlugin(f))!, variant: variantIndex(f) })),
      bodyLimit: route.bodyLimitBytes,
      timeoutMs: route.timeoutMs ?? (route.cluster === undefined
        ? config.functions.find((f) => f.name === route.function)!.limits.timeoutMs
        : clusters.get(route.cluster)!.timeoutMs),
      retry: compileRetryPolicy(route.retry),
    })));
  }

  /**
   * Loads every module, starts every plugin used by a route or listed as a service, and builds
   * the router. A plugin that fails does not stop the others from being tried: every failure is
   * collected and thrown together as a PluginsError, after the plugins that did start are
   * stopped again, so on failure nothing of the generation is left running.
   */
  static async build(config: GatewayConfig, deps: GenerationDeps): Promise<Generation> {
    const used = new Set([...config.routes.flatMap((r) => r.filters.map(filterPlugin)), ...config.services]);
    const plugged = config.plugins.map((p, i) => ({ p, i, canary: false })).filter(({ p }) => used.has(p.name));
    const wanted = [...plugged, ...plugged.filter(({ p }) => p.canary !== undefined).map((w) => ({ ...w, canary: true }))];
    const loaded = await loadModules(deps.sources, wanted);
    const canaryOf = new Map(wanted.map((w, k) => [w, loaded[k]] as const).filter(([w]) => w.canary).map(([w, m]) => [w.p.name, m]));
    const { variants, index } = routeVariants(config);
    const clusters = createClusters(config.clusters, deps.logger);
    // A callout made from on_vm_start or on_configure already goes to these clusters: there is no
    // current generation at the first start, and at a reload the old one may lack them.
    const callouts = new ClusterCallouts(clusters, deps.logger);
    const ports: PluginPorts = { callouts, properties: nodeProperties(config.node) };
    const plugins = new Map<string, LivePlugin>();
    const failures: PluginFailure[] = [];
    try {
      plugged.forEach(({ p, i }, k) => {
        const module = loaded[k];
        const canary = canaryOf.get(p.name) ?? null;
        if (isFailure(module) || (canary !== null && isFailure(canary))) {
          failures.push(...[module, canary].filter((m): m is PluginFailure => m !== null && isFailure(m)));
          return;
        }
        const runtime = new LivePlugin(p, deps.sources.state(p, module, canary), variants.get(p.name) ?? [], { pool: deps.pool, logger: deps.logger, ports });
        try {
          runtime.start();
        } catch (err) {
          if (!(err instanceof GatewayError)) throw err;
          failures.push(failure(p, i, err));
          return;
        }
        plugins.set(p.name, runtime);
      });
      if (failures.length > 0) throw new PluginsError(failures);
    } catch (err) {
      for (const runtime of plugins.values()) runtime.stop();
      callouts.close();
      for (const cluster of clusters.values()) cluster.destroy();
      throw err;
    }
    return new Generation(config, clusters, plugins, callouts, deps, index);
  }

  done(flow: RequestFlow): void {
    this.inflight--;
    // Each module version's counters (the canary's rollback compares them).
    for (const slot of flow.slots) {
      const name = slot.plugin.name;
      slot.plugin.stats.ended(slot.timeMs / 1000, flow.localReplyBy === name ? flow.status : 0, flow.failedFilter === name);
    }
    this.deps.hooks.requestDone(flow);
    if (this.retired && this.inflight === 0) this.dispose();
  }

  upstreamError(flow: RequestFlow, code: string): void {
    this.deps.hooks.upstreamError(flow, code);
  }

  upstreamRetry(flow: RequestFlow, reason: RetryReason): void {
    this.deps.hooks.upstreamRetry?.(flow, reason);
  }

  retryBudgetExhausted(flow: RequestFlow): void {
    this.deps.hooks.retryBudgetExhausted?.(flow);
  }

  writeFailed(flow: RequestFlow, err: unknown): void {
    const error = err as { code?: string; message?: string };
    this.deps.logger.error({
      route: flow.route.name, localReplyBy: flow.localReplyBy ?? undefined,
      filters: flow.slots.map((s) => s.plugin.name), path: flow.req.url,
      code: error?.code, err: error?.message ?? String(err),
    }, 'response write failed: answered for this request alone');
  }

  functionTarget(name: string): FunctionTarget | undefined {
    return this.deps.functions?.get(name);
  }

  /** The clusters' callouts, which edge functions' outgoing requests go through too. */
  get clusterCallouts(): ClusterCallouts {
    return this.callouts;
  }

  /** New requests go elsewhere now; dispose once the last one here has ended. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) this.dispose();
  }

  /**
   * Ends every root context (on_done → on_delete), closes the callouts and upstream pools, and
   * tells the owner. Once: a later call does nothing.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const plugin of this.plugins.values()) plugin.stop();
    this.callouts.close();
    for (const cluster of this.clusters.values()) void cluster.close();
    this.deps.hooks.disposed(this);
  }
}
