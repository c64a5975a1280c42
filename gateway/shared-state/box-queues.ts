/**
 * Shared queues across the workers of one box without Redis: the primary's hub (hub.ts) knows
 * every registration and hands each item to one worker that registered its queue, in turn.
 *
 * Guarantees: any worker resolves a queue registered in any worker (registrations are told to
 * every worker, and to a worker that starts later); enqueue answers OK at once and the item goes
 * through the primary; an item reaches one registering worker (the items of a queue two workers
 * registered alternate between them), whose root gets on_queue_ready. Delivery is at most once:
 * an item a worker holds undequeued dies with the worker (with Redis, redis-queues.ts, it is
 * delivered again). Items for a queue whose registering workers are all gone wait in the primary,
 * bounded like the memory backend's queues (hub.ts).
 */
import { Status } from '../abi/enums.js';
import type { QueueListener, QueueRegistration, SharedQueueStore } from '../abi/ports.js';
import type { HubMessage } from './hub.js';
import type { IpcChannel } from './ipc-link.js';
import { MemorySharedQueues, type SharedQueueStats } from './memory.js';

export class BoxSharedQueues implements SharedQueueStore {
  /**
   * Every queue this worker knows of, with its id: those it registered (with their listeners and
   * the items handed to it) and those registered elsewhere (unbound: they never get items here).
   */
  private readonly local: MemorySharedQueues;
  private readonly byId = new Map<number, { vmId: string; name: string }>();

  constructor(maxBytesPerVm: number, private readonly channel: IpcChannel) {
    this.local = new MemorySharedQueues({ maxBytesPerVm });
    channel.onMessage((m) => this.message(m as HubMessage));
    channel.send({ edge: 'sq-hello' });
  }

  register(vmId: string, name: string, listener: QueueListener): QueueRegistration {
    const registration = this.local.register(vmId, name, listener);
    this.byId.set(registration.id, { vmId, name });
    this.channel.send({ edge: 'sq-register', vmId, name });
    return registration;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.local.resolve(vmId, name);
  }

  enqueue(queueId: number, data: Uint8Array): typeof Status.OK | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    this.channel.send({ edge: 'sq-enqueue', vmId: queue.vmId, name: queue.name, data: Uint8Array.from(data) });
    return Status.OK;
  }

  dequeue(queueId: number): Uint8Array | typeof Status.EMPTY | typeof Status.NOT_FOUND {
    return this.local.dequeue(queueId);
  }

  stats(): SharedQueueStats[] {
    return this.local.stats();
  }

  clear(): void {
    this.local.clear();
    this.byId.clear();
  }

  private message(m: HubMessage): void {
    if (m.edge === 'sq-known') {
      for (const [vmId, name] of m.queues) {
        if (this.local.resolve(vmId, name) !== undefined) continue;
        // Known, not registered here: an id in the same space, with no listener bound.
        const unbound = this.local.register(vmId, name, () => undefined);
        unbound.unsubscribe();
        this.byId.set(unbound.id, { vmId, name });
      }
    } else if (m.edge === 'sq-item') {
      const id = this.local.resolve(m.vmId, m.name);
      // Handed to this worker because it registered the queue: its listener is told.
      if (id !== undefined) this.local.enqueue(id, m.data);
    }
  }
}
