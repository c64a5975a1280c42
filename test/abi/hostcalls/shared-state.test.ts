import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../../gateway/abi/callbacks.js';
import type { Context } from '../../../gateway/abi/context.js';
import { Status } from '../../../gateway/abi/enums.js';
import { MAX_SHARED_DATA_KEY_BYTES, MAX_SHARED_DATA_VALUE_BYTES } from '../../../gateway/abi/limits.js';
import type { QueueListener, QueueRegistration } from '../../../gateway/abi/ports.js';
import { ENTRY_OVERHEAD_BYTES } from '../../../gateway/shared-state/data-scope.js';
import { MemorySharedData, MemorySharedQueues } from '../../../gateway/shared-state/memory.js';
import { TestStream, startVm, text, until, type TestVm } from '../../helpers/host.js';
import { guestWat } from '../../helpers/wat.js';

/** Output slots (u32) the guest hands to the hostcalls. */
const RET_PTR = 0x10;
const RET_SIZE = 0x14;
const RET_CAS = 0x18;
const RET_ID = 0x1c;
/** proxy_on_queue_ready log: count at QUEUE_LOG, then (root_id, queue_id) pairs. */
const QUEUE_LOG = 0x800;
const POISON = 0xaaaaaaaa;

/**
 * A guest whose exports forward to the shared-state hostcalls with fixed output slots, and whose
 * proxy_on_queue_ready appends (root_id, queue_id) to a log in memory.
 */
const SHARED_STATE_GUEST = guestWat({
  imports: `
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))`,
  body: `
  (func (export "get") (param $k i32) (param $kl i32) (result i32)
    (call $get (local.get $k) (local.get $kl) (i32.const ${RET_PTR}) (i32.const ${RET_SIZE}) (i32.const ${RET_CAS})))
  (func (export "set") (param $k i32) (param $kl i32) (param $v i32) (param $vl i32) (param $cas i32) (result i32)
    (call $set (local.get $k) (local.get $kl) (local.get $v) (local.get $vl) (local.get $cas)))
  (func (export "register") (param $n i32) (param $nl i32) (result i32)
    (call $register (local.get $n) (local.get $nl) (i32.const ${RET_ID})))
  (func (export "resolve") (param $vm i32) (param $vml i32) (param $n i32) (param $nl i32) (result i32)
    (call $resolve (local.get $vm) (local.get $vml) (local.get $n) (local.get $nl) (i32.const ${RET_ID})))
  (func (export "enqueue") (param $id i32) (param $d i32) (param $dl i32) (result i32)
    (call $enqueue (local.get $id) (local.get $d) (local.get $dl)))
  (func (export "dequeue") (param $id i32) (result i32)
    (call $dequeue (local.get $id) (i32.const ${RET_PTR}) (i32.const ${RET_SIZE})))
  (func (export "proxy_on_queue_ready") (param $root i32) (param $queue i32)
    (local $at i32)
    (local.set $at (i32.add (i32.const ${QUEUE_LOG + 4}) (i32.mul (i32.load (i32.const ${QUEUE_LOG})) (i32.const 8))))
    (i32.store (local.get $at) (local.get $root))
    (i32.store offset=4 (local.get $at) (local.get $queue))
    (i32.store (i32.const ${QUEUE_LOG}) (i32.add (i32.load (i32.const ${QUEUE_LOG})) (i32.const 1))))`,
});

/** Drives the guest: places inputs in scratch memory and runs its exports as a given context. */
class Guest {
  private next = 0x1000;
  readonly root;

  constructor(readonly t: TestVm, plugin = 'plugin') {
    this.root = t.vm.createRoot({ name: plugin, rootId: plugin, configuration: new Uint8Array(0) });
  }

  /** Bytes in scratch memory, as the (ptr, len) pair a hostcall takes. */
  in(data: string): [number, number] {
    const bytes = text(data);
    const ptr = this.next;
    this.t.vm.mem.write(ptr, bytes);
    this.next += bytes.length + 8;
    return [ptr, bytes.length];
  }

  run(name: string, ...args: number[]): number {
    return this.runAs(this.root, name, ...args);
  }

  runAs(ctx: Context, name: string, ...args: number[]): number {
    return this.t.vm.call(ctx, this.t.vm.instance.exports[name] as GuestFn, ...args);
  }

  u32(ptr: number): number {
    return this.t.vm.mem.u32(ptr);
  }

  poison(): void {
    for (const slot of [RET_PTR, RET_SIZE, RET_CAS, RET_ID]) this.t.vm.mem.setU32(slot, POISON);
  }

  /** The bytes a hostcall returned through (RET_PTR, RET_SIZE). */
  returned(): string {
    const ptr = this.u32(RET_PTR);
    return Buffer.from(this.t.vm.mem.current().subarray(ptr, ptr + this.u32(RET_SIZE))).toString();
  }

  set(key: string, value: string, cas = 0): number {
    return this.run('set', ...this.in(key), ...this.in(value), cas);
  }

  get(key: string): number {
    return this.run('get', ...this.in(key));
  }

  register(name: string, ctx: Context = this.root): number {
    return this.runAs(ctx, 'register', ...this.in(name));
  }

  enqueue(queueId: number, data: string): number {
    return this.run('enqueue', queueId, ...this.in(data));
  }

  /** Every proxy_on_queue_ready(root_id, queue_id) received so far. */
  queueReady(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.u32(QUEUE_LOG); i++) out.push([this.u32(QUEUE_LOG + 4 + 8 * i), this.u32(QUEUE_LOG + 8 + 8 * i)]);
    return out;
  }
}

/** The memory queues, recording each unsubscribe the ABI host makes (by queue id). */
class UnsubscribeCounting extends MemorySharedQueues {
  readonly unsubscribed: number[] = [];

  override register(vmId: string, name: string, listener: QueueListener): QueueRegistration {
    const registration = super.register(vmId, name, listener);
    return { id: registration.id, unsubscribe: () => { this.unsubscribed.push(registration.id); registration.unsubscribe(); } };
  }
}

const guest = (options: Parameters<typeof startVm>[1] = {}, plugin?: string): Guest => new Guest(startVm(SHARED_STATE_GUEST, options), plugin);

describe('proxy_get_shared_data and proxy_set_shared_data', () => {
  it('returns NOT_FOUND for a missing key and writes nothing', () => {
    const g = guest();
    g.poison();
    expect(g.get('missing')).toBe(Status.NOT_FOUND);
    expect([g.u32(RET_PTR), g.u32(RET_SIZE), g.u32(RET_CAS)]).toEqual([POISON, POISON, POISON]);
  });

  it('returns the value that was set, with a non-zero CAS', () => {
    const g = guest();
    expect(g.set('greeting', 'hello')).toBe(Status.OK);
    expect(g.get('greeting')).toBe(Status.OK);
    expect(g.returned()).toBe('hello');
    expect(g.u32(RET_SIZE)).toBe(5);
    expect(g.u32(RET_CAS)).not.toBe(0);
  });

  it('writes unconditionally with cas 0, whatever the current CAS', () => {
    const g = guest();
    g.set('k', 'one');
    expect(g.set('k', 'two', 0)).toBe(Status.OK);
    g.get('k');
    expect(g.returned()).toBe('two');
  });

  it('writes with the current CAS and gives the entry a new CAS', () => {
    const g = guest();
    g.set('k', 'one');
    g.get('k');
    const cas = g.u32(RET_CAS);
    expect(g.set('k', 'two', cas)).toBe(Status.OK);
    g.get('k');
    expect(g.returned()).toBe('two');
    expect(g.u32(RET_CAS)).not.toBe(cas);
    expect(g.u32(RET_CAS)).not.toBe(0);
  });

  it('refuses a stale CAS with CAS_MISMATCH (8) and keeps the value', () => {
    const g = guest();
    g.set('k', 'one');
    g.get('k');
    const stale = g.u32(RET_CAS);
    g.set('k', 'two');
    expect(g.set('k', 'three', stale)).toBe(8);
    expect(Status.CAS_MISMATCH).toBe(8);
    g.get('k');
    expect(g.returned()).toBe('two');
  });

  it('writes a non-zero CAS against a missing key, as cpp-host does', () => {
    const g = guest();
    expect(g.set('fresh', 'v', 777)).toBe(Status.OK);
    expect(g.get('fresh')).toBe(Status.OK);
    expect(g.returned()).toBe('v');
  });

  it('returns an empty value (the ABI’s delete idiom) as ptr 0, len 0 with a CAS', () => {
    const g = guest();
    g.set('k', 'something');
    expect(g.run('set', ...g.in('k'), 0, 0, 0)).toBe(Status.OK);
    g.poison();
    expect(g.get('k')).toBe(Status.OK);
    expect([g.u32(RET_PTR), g.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(g.u32(RET_CAS)).not.toBe(0);
  });

  it('returns INVALID_MEMORY_ACCESS for a key outside guest memory', () => {
    const g = guest();
    expect(g.run('get', 0x20000, 4)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(g.run('set', 0x1fffe, 4, 0, 0, 0)).toBe(Status.INVALID_MEMORY_ACCESS);
  });

  it('shares data between two VMs with the same vm_id', () => {
    const sharedData = new MemorySharedData();
    const a = guest({ vmId: 'edge', ports: { sharedData } });
    const b = guest({ vmId: 'edge', ports: { sharedData } });
    a.set('k', 'from a');
    expect(b.get('k')).toBe(Status.OK);
    expect(b.returned()).toBe('from a');
    const cas = b.u32(RET_CAS);
    expect(b.set('k', 'from b', cas)).toBe(Status.OK);
    a.get('k');
    expect(a.returned()).toBe('from b');
  });

  it('does not share data with a VM of another vm_id', () => {
    const sharedData = new MemorySharedData();
    const a = guest({ vmId: 'edge', ports: { sharedData } });
    const c = guest({ vmId: 'other', ports: { sharedData } });
    a.set('k', 'from a');
    expect(c.get('k')).toBe(Status.NOT_FOUND);
  });

  it('returns UNIMPLEMENTED without a shared-data port', () => {
    const g = guest({ ports: { sharedData: undefined } });
    expect(g.get('k')).toBe(Status.UNIMPLEMENTED);
    expect(g.set('k', 'v')).toBe(Status.UNIMPLEMENTED);
  });
});

describe('shared-data limits', () => {
  const refusals = (store: MemorySharedData, vmId = ''): Record<string, number> => ({ ...store.stats().find((s) => s.vmId === vmId)?.refusals });

  it(`refuses a key over ${MAX_SHARED_DATA_KEY_BYTES} bytes (BAD_ARGUMENT to set, NOT_FOUND to get) before reading guest memory`, () => {
    const g = guest();
    // The pointer is outside guest memory: the length alone decides, so it is not INVALID_MEMORY_ACCESS.
    expect(g.run('set', 0x7fff0000, MAX_SHARED_DATA_KEY_BYTES + 1, ...g.in('v'), 0)).toBe(Status.BAD_ARGUMENT);
    expect(g.run('get', 0x7fff0000, MAX_SHARED_DATA_KEY_BYTES + 1)).toBe(Status.NOT_FOUND);
    expect(refusals(g.t.sharedData)).toEqual({ key_size: 1, value_size: 0, quota: 0 });
    // At the limit a key is accepted.
    expect(g.run('set', 0x1000, MAX_SHARED_DATA_KEY_BYTES, ...g.in('v'), 0)).toBe(Status.OK);
    expect(g.run('get', 0x1000, MAX_SHARED_DATA_KEY_BYTES)).toBe(Status.OK);
  });

  it(`refuses a value over ${MAX_SHARED_DATA_VALUE_BYTES} bytes with BAD_ARGUMENT before copying it, and takes one at the limit`, () => {
    const g = guest();
    expect(g.run('set', ...g.in('big'), 0x7fff0000, MAX_SHARED_DATA_VALUE_BYTES + 1, 0)).toBe(Status.BAD_ARGUMENT);
    expect(g.get('big')).toBe(Status.NOT_FOUND);
    expect(refusals(g.t.sharedData)).toEqual({ key_size: 0, value_size: 1, quota: 0 });
    (g.t.vm.instance.exports.memory as WebAssembly.Memory).grow(17);
    expect(g.run('set', ...g.in('big'), 0x20000, MAX_SHARED_DATA_VALUE_BYTES, 0)).toBe(Status.OK);
    expect(g.t.sharedData.bytesOf('')).toBe(3 + MAX_SHARED_DATA_VALUE_BYTES + ENTRY_OVERHEAD_BYTES);
  });

  it('frees the value bytes when a guest deletes a key the Rust SDK way (value ptr 0, len 0)', () => {
    const g = guest();
    g.set('k', 'something');
    expect(g.t.sharedData.bytesOf('')).toBe(1 + 9 + ENTRY_OVERHEAD_BYTES);
    expect(g.run('set', ...g.in('k'), 0, 0, 0)).toBe(Status.OK);
    expect(g.t.sharedData.bytesOf('')).toBe(1 + ENTRY_OVERHEAD_BYTES);
  });

  it('answers OK to writes over a full quota and evicts the least recently used keys', () => {
    const sharedData = new MemorySharedData({ maxBytesPerVm: 3 * (2 + 5 + ENTRY_OVERHEAD_BYTES) });
    const g = guest({ ports: { sharedData } });
    for (const k of ['k1', 'k2', 'k3']) expect(g.set(k, 'value')).toBe(Status.OK);
    expect(g.get('k1')).toBe(Status.OK);
    expect(g.set('k4', 'value')).toBe(Status.OK);
    expect(g.get('k2')).toBe(Status.NOT_FOUND);
    expect([g.get('k1'), g.get('k3'), g.get('k4')]).toEqual([Status.OK, Status.OK, Status.OK]);
  });

  it('answers BAD_ARGUMENT to an entry larger than the whole quota', () => {
    const sharedData = new MemorySharedData({ maxBytesPerVm: 4096 });
    const g = guest({ ports: { sharedData } });
    expect(g.run('set', ...g.in('k'), 0x1000, 4096 - ENTRY_OVERHEAD_BYTES, 0)).toBe(Status.BAD_ARGUMENT);
    expect(g.run('set', ...g.in('k'), 0x1000, 4096 - ENTRY_OVERHEAD_BYTES - 1, 0)).toBe(Status.OK);
    expect(refusals(sharedData)).toEqual({ key_size: 0, value_size: 0, quota: 1 });
  });
});

describe('shared queues', () => {
  it('registers a queue with a non-zero id, and the same id when registered again', () => {
    const g = guest();
    expect(g.register('jobs')).toBe(Status.OK);
    const id = g.u32(RET_ID);
    expect(id).not.toBe(0);
    g.poison();
    expect(g.register('jobs')).toBe(Status.OK);
    expect(g.u32(RET_ID)).toBe(id);
  });

  it('resolves a queue of the caller’s own vm_id when vm_id is empty', () => {
    const g = guest({ vmId: 'edge' });
    g.register('jobs');
    const id = g.u32(RET_ID);
    g.poison();
    expect(g.run('resolve', 0, 0, ...g.in('jobs'))).toBe(Status.OK);
    expect(g.u32(RET_ID)).toBe(id);
    g.poison();
    expect(g.run('resolve', ...g.in('edge'), ...g.in('jobs'))).toBe(Status.OK);
    expect(g.u32(RET_ID)).toBe(id);
  });

  it('returns NOT_FOUND when resolving a missing queue, and writes no id', () => {
    const g = guest({ vmId: 'edge' });
    g.register('jobs');
    g.poison();
    expect(g.run('resolve', 0, 0, ...g.in('nope'))).toBe(Status.NOT_FOUND);
    expect(g.run('resolve', ...g.in('other'), ...g.in('jobs'))).toBe(Status.NOT_FOUND);
    expect(g.u32(RET_ID)).toBe(POISON);
  });

  it('returns NOT_FOUND when enqueuing on or dequeuing from an unknown queue', () => {
    const g = guest();
    expect(g.enqueue(999, 'x')).toBe(Status.NOT_FOUND);
    expect(g.run('dequeue', 999)).toBe(Status.NOT_FOUND);
  });

  it('returns EMPTY (7) when dequeuing from an empty queue', () => {
    const g = guest();
    g.register('jobs');
    const id = g.u32(RET_ID);
    g.poison();
    expect(g.run('dequeue', id)).toBe(7);
    expect(Status.EMPTY).toBe(7);
    expect([g.u32(RET_PTR), g.u32(RET_SIZE)]).toEqual([POISON, POISON]);
  });

  it('dequeues items in the order they were enqueued', () => {
    const g = guest();
    g.register('jobs');
    const id = g.u32(RET_ID);
    expect(g.enqueue(id, 'first')).toBe(Status.OK);
    expect(g.enqueue(id, 'second')).toBe(Status.OK);
    expect(g.run('dequeue', id)).toBe(Status.OK);
    expect(g.returned()).toBe('first');
    expect(g.run('dequeue', id)).toBe(Status.OK);
    expect(g.returned()).toBe('second');
    expect(g.run('dequeue', id)).toBe(Status.EMPTY);
  });

  it('delivers proxy_on_queue_ready(root_id, queue_id) on a later turn, not inside the enqueuing call', async () => {
    const g = guest();
    g.register('jobs');
    const id = g.u32(RET_ID);
    expect(g.enqueue(id, 'work')).toBe(Status.OK);
    expect(g.queueReady()).toEqual([]);
    await until(() => g.queueReady().length === 1);
    expect(g.queueReady()).toEqual([[g.root.id, id]]);
  });

  it('notifies the root of a stream that registered the queue', async () => {
    const g = guest();
    const stream = g.t.vm.createStream(g.root, new TestStream());
    expect(g.register('jobs', stream)).toBe(Status.OK);
    const id = g.u32(RET_ID);
    g.enqueue(id, 'work');
    await until(() => g.queueReady().length === 1);
    expect(g.queueReady()).toEqual([[g.root.id, id]]);
  });

  it('rebinds notifications to the root that registered last, keeping the items', async () => {
    const g = guest();
    const other = g.t.vm.createRoot({ name: 'second', rootId: 'second', configuration: new Uint8Array(0) });
    g.register('jobs');
    const id = g.u32(RET_ID);
    g.enqueue(id, 'kept');
    await until(() => g.queueReady().length === 1);
    expect(g.register('jobs', other)).toBe(Status.OK);
    expect(g.u32(RET_ID)).toBe(id);
    g.enqueue(id, 'next');
    await until(() => g.queueReady().length === 2);
    expect(g.queueReady()).toEqual([[g.root.id, id], [other.id, id]]);
    g.run('dequeue', id);
    expect(g.returned()).toBe('kept');
  });

  it('unsubscribes a deleted root from its queues once, and keeps their items for the next root that registers', async () => {
    const sharedQueues = new UnsubscribeCounting();
    const g = guest({ ports: { sharedQueues } });
    const other = g.t.vm.createRoot({ name: 'second', rootId: 'second', configuration: new Uint8Array(0) });
    g.register('jobs');
    const id = g.u32(RET_ID);
    g.register('jobs');
    g.root.shutdown();
    expect(g.root.alive).toBe(false);
    expect(sharedQueues.unsubscribed).toEqual([id]);
    expect(g.runAs(other, 'enqueue', id, ...g.in('waiting'))).toBe(Status.OK);
    expect(g.register('jobs', other)).toBe(Status.OK);
    g.runAs(other, 'enqueue', id, ...g.in('next'));
    await until(() => g.queueReady().length === 1);
    expect(g.queueReady()).toEqual([[other.id, id]]);
    g.runAs(other, 'dequeue', id);
    expect(g.returned()).toBe('waiting');
  });

  it('notifies the registering VM when another VM enqueues, and only that VM', async () => {
    const sharedQueues = new MemorySharedQueues();
    const owner = guest({ vmId: 'owner', ports: { sharedQueues } });
    const producer = guest({ vmId: 'producer', ports: { sharedQueues } });
    owner.register('jobs');
    const id = owner.u32(RET_ID);
    expect(producer.run('resolve', ...producer.in('owner'), ...producer.in('jobs'))).toBe(Status.OK);
    expect(producer.u32(RET_ID)).toBe(id);
    expect(producer.enqueue(id, 'from producer')).toBe(Status.OK);
    expect(owner.queueReady()).toEqual([]);
    await until(() => owner.queueReady().length === 1);
    expect(owner.queueReady()).toEqual([[owner.root.id, id]]);
    expect(producer.queueReady()).toEqual([]);
    expect(owner.run('dequeue', id)).toBe(Status.OK);
    expect(owner.returned()).toBe('from producer');
  });

  it('returns UNIMPLEMENTED without a shared-queue port', () => {
    const g = guest({ ports: { sharedQueues: undefined } });
    expect(g.register('jobs')).toBe(Status.UNIMPLEMENTED);
    expect(g.run('resolve', 0, 0, ...g.in('jobs'))).toBe(Status.UNIMPLEMENTED);
    expect(g.enqueue(1, 'x')).toBe(Status.UNIMPLEMENTED);
    expect(g.run('dequeue', 1)).toBe(Status.UNIMPLEMENTED);
  });
});
