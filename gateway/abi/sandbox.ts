/**
 * The contract between the instrumenter (modules/wasm/instrument.ts, which rewrites a module once
 * at load) and the VM (which enforces the limits at run time):
 *
 * - The instrumented module imports one function, `SANDBOX_MODULE`.`BUDGET_IMPORT` of type
 *   `() -> i32`. Guest code calls it every BUDGET_CHECK_INTERVAL checks (loop iterations, function
 *   entries); the host answers the next interval, or throws a budget trap once the outermost
 *   guest call's deadline has passed.
 * - The memory is capped at the plugin's memoryMb: `memory.grow` past it returns -1 as the spec
 *   says. A defined memory carries the cap as its maximum (`SandboxPlan.defined`: one compiled
 *   module per cap); a memory the module imports (or one turned into
 *   `SANDBOX_MODULE`.`MEMORY_IMPORT` when no cap was given) is created by the host per VM with
 *   `maximum` = the cap (`SandboxPlan.memory`).
 */

/** Import namespace of the sandbox; a module that imports from it itself is refused at load. */
export const SANDBOX_MODULE = 'edge-gateway:sandbox';
export const BUDGET_IMPORT = 'budget_check';
export const MEMORY_IMPORT = 'memory';

/** The memory import the host must create for a VM (limits in 64 KiB pages, as the module declares them). */
export interface MemoryImportPlan {
  readonly module: string;
  readonly name: string;
  readonly initialPages: number;
  /** The module's own maximum, or null; the host uses min(this, the cap). */
  readonly maximumPages: number | null;
  readonly shared: boolean;
}

/** What the instrumenter tells the VM about a prepared module. */
export interface SandboxPlan {
  /** Bumped whenever the rewrite changes; part of the compiled-module cache key. */
  readonly version: number;
  /** The memory to create, or null when the module has none the host can cap (see `uncapped`). */
  readonly memory: MemoryImportPlan | null;
  /** Why the memory cannot be capped (memory64, several memories), or null. */
  readonly uncapped: string | null;
  /** The module's own memory, capped in the module itself at `capPages`; or null. */
  readonly defined: { readonly initialPages: number; readonly capPages: number } | null;
}

// Compiled modules the module store instrumented, with their plan: a VM built from such a module
// without `VmOptions.sandbox` still links (its memory import) and is budgeted.
const plans = new WeakMap<WebAssembly.Module, SandboxPlan>();

/** Records what the instrumenter did to a compiled module (the module store calls this). */
export function registerSandboxPlan(module: WebAssembly.Module, plan: SandboxPlan): void {
  plans.set(module, plan);
}

/** The plan of an instrumented module, or undefined for a module compiled as is. */
export function sandboxPlanOf(module: WebAssembly.Module): SandboxPlan | undefined {
  return plans.get(module);
}
