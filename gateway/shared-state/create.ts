/**
 * The one place a shared-state backend is chosen (design "Shared state"): the `sharedState`
 * section of the configuration in, the shared-data and shared-queue ports out, with `close()`
 * for the gateway's stop. A backend the schema reserves but this version does not implement is
 * refused here, with a code and the field, never replaced by another one: a configuration that
 * asks for data shared across nodes must not quietly get data local to one process.
 */
import type { SharedDataStore, SharedQueueStore } from '../abi/ports.js';
import { GatewayError } from '../errors.js';
import { MemorySharedData, MemorySharedQueues, type SharedDataStats, type SharedQueueStats } from './memory.js';

/** The `sharedState` section as the configuration schema gives it (defaults applied). */
export type SharedStateOptions =
  | { readonly backend: 'memory'; readonly maxBytesPerVm: number }
  | { readonly backend: 'redis'; readonly url: string; readonly maxBytesPerVm: number };

/** A running backend: what the VM pool, /metrics and the gateway's stop need of it. */
export interface SharedState {
  readonly backend: SharedStateOptions['backend'];
  readonly data: SharedDataStore;
  readonly queues: SharedQueueStore;
  /** Per-vm_id figures for /metrics. */
  stats(): SharedDataStats[];
  /** Per-vm_id queue figures for /metrics. */
  queueStats(): SharedQueueStats[];
  /**
   * Frees what the backend holds (memory) or ends its connections (Redis). Called once, after the
   * last root context has ended; the ports are not used after it.
   */
  close(): Promise<void>;
}

/**
 * Throws GW_ERR_CONFIG_UNSUPPORTED for a backend that is not implemented yet; a reload checks a
 * new configuration with it before it is applied, as a start does through `createSharedState`.
 */
export function checkSharedState(options: SharedStateOptions): void {
  if (options.backend === 'redis') {
    throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED',
      'sharedState.backend: "redis" is not implemented yet; use "memory" (data shared within this process only)');
  }
}

/** Builds the backend `options` names. Throws GW_ERR_CONFIG_UNSUPPORTED for one not implemented. */
export function createSharedState(options: SharedStateOptions): SharedState {
  checkSharedState(options);
  const data = new MemorySharedData({ maxBytesPerVm: options.maxBytesPerVm });
  const queues = new MemorySharedQueues({ maxBytesPerVm: options.maxBytesPerVm });
  return {
    backend: 'memory', data, queues,
    stats: () => data.stats(),
    queueStats: () => queues.stats(),
    close: async () => {
      data.clear();
      queues.clear();
    },
  };
}
