/**
 * VM sharing: plugins with the same (vmId, module SHA-256, VM configuration, environment) share one
 * WasmVm, each with its own root context, as Envoy shares a VM between filter configs with equal
 * vm_config. A VM lives while a plugin uses it; the last release shuts its roots down.
 */
import type { PluginSpec, RootContext } from '../abi/context.js';
import { WasmVm, type VmPorts } from '../abi/vm.js';
import type { VmLimits } from '../abi/budget.js';
import { DEFAULT_VM_LIMITS } from '../abi/limits.js';
import type { LoadedModule } from './module-store.js';
import { sha256Hex } from './sha256.js';

/** What makes two plugins' VMs interchangeable. */
export interface VmSpec {
  readonly vmId: string;
  readonly vmConfiguration: Uint8Array;
  readonly environment?: Readonly<Record<string, string>>;
  /** The plugin's sandbox limits (config `limits`); plugins with other limits get their own VM. */
  readonly limits?: VmLimits;
}

interface PooledVm {
  readonly key: string;
  readonly vm: WasmVm;
  users: number;
}

export class VmPool {
  private readonly byKey = new Map<string, PooledVm>();
  private readonly byVm = new Map<WasmVm, PooledVm>();

  constructor(private readonly ports: VmPorts) {}

  /** The key two plugins must share to share a VM. */
  static key(module: LoadedModule, spec: VmSpec): string {
    const env = Object.entries(spec.environment ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const l = spec.limits;
    const limits = l === undefined ? '' : `${l.cpuMs}/${l.startCpuMs}/${l.memoryMb}`;
    return `${spec.vmId}\0${module.sha256}\0${sha256Hex(spec.vmConfiguration)}\0${JSON.stringify(env)}\0${limits}`;
  }

  /**
   * Starts a plugin: reuses (or creates) the VM for its key and creates the plugin's root context
   * in it. A failed VM is never reused: the next plugin gets a fresh instance of the same module.
   */
  startPlugin(module: LoadedModule, spec: VmSpec, plugin: PluginSpec): RootContext {
    const key = VmPool.key(module, spec);
    let pooled = this.byKey.get(key);
    if (pooled === undefined || pooled.vm.failed) pooled = this.create(key, module, spec);
    pooled.users++;
    try {
      return pooled.vm.createRoot(plugin);
    } catch (err) {
      this.release(pooled.vm);
      throw err;
    }
  }

  private create(key: string, module: LoadedModule, spec: VmSpec): PooledVm {
    // The module carries its memory cap, so each cap has its own compile (module-store.ts).
    const prepared = module.forMemoryCap(spec.limits?.memoryMb ?? DEFAULT_VM_LIMITS.memoryMb);
    const vm = new WasmVm(prepared.module, {
      name: module.name,
      vmId: spec.vmId,
      vmConfiguration: spec.vmConfiguration,
      environment: spec.environment,
      ports: this.ports,
      sandbox: prepared.sandbox,
      limits: spec.limits,
    });
    const pooled: PooledVm = { key, vm, users: 0 };
    this.byKey.set(key, pooled);
    this.byVm.set(vm, pooled);
    return pooled;
  }

  /** Ends a plugin: shuts its root down and drops the VM when no plugin uses it any more. */
  stopPlugin(root: RootContext): void {
    root.shutdown();
    this.release(root.vm);
  }

  private release(vm: WasmVm): void {
    const pooled = this.byVm.get(vm);
    if (pooled === undefined || --pooled.users > 0) return;
    this.byVm.delete(vm);
    if (this.byKey.get(pooled.key) === pooled) this.byKey.delete(pooled.key);
  }

  /** VMs alive now, for metrics (count and memory). */
  vms(): WasmVm[] {
    return [...this.byVm.keys()];
  }
}
