/**
 * What a node's replicated copy of shared data (replicated-data.ts) needs from whatever holds the
 * authoritative data: Redis for a fleet (redis-link.ts), or the primary process for the workers
 * of one box (hub.ts, ipc-link.ts). Both give the same model: versions per vm_id, CAS writes
 * refused when another node wrote since, every accepted write told to every node.
 */
import type { Update } from './redis-layout.js';

/** The authority's answer to a write: accepted with its version, or refused with the current version and value. */
export type WriteAnswer =
  | { readonly accepted: true; readonly version: number }
  | { readonly accepted: false; readonly version: number; readonly value: Uint8Array };

export interface ReplicaLink {
  /** This node's writer id (who wrote last, in the versions). */
  readonly node: string;
  /** The authority answers now; when false, writes wait and loads are put off to `ready`. */
  readonly connected: boolean;
  /** `base` "" writes unconditionally, else only if no other node wrote since version `base`. Null: dropped. */
  write(vmId: string, key: string, value: Uint8Array, base: string): Promise<WriteAnswer | null>;
  /** The vm_id's entries: key → ["<version> <writer>", value]. */
  load(vmId: string): Promise<Map<string, [string, Uint8Array]>>;
}

/** What a link tells the replica it feeds. */
export interface ReplicaEvents {
  /** An accepted write, from any node (this one's too). */
  update(update: Update): void;
  /** Connected (again): reload what the node holds. */
  ready(): void;
}
