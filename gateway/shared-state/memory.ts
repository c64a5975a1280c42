/**
 * The embedded shared-state backend: shared data and shared queues in this process's memory.
 *
 * Consistency: exact within one process (every call is synchronous on one event loop). CAS values
 * come from one counter starting at 1 that skips 0, so a CAS is never 0 (reference §6.1).
 *
 * Quota: each vm_id holds at most `maxBytesPerVm` bytes of shared data, counting keys, values and
 * ENTRY_OVERHEAD_BYTES per entry (data-scope.ts). A vm_id's data is freed when the last VM with
 * that vm_id goes (`release`), as cpp-host does.
 *
 * When a write does not fit, the least recently used entries of that vm_id are evicted until it
 * does (Kong's shared dicts do the same); deleted keys go first. Reads and writes both count as a
 * use. Eviction, not refusal, because:
 *   - the ABI has no "full" status: the Rust SDK panics on any answer to set other than OK and
 *     CAS_MISMATCH, so refusing would turn a full store into a trap on every request of every Rust
 *     filter sharing the vm_id, and one filter's data could then lock the others out;
 *   - guests already cope with a missing key (first use, another node, a restart);
 *   - a key a guest just read is the most recently used, so a read-modify-write meets eviction last.
 * A CAS-holding guest still gets a consistent answer: CAS values are never reused, so a key evicted
 * and written again has a new CAS and a stale one gets CAS_MISMATCH; a CAS write to a key that was
 * evicted meanwhile finds it missing and writes, which is what cpp-host does for any missing key.
 * Only an entry larger than the whole quota is refused (BAD_ARGUMENT): evicting everything would
 * not make it fit.
 *
 * Delete: the ABI has none; a guest writes an empty value (Rust `remove_shared_data`). As in Envoy
 * the key then reads as OK with an empty value and a fresh CAS, so CAS loops over a deleted key
 * keep working, but its value bytes are freed at once and the key's own cost (key bytes and the
 * overhead) is the first thing reclaimed when a write needs room.
 */
import { Status } from '../abi/enums.js';
import type { QueueListener, QueueRegistration, SharedDataRefusal, SharedDataStore, SharedEntry, SharedQueueStore } from '../abi/ports.js';
import { DataScope, entryBytes } from './data-scope.js';
import { Fifo } from './fifo.js';

/** The default quota per vm_id: 16 MiB, an eighth of the default guest memory cap (limits.memoryMb). */
export const DEFAULT_MAX_BYTES_PER_VM = 16 * 1024 * 1024;

export interface MemorySharedDataOptions {
  /** Bytes of shared data one vm_id may hold (keys + values + overhead per entry). */
  readonly maxBytesPerVm?: number;
}

/** One vm_id's figures, for /metrics. Counters survive the release of the vm_id's data. */
export interface SharedDataStats {
  readonly vmId: string;
  readonly bytes: number;
  readonly entries: number;
  readonly evictions: number;
  readonly refusals: Readonly<Record<SharedDataRefusal, number>>;
}

interface Counts {
  evictions: number;
  refusals: Record<SharedDataRefusal, number>;
}

export class MemorySharedData implements SharedDataStore {
  readonly maxBytesPerVm: number;
  private readonly scopes = new Map<string, DataScope>();
  private readonly counts = new Map<string, Counts>();
  private nextCas = 1;

  constructor(options: MemorySharedDataOptions = {}) {
    this.maxBytesPerVm = options.maxBytesPerVm ?? DEFAULT_MAX_BYTES_PER_VM;
  }

  get(vmId: string, key: string): SharedEntry | undefined {
    return this.scopes.get(vmId)?.get(key);
  }

  set(vmId: string, key: string, value: Uint8Array, cas: number): typeof Status.OK | typeof Status.CAS_MISMATCH | typeof Status.BAD_ARGUMENT {
    const bytes = entryBytes(key, value.length);
    if (bytes > this.maxBytesPerVm) {
      this.refused(vmId, 'quota');
      return Status.BAD_ARGUMENT;
    }
    let scope = this.scopes.get(vmId);
    if (scope === undefined) this.scopes.set(vmId, (scope = new DataScope()));
    const current = scope.peek(key);
    // cpp-host: a non-zero cas against a missing key still writes.
    if (cas !== 0 && current !== undefined && current.cas !== cas) return Status.CAS_MISMATCH;
    const evicted = scope.put(key, value, this.takeCas(), bytes, this.maxBytesPerVm);
    if (evicted > 0) this.countsOf(vmId).evictions += evicted;
    return Status.OK;
  }

  /** The entry without counting a use (replication looks, guests use `get`). */
  peek(vmId: string, key: string): SharedEntry | undefined {
    return this.scopes.get(vmId)?.peek(key);
  }

  refused(vmId: string, reason: SharedDataRefusal): void {
    this.countsOf(vmId).refusals[reason]++;
  }

  /** Frees every entry of `vmId` (its last VM has gone). Its counters stay. */
  release(vmId: string): void {
    this.scopes.delete(vmId);
  }

  /** Frees every vm_id's data (the gateway stops); counters stay, as for `release`. */
  clear(): void {
    this.scopes.clear();
  }

  /** Bytes held by `vmId` now, as counted against the quota. */
  bytesOf(vmId: string): number {
    return this.scopes.get(vmId)?.bytes ?? 0;
  }

  /** Every vm_id that holds data or was ever counted, for /metrics. */
  stats(): SharedDataStats[] {
    const ids = new Set([...this.scopes.keys(), ...this.counts.keys()]);
    return [...ids].map((vmId) => {
      const scope = this.scopes.get(vmId);
      const counts = this.counts.get(vmId);
      return {
        vmId, bytes: scope?.bytes ?? 0, entries: scope?.size ?? 0,
        evictions: counts?.evictions ?? 0, refusals: { ...(counts?.refusals ?? { key_size: 0, value_size: 0, quota: 0 }) },
      };
    });
  }

  private countsOf(vmId: string): Counts {
    let counts = this.counts.get(vmId);
    if (counts === undefined) this.counts.set(vmId, (counts = { evictions: 0, refusals: { key_size: 0, value_size: 0, quota: 0 } }));
    return counts;
  }

  private takeCas(): number {
    const cas = this.nextCas;
    this.nextCas = (cas + 1) >>> 0 || 1;
    return cas;
  }
}

/** The listener of a queue nobody listens to (its items wait for the next registration). */
const unbound: QueueListener = () => undefined;

interface Queue {
  readonly id: number;
  readonly vmId: string;
  readonly items: Fifo<Uint8Array>;
  listener: QueueListener;
}

/** What one queued item costs against its vm_id's queue quota, besides its bytes. */
export const QUEUE_ITEM_OVERHEAD_BYTES = 64;

/** One vm_id's queue figures, for /metrics. `dropped` survives the items. */
export interface SharedQueueStats {
  readonly vmId: string;
  readonly bytes: number;
  readonly items: number;
  readonly dropped: number;
}

export interface MemorySharedQueuesOptions {
  /** Bytes the queues of one vm_id may hold together (items + QUEUE_ITEM_OVERHEAD_BYTES each). */
  readonly maxBytesPerVm?: number;
}

/** One vm_id's queue usage. */
interface QueueScope {
  bytes: number;
  items: number;
  dropped: number;
}

/**
 * Shared queues, bounded per vm_id: all the queues of one vm_id hold at most `maxBytesPerVm`
 * bytes together. An enqueue that would pass it drops the oldest items of the same queue until
 * the new one fits, and when that queue cannot make room (other queues of the vm_id hold the
 * bytes), the new item is dropped; an item larger than the whole quota is dropped at once,
 * the queue untouched. Either way the answer is OK and the drop is counted
 * (`edge_gateway_shared_queue_dropped_total{vm_id}`): the ABI has no "full" status and the SDKs
 * panic on one they do not expect, and a queue that backed up (its consumer stalled or gone) is a stream of telemetry or work items where the newest matter
 * most. Without a bound, a guest enqueuing in a loop grew the host's memory without limit.
 */

export class MemorySharedQueues implements SharedQueueStore {
  readonly maxBytesPerVm: number;
  private readonly byName = new Map<string, Queue>();
  private readonly byId = new Map<number, Queue>();
  private readonly scopes = new Map<string, QueueScope>();
  private nextId = 1;

  constructor(options: MemorySharedQueuesOptions = {}) {
    this.maxBytesPerVm = options.maxBytesPerVm ?? DEFAULT_MAX_BYTES_PER_VM;
  }

  register(vmId: string, name: string, listener: QueueListener): QueueRegistration {
    const key = `${vmId}\0${name}`;
    let queue = this.byName.get(key);
    if (queue !== undefined) {
      queue.listener = listener;
    } else {
      queue = { id: this.nextId++, vmId, items: new Fifo(), listener };
      this.byName.set(key, queue);
      this.byId.set(queue.id, queue);
    }
    const bound = queue;
    return {
      id: bound.id,
      unsubscribe: () => { if (bound.listener === listener) bound.listener = unbound; },
    };
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(`${vmId}\0${name}`)?.id;
  }

  enqueue(queueId: number, data: Uint8Array): typeof Status.OK | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    const scope = this.scope(queue.vmId);
    const cost = data.byteLength + QUEUE_ITEM_OVERHEAD_BYTES;
    if (cost > this.maxBytesPerVm) {
      // Larger than the whole quota: dropping what the queue holds would not make it fit.
      scope.dropped++;
      return Status.OK;
    }
    while (scope.bytes + cost > this.maxBytesPerVm && queue.items.length > 0) {
      this.take(scope, queue.items.shift()!);
      scope.dropped++;
    }
    if (scope.bytes + cost > this.maxBytesPerVm) {
      scope.dropped++;
      return Status.OK;
    }
    queue.items.push(Uint8Array.from(data));
    scope.bytes += cost;
    scope.items++;
    queue.listener(queueId);
    return Status.OK;
  }

  /** Per-vm_id figures, for /metrics. */
  stats(): SharedQueueStats[] {
    return [...this.scopes].map(([vmId, s]) => ({ vmId, bytes: s.bytes, items: s.items, dropped: s.dropped }));
  }

  private scope(vmId: string): QueueScope {
    let scope = this.scopes.get(vmId);
    if (scope === undefined) {
      scope = { bytes: 0, items: 0, dropped: 0 };
      this.scopes.set(vmId, scope);
    }
    return scope;
  }

  private take(scope: QueueScope, item: Uint8Array): void {
    scope.bytes -= item.byteLength + QUEUE_ITEM_OVERHEAD_BYTES;
    scope.items--;
  }

  dequeue(queueId: number): Uint8Array | typeof Status.EMPTY | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    const item = queue.items.shift();
    if (item === undefined) return Status.EMPTY;
    this.take(this.scope(queue.vmId), item);
    return item;
  }

  /** Drops every queue and its items (the gateway stops): their ids resolve no more. */
  clear(): void {
    this.byName.clear();
    this.byId.clear();
    this.scopes.clear();
  }
}
