/**
 * One vm_id's shared data under a byte quota, kept in least-recently-used order.
 *
 * Accounting: an entry costs `key.length + value.byteLength + ENTRY_OVERHEAD_BYTES`. Keys are byte
 * strings (latin1, one char per byte), so the sum is exact in bytes; the overhead stands for what
 * the host spends per entry besides them.
 *
 * Order: a Map keeps insertion order, so re-inserting a key on every read and write keeps it in
 * recency order, oldest first, at the cost of one delete and one insert per touch. Deleted keys
 * (empty values, the ABI's delete idiom) are also listed in `deleted`, in the order they were
 * deleted: they are reclaimed before any live entry.
 */
import type { SharedEntry } from '../abi/ports.js';

/**
 * What one entry costs the host besides its key and value bytes. Measured on Node 20 (x64): a Map
 * slot, the entry record and a Uint8Array with its ArrayBuffer come to 330–400 bytes of V8 heap
 * per small entry. 384 keeps the quota honest for the many-small-entries case (rate-limit
 * counters), where the overhead is most of the cost.
 */
export const ENTRY_OVERHEAD_BYTES = 384;

const EMPTY = new Uint8Array(0);

export interface StoredEntry extends SharedEntry {
  /** What the entry counts against the quota. */
  readonly bytes: number;
}

/** What an entry for `key` and `value` counts against the quota. */
export function entryBytes(key: string, valueLength: number): number {
  return key.length + valueLength + ENTRY_OVERHEAD_BYTES;
}

export class DataScope {
  private readonly entries = new Map<string, StoredEntry>();
  /** Keys whose value is empty (deleted), oldest deletion first. */
  private readonly deleted = new Set<string>();
  /** Sum of `bytes` over the entries. */
  bytes = 0;

  get size(): number {
    return this.entries.size;
  }

  /** The entry, moved to the most recently used end. */
  get(key: string): StoredEntry | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** The entry without counting a use. */
  peek(key: string): StoredEntry | undefined {
    return this.entries.get(key);
  }

  /**
   * Stores `value` (copied) with `cas` as the most recently used entry, after evicting what must
   * go for `bytes` to fit in `quota`: deleted keys first, then least recently used entries. The
   * caller has checked that `bytes` alone fits. Returns how many live entries were evicted.
   */
  put(key: string, value: Uint8Array, cas: number, bytes: number, quota: number): number {
    this.remove(key);
    let evicted = 0;
    while (this.bytes + bytes > quota) {
      const victim = this.deleted.size > 0 ? this.deleted.values().next().value! : this.entries.keys().next().value!;
      if (!this.deleted.has(victim)) evicted++;
      this.remove(victim);
    }
    const stored: StoredEntry = { value: value.length === 0 ? EMPTY : Uint8Array.from(value), cas, bytes };
    this.entries.set(key, stored);
    this.bytes += bytes;
    if (value.length === 0) this.deleted.add(key);
    return evicted;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.deleted.delete(key);
    this.bytes -= entry.bytes;
  }
}
