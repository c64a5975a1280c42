/**
 * The one place a shared-state backend is chosen (design "Shared state"): the `sharedState`
 * section of the configuration in, the shared-data and shared-queue ports out, with `close()`
 * for the gateway's stop. Memory: this process only. Redis: shared data and shared queues across
 * every node on the same Redis and prefix (replicated-data.ts and redis-queues.ts state the models).
 * The workers of one box without Redis replicate shared data through their primary (hub.ts).
 */
import { randomBytes } from 'node:crypto';
import type { SharedDataStore, SharedQueueStore } from '../abi/ports.js';
import { MemorySharedData, MemorySharedQueues, type SharedDataStats, type SharedQueueStats } from './memory.js';
import { BoxSharedQueues } from './box-queues.js';
import type { IpcLink } from './ipc-link.js';
import { ReplicatedSharedData } from './replicated-data.js';
import { RedisLink } from './redis-link.js';
import { RedisSharedQueues } from './redis-queues.js';

/** The `sharedState` section as the configuration schema gives it (defaults applied). */
export type SharedStateOptions =
  | { readonly backend: 'memory'; readonly maxBytesPerVm: number }
  | {
    readonly backend: 'redis'; readonly url: string; readonly cluster: boolean; readonly prefix: string;
    readonly queueClaimIdleMs: number; readonly readyWithRedisOnly: boolean; readonly maxBytesPerVm: number;
  };

/** What a backend reports to the gateway's log. */
export interface SharedStateEvents {
  /** Something under the prefix that is not ours, or a failed load: ignored, logged. */
  warn(message: string): void;
  /** The connection to Redis came up or went away (told once per change). */
  connection(connected: boolean, reason?: string): void;
}

const QUIET: SharedStateEvents = { warn: () => undefined, connection: () => undefined };

/** A running backend: what the VM pool, /metrics and the gateway's stop need of it. */
export interface SharedState {
  readonly backend: SharedStateOptions['backend'];
  readonly data: SharedDataStore;
  readonly queues: SharedQueueStore;
  /** Per-vm_id figures for /metrics. */
  stats(): SharedDataStats[];
  /** Per-vm_id queue figures for /metrics. */
  queueStats(): SharedQueueStats[];
  /** Redis: connected now, writes waiting for it, writes dropped from its full queue. null for memory. */
  replication(): { connected: boolean; waiting: number; dropped: number } | null;
  /**
   * Frees what the backend holds (memory) or ends its connections (Redis). Called once, after the
   * last root context has ended; the ports are not used after it.
   */
  close(): Promise<void>;
}

/**
 * Builds the backend `options` names. `node` names this process in Redis's versions (made unique
 * per process); `events` reach the log. The Redis backend connects in the background: the gateway
 * serves on its own copy until Redis answers (replicated-data.ts).
 */
export function createSharedState(options: SharedStateOptions, node = 'edge', events: SharedStateEvents = QUIET, box?: IpcLink): SharedState {
  if (options.backend === 'redis') return redisState(options, node, events);
  if (box === undefined) {
    return memoryState(new MemorySharedData({ maxBytesPerVm: options.maxBytesPerVm }), new MemorySharedQueues({ maxBytesPerVm: options.maxBytesPerVm }));
  }
  // A worker of a box without Redis: shared data replicated through the primary's hub (hub.ts),
  // with the Redis backend's model, and shared queues handed out by it (box-queues.ts).
  const data = new ReplicatedSharedData(box, { maxBytesPerVm: options.maxBytesPerVm, warn: events.warn });
  box.feed({ update: (u) => data.received(u), ready: () => data.reload() });
  return memoryState(data, new BoxSharedQueues(options.maxBytesPerVm, box.channel));
}

/** The memory backend's state around `data` (this process's, or replicated within the box). */
function memoryState(data: { stats(): SharedDataStats[]; clear(): void } & SharedDataStore,
  queues: { stats(): SharedQueueStats[]; clear(): void } & SharedQueueStore): SharedState {
  return {
    backend: 'memory', data, queues,
    stats: () => data.stats(),
    queueStats: () => queues.stats(),
    replication: () => null,
    close: async () => {
      data.clear();
      queues.clear();
    },
  };
}

function redisState(options: Extract<SharedStateOptions, { backend: 'redis' }>, node: string, events: SharedStateEvents): SharedState {
  const safe = node.replace(/[^A-Za-z0-9._-]/g, '_');
  // The writer id separates fields in published writes (redis-layout.ts): no spaces, and unique
  // per process. The queue consumer keeps the node's own id, so a restarted node finds its
  // pending items (redis-queues.ts).
  const id = `${safe}-${randomBytes(4).toString('hex')}`;
  let data: ReplicatedSharedData | null = null;
  let queues: RedisSharedQueues | null = null;
  const link = new RedisLink({ url: options.url, cluster: options.cluster, prefix: options.prefix, node: id }, {
    update: (u) => data?.received(u),
    foreign: (message) => events.warn(`ignored on a shared-state channel or under the prefix: ${message.toString('latin1', 0, 120)}`),
    queue: (message) => queues?.message(message),
    ready: () => {
      data?.reload();
      queues?.reload();
    },
    state: (connected, reason) => events.connection(connected, reason),
  });
  const store = data = new ReplicatedSharedData(link, { maxBytesPerVm: options.maxBytesPerVm, warn: events.warn });
  const queueStore = queues = new RedisSharedQueues(link, safe, events.warn, options.queueClaimIdleMs);
  return {
    backend: 'redis', data: store, queues: queueStore,
    stats: () => store.stats(),
    queueStats: () => queueStore.stats(),
    replication: () => ({ connected: link.connected, waiting: link.waiting, dropped: link.dropped }),
    close: async () => {
      await link.close();
      store.clear();
      queueStore.clear();
    },
  };
}
