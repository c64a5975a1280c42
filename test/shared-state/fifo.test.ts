import { describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { Fifo } from '../../gateway/shared-state/fifo.js';
import { MemorySharedQueues } from '../../gateway/shared-state/memory.js';

describe('Fifo', () => {
  it('gives items back in the order they came, across the compactions of a long run', () => {
    const q = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    // Bursts of pushes with fewer shifts between them: the front is dropped several times.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) q.push(next++);
      for (let i = 0; i < 200; i++) out.push(q.shift()!);
    }
    expect(q.length).toBe(next - out.length);
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    q.push(7);
    expect([q.length, q.shift(), q.length]).toEqual([1, 7, 0]);
  });
});

describe('MemorySharedQueues', () => {
  /** Enqueues `n` items on a fresh queue and returns the ms it takes to dequeue them all. */
  function drainMs(n: number): number {
    const queues = new MemorySharedQueues();
    const { id } = queues.register('vm', 'q', () => undefined);
    const item = new Uint8Array(1);
    for (let i = 0; i < n; i++) queues.enqueue(id, item);
    let got = 0;
    const started = performance.now();
    while (queues.dequeue(id) instanceof Uint8Array) got++;
    const ms = performance.now() - started;
    expect(got).toBe(n);
    return ms;
  }

  it('dequeues in time linear in the backlog: 20x the items take about 20x as long, not 400x', () => {
    drainMs(5_000); // warm-up
    const small = Math.max(drainMs(5_000), 1);
    const large = drainMs(100_000);
    // Array.prototype.shift copies the whole backlog per dequeue once it is large: over 1000x here.
    expect(large / small).toBeLessThan(100);
    expect(large).toBeLessThan(1000);
  });
});
