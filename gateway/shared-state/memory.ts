/**
 * The embedded shared-state backend: shared data and shared queues in this process's memory.
 *
 * Consistency: exact within one process (every call is synchronous on one event loop). CAS values
 * come from one counter starting at 1 that skips 0, so a CAS is never 0 (reference §6.1).
 */
import { Status } from '../abi/enums.js';
import type { QueueListener, SharedDataStore, SharedEntry, SharedQueueStore } from '../abi/ports.js';

export class MemorySharedData implements SharedDataStore {
  private readonly scopes = new Map<string, Map<string, SharedEntry>>();
  private nextCas = 1;

  get(vmId: string, key: string): SharedEntry | undefined {
    return this.scopes.get(vmId)?.get(key);
  }

  set(vmId: string, key: string, value: Uint8Array, cas: number): typeof Status.OK | typeof Status.CAS_MISMATCH {
    let scope = this.scopes.get(vmId);
    if (scope === undefined) this.scopes.set(vmId, (scope = new Map()));
    const current = scope.get(key);
    // cpp-host: a non-zero cas against a missing key still writes.
    if (cas !== 0 && current !== undefined && current.cas !== cas) return Status.CAS_MISMATCH;
    scope.set(key, { value: Uint8Array.from(value), cas: this.takeCas() });
    return Status.OK;
  }

  private takeCas(): number {
    const cas = this.nextCas;
    this.nextCas = (cas + 1) >>> 0 || 1;
    return cas;
  }
}

interface Queue {
  readonly id: number;
  readonly items: Uint8Array[];
  listener: QueueListener;
}

export class MemorySharedQueues implements SharedQueueStore {
  private readonly byName = new Map<string, Queue>();
  private readonly byId = new Map<number, Queue>();
  private nextId = 1;

  register(vmId: string, name: string, listener: QueueListener): number {
    const key = `${vmId}\0${name}`;
    const existing = this.byName.get(key);
    if (existing !== undefined) {
      existing.listener = listener;
      return existing.id;
    }
    const queue: Queue = { id: this.nextId++, items: [], listener };
    this.byName.set(key, queue);
    this.byId.set(queue.id, queue);
    return queue.id;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(`${vmId}\0${name}`)?.id;
  }

  enqueue(queueId: number, data: Uint8Array): typeof Status.OK | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    queue.items.push(Uint8Array.from(data));
    queue.listener(queueId);
    return Status.OK;
  }

  dequeue(queueId: number): Uint8Array | typeof Status.EMPTY | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    return queue.items.shift() ?? Status.EMPTY;
  }
}
