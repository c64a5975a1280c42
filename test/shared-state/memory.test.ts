import { describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { MemorySharedData, MemorySharedQueues, QUEUE_ITEM_OVERHEAD_BYTES } from '../../gateway/shared-state/memory.js';
import { text } from '../helpers/host.js';

const str = (bytes: Uint8Array | number): string => (typeof bytes === 'number' ? `status ${bytes}` : Buffer.from(bytes).toString());

describe('MemorySharedData', () => {
  it('has no entry for a key that was never written', () => {
    expect(new MemorySharedData().get('vm', 'missing')).toBeUndefined();
  });

  it('stores a value with a CAS that is never 0 and changes on every write', () => {
    const store = new MemorySharedData();
    expect(store.set('vm', 'k', text('one'), 0)).toBe(Status.OK);
    const first = store.get('vm', 'k')!;
    expect(str(first.value)).toBe('one');
    expect(first.cas).not.toBe(0);
    expect(store.set('vm', 'k', text('two'), 0)).toBe(Status.OK);
    const second = store.get('vm', 'k')!;
    expect(str(second.value)).toBe('two');
    expect(second.cas).not.toBe(first.cas);
  });

  it('writes with a matching CAS and refuses a stale one with CAS_MISMATCH', () => {
    const store = new MemorySharedData();
    store.set('vm', 'k', text('one'), 0);
    const { cas } = store.get('vm', 'k')!;
    expect(store.set('vm', 'k', text('two'), cas)).toBe(Status.OK);
    expect(store.set('vm', 'k', text('three'), cas)).toBe(Status.CAS_MISMATCH);
    expect(str(store.get('vm', 'k')!.value)).toBe('two');
  });

  it('writes a non-zero CAS against a missing key, as cpp-host does', () => {
    const store = new MemorySharedData();
    expect(store.set('vm', 'k', text('v'), 12345)).toBe(Status.OK);
    expect(str(store.get('vm', 'k')!.value)).toBe('v');
  });

  it.each([['a Uint8Array', text], ['a Buffer', (s: string) => Buffer.from(s)]])('keeps a copy of %s value, not the caller’s bytes', (_, make) => {
    const store = new MemorySharedData();
    const value = make('abc');
    store.set('vm', 'k', value, 0);
    value[0] = 0x7a;
    expect(str(store.get('vm', 'k')!.value)).toBe('abc');
  });

  it('scopes keys by vm_id', () => {
    const store = new MemorySharedData();
    store.set('a', 'k', text('in a'), 0);
    expect(store.get('b', 'k')).toBeUndefined();
    store.set('b', 'k', text('in b'), 0);
    expect(str(store.get('a', 'k')!.value)).toBe('in a');
  });

  it('draws CAS values from one counter across vm_ids', () => {
    const store = new MemorySharedData();
    store.set('a', 'k', text('x'), 0);
    store.set('b', 'k', text('y'), 0);
    expect(store.get('b', 'k')!.cas).toBe(store.get('a', 'k')!.cas + 1);
  });
});

describe('MemorySharedQueues', () => {
  it('gives a non-zero id and the same id when the queue is registered again', () => {
    const queues = new MemorySharedQueues();
    const id = queues.register('vm', 'jobs', () => {}).id;
    expect(id).not.toBe(0);
    expect(queues.register('vm', 'jobs', () => {}).id).toBe(id);
    expect(queues.register('vm', 'other', () => {}).id).not.toBe(id);
    expect(queues.register('other-vm', 'jobs', () => {}).id).not.toBe(id);
  });

  it('resolves a queue by (vm_id, name) and nothing else', () => {
    const queues = new MemorySharedQueues();
    const id = queues.register('vm', 'jobs', () => {}).id;
    expect(queues.resolve('vm', 'jobs')).toBe(id);
    expect(queues.resolve('vm', 'nope')).toBeUndefined();
    expect(queues.resolve('other-vm', 'jobs')).toBeUndefined();
  });

  it('dequeues items in order, then EMPTY', () => {
    const queues = new MemorySharedQueues();
    const id = queues.register('vm', 'jobs', () => {}).id;
    expect(queues.enqueue(id, text('1'))).toBe(Status.OK);
    expect(queues.enqueue(id, text('2'))).toBe(Status.OK);
    expect(str(queues.dequeue(id))).toBe('1');
    expect(str(queues.dequeue(id))).toBe('2');
    expect(queues.dequeue(id)).toBe(Status.EMPTY);
  });

  it.each([['a Uint8Array', text], ['a Buffer', (s: string) => Buffer.from(s)]])('keeps a copy of %s item, not the caller’s bytes', (_, make) => {
    const queues = new MemorySharedQueues();
    const id = queues.register('vm', 'jobs', () => {}).id;
    const item = make('abc');
    queues.enqueue(id, item);
    item[0] = 0x7a;
    expect(str(queues.dequeue(id))).toBe('abc');
  });

  it('answers NOT_FOUND for an unknown queue id', () => {
    const queues = new MemorySharedQueues();
    expect(queues.enqueue(42, text('x'))).toBe(Status.NOT_FOUND);
    expect(queues.dequeue(42)).toBe(Status.NOT_FOUND);
  });

  it('tells the listener of the last registration, and keeps the items when rebinding', () => {
    const queues = new MemorySharedQueues();
    const told: string[] = [];
    const id = queues.register('vm', 'jobs', (q) => told.push(`first ${q}`)).id;
    queues.enqueue(id, text('kept'));
    queues.register('vm', 'jobs', (q) => told.push(`second ${q}`));
    queues.enqueue(id, text('next'));
    expect(told).toEqual([`first ${id}`, `second ${id}`]);
    expect(str(queues.dequeue(id))).toBe('kept');
  });
});

describe('MemorySharedQueues quota', () => {
  const item = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  const cost = (n: number) => n + QUEUE_ITEM_OVERHEAD_BYTES;

  it('drops the oldest items of the queue to make room, answers OK, and counts the drops', () => {
    const queues = new MemorySharedQueues({ maxBytesPerVm: 3 * cost(100) });
    let told = 0;
    const id = queues.register('vm', 'jobs', () => { told++; }).id;
    for (let i = 1; i <= 5; i++) expect(queues.enqueue(id, item(100, i))).toBe(Status.OK);
    expect(queues.stats()).toEqual([{ vmId: 'vm', bytes: 3 * cost(100), items: 3, dropped: 2 }]);
    expect([3, 4, 5].map(() => (queues.dequeue(id) as Uint8Array)[0])).toEqual([3, 4, 5]);
    expect(queues.dequeue(id)).toBe(Status.EMPTY);
    expect(queues.stats()).toEqual([{ vmId: 'vm', bytes: 0, items: 0, dropped: 2 }]);
    expect(told).toBe(5);
  });

  it('counts all the queues of a vm_id together and drops a new item that its queue cannot make room for', () => {
    const queues = new MemorySharedQueues({ maxBytesPerVm: 2 * cost(100) });
    const a = queues.register('vm', 'a', () => {}).id;
    const b = queues.register('vm', 'b', () => {}).id;
    const other = queues.register('other', 'a', () => {}).id;
    queues.enqueue(a, item(100, 1));
    queues.enqueue(a, item(100, 2));
    let toldB = 0;
    queues.register('vm', 'b', () => { toldB++; });
    expect(queues.enqueue(b, item(100, 3))).toBe(Status.OK); // b is empty and a holds the quota: dropped
    expect(toldB).toBe(0);
    expect(queues.dequeue(b)).toBe(Status.EMPTY);
    expect(queues.enqueue(other, item(100, 4))).toBe(Status.OK); // another vm_id has its own quota
    expect(queues.stats()).toEqual([
      { vmId: 'vm', bytes: 2 * cost(100), items: 2, dropped: 1 },
      { vmId: 'other', bytes: cost(100), items: 1, dropped: 0 },
    ]);
  });

  it('drops an item larger than the whole quota without touching what the queue holds', () => {
    const queues = new MemorySharedQueues({ maxBytesPerVm: cost(100) });
    const id = queues.register('vm', 'jobs', () => {}).id;
    queues.enqueue(id, item(10, 1));
    expect(queues.enqueue(id, item(1000, 2))).toBe(Status.OK);
    expect((queues.dequeue(id) as Uint8Array)[0]).toBe(1);
    expect(queues.dequeue(id)).toBe(Status.EMPTY);
    expect(queues.stats()[0].dropped).toBe(1);
  });

  it('keeps host memory flat under a guest that enqueues in a loop with nobody dequeuing', () => {
    const queues = new MemorySharedQueues({ maxBytesPerVm: 1024 * 1024 });
    const id = queues.register('vm', 'flood', () => {}).id;
    for (let i = 0; i < 20_000; i++) queues.enqueue(id, item(1000, i & 0xff));
    const [s] = queues.stats();
    expect(s.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(s.items).toBe(Math.floor((1024 * 1024) / cost(1000)));
    expect(s.dropped).toBe(20_000 - s.items);
  });
});

