/**
 * Shared queues through Redis Streams against a real redis-server: two backends on one Redis are
 * two nodes. A queue registered on one node is resolved and fed from the other; items reach the
 * registering node's listener in order, byte-exact; an item its node read but never dequeued
 * comes again when the node comes back; enqueues made while Redis is away arrive after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { configSchema } from '../../gateway/config/schema.js';
import { createSharedState, type SharedState } from '../../gateway/shared-state/create.js';
import { eventually } from '../helpers/eventually.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: unknown): string => (b instanceof Uint8Array ? new TextDecoder().decode(b) : `status ${String(b)}`);


describe('shared queues through Redis', () => {
  let redis: RedisServer;
  const open: SharedState[] = [];
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of open) await s.close();
    await redis.stop();
  });

  function node(id: string, prefix: string, queueClaimIdleMs = 60_000): SharedState {
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: redis.url, prefix, queueClaimIdleMs } }).sharedState;
    const state = createSharedState(options, id);
    open.push(state);
    return state;
  }

  async function connected(...states: SharedState[]): Promise<void> {
    expect(await eventually(() => states.every((s) => s.replication()!.connected))).toBe(true);
  }

  it('delivers to the node that registered a queue what another node enqueued, in order and byte-exact', async () => {
    const prefix = `q${n++}:`;
    const a = node('a', prefix);
    const b = node('b', prefix);
    await connected(a, b);
    const ready: number[] = [];
    const { id } = b.queues.register('vm', 'jobs \u00ff', (q) => ready.push(q));
    expect(await eventually(() => a.queues.resolve('vm', 'jobs \u00ff') !== undefined)).toBe(true);
    expect(a.queues.resolve('vm', 'nope')).toBeUndefined();
    const at = a.queues.resolve('vm', 'jobs \u00ff')!;
    const binary = new Uint8Array([0, 255, 10, 32]);
    for (const item of [text('one'), binary, text('three')]) expect(a.queues.enqueue(at, item)).toBe(Status.OK);
    expect(await eventually(() => ready.length === 3)).toBe(true);
    expect(ready).toEqual([id, id, id]);
    expect(str(b.queues.dequeue(id))).toBe('one');
    expect([...(b.queues.dequeue(id) as Uint8Array)]).toEqual([...binary]);
    expect(str(b.queues.dequeue(id))).toBe('three');
    expect(b.queues.dequeue(id)).toBe(Status.EMPTY);
  });

  it('delivers an item again when the node that read it died before dequeuing it and comes back with its id', async () => {
    const prefix = `q${n++}:`;
    const a = node('a', prefix);
    const b = node('edge-b', prefix);
    await connected(a, b);
    const ready: number[] = [];
    b.queues.register('vm', 'work', (q) => ready.push(q));
    expect(await eventually(() => a.queues.resolve('vm', 'work') !== undefined)).toBe(true);
    a.queues.enqueue(a.queues.resolve('vm', 'work')!, text('first'));
    a.queues.enqueue(a.queues.resolve('vm', 'work')!, text('second'));
    expect(await eventually(() => ready.length === 2)).toBe(true);
    // b read both (they are pending under its id in Redis) and its guest dequeued the first only.
    const { id } = b.queues.register('vm', 'work', (q) => ready.push(q));
    expect(str(b.queues.dequeue(id))).toBe('first');
    await eventually(() => b.replication()!.waiting === 0);
    await b.close();

    const again = node('edge-b', prefix);
    await connected(again);
    const readyAgain: number[] = [];
    const { id: id2 } = again.queues.register('vm', 'work', (q) => readyAgain.push(q));
    expect(await eventually(() => readyAgain.length === 1)).toBe(true);
    expect(str(again.queues.dequeue(id2))).toBe('second');
    expect(again.queues.dequeue(id2)).toBe(Status.EMPTY);
  });

  it('hands the items a node left pending, and never came back for, to another registering node after queueClaimIdleMs', async () => {
    const prefix = `q${n++}:`;
    const a = node('a', prefix);
    const gone = node('gone', prefix);
    await connected(a, gone);
    const readyGone: number[] = [];
    gone.queues.register('vm', 'orphans', (q) => readyGone.push(q));
    expect(await eventually(() => a.queues.resolve('vm', 'orphans') !== undefined)).toBe(true);
    a.queues.enqueue(a.queues.resolve('vm', 'orphans')!, text('left behind'));
    expect(await eventually(() => readyGone.length === 1)).toBe(true);
    await gone.close(); // read, never dequeued: pending under "gone" in Redis

    const heir = node('heir', prefix, 300);
    await connected(heir);
    const ready: number[] = [];
    const { id } = heir.queues.register('vm', 'orphans', (q) => ready.push(q));
    expect(await eventually(() => ready.length === 1, 5000)).toBe(true);
    expect(str(heir.queues.dequeue(id))).toBe('left behind');
    expect(heir.queues.dequeue(id)).toBe(Status.EMPTY);
  });

  it('shares the items of a queue two nodes registered: each item goes to one of them', async () => {
    const prefix = `q${n++}:`;
    const [a, b, c] = [node('a', prefix), node('b', prefix), node('c', prefix)];
    await connected(a, b, c);
    const got: string[] = [];
    const drain = (s: SharedState) => (q: number) => { const item = s.queues.dequeue(q); if (item instanceof Uint8Array) got.push(str(item)); };
    b.queues.register('vm', 'shared', drain(b));
    c.queues.register('vm', 'shared', drain(c));
    expect(await eventually(() => a.queues.resolve('vm', 'shared') !== undefined)).toBe(true);
    const at = a.queues.resolve('vm', 'shared')!;
    for (let i = 0; i < 40; i++) a.queues.enqueue(at, text(`item-${i}`));
    expect(await eventually(() => got.length === 40)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect([...got].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `item-${i}`).sort());
  });

  it('keeps what a node enqueued while Redis was away and delivers it once Redis is back', async () => {
    const prefix = `q${n++}:`;
    const a = node('a', prefix);
    const b = node('b', prefix);
    await connected(a, b);
    const ready: number[] = [];
    const { id } = b.queues.register('vm', 'late', (q) => ready.push(q));
    expect(await eventually(() => a.queues.resolve('vm', 'late') !== undefined)).toBe(true);
    const at = a.queues.resolve('vm', 'late')!;
    await redis.kill();
    expect(await eventually(() => !a.replication()!.connected)).toBe(true);
    expect(a.queues.enqueue(at, text('while away'))).toBe(Status.OK);
    await redis.restart();
    expect(await eventually(() => ready.length >= 1, 10_000)).toBe(true);
    expect(str(b.queues.dequeue(id))).toBe('while away');
  }, 30_000);
});
