/**
 * The edge functions of the running configuration, by name. A function keeps its warm pool
 * across reloads while its entry and its component's bytes are unchanged; a changed one gets a
 * new pool built beside the old (transpiled, compiled, one instance ready) before new requests
 * go to it, and the old pool closes when its last request ends. So do swaps through the admin API.
 *
 * A reload is two steps: `prepare` builds every new pool and fails as a whole, listing each
 * function that could not start (nothing changes then); `commit` points requests at them.
 */
import type { FunctionConfig, ModuleSourceConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { readModuleFile } from '../modules/file-source.js';
import { sha256Hex, sameSha256 } from '../modules/sha256.js';
import { fetchModule } from '../modules/url-source.js';
import { loadComponent, type LoadedComponent } from './component-loader.js';
import type { WireRequest } from './messages.js';
import { FunctionPool, type FunctionSink, type OutgoingFetch, type PoolEvents } from './function-pool.js';

/** What the host reports and needs from the gateway around it. */
export interface FunctionHostDeps {
  readonly cacheDir: string;
  /** An outgoing request of `fn` to a cluster (named by the request's authority). */
  readonly fetch: (fn: string) => OutgoingFetch;
  readonly events: (fn: string) => PoolEvents;
  /** Reads a source other than a file or URL (the module registry); absent: refused. */
  readonly readOther?: (source: ModuleSourceConfig, fn: string) => Promise<{ bytes: Uint8Array; label: string }>;
}

/** One function as requests reach it: its current pool (and its canary's), swapped in place. */
export class LiveFunction {
  constructor(readonly config: FunctionConfig, public pool: FunctionPool, public source: string, public canary: FunctionPool | null = null) {}

  get name(): string {
    return this.config.name;
  }

  /** The canary's share and rules (the proxy splits requests by them), or null. */
  get canaryRule(): NonNullable<FunctionConfig['canary']> | null {
    return this.canary === null ? null : this.config.canary ?? null;
  }

  /** `toCanary`: the request is the canary's (function-exchange.ts decides). */
  call(request: WireRequest, sink: FunctionSink, toCanary = false): () => void {
    return (toCanary && this.canary !== null ? this.canary : this.pool).call(request, sink);
  }

  /** Points new requests at `pool`; the old one closes once its requests ended. */
  swap(pool: FunctionPool, source: string): void {
    const old = this.pool;
    this.pool = pool;
    this.source = source;
    if (old !== pool) old.retire();
  }
}

export interface FunctionPlan {
  commit(): void;
  abort(): Promise<void>;
}

export class FunctionHost {
  private live = new Map<string, LiveFunction>();

  constructor(private readonly deps: FunctionHostDeps) {}

  get(name: string): LiveFunction | undefined {
    return this.live.get(name);
  }

  list(): LiveFunction[] {
    return [...this.live.values()];
  }

  /** Builds what `configs` needs beyond what runs; rejects with every failure, having closed what it built. */
  async prepare(configs: readonly FunctionConfig[]): Promise<FunctionPlan> {
    const built = new Map<string, { pool: FunctionPool; source: string; canary: FunctionPool | null }>();
    const failures: string[] = [];
    await Promise.all(configs.map(async (config, i) => {
      try {
        const { bytes, label } = await this.read(config.component, config.name);
        const canary = config.canary === undefined ? null : await this.read(config.canary.component, config.name);
        const running = this.live.get(config.name);
        if (running !== undefined && running.pool.component.sha256 === sha256Hex(bytes) && sameEntry(running.config, config)
          && (running.canary?.component.sha256 ?? null) === (canary === null ? null : sha256Hex(canary.bytes))) return;
        const pool = await this.start(config, bytes, label);
        const canaryPool = canary === null ? null : await this.start(config, canary.bytes, canary.label, true).catch(async (err: unknown) => {
          await pool.close();
          throw err;
        });
        built.set(config.name, { pool, source: label, canary: canaryPool });
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        failures.push(`functions[${i}] (${config.name}): ${err.code}: ${err.message}`);
      }
    }));
    if (failures.length > 0) {
      await Promise.all([...built.values()].flatMap(({ pool, canary }) => [pool.close(), canary?.close()]));
      const first = failures[0]!.match(/(GW_ERR_[A-Z_]+)/)?.[1] as GatewayError['code'] | undefined;
      throw new GatewayError(first ?? 'GW_ERR_FUNCTION_COMPONENT', `${failures.length === 1 ? '1 function' : `${failures.length} functions`} could not start:\n  ${failures.join('\n  ')}`);
    }
    return {
      commit: () => {
        const next = new Map<string, LiveFunction>();
        for (const config of configs) {
          const running = this.live.get(config.name);
          const fresh = built.get(config.name);
          if (fresh === undefined) next.set(config.name, running!);
          else {
            next.set(config.name, new LiveFunction(config, fresh.pool, fresh.source, fresh.canary));
            running?.pool.retire();
            running?.canary?.retire();
          }
        }
        for (const [name, old] of this.live) {
          if (next.has(name)) continue;
          old.pool.retire();
          old.canary?.retire();
        }
        this.live = next;
      },
      abort: async () => {
        await Promise.all([...built.values()].flatMap(({ pool, canary }) => [pool.close(), canary?.close()]));
      },
    };
  }

  /** Replaces one function's component with `bytes` (the admin API): a new pool, then the swap. */
  async swap(name: string, bytes: Uint8Array, label: string): Promise<LiveFunction> {
    const live = this.live.get(name);
    if (live === undefined) throw new GatewayError('GW_ERR_PLUGIN_UNKNOWN', `no function named "${name}"`);
    const pool = await this.start(live.config, bytes, label);
    live.swap(pool, label);
    return live;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.values()].flatMap((f) => [f.pool.close(), f.canary?.close()]));
    this.live.clear();
  }

  /** `canary`: the pool of the canary's component (its metrics and logs say `<name>:canary`). */
  private async start(config: FunctionConfig, bytes: Uint8Array, label: string, canary = false): Promise<FunctionPool> {
    const component: LoadedComponent = await loadComponent(bytes, `function ${config.name} (${label})`, this.deps.cacheDir, config.limits.memoryMb);
    const l = config.limits;
    const name = canary ? `${config.name}:canary` : config.name;
    const pool = new FunctionPool(name, component, {
      instances: config.instances, reuse: config.reuse,
      environment: Object.entries(config.environment), allowedHosts: config.allowedHosts,
      bodyLimit: 16 * 1024 * 1024, timeoutMs: l.timeoutMs, maxQueue: l.maxQueue, queueTimeoutMs: l.queueTimeoutMs,
      heapMb: l.heapMb,
    }, this.deps.fetch(config.name), this.deps.events(name));
    try {
      await pool.ready();
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private async read(source: ModuleSourceConfig, fn: string): Promise<{ bytes: Uint8Array; label: string }> {
    if (typeof source === 'string' || 'file' in source) {
      const file = typeof source === 'string' ? source : source.file;
      const bytes = await readModuleFile(file);
      pin(file, typeof source === 'string' ? undefined : source.sha256, bytes);
      return { bytes, label: file };
    }
    if ('url' in source) {
      const bytes = await fetchModule(source.url);
      pin(source.url, source.sha256, bytes);
      return { bytes, label: source.url };
    }
    if (this.deps.readOther === undefined) throw new GatewayError('GW_ERR_MODULE_REGISTRY', `function ${fn}: no module registry to read ${JSON.stringify(source)} from`);
    return this.deps.readOther(source, fn);
  }
}

function pin(label: string, expected: string | undefined, bytes: Uint8Array): void {
  if (expected === undefined) return;
  const actual = sha256Hex(bytes);
  if (!sameSha256(expected, actual)) throw new GatewayError('GW_ERR_MODULE_SHA256', `${label}: sha256 is ${actual}, the configuration pins ${expected}`);
}

function sameEntry(a: FunctionConfig, b: FunctionConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
