/**
 * A first-in first-out queue with O(1) push and shift. `Array.prototype.shift` moves every item
 * left: once an array outgrows V8's small-object space that is a copy of the whole queue per
 * dequeue, so draining 100 000 items (a guest's queue that backed up) took seconds measured here,
 * with the event loop held. This reads from a head index instead and drops the consumed front
 * only when it is at least half the array, so each item is copied at most once on average.
 */

/** Consumed slots kept before the front is dropped: small queues never copy. */
const COMPACT_AFTER = 1024;

export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The front item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    // The slot is cleared so a consumed item is not kept alive by the queue.
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
