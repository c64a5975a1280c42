/**
 * One VM: an instance of a compiled module, its linear memory, its contexts and its fail state.
 * Plugins that share (vmId, module SHA-256, VM configuration) share a VM; each owns a root
 * context in it, and every request gets a stream context, never an instance.
 *
 * NB (reentrancy): the guest is never re-entered from a hostcall except through the allocator.
 * Side effects a guest asks for (continue, close, local reply, deleting a root after proxy_done)
 * are queued and run after the outermost guest call returns.
 */
import { CALL_FAILED, RootContext, StreamContext, type Context, type PluginSpec } from './context.js';
import { resolveAllocator, resolveCallbacks, type Callbacks, type GuestFn } from './callbacks.js';
import { AbiVersion, LogLevel, Status, type StreamType } from './enums.js';
import { checkVmImports } from './import-check.js';
import { buildImports } from './imports.js';
import { CallBudget, type VmLimits } from './budget.js';
import { DEFAULT_VM_LIMITS } from './limits.js';
import { createCappedMemory } from './memory-cap.js';
import { MetricTable } from './metric-table.js';
import { SANDBOX_MODULE, BUDGET_IMPORT, sandboxPlanOf, type SandboxPlan } from './sandbox.js';
import { LiveContexts } from './live-contexts.js';
import { GuestMemory, MemoryFault } from './memory.js';
import { GuestTrap, describeTrap, failureText, isTrap, type VmFailure } from './trap.js';
import { runStartFunctions, startError, startStage } from './vm-start.js';

export type { VmFailure } from './trap.js';
import { Deferred, Phase } from './phase.js';
import * as lifecycle from './root-lifecycle.js';
import { detectAbiVersion } from './version.js';
import type { TypedImport } from './wasm-types.js';
import { defaultClock, defaultScheduler } from './vm-defaults.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { AbiLogger, Callouts, ForeignFunction, GrpcStreamHandle, LocalResponse, MetricsSink, PropertySource,
  Scheduler, SharedDataStore, SharedQueueStore } from './ports.js';

/** The services a VM reaches through ports; everything but the logger is optional. */
export interface VmPorts {
  readonly logger: AbiLogger;
  readonly scheduler?: Scheduler;
  readonly sharedData?: SharedDataStore;
  readonly sharedQueues?: SharedQueueStore;
  readonly metrics?: MetricsSink;
  readonly callouts?: Callouts;
  readonly properties?: PropertySource;
  readonly foreignFunctions?: ReadonlyMap<string, ForeignFunction>;
  readonly clock?: { wallNs(): bigint; monotonicNs(): bigint };
}

export interface VmOptions {
  /** Module name for messages (usually its file path). */
  readonly name: string;
  readonly vmId?: string;
  /** Buffer 6, `on_vm_start`. */
  readonly vmConfiguration?: Uint8Array;
  /** What the guest sees through WASI `environ_*` (never the host's environment). */
  readonly environment?: Readonly<Record<string, string>>;
  readonly ports: VmPorts;
  /**
   * The module's import section with types (the module layer reads it from the bytes). Given, it
   * is checked against the host's signatures and `allowedHostcalls` before instantiation
   * (import-check.ts); absent, only what instantiation itself checks applies.
   */
  readonly imports?: readonly TypedImport[];
  /** The plugin's capability list: absent allows every hostcall, a list exactly its names. */
  readonly allowedHostcalls?: readonly string[];
  /**
   * What the instrumenter did to `module` (modules/wasm/instrument.ts). Default: the plan the
   * module store registered for `module`; a module compiled as is (tests that compile WAT
   * directly) has none and runs unbudgeted and uncapped.
   */
  readonly sandbox?: SandboxPlan;
  /** CPU budgets and memory cap; only enforced for an instrumented module. Default DEFAULT_VM_LIMITS. */
  readonly limits?: VmLimits;
}

interface DeferredAction { kind: Deferred; ctx: Context; arg: StreamType; reply: LocalResponse | null }

export class WasmVm {
  readonly name: string;
  readonly vmId: string;
  readonly abiVersion: AbiVersion;
  readonly ports: VmPorts;
  readonly scheduler: Scheduler;
  readonly clock: { wallNs(): bigint; monotonicNs(): bigint };
  readonly vmConfiguration: Uint8Array;
  readonly environment: readonly string[];
  readonly mem = new GuestMemory();
  readonly contexts = new LiveContexts();
  callbacks!: Callbacks;
  instance!: WebAssembly.Instance;
  phase: number = Phase.STARTING;
  /** The context whose callback runs (null: the VM context, id 0). */
  current: Context | null = null;
  /** `proxy_set_effective_context` override for the rest of the current guest call. */
  effective: Context | null = null;
  failure: VmFailure | null = null;
  lastCritical: string | null = null;
  /** Outstanding callouts by token (cpp-host encoding: low 2 bits = kind, step 4, never 0). */
  readonly calls = new Map<number, { root: RootContext; cancel?: () => void; stream?: GrpcStreamHandle }>();
  readonly metrics = new MetricTable();
  private readonly nextToken = [4, 5, 6];
  private nextContextId = 1;
  private depth = 0;
  private deferred: DeferredAction[] = [];
  private allocator: GuestFn | null = null;
  private readonly failListeners: Array<(failure: VmFailure) => void> = [];
  /** Deadline of the outermost guest call (budget.ts); checked by instrumented modules only. */
  readonly budget: CallBudget;
  private readonly sandbox: SandboxPlan | undefined;
  private exportNames = new Map<unknown, string>();

  constructor(module: WebAssembly.Module, options: VmOptions) {
    this.name = options.name;
    this.vmId = options.vmId ?? '';
    this.ports = options.ports;
    this.scheduler = options.ports.scheduler ?? defaultScheduler;
    this.clock = options.ports.clock ?? defaultClock;
    this.vmConfiguration = options.vmConfiguration ?? new Uint8Array(0);
    this.environment = Object.entries(options.environment ?? {}).map(([k, v]) => `${k}=${v}`);
    this.budget = new CallBudget(options.limits ?? DEFAULT_VM_LIMITS,
      (call) => (typeof call === 'string' ? call : this.exportNames.get(call) ?? 'a guest call'));
    this.sandbox = options.sandbox ?? sandboxPlanOf(module);
    const version = detectAbiVersion(module);
    if (version === null) {
      throw new GatewayError('GW_ERR_ABI_VERSION',
        `module ${this.name}: missing or unknown Proxy-Wasm ABI version (no proxy_abi_version_0_1_0, _0_2_0 or _0_2_1 export)`);
    }
    this.abiVersion = version;
    checkVmImports(this.name, module, options.imports, options.allowedHostcalls);
    this.start(module);
  }

  get failed(): boolean {
    return this.failure !== null;
  }

  /** Instantiate (start section), find exports, then `_initialize` (+ `main`) or `_start` (§2.1). */
  private start(module: WebAssembly.Module): void {
    const imports = buildImports(this);
    imports[SANDBOX_MODULE] = { [BUDGET_IMPORT]: this.budget.check };
    if (this.sandbox !== undefined) this.budget.enable();
    const capped = createCappedMemory(this.sandbox, this.budget.limits.memoryMb, this.name);
    if (capped !== null) imports[capped.module] = { ...imports[capped.module], [capped.name]: capped.memory };
    this.budget.arm('instantiation (start section)');
    try {
      this.instance = new WebAssembly.Instance(module, imports);
    } catch (err) {
      if (err instanceof WebAssembly.LinkError) {
        throw new GatewayError('GW_ERR_ABI_LINK', `module ${this.name}: ${err.message}`, { cause: err });
      }
      throw startError(this.name, 'instantiation (start section)', err, this.lastCritical);
    } finally {
      this.budget.disarm();
    }
    const exports = this.instance.exports;
    for (const [key, value] of Object.entries(exports)) if (typeof value === 'function') this.exportNames.set(value, key);
    const memory = exports.memory ?? capped?.memory;
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new GatewayError('GW_ERR_ABI_EXPORT', `module ${this.name}: does not export its linear memory as "memory"`);
    }
    this.mem.attach(memory);
    this.allocator = resolveAllocator(exports);
    if (this.allocator === null) {
      throw new GatewayError('GW_ERR_ABI_EXPORT',
        `module ${this.name}: exports no allocator (proxy_on_memory_allocate or malloc)`);
    }
    this.callbacks = resolveCallbacks(exports, this.abiVersion, this.name);
    const stage = startStage(exports);
    this.budget.arm(stage);
    try {
      runStartFunctions(exports);
    } catch (err) {
      throw startError(this.name, stage, err, this.lastCritical);
    } finally {
      this.budget.disarm();
    }
    this.budget.startup = false;
    this.phase = Phase.RUNNING;
  }

  // ---- guest calls -------------------------------------------------------------------------

  /**
   * Calls into the guest on behalf of `ctx`, with the current/effective context saved and
   * restored around the call. A trap fails the VM and returns CALL_FAILED; nothing throws.
   */
  call(ctx: Context, fn: GuestFn, a = 0, b = 0, c = 0, d = 0, e = 0): number {
    if (this.failure !== null) return CALL_FAILED;
    const savedCurrent = this.current;
    const savedEffective = this.effective;
    this.current = ctx;
    this.effective = null;
    // A failure quotes what the guest said during the call that failed, not in an earlier one.
    if (this.depth++ === 0) {
      this.lastCritical = null;
      this.budget.arm(fn);
    }
    try {
      const result = (fn(a, b, c, d, e) as number | undefined) ?? 0;
      // A guest that caught the budget trap and returned is still over budget.
      if (this.budget.expired) throw this.budget.trap();
      // i32 results are unsigned to the host: a guest's -1 must not read as CALL_FAILED.
      return result >>> 0;
    } catch (err) {
      this.fail(err, ctx);
      return CALL_FAILED;
    } finally {
      this.current = savedCurrent;
      this.effective = savedEffective;
      if (--this.depth === 0) {
        this.budget.disarm();
        if (this.deferred.length > 0) this.flushDeferred();
      }
    }
  }

  /**
   * Guest memory for a returned value: exact size, never 0 bytes (callers write ptr=0 instead),
   * run in the VM context with the allocation-phase restrictions. A trap propagates to the
   * enclosing guest call.
   */
  allocate(size: number): number {
    const savedCurrent = this.current;
    const savedEffective = this.effective;
    const savedPhase = this.phase;
    this.current = null;
    this.effective = null;
    this.phase = Phase.ALLOCATING;
    const outermost = this.depth === 0;
    if (outermost) this.budget.arm('the allocator');
    let ptr: number;
    try {
      ptr = (this.allocator!(size) as number) >>> 0;
      if (outermost && this.budget.expired) throw this.budget.trap();
    } finally {
      if (outermost) this.budget.disarm();
      this.current = savedCurrent;
      this.effective = savedEffective;
      this.phase = savedPhase;
    }
    if (ptr === 0) throw new MemoryFault(0, size, this.mem.size);
    this.mem.check(ptr, size);
    return ptr;
  }

  /** The context hostcalls act on: the effective one if set and alive, else the running one. */
  target(): Context | null {
    const eff = this.effective;
    if (eff !== null && eff.alive) return eff;
    return this.current;
  }

  // ---- failure -----------------------------------------------------------------------------

  private describe(err: unknown): VmFailure {
    return describeTrap(err, this.lastCritical);
  }

  private fail(err: unknown, ctx: Context): void {
    // A nested call that trapped failed the VM already; its outer call returning is not news.
    if (this.failure !== null) return;
    if (!isTrap(err) && !(err instanceof Error)) err = new Error(String(err));
    const failure = this.describe(err);
    this.failure = failure;
    this.deferred = [];
    const origin = ctx.root;
    this.ports.logger.log(LogLevel.CRITICAL, `VM failed in module ${this.name}: ${failureText(failure)}`, origin);
    for (const root of this.roots()) root.tick?.cancel();
    // A copy: a listener may unsubscribe while it is told.
    for (const listener of [...this.failListeners]) listener(failure);
  }

  /**
   * Called once when the VM fails; the data plane applies the plugin's failure policy. Returns
   * the unsubscribe: NB a listener left registered keeps whatever it closes over alive as long
   * as the VM, which outlives a generation when it is shared (vm-pool.ts).
   */
  onFail(listener: (failure: VmFailure) => void): () => void {
    this.failListeners.push(listener);
    return () => {
      const i = this.failListeners.indexOf(listener);
      if (i >= 0) this.failListeners.splice(i, 1);
    };
  }

  /** Fail listeners registered now (for diagnostics and the leak tests). */
  get failListenerCount(): number {
    return this.failListeners.length;
  }

  /** Throws the trap that ends the current guest call for a hostcall not allowed in this phase. */
  restricted(name: string): never {
    const phase = this.phase === Phase.ALLOCATING ? 'memory allocation' : 'VM start-up';
    throw new GuestTrap(`restricted_callback: ${name} is not allowed during ${phase}`, 'restricted');
  }

  /** What a hostcall returns when its implementation threw: traps propagate, the rest is a status. */
  hostcallError(name: string, err: unknown): number {
    if (err instanceof MemoryFault) return Status.INVALID_MEMORY_ACCESS;
    if (isTrap(err)) throw err;
    this.ports.logger.log(LogLevel.ERROR, `hostcall ${name} failed in module ${this.name}: ${String(err)}`, this.target()?.root ?? null);
    return Status.INTERNAL_FAILURE;
  }

  // ---- deferred side effects ---------------------------------------------------------------

  defer(kind: Deferred, ctx: Context, arg: StreamType = 0, reply: LocalResponse | null = null): void {
    this.deferred.push({ kind, ctx, arg, reply });
  }

  private flushDeferred(): void {
    // Actions may run guest code (the next filter) that queues more; drain until empty.
    while (this.deferred.length > 0) {
      const batch = this.deferred;
      this.deferred = [];
      for (const action of batch) this.runDeferred(action);
    }
  }

  private runDeferred({ kind, ctx, arg, reply }: DeferredAction): void {
    if (kind === Deferred.DELETE_ROOT) {
      lifecycle.deleteRoot(this, ctx as RootContext);
      return;
    }
    const stream = ctx as StreamContext;
    if (!stream.alive) return;
    if (kind === Deferred.CONTINUE) stream.host.continueStream(arg);
    else if (kind === Deferred.CLOSE) stream.host.closeStream(arg);
    else stream.host.sendLocalResponse(reply!);
  }

  // ---- contexts ----------------------------------------------------------------------------

  roots(): Iterable<RootContext> {
    return this.contexts.roots();
  }

  /**
   * Creates the plugin's root context: on_context_create(R, 0) → on_vm_start(R, vm config) →
   * on_configure(R, plugin config) (§4.3, root-lifecycle.ts). Throws a GatewayError naming the
   * plugin on failure.
   */
  createRoot(plugin: PluginSpec): RootContext {
    if (this.failure !== null) {
      throw new GatewayError('GW_ERR_ABI_VM_FAILED', `plugin ${plugin.name}: VM of module ${this.name} has failed: ${this.failure.message}`);
    }
    return lifecycle.startRoot(this, new RootContext(this.nextContextId++, this, plugin));
  }

  /** A new stream context of `root` for one request or connection; the guest learns of it lazily. */
  createStream(root: RootContext, host: StreamContext['host']): StreamContext {
    const stream = new StreamContext(this.nextContextId++, root, host);
    this.contexts.add(stream);
    return stream;
  }

  forget(ctx: Context): void {
    this.contexts.delete(ctx);
  }

  /** Ends the root: on_done, then on_delete now or once the guest calls proxy_done() (root-lifecycle.ts). */
  shutdownRoot(root: RootContext): void {
    lifecycle.shutdownRoot(this, root);
  }

  /** `proxy_done()` from the guest: the root waiting for it is deleted after the call returns. */
  rootDone(root: RootContext): number {
    return lifecycle.rootDone(this, root);
  }

  /** The token the next callout of `kind` will get; `token(kind)` takes it once the call is made. */
  peekToken(kind: 0 | 1 | 2): number {
    return this.nextToken[kind];
  }

  /** Token for a new callout: http 4, 8, …; gRPC call 5, 9, …; gRPC stream 6, 10, … */
  token(kind: 0 | 1 | 2): number {
    const t = this.nextToken[kind];
    this.nextToken[kind] = (t + 4) >>> 0 || kind + 4;
    return t;
  }

  /** Runs `fn` on the root as a background callback (tick, queue, callout); skipped if failed. */
  callRoot(root: RootContext, fn: GuestFn | null, a = 0, b = 0, c = 0, d = 0, e = 0): number {
    if (fn === null || !root.alive || this.failure !== null) return 0;
    return this.call(root, fn, a, b, c, d, e);
  }
}

