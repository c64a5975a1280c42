/**
 * A worker's link to the hub in its primary (hub.ts), over the cluster's IPC channel: the same
 * ReplicaLink as Redis's, so the worker's shared data follows the same model. The primary lives
 * as long as its workers, so the link is always connected; messages keep their bytes (the
 * cluster runs with the 'advanced' serialization).
 */
import { isHubMessage, type HubMessage } from './hub.js';
import type { ReplicaEvents, ReplicaLink, WriteAnswer } from './replica.js';

/** The IPC channel of a worker (process.send / process.on('message')). */
export interface IpcChannel {
  send(message: HubMessage): void;
  onMessage(listener: (message: unknown) => void): void;
}

export class IpcLink implements ReplicaLink {
  readonly connected = true;
  private nextId = 1;
  private readonly writes = new Map<number, (answer: WriteAnswer | null) => void>();
  private readonly loads = new Map<number, (entries: Map<string, [string, Uint8Array]>) => void>();
  private events: ReplicaEvents | null = null;

  constructor(readonly node: string, readonly channel: IpcChannel) {
    channel.onMessage((m) => {
      if (!isHubMessage(m)) return;
      if (m.edge === 'sd-answer') {
        this.writes.get(m.id)?.(m.answer);
        this.writes.delete(m.id);
      } else if (m.edge === 'sd-loaded') {
        this.loads.get(m.id)?.(new Map(m.entries.map(([key, version, value]) => [key, [version, value]])));
        this.loads.delete(m.id);
      } else if (m.edge === 'sd-update') {
        this.events?.update(m.update);
      }
    });
  }

  /** The replica fed by this link (updates from the other workers). */
  feed(events: ReplicaEvents): void {
    this.events = events;
  }

  get waiting(): number {
    return this.writes.size;
  }

  write(vmId: string, key: string, value: Uint8Array, base: string): Promise<WriteAnswer | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.writes.set(id, resolve);
      this.channel.send({ edge: 'sd-write', id, node: this.node, vmId, key, value, base });
    });
  }

  load(vmId: string): Promise<Map<string, [string, Uint8Array]>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.loads.set(id, resolve);
      this.channel.send({ edge: 'sd-load', id, vmId });
    });
  }
}
