/**
 * A worker of a box (primary.ts): the whole gateway on the listeners the cluster shares, without
 * an admin listener of its own. It tells the primary when it serves, lends its metrics registry
 * to the primary's aggregate, answers the plugin API's calls the primary forwards, and with the memory backend replicates
 * shared data through the primary (ipc-link.ts).
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { BoundAddresses, Gateway } from '../gateway.js';
import { IpcLink } from '../shared-state/ipc-link.js';
import { isControl, WORKER_ENV, type ControlMessage } from './messages.js';

/** This process's index among the box's workers, or null when it is not a worker. */
export function workerIndex(): number | null {
  const index = process.env[WORKER_ENV];
  return cluster.isWorker && index !== undefined ? Number(index) : null;
}

/** The link to the primary's shared-data hub, for a worker whose backend is memory. */
export function boxLink(node: string): IpcLink {
  return new IpcLink(node, {
    send: (m) => process.send!(m),
    onMessage: (listener) => process.on('message', listener),
  });
}

/** The worker serves: the primary hears of it and may ask for its metrics and plugins. */
export function announceWorker(gateway: Gateway, bound: BoundAddresses): void {
  // NB: constructing one is what makes a worker answer the primary's metric requests (prom-client
  // adds its IPC listener in the constructor); the registry it answers with is set next.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([gateway.metrics.registry]);
  process.on('message', (m: unknown) => {
    if (isControl(m) && m.edge === 'admin?') {
      void gateway.live.call(m.call).then((answer) => process.send!({ edge: 'admin', id: m.id, answer } satisfies ControlMessage));
    }
  });
  const listeners = Object.fromEntries([...bound.listeners].map(([n, a]) => [n, `${a.address}:${a.port}`]));
  process.send!({ edge: 'ready', listeners } satisfies ControlMessage);
}
