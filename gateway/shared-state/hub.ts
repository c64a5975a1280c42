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
 * The messages between the workers (ipc-link.ts) and the hub are the HubMessage union; `edge`
 * tells them apart from other IPC traffic (prom-client's metric requests, the primary's own).
 */
import type { Update } from './redis-layout.js';
import type { WriteAnswer } from './replica.js';
import { entryBytes } from './data-scope.js';

export type HubMessage =
  | { edge: 'sd-write'; id: number; node: string; vmId: string; key: string; value: Uint8Array; base: string }
  | { edge: 'sd-answer'; id: number; answer: WriteAnswer }
  | { edge: 'sd-load'; id: number; vmId: string }
  | { edge: 'sd-loaded'; id: number; entries: Array<[string, string, Uint8Array]> }
  | { edge: 'sd-update'; update: Update };

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
  return typeof m === 'object' && m !== null && typeof (m as { edge?: unknown }).edge === 'string'
    && (m as { edge: string }).edge.startsWith('sd-');
}

export class Hub {
  private readonly scopes = new Map<string, Scope>();

  constructor(private readonly maxBytesPerVm: number) {}

  /**
   * A message from a worker: `reply` answers it, `broadcast` tells the other workers. Malformed
   * messages (never sent by ipc-link.ts) are ignored.
   */
  handle(m: HubMessage, reply: (m: HubMessage) => void, broadcast: (m: HubMessage) => void): void {
    if (m.edge === 'sd-write') {
      const { answer, update } = this.write(m.node, m.vmId, m.key, m.value, m.base);
      reply({ edge: 'sd-answer', id: m.id, answer });
      if (update !== null) broadcast({ edge: 'sd-update', update });
    } else if (m.edge === 'sd-load') {
      const scope = this.scopes.get(m.vmId);
      const entries: Array<[string, string, Uint8Array]> = [];
      if (scope !== undefined) for (const [key, e] of scope.entries) entries.push([key, `${e.version} ${e.writer}`, e.value]);
      reply({ edge: 'sd-loaded', id: m.id, entries });
    }
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
