/**
 * One configured plugin at run time: its root context in a (possibly shared) VM, and the failure
 * policy applied when that VM fails (reference §6.8):
 *   closed — every new stream is answered 503 by the host;
 *   open   — the filter is not installed on new streams (traffic passes);
 *   reload — like closed until a fresh VM is started from the cached module, which happens on the
 *            next request after a backoff that doubles on each failure (0 s, 1 s, 2 s … 30 s) and
 *            resets after a minute without failure.
 */
import type { RootContext, StreamContext } from '../abi/context.js';
import type { StreamHost } from '../abi/ports.js';
import type { VmFailure } from '../abi/vm.js';
import type { PluginConfig } from '../config/schema.js';
import type { FilterSlot } from './filter-slot.js';
import type { Logger } from '../log.js';
import type { LoadedModule } from '../modules/module-store.js';
import type { VmPool } from '../modules/vm-pool.js';

/** The filter is not installed on this stream (fail-open after a failure). */
export const SKIP = 0;
/** The host answers this stream 503 (fail-closed, or reload waiting for its backoff). */
export const REJECT = 1;

const MAX_BACKOFF_MS = 30_000;
const HEALTHY_RESET_MS = 60_000;

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
  /**
   * Streams paused on this plugin (waiting for continue_stream). When the VM fails in another
   * callback (a callout answer, another stream), nothing would resume them: they get the failure
   * policy instead, so that a failing filter never hangs a client.
   */
  readonly paused = new Set<FilterSlot>();
  private backoffMs = 0;
  private nextReloadAt = 0;
  private failedAt = 0;

  constructor(readonly config: PluginConfig, readonly module: LoadedModule, private readonly pool: VmPool,
    private readonly logger: Logger) {
    this.name = config.name;
  }

  /** Creates the root context; throws a GatewayError naming the plugin when it cannot start. */
  start(): void {
    const root = this.pool.startPlugin(this.module, {
      vmId: this.config.vmId,
      vmConfiguration: guestBytes(this.config.vmConfiguration),
      environment: this.config.environment,
      limits: this.config.limits,
    }, { name: this.config.name, rootId: this.config.rootId, configuration: guestBytes(this.config.configuration) });
    this.root = root;
    this.failure = null;
    root.vm.onFail((failure) => {
      if (this.root === root) this.onFailure(failure);
    });
  }

  private onFailure(failure: VmFailure): void {
    this.failure = failure;
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

  get healthy(): boolean {
    return this.root !== null && this.failure === null;
  }

  /** A stream context for a new request, or SKIP / REJECT per the failure policy. */
  stream(host: StreamHost): StreamContext | typeof SKIP | typeof REJECT {
    if (this.failure !== null && !this.recover()) return this.config.failurePolicy === 'open' ? SKIP : REJECT;
    const root = this.root!;
    return root.vm.createStream(root, host);
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

  stop(): void {
    if (this.root !== null) this.pool.stopPlugin(this.root);
    this.root = null;
  }
}
