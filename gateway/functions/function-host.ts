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
import { watchModuleFile, type ModuleFileWatch } from '../modules/file-watch.js';
import type { ModuleStore } from '../modules/module-store.js';
import { sha256Hex } from '../modules/sha256.js';
import { readDetachedSignature } from '../modules/signature.js';
import { isComponentFile, loadComponent, type LoadedComponent } from './component-loader.js';
import type { WireRequest } from './messages.js';
import { FunctionPool, type FunctionSink, type OutgoingFetch, type PoolEvents } from './function-pool.js';

/** Where a component came from, and the trusted key that signed it (null: unsigned). */
export interface ComponentOrigin {
  readonly label: string;
  readonly signedBy: string | null;
}

/** A component as it was read. */
export interface ComponentBytes extends ComponentOrigin {
  readonly bytes: Uint8Array;
}

/** What the host reports and needs from the gateway around it. */
export interface FunctionHostDeps {
  readonly cacheDir: string;
  /** Where compiled components are kept, beside the plugins' modules. */
  readonly store: ModuleStore;
  /** An outgoing request of `fn` to a cluster (named by the request's authority). */
  readonly fetch: (fn: string) => OutgoingFetch;
  readonly events: (fn: string) => PoolEvents;
  /**
   * Reads a component from its source, or takes uploaded bytes, pinned and its signature checked
   * as a plugin's module is (control/module-sources.ts): files with their .sig, URLs, registry tags.
   */
  /** A function's canary was rolled back, and why. */
  readonly rolledBack?: (fn: string, why: string) => void;
  /** A function's canary moved to the next of its steps (100: promoted). */
  readonly stepped?: (fn: string, percent: number) => void;
  /** What watch mode did (a swap, or why a changed file was not taken); `error`: a refusal. */
  readonly watched?: (fn: string, message: string, error: boolean) => void;
  readonly read: (source: ModuleSourceConfig | { bytes: Uint8Array; signature: string | null; name: string }, requireSignature: boolean | undefined) => Promise<ComponentBytes>;
}

/**
 * One function as requests reach it: its current pool (and its canary's), swapped in place. A
 * canary is judged every `rollback.windowMs`: with at least `minStreams` requests in the window and
 * a failure rate (errors and 5xx answers) more than `margin` above the first component's, it is
 * rolled back (its pool retired; every request goes to the first component again).
 */
export class LiveFunction {
  private judge: NodeJS.Timeout | null = null;
  /** The canary's schedule (`steps`, one every `holdMs`; 100 promotes), or null. */
  private stepper: NodeJS.Timeout | null = null;
  /** The canary's share now: the configuration's, until the admin API moves it. */
  canaryPercent: number;
  canarySource: ComponentOrigin | null = null;

  constructor(readonly config: FunctionConfig, public pool: FunctionPool, public source: ComponentOrigin, public canary: FunctionPool | null = null,
    private readonly rolledBack: (fn: string, why: string) => void = () => {},
    private readonly stepped: (fn: string, percent: number) => void = () => {}) {
    this.canaryPercent = config.canary?.steps?.[0] ?? config.canary?.percent ?? 0;
    this.schedule();
    const rule = config.canary?.rollback;
    if (canary === null || rule === undefined) return;
    let last = { stable: { ...pool.counts }, canary: { ...canary.counts } };
    this.judge = setInterval(() => {
      const now = { stable: { ...this.pool.counts }, canary: { ...this.canary!.counts } };
      const rate = (k: 'stable' | 'canary'): [number, number] => {
        const n = now[k].ok + now[k].failed - last[k].ok - last[k].failed;
        return [n, n === 0 ? 0 : (now[k].failed - last[k].failed) / n];
      };
      const [canaryN, canaryRate] = rate('canary');
      const [, stableRate] = rate('stable');
      last = now;
      if (canaryN < rule.minStreams || canaryRate - stableRate <= rule.margin) return;
      this.rollBack(`the canary failed ${(canaryRate * 100).toFixed(1)}% of ${canaryN} requests against ${(stableRate * 100).toFixed(1)}% (margin ${rule.margin * 100} points)`);
    }, rule.windowMs);
    this.judge.unref();
  }

  /** Moves the canary through `steps`, one every `holdMs`; reaching 100 promotes it. */
  private schedule(): void {
    const steps = this.config.canary?.steps;
    if (this.canary === null || steps === undefined) return;
    let at = 0;
    this.stepper = setInterval(() => {
      if (this.canary === null) return this.stopJudging();
      at = Math.min(at + 1, steps.length - 1);
      this.canaryPercent = steps[at]!;
      if (this.canaryPercent >= 100) this.promote();
      else this.stepped(this.name, this.canaryPercent);
      if (at === steps.length - 1) this.stopStepping();
    }, this.config.canary!.holdMs);
    this.stepper.unref();
  }

  private stopStepping(): void {
    if (this.stepper !== null) clearInterval(this.stepper);
    this.stepper = null;
  }

  /** Ends the canary: every request goes to the first component again. */
  rollBack(why: string): void {
    this.stopStepping();
    if (this.judge !== null) clearInterval(this.judge);
    this.judge = null;
    const canary = this.canary;
    if (canary === null) return;
    this.canary = null;
    canary.retire();
    this.rolledBack(this.name, why);
  }

  /** The canary becomes the function's component; the first one's pool closes with its last request. */
  promote(): void {
    const canary = this.canary;
    if (canary === null) throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `function ${this.name} has no canary to promote`);
    this.stopJudging();
    this.stepped(this.name, 100);
    this.canary = null;
    this.swap(canary, this.canarySource ?? this.source);
    this.canarySource = null;
  }

  /** Stops judging the canary (this function was replaced or the gateway stops). */
  stopJudging(): void {
    this.stopStepping();
    if (this.judge !== null) clearInterval(this.judge);
    this.judge = null;
  }

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
  swap(pool: FunctionPool, source: ComponentOrigin): void {
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
  /** Watched component files (`{ file, watch: true }`), by function. */
  private readonly watches = new Map<string, ModuleFileWatch>();

  constructor(private readonly deps: FunctionHostDeps) {}

  get(name: string): LiveFunction | undefined {
    return this.live.get(name);
  }

  list(): LiveFunction[] {
    return [...this.live.values()];
  }

  /** Builds what `configs` needs beyond what runs; rejects with every failure, having closed what it built. */
  async prepare(configs: readonly FunctionConfig[]): Promise<FunctionPlan> {
    const built = new Map<string, { pool: FunctionPool; source: ComponentOrigin; canary: FunctionPool | null; canarySource: ComponentOrigin | null }>();
    const failures: string[] = [];
    await Promise.all(configs.map(async (config, i) => {
      try {
        const read = await this.deps.read(config.component, config.requireSignature);
        const { bytes, label } = read;
        const canary = config.canary === undefined ? null : await this.deps.read(config.canary.component, config.requireSignature);
        const running = this.live.get(config.name);
        if (running !== undefined && running.pool.component.sha256 === sha256Hex(bytes) && sameEntry(running.config, config)
          && (running.canary?.component.sha256 ?? null) === (canary === null ? null : sha256Hex(canary.bytes))) return;
        const pool = await this.start(config, bytes, label);
        const canaryPool = canary === null ? null : await this.start(config, canary.bytes, canary.label, true).catch(async (err: unknown) => {
          await pool.close();
          throw err;
        });
        built.set(config.name, { pool, source: { label, signedBy: read.signedBy }, canary: canaryPool, canarySource: canary === null ? null : { label: canary.label, signedBy: canary.signedBy } });
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
            const live = new LiveFunction(config, fresh.pool, fresh.source, fresh.canary, this.deps.rolledBack, this.deps.stepped);
            live.canarySource = fresh.canarySource;
            next.set(config.name, live);
            running?.stopJudging();
            running?.pool.retire();
            running?.canary?.retire();
          }
        }
        for (const [name, old] of this.live) {
          if (next.has(name)) continue;
          old.stopJudging();
          old.pool.retire();
          old.canary?.retire();
        }
        this.live = next;
        this.follow(configs);
      },
      abort: async () => {
        await Promise.all([...built.values()].flatMap(({ pool, canary }) => [pool.close(), canary?.close()]));
      },
    };
  }

  /** Replaces one function's component with uploaded `bytes` (the admin API): checked, a new pool, then the swap. */
  async swap(name: string, bytes: Uint8Array, label: string, signature: string | null): Promise<LiveFunction> {
    const live = this.live.get(name);
    if (live === undefined) throw new GatewayError('GW_ERR_PLUGIN_UNKNOWN', `no function named "${name}"`);
    const read = await this.deps.read({ bytes, signature, name: label }, live.config.requireSignature);
    const pool = await this.start(live.config, bytes, label);
    live.swap(pool, { label: read.label, signedBy: read.signedBy });
    return live;
  }

  /**
   * Watch mode: each `{ file, watch: true }` component is swapped when its file changes (debounced,
   * only whole components: modules/file-watch.ts), its `.sig` read beside it.
   */
  private follow(configs: readonly FunctionConfig[]): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    for (const config of configs) {
      const c = config.component;
      if (typeof c !== 'object' || !('file' in c) || c.watch !== true) continue;
      const tell = (message: string, error: boolean): void => this.deps.watched?.(config.name, message, error);
      this.watches.set(config.name, watchModuleFile(c.file, this.live.get(config.name)?.pool.component.sha256 ?? null, (bytes) => {
        void readDetachedSignature(c.file)
          .then((signature) => this.swap(config.name, bytes, c.file, signature))
          .then((live) => tell(`watch: ${c.file} changed: component ${live.pool.component.sha256} serves new requests`, false),
            (err: unknown) => tell(`watch: ${c.file} changed but was refused, the running component keeps serving: ${(err as Error).message}`, true));
      }, (reason) => tell(`watch: ${reason}`, true), { whole: isComponentFile }));
    }
  }

  async close(): Promise<void> {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    for (const f of this.live.values()) f.stopJudging();
    await Promise.all([...this.live.values()].flatMap((f) => [f.pool.close(), f.canary?.close()]));
    this.live.clear();
  }

  /** `canary`: the pool of the canary's component (its metrics and logs say `<name>:canary`). */
  private async start(config: FunctionConfig, bytes: Uint8Array, label: string, canary = false): Promise<FunctionPool> {
    const component: LoadedComponent = await loadComponent(bytes, `function ${config.name} (${label})`, this.deps.cacheDir, config.limits.memoryMb, this.deps.store);
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
}

function sameEntry(a: FunctionConfig, b: FunctionConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
