/**
 * The lifecycle of VMs. VM sharing: plugins with the same (vmId, module SHA-256, VM configuration, environment) share one
 * WasmVm, each with its own root context, as Envoy shares a VM between filter configs with equal
 * vm_config. A VM lives while a plugin uses it; the last release shuts its roots down.
 *
 * Recycling (linear memory never shrinks, so a guest that leaked keeps its high-water mark):
 * `recycle` starts a fresh VM of the same key from the cached compiled module and re-creates the
 * root of every plugin of the old VM in it (on_vm_start, on_configure), then points the plugins at
 * their new roots. The old VM is retired: its roots stay alive for the streams still running on
 * them, and when the last of those ends (`streamEnded`) the roots get on_done/on_delete and the VM
 * is dropped, so that V8 can free its memory. If the fresh VM cannot start, the old one keeps
 * serving and no new attempt is made for RECYCLE_RETRY_MS.
 *
 * Failure: the pool watches each VM it creates once (one fail listener per VM, removed when the VM
 * is dropped) and tells the plugins on it through their RootEvents; a plugin that stopped is not
 * told, and nothing of it stays reachable from a VM that outlives it.
 */
import { createHash } from 'node:crypto';
import type { PluginSpec, RootContext } from './context.js';
import { WasmVm, type VmFailure, type VmPorts } from './vm.js';
import type { TypedImport } from './wasm-types.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { VmLimits } from './budget.js';
import { DEFAULT_VM_LIMITS } from './limits.js';
import type { SandboxPlan } from './sandbox.js';

/**
 * A compiled module as the pool needs it; the module layer's LoadedModule is one. Declared here
 * so that VM lifecycle needs nothing above abi/.
 */
export interface PoolModule {
  /** SHA-256 of the module bytes (lower-case hex): part of the VM key. */
  readonly sha256: string;
  /** For messages (usually the file path). */
  readonly name: string;
  /** The original module's typed imports, checked before instantiation (absent: only the names). */
  readonly imports?: readonly TypedImport[];
  /** The module prepared (instrumented, compiled) for a memory cap. */
  forMemoryCap(memoryMb: number): { readonly module: WebAssembly.Module; readonly sandbox: SandboxPlan };
}

/** What makes two plugins' VMs interchangeable. */
export interface VmSpec {
  readonly vmId: string;
  readonly vmConfiguration: Uint8Array;
  readonly environment?: Readonly<Record<string, string>>;
  /** The plugin's capability list (absent: every hostcall); checked against the module's imports. */
  readonly allowedHostcalls?: readonly string[];
  /** The plugin's sandbox limits (config `limits`); plugins with other limits get their own VM. */
  readonly limits?: VmLimits;
}

/** What the pool tells the owner of a plugin's root (the plugin runtime), for as long as the plugin runs. */
export interface RootEvents {
  /** A recycle moved the plugin's root to a fresh VM: new streams start there. */
  moved?(root: RootContext): void;
  /**
   * The VM of `root` failed: the plugin's current root, or after a recycle a retired one still
   * serving streams. Called from inside the failing guest call: defer what re-enters a guest.
   */
  failed?(root: RootContext, failure: VmFailure): void;
}

/** After a failed recycle, no new attempt for this long: each attempt instantiates a module. */
export const RECYCLE_RETRY_MS = 30_000;

/** What a recycle did, for the caller's log line. */
export type RecycleResult =
  | { readonly recycled: true; readonly plugins: string; readonly fresh: WasmVm }
  /** The fresh VM failed to start (`error`), or already used `limitBytes` once started. */
  | { readonly recycled: false; readonly plugins: string; readonly error: unknown; readonly freshBytes: number };

interface Member {
  readonly plugin: PluginSpec;
  readonly events?: RootEvents;
}

interface PooledVm {
  readonly key: string;
  readonly vm: WasmVm;
  readonly module: PoolModule;
  readonly spec: VmSpec;
  /** The live plugins' roots. Emptied when the VM is retired. */
  readonly members: Map<RootContext, Member>;
  /** Set once recycled: the roots left to serve the VM's in-flight streams, and their plugins. */
  retired: Map<RootContext, Member> | null;
  /** Removes the pool's fail listener from the VM. */
  unwatch: () => void;
  /** No recycle attempt before this time (ms since the epoch). */
  retryAt: number;
}

/** The plugins a VM hosts, sorted and comma-separated (the label the VM metrics use too). */
function pluginsOf(members: Iterable<{ readonly plugin: PluginSpec }>): string {
  return [...new Set([...members].map((m) => m.plugin.name))].sort().join(',');
}

export class VmPool {
  private readonly byKey = new Map<string, PooledVm>();
  private readonly byVm = new Map<WasmVm, PooledVm>();
  /** VMs alive per vm_id: the shared data of a vm_id is released with its last VM. */
  private readonly perVmId = new Map<string, number>();
  /** Recycles and failed recycles so far, by the plugins of the VM. */
  private readonly recycleCounts = new Map<string, { recycles: number; failures: number }>();

  constructor(private readonly ports: VmPorts) {}

  /** The key two plugins must share to share a VM. */
  static key(module: PoolModule, spec: VmSpec): string {
    const env = Object.entries(spec.environment ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const l = spec.limits;
    const limits = l === undefined ? '' : `${l.cpuMs}/${l.startCpuMs}/${l.memoryMb}`;
    // Two plugins with different capability lists must not share a VM: the check runs per VM.
    const caps = spec.allowedHostcalls === undefined ? '*' : JSON.stringify([...new Set(spec.allowedHostcalls)].sort());
    const vmConfiguration = createHash('sha256').update(spec.vmConfiguration).digest('hex');
    return `${spec.vmId}\0${module.sha256}\0${vmConfiguration}\0${JSON.stringify(env)}\0${limits}\0${caps}`;
  }

  /**
   * Starts a plugin: reuses (or creates) the VM for its key and creates the plugin's root context
   * in it. A failed VM is never reused: the next plugin gets a fresh instance of the same module.
   * `events` is told of the plugin's new root each time a recycle moves it, and of its VM failing,
   * until the plugin stops.
   */
  startPlugin(module: PoolModule, spec: VmSpec, plugin: PluginSpec, events?: RootEvents): RootContext {
    const key = VmPool.key(module, spec);
    let pooled = this.byKey.get(key);
    if (pooled === undefined || pooled.vm.failed) pooled = this.register(this.createFor(plugin, key, module, spec));
    let root: RootContext;
    try {
      root = pooled.vm.createRoot(plugin);
    } catch (err) {
      if (pooled.members.size === 0) this.drop(pooled);
      throw err;
    }
    pooled.members.set(root, { plugin, events });
    return root;
  }

  /** The import check's errors name the plugin too: its allowedHostcalls may be what is at fault. */
  private createFor(plugin: PluginSpec, key: string, module: PoolModule, spec: VmSpec): PooledVm {
    try {
      return this.create(key, module, spec);
    } catch (err) {
      if (isGatewayError(err, 'GW_ERR_ABI_CAPABILITY') || isGatewayError(err, 'GW_ERR_ABI_LINK')) {
        throw new GatewayError(err.code, `plugin ${plugin.name}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  private create(key: string, module: PoolModule, spec: VmSpec): PooledVm {
    // The module carries its memory cap, so each cap has its own compile (in the module layer).
    const prepared = module.forMemoryCap(spec.limits?.memoryMb ?? DEFAULT_VM_LIMITS.memoryMb);
    const vm = new WasmVm(prepared.module, {
      name: module.name,
      vmId: spec.vmId,
      vmConfiguration: spec.vmConfiguration,
      environment: spec.environment,
      ports: this.ports,
      allowedHostcalls: spec.allowedHostcalls,
      // The typed import section the module layer read; without it (tests building a module by
      // hand) the VM still checks the capability list on the import names.
      imports: module.imports,
      sandbox: prepared.sandbox,
      limits: spec.limits,
    });
    this.perVmId.set(spec.vmId, (this.perVmId.get(spec.vmId) ?? 0) + 1);
    const pooled: PooledVm = { key, vm, module, spec, members: new Map(), retired: null, unwatch: () => undefined, retryAt: 0 };
    pooled.unwatch = vm.onFail((failure) => this.failed(pooled, failure));
    return pooled;
  }

  /** Tells every plugin with a root on the failed VM, live or retired (copied: a reaction may stop one). */
  private failed(pooled: PooledVm, failure: VmFailure): void {
    const told = [...pooled.members, ...(pooled.retired ?? [])];
    for (const [root, member] of told) member.events?.failed?.(root, failure);
  }

  private register(pooled: PooledVm): PooledVm {
    this.byKey.set(pooled.key, pooled);
    this.byVm.set(pooled.vm, pooled);
    return pooled;
  }

  /** Ends a plugin: shuts its root down and drops the VM when no plugin uses it any more. */
  stopPlugin(root: RootContext): void {
    root.shutdown();
    const pooled = this.byVm.get(root.vm);
    if (pooled === undefined || !pooled.members.delete(root)) return;
    if (pooled.members.size === 0 && pooled.retired === null) this.drop(pooled);
  }

  private drop(pooled: PooledVm): void {
    pooled.unwatch();
    this.byVm.delete(pooled.vm);
    if (this.byKey.get(pooled.key) === pooled) this.byKey.delete(pooled.key);
    this.forget(pooled.spec.vmId);
  }

  private forget(vmId: string): void {
    const left = (this.perVmId.get(vmId) ?? 1) - 1;
    if (left > 0) {
      this.perVmId.set(vmId, left);
      return;
    }
    this.perVmId.delete(vmId);
    this.ports.sharedData?.release?.(vmId);
  }

  /**
   * Replaces `vm` for new streams by a fresh VM of the same module and key, with a root for every
   * plugin of `vm` (see the file header). null when `vm` is not eligible: unknown, failed, already
   * retired, or within RECYCLE_RETRY_MS of a failed attempt. A fresh VM whose memory already
   * reaches `limitBytes` once its roots have started would be recycled again at once: it is
   * discarded like one that failed.
   */
  recycle(vm: WasmVm, limitBytes: number): RecycleResult | null {
    const old = this.byVm.get(vm);
    const now = Date.now();
    if (old === undefined || old.retired !== null || vm.failed || old.members.size === 0 || now < old.retryAt) return null;
    const members = [...old.members];
    const plugins = pluginsOf(old.members.values());
    const counts = this.recycleCounts.get(plugins) ?? { recycles: 0, failures: 0 };
    this.recycleCounts.set(plugins, counts);
    let fresh: PooledVm | null = null;
    const roots: RootContext[] = [];
    let error: unknown = null;
    try {
      fresh = this.create(old.key, old.module, old.spec);
      for (const [, member] of members) roots.push(fresh.vm.createRoot(member.plugin));
    } catch (err) {
      error = err;
    }
    const freshBytes = fresh === null ? 0 : fresh.vm.mem.size;
    if (fresh === null || error !== null || freshBytes >= limitBytes) {
      for (const root of roots) root.shutdown();
      if (fresh !== null) {
        fresh.unwatch();
        this.forget(old.spec.vmId);
      }
      old.retryAt = now + RECYCLE_RETRY_MS;
      counts.failures++;
      return { recycled: false, plugins, error, freshBytes };
    }
    const next = this.register(fresh);
    old.members.clear();
    old.retired = new Map(members);
    members.forEach(([, member], i) => next.members.set(roots[i], member));
    counts.recycles++;
    members.forEach(([, member], i) => member.events?.moved?.(roots[i]));
    this.streamEnded(vm);
    return { recycled: true, plugins, fresh: next.vm };
  }

  /**
   * A stream of `vm` has ended. A retired VM with no stream left is ended: its roots get
   * on_done/on_delete and it is dropped. Costs a map lookup: call it for streams of VMs that are
   * no longer their plugin's current one.
   */
  streamEnded(vm: WasmVm): void {
    const pooled = this.byVm.get(vm);
    if (pooled?.retired == null) return;
    if (vm.contexts.streamCount > 0) return;
    for (const root of pooled.retired.keys()) root.shutdown();
    pooled.retired = new Map();
    this.drop(pooled);
  }

  /** VMs alive now (retired ones still draining included), for metrics (count and memory). */
  vms(): WasmVm[] {
    return [...this.byVm.keys()];
  }

  /** Recycles and failed recycles so far, by the plugins of the VM (sorted, comma-separated). */
  recycles(): Array<{ plugins: string; recycles: number; failures: number }> {
    return [...this.recycleCounts].map(([plugins, c]) => ({ plugins, ...c }));
  }
}
