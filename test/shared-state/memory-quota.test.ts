import { describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { ENTRY_OVERHEAD_BYTES } from '../../gateway/shared-state/data-scope.js';
import { DEFAULT_MAX_BYTES_PER_VM, MemorySharedData } from '../../gateway/shared-state/memory.js';
import { text } from '../helpers/host.js';

const value = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);
const str = (bytes: Uint8Array): string => Buffer.from(bytes).toString();
/** What one entry of `key` with a value of `n` bytes counts. */
const cost = (key: string, n: number): number => key.length + n + ENTRY_OVERHEAD_BYTES;

describe('MemorySharedData quota per vm_id', () => {
  it('defaults to 16 MiB per vm_id', () => {
    expect(DEFAULT_MAX_BYTES_PER_VM).toBe(16 * 1024 * 1024);
    expect(new MemorySharedData().maxBytesPerVm).toBe(DEFAULT_MAX_BYTES_PER_VM);
  });

  it('counts exactly the key bytes, the value bytes and the overhead of each entry, per vm_id', () => {
    const store = new MemorySharedData();
    store.set('a', 'k1', value(10), 0);
    store.set('a', 'key-2', value(100), 0);
    store.set('b', 'k1', value(7), 0);
    expect(store.bytesOf('a')).toBe(cost('k1', 10) + cost('key-2', 100));
    expect(store.bytesOf('b')).toBe(cost('k1', 7));
    // An overwrite replaces the old value's bytes; it does not add to them.
    store.set('a', 'k1', value(3), 0);
    expect(store.bytesOf('a')).toBe(cost('k1', 3) + cost('key-2', 100));
    expect(store.stats().sort((x, y) => (x.vmId < y.vmId ? -1 : 1))).toEqual([
      { vmId: 'a', bytes: cost('k1', 3) + cost('key-2', 100), entries: 2, evictions: 0, refusals: { key_size: 0, value_size: 0, quota: 0 } },
      { vmId: 'b', bytes: cost('k1', 7), entries: 1, evictions: 0, refusals: { key_size: 0, value_size: 0, quota: 0 } },
    ]);
  });

  it('frees the value bytes of a deleted key (an empty value) at once, and still answers OK, empty, with a new CAS', () => {
    const store = new MemorySharedData();
    store.set('vm', 'token', value(5000), 0);
    const before = store.get('vm', 'token')!.cas;
    expect(store.set('vm', 'token', new Uint8Array(0), 0)).toBe(Status.OK);
    expect(store.bytesOf('vm')).toBe(cost('token', 0));
    const deleted = store.get('vm', 'token')!;
    expect(deleted.value.length).toBe(0);
    expect(deleted.cas).not.toBe(before);
    // A CAS loop over the deleted key works as in Envoy: the CAS just read wins once.
    expect(store.set('vm', 'token', text('again'), deleted.cas)).toBe(Status.OK);
    expect(store.set('vm', 'token', text('stale'), deleted.cas)).toBe(Status.CAS_MISMATCH);
  });

  it('evicts the least recently used entries of that vm_id when a write does not fit, a read counting as a use', () => {
    const each = cost('k0', 1000);
    const store = new MemorySharedData({ maxBytesPerVm: 4 * each });
    for (let i = 0; i < 4; i++) expect(store.set('vm', `k${i}`, value(1000, 0x30 + i), 0)).toBe(Status.OK);
    store.set('other', 'k0', value(1000), 0);
    expect(store.bytesOf('vm')).toBe(4 * each);
    store.get('vm', 'k0'); // k0 is now the most recently used: k1 is the oldest
    expect(store.set('vm', 'k4', value(1000), 0)).toBe(Status.OK);
    expect(store.get('vm', 'k1')).toBeUndefined(); // a miss counts as no use of anything
    expect(store.stats().find((s) => s.vmId === 'vm')!.entries).toBe(4);
    expect(store.bytesOf('vm')).toBe(4 * each);
    // A larger write takes as many of the oldest as it needs (k2, then k3), and never another vm_id's.
    expect(store.set('vm', 'k5', value(1000 + each), 0)).toBe(Status.OK);
    expect(['k0', 'k2', 'k3', 'k4', 'k5'].map((k) => store.get('vm', k) !== undefined)).toEqual([true, false, false, true, true]);
    expect(store.bytesOf('vm')).toBeLessThanOrEqual(4 * each);
    expect(store.get('other', 'k0')).toBeDefined();
    expect(store.stats().find((s) => s.vmId === 'vm')!.evictions).toBe(3);
  });

  it('reclaims deleted keys before any live entry, without counting them as evictions', () => {
    const each = cost('k0', 1000);
    const store = new MemorySharedData({ maxBytesPerVm: 3 * each });
    store.set('vm', 'k0', value(1000), 0);
    store.set('vm', 'k1', value(1000), 0);
    store.set('vm', 'k2', value(1000), 0);
    store.set('vm', 'k2', new Uint8Array(0), 0); // deleted last, but still the first to go
    store.set('vm', 'k3', value(1000), 0);
    expect(store.get('vm', 'k2')).toBeUndefined();
    expect(['k0', 'k1', 'k3'].map((k) => store.get('vm', k) !== undefined)).toEqual([true, true, true]);
    expect(store.stats()[0].evictions).toBe(0);
  });

  it('refuses with BAD_ARGUMENT an entry larger than the whole quota, and evicts nothing for it', () => {
    const store = new MemorySharedData({ maxBytesPerVm: 8192 });
    store.set('vm', 'kept', value(100), 0);
    expect(store.set('vm', 'huge', value(8192), 0)).toBe(Status.BAD_ARGUMENT);
    expect(store.set('vm', 'fits', value(8192 - ENTRY_OVERHEAD_BYTES - 4), 0)).toBe(Status.OK);
    expect(store.get('vm', 'huge')).toBeUndefined();
    const stats = store.stats()[0];
    expect(stats.refusals).toEqual({ key_size: 0, value_size: 0, quota: 1 });
    expect(stats.evictions).toBe(1); // "kept" made room for "fits", not for "huge"
  });

  it('keeps CAS answers consistent across an eviction: a re-created key has a new CAS, a stale one is refused', () => {
    const each = cost('k0', 100);
    const store = new MemorySharedData({ maxBytesPerVm: 2 * each });
    store.set('vm', 'k0', value(100), 0);
    const held = store.get('vm', 'k0')!.cas; // a guest read k0 and holds its CAS
    store.set('vm', 'k1', value(100), 0);
    store.set('vm', 'k2', value(100), 0); // evicts k0
    expect(store.get('vm', 'k0')).toBeUndefined();
    // Another guest finds it missing and creates it again: a new CAS, so the held one is stale.
    expect(store.set('vm', 'k0', text('fresh'), 0)).toBe(Status.OK);
    expect(store.get('vm', 'k0')!.cas).not.toBe(held);
    expect(store.set('vm', 'k0', text('lost update'), held)).toBe(Status.CAS_MISMATCH);
    expect(str(store.get('vm', 'k0')!.value)).toBe('fresh');
  });

  it('writes a CAS write to a key evicted meanwhile, as cpp-host does for any missing key', () => {
    const each = cost('k0', 100);
    const store = new MemorySharedData({ maxBytesPerVm: 2 * each });
    store.set('vm', 'k0', value(100), 0);
    const held = store.get('vm', 'k0')!.cas;
    store.set('vm', 'k1', value(100), 0);
    store.set('vm', 'k2', value(100), 0);
    expect(store.set('vm', 'k0', text('v2'), held)).toBe(Status.OK);
    expect(str(store.get('vm', 'k0')!.value)).toBe('v2');
  });

  it('frees a vm_id’s data on release and keeps its counters', () => {
    const store = new MemorySharedData({ maxBytesPerVm: 8192 });
    store.set('vm', 'k', value(100), 0);
    store.refused('vm', 'value_size');
    store.release('vm');
    expect(store.get('vm', 'k')).toBeUndefined();
    expect(store.bytesOf('vm')).toBe(0);
    expect(store.stats()).toEqual([{ vmId: 'vm', bytes: 0, entries: 0, evictions: 0, refusals: { key_size: 0, value_size: 1, quota: 0 } }]);
  });
});
