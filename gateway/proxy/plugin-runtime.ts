/**
 * One configured plugin at run time: its root context in a (possibly shared) VM, and the failure
 * policy applied when that VM fails (reference §6.8):
 *   closed — every new stream is answered 503 by the host;
 *   open   — the filter is not installed on new streams (traffic passes);
 *   reload — like closed until a fresh VM is started from the cached module, which happens on the
 *            next request after a backoff that doubles on each failure (0 s, 1 s, 2 s … 30 s) and
 *            resets after a minute without failure.
 *
 * Recycling: when one of the plugin's streams ends and its VM's linear memory has passed
 * `limits.recycleMemoryMb` (default 3/4 of `limits.memoryMb`), the pool replaces the VM for new
 * streams (vm-pool.ts); streams already running finish on the old one. One read of the memory size
 * per ended stream, nothing per hostcall. A VM shared by plugins is recycled when it passes the
 * lowest threshold among them.
 *
 * The pool tells the runtime of a recycle and of a VM failure through the RootEvents it was given
 * at start, until the runtime stops: a stopped runtime is not told and not kept alive by the VM.
 * The runtime's ports (its generation's callouts and node properties) go with its root.
 *
 * Retiring (a module swap, a configuration change, a canary ending): `retire()` stops the runtime
 * at once when none of its streams runs, else when the last of them ends, so that streams in
 * flight finish on the version they started on.
 */
import type { RootContext, StreamContext } from '../abi/context.js';
import type { PluginPorts, StreamHost } from '../abi/ports.js';
import type { VmFailure, WasmVm } from '../abi/vm.js';
import type { RootEvents, VmPool } from '../abi/vm-pool.js';
import type { PluginConfig } from '../config/schema.js';
import type { FilterSlot } from './filter-slot.js';
import type { Logger } from '../log.js';
import type { LoadedModule } from '../modules/module-store.js';
import { VersionStats } from './version-stats.js';

/** The filter is not installed on this stream (fail-open after a failure). */
export const SKIP = 0;
/** The host answers this stream 503 (fail-closed, or reload waiting for its backoff). */
export const REJECT = 1;

const MAX_BACKOFF_MS = 30_000;
const HEALTHY_RESET_MS = 60_000;
const MIB = 1024 * 1024;

/** The linear memory past which the plugin's VM is recycled: recycleMemoryMb, else 3/4 of memoryMb. */
export function recycleBytes(config: PluginConfig): number {
  const limits = config.limits;
  return Math.round((limits.recycleMemoryMb ?? limits.memoryMb * 0.75) * MIB);
}

const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

/** Configuration given as an object reaches the guest as JSON text, a string verbatim. */
export function guestBytes(value: unknown): Uint8Array {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
}

export class PluginRuntime {
  readonly name: string;
  root: RootContext | null = null;
  failure: VmFailure | null = null;
  /** Times a fresh VM was started after a failure. */
  reloads = 0;
  /** Times the plugin's root moved to a fresh VM because the old VM's memory passed the threshold. */
  recycles = 0;
  /** recycleBytes(config), resolved once. */
  readonly recycleBytes: number;
  /**
   * Streams paused on this plugin (waiting for continue_stream). When the VM fails in another
   * callback (a callout answer, another stream), nothing would resume them: they get the failure
   * policy instead, so that a failing filter never hangs a client.
   */
  private readonly paused = new Set<FilterSlot>();
  /** Streams started here and not yet ended. */
  private active = 0;
  private retiring = false;
  private backoffMs = 0;
  private nextReloadAt = 0;
  private failedAt = 0;
  /** One object for every start, so the pool holds nothing new per start. */
  private readonly events: RootEvents = {
    moved: (root) => this.moved(root),
    failed: (root, failure) => this.failed(root, failure),
  };

  constructor(readonly config: PluginConfig, readonly module: LoadedModule, private readonly pool: VmPool,
    private readonly logger: Logger, private readonly ports: PluginPorts = {},
    /** The counters of the module version this runtime is part of (shared by its route configurations). */
    readonly stats: VersionStats = new VersionStats()) {
    this.name = config.name;
    this.recycleBytes = recycleBytes(config);
  }

  /** Creates the root context; throws a GatewayError naming the plugin when it cannot start. */
  start(): void {
    const root = this.pool.startPlugin(this.module, {
      vmId: this.config.vmId,
      vmConfiguration: guestBytes(this.config.vmConfiguration),
      environment: this.config.environment,
      limits: this.config.limits,
      allowedHostcalls: this.config.allowedHostcalls,
    }, { name: this.config.name, rootId: this.config.rootId, configuration: guestBytes(this.config.configuration), ports: this.ports },
    this.events);
    this.root = root;
    this.failure = null;
  }

  /** The VM of `root` failed: the plugin's current one, or one it was recycled away from. */
  private failed(root: RootContext, failure: VmFailure): void {
    if (this.root === root) this.onFailure(failure);
    else this.failPausedOn(root.vm);
  }

  /** A recycle moved this plugin to a fresh VM: new streams start there. */
  private moved(root: RootContext): void {
    this.root = root;
    this.recycles++;
  }

  /**
   * A VM this plugin no longer starts streams on (recycled) failed while streams still ran on it:
   * those paused on it get the failure policy, as in onFailure, and the plugin stays healthy.
   */
  private failPausedOn(vm: WasmVm): void {
    const held = [...this.paused].filter((slot) => slot.stream?.vm === vm);
    for (const slot of held) this.paused.delete(slot);
    if (held.length > 0) queueMicrotask(() => { for (const slot of held) slot.vmFailed(); });
  }

  /**
   * One of this plugin's streams has ended (on_done/on_delete delivered). On the current VM, checks
   * its memory against the recycle threshold; on an older one, lets the pool end it if it was the
   * last stream there.
   */
  streamEnded(stream: StreamContext): void {
    if (--this.active === 0 && this.retiring) {
      this.stop();
      this.pool.streamEnded(stream.vm);
      return;
    }
    const root = this.root;
    if (stream.root !== root) {
      this.pool.streamEnded(stream.vm);
      return;
    }
    const vm = root.vm;
    if (vm.mem.size > this.recycleBytes && !vm.failed) this.recycle(vm);
  }

  private recycle(vm: WasmVm): void {
    const memoryBytes = vm.mem.size;
    const result = this.pool.recycle(vm, this.recycleBytes);
    if (result === null) return;
    const at = { plugin: this.name, plugins: result.plugins, memoryBytes, recycleBytes: this.recycleBytes };
    if (result.recycled) {
      this.logger.info(at, `VM of ${result.plugins} recycled: its memory (${mib(memoryBytes)} MiB) passed `
        + `limits.recycleMemoryMb of plugin ${this.name} (${mib(this.recycleBytes)} MiB); new streams go to a fresh VM, `
        + 'the old one ends with its last stream');
    } else if (result.error !== null) {
      const err = result.error;
      this.logger.error({ ...at, code: (err as { code?: unknown } | undefined)?.code, err },
        `VM of ${result.plugins} not recycled: the fresh VM failed to start (${err instanceof Error ? err.message : String(err)}); the old VM keeps serving`);
    } else {
      this.logger.warn({ ...at, freshBytes: result.freshBytes }, `VM of ${result.plugins} not recycled: a fresh VM already `
        + `uses ${mib(result.freshBytes)} MiB once started, not under limits.recycleMemoryMb of plugin ${this.name}; the old VM keeps serving`);
    }
  }

  private onFailure(failure: VmFailure): void {
    this.failure = failure;
    this.stats.vmFailed(failure.code);
    const now = Date.now();
    if (now - this.failedAt > HEALTHY_RESET_MS) this.backoffMs = 0;
    this.failedAt = now;
    this.nextReloadAt = now + this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? 1000 : this.backoffMs * 2);
    this.logger.error({ plugin: this.name, code: failure.code, policy: this.config.failurePolicy, guestMessage: failure.guestMessage },
      `plugin ${this.name} failed: ${failure.message}`);
    if (this.paused.size > 0) {
      const held = [...this.paused];
      this.paused.clear();
      // NB: after the failing guest call has unwound (this runs inside it).
      queueMicrotask(() => { for (const slot of held) slot.vmFailed(); });
    }
  }

  /** `slot`'s stream waits for this plugin to continue it (Pause): a VM failure must end the wait. */
  hold(slot: FilterSlot): void {
    this.paused.add(slot);
  }

  /** `slot`'s stream no longer waits (it is over). */
  release(slot: FilterSlot): void {
    this.paused.delete(slot);
  }

  get healthy(): boolean {
    return this.root !== null && this.failure === null;
  }

  /** A stream context for a new request, or SKIP / REJECT per the failure policy. */
  stream(host: StreamHost): StreamContext | typeof SKIP | typeof REJECT {
    if (this.failure !== null && !this.recover()) {
      this.stats.started(true);
      return this.config.failurePolicy === 'open' ? SKIP : REJECT;
    }
    const root = this.root!;
    const stream = root.vm.createStream(root, host);
    this.stats.started(false);
    this.active++;
    return stream;
  }

  private recover(): boolean {
    if (this.config.failurePolicy !== 'reload' || Date.now() < this.nextReloadAt) return false;
    const old = this.root;
    try {
      this.start();
      this.reloads++;
      if (old !== null) this.pool.stopPlugin(old);
      this.logger.warn({ plugin: this.name, reloads: this.reloads }, `plugin ${this.name} reloaded in a fresh VM`);
      return true;
    } catch (err) {
      this.logger.error({ plugin: this.name, err }, `plugin ${this.name} could not be reloaded`);
      this.nextReloadAt = Date.now() + this.backoffMs;
      return false;
    }
  }

  /** No new stream comes here: stop now, or when the last stream running here ends. */
  retire(): void {
    this.retiring = true;
    if (this.active === 0) this.stop();
  }

  stop(): void {
    if (this.root !== null) this.pool.stopPlugin(this.root);
    this.root = null;
  }
}
