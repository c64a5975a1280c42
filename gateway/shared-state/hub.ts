/**
 * The authority of shared data for the workers of one box (`workers: N` with the memory
 * backend): the primary process holds it and plays Redis's part of the model in
 * replicated-data.ts, in memory. Each write gets its vm_id's next version; a write with a base
 * goes through only when no other worker wrote the key since that version (or only this worker
 * did: its own writes in flight); every accepted write is told to every worker. The same rule as
 * the Lua script of redis-layout.ts, so a rate limit stays exact across the workers of a box.
 *
 * Bounded like the memory backend: each vm_id holds at most `maxBytesPerVm` (keys + values +
 * ENTRY_OVERHEAD_BYTES each); over it the least recently written keys go first (the workers keep
 * their copies: a key the hub dropped is written again by its next write).
 *
 * Shared queues of the box go through the hub too (box-queues.ts): it knows every registration
 * and hands each item to one registering worker, in turn.
 *
 * The messages between the workers (ipc-link.ts, box-queues.ts) and the hub are the HubMessage
 * union; `edge` tells them apart from other IPC traffic (prom-client's metric requests, the
 * primary's own).
 */
import type { Update } from './redis-layout.js';
import type { WriteAnswer } from './replica.js';
import { entryBytes } from './data-scope.js';
import { Fifo } from './fifo.js';

export type HubMessage =
  | { edge: 'sd-write'; id: number; node: string; vmId: string; key: string; value: Uint8Array; base: string }
  | { edge: 'sd-answer'; id: number; answer: WriteAnswer }
  | { edge: 'sd-load'; id: number; vmId: string }
  | { edge: 'sd-loaded'; id: number; entries: Array<[string, string, Uint8Array]> }
  | { edge: 'sd-update'; update: Update }
  // Shared queues (box-queues.ts): a worker starts, registers, enqueues; the hub tells and hands out.
  | { edge: 'sq-hello' }
  | { edge: 'sq-register'; vmId: string; name: string }
  | { edge: 'sq-enqueue'; vmId: string; name: string; data: Uint8Array }
  | { edge: 'sq-known'; queues: Array<[string, string]> }
  | { edge: 'sq-item'; vmId: string; name: string; data: Uint8Array };

/** How the hub reaches the workers (the primary's cluster workers). */
export interface HubTransport<W> {
  send(to: W, m: HubMessage): void;
  /** Every worker alive now. */
  workers(): Iterable<W>;
}

/** Items a queue keeps in the primary while none of its registering workers is alive. */
export const MAX_WAITING_ITEMS = 10_000;

interface BoxQueue<W> {
  readonly vmId: string;
  readonly name: string;
  readonly consumers: W[];
  next: number;
  readonly waiting: Fifo<Uint8Array>;
}

interface Entry {
  version: number;
  writer: string;
  value: Uint8Array;
}

interface Scope {
  seq: number;
  bytes: number;
  /** In order of last write: the first is the least recently written. */
  readonly entries: Map<string, Entry>;
}

export function isHubMessage(m: unknown): m is HubMessage {
  const edge = (m as { edge?: unknown } | null)?.edge;
  return typeof edge === 'string' && (edge.startsWith('sd-') || edge.startsWith('sq-'));
}

export class Hub<W> {
  private readonly scopes = new Map<string, Scope>();
  private readonly queues = new Map<string, BoxQueue<W>>();

  constructor(private readonly maxBytesPerVm: number, private readonly transport: HubTransport<W>) {}

  /** A message from worker `from`. Kinds a worker never sends are ignored. */
  handle(m: HubMessage, from: W): void {
    const reply = (r: HubMessage): void => this.transport.send(from, r);
    if (m.edge === 'sd-write') {
      const { answer, update } = this.write(m.node, m.vmId, m.key, m.value, m.base);
      reply({ edge: 'sd-answer', id: m.id, answer });
      // The other workers: the writer has the answer.
      if (update !== null) for (const w of this.transport.workers()) if (w !== from) this.transport.send(w, { edge: 'sd-update', update });
    } else if (m.edge === 'sq-hello') {
      reply({ edge: 'sq-known', queues: [...this.queues.values()].map((q) => [q.vmId, q.name]) });
    } else if (m.edge === 'sq-register') {
      const queue = this.queue(m.vmId, m.name);
      if (!queue.consumers.includes(from)) queue.consumers.push(from);
      for (const w of this.transport.workers()) this.transport.send(w, { edge: 'sq-known', queues: [[m.vmId, m.name]] });
      for (let data = queue.waiting.shift(); data !== undefined; data = queue.waiting.shift()) this.handOut(queue, data);
    } else if (m.edge === 'sq-enqueue') {
      this.handOut(this.queue(m.vmId, m.name), m.data);
    } else if (m.edge === 'sd-load') {
      const scope = this.scopes.get(m.vmId);
      const entries: Array<[string, string, Uint8Array]> = [];
      if (scope !== undefined) for (const [key, e] of scope.entries) entries.push([key, `${e.version} ${e.writer}`, e.value]);
      reply({ edge: 'sd-loaded', id: m.id, entries });
    }
  }

  /** Worker `w` is gone: its queues hand their items to the other registering workers, or keep them. */
  gone(w: W): void {
    for (const q of this.queues.values()) {
      const at = q.consumers.indexOf(w);
      if (at >= 0) q.consumers.splice(at, 1);
    }
  }

  private queue(vmId: string, name: string): BoxQueue<W> {
    const key = `${vmId}\0${name}`;
    let queue = this.queues.get(key);
    if (queue === undefined) this.queues.set(key, (queue = { vmId, name, consumers: [], next: 0, waiting: new Fifo() }));
    return queue;
  }

  /** To the registering workers in turn; kept (the oldest dropped past MAX_WAITING_ITEMS) while there is none. */
  private handOut(queue: BoxQueue<W>, data: Uint8Array): void {
    if (queue.consumers.length === 0) {
      queue.waiting.push(data);
      if (queue.waiting.length > MAX_WAITING_ITEMS) queue.waiting.shift();
      return;
    }
    const to = queue.consumers[queue.next++ % queue.consumers.length];
    this.transport.send(to, { edge: 'sq-item', vmId: queue.vmId, name: queue.name, data });
  }

  write(node: string, vmId: string, key: string, value: Uint8Array, base: string): { answer: WriteAnswer; update: Update | null } {
    let scope = this.scopes.get(vmId);
    if (scope === undefined) this.scopes.set(vmId, (scope = { seq: 0, bytes: 0, entries: new Map() }));
    const current = scope.entries.get(key);
    if (base !== '') {
      const version = current?.version ?? 0;
      const b = Number(base);
      if (version !== b && !(version > b && current?.writer === node)) {
        return { answer: { accepted: false, version, value: current?.value ?? new Uint8Array(0) }, update: null };
      }
    }
    const version = ++scope.seq;
    if (current !== undefined) {
      scope.bytes -= entryBytes(key, current.value.length);
      scope.entries.delete(key);
    }
    scope.entries.set(key, { version, writer: node, value });
    scope.bytes += entryBytes(key, value.length);
    for (const [k, e] of scope.entries) {
      if (scope.bytes <= this.maxBytesPerVm || k === key) break;
      scope.entries.delete(k);
      scope.bytes -= entryBytes(k, e.value.length);
    }
    return { answer: { accepted: true, version }, update: { node, version, vmId, key, value } };
  }
}
