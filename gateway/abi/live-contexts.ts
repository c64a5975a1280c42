/**
 * The contexts alive in one VM: its roots by id, and its streams.
 *
 * Streams are kept in an unordered array, where each knows its place, so that adding and removing
 * one cost O(1). NB: not in a Map. A Map that took a stream and let one go on every request,
 * under ids that only grow, made each young-generation collection keep a third of what requests
 * had allocated: scavenging went from 1.8 to 11.3 µs a request with one filter, a third of the
 * filter's cost through the gateway (bench/README.md, "Garbage collection per request"). With
 * this array it stays at 1.8. A stream is looked up by id only for proxy_set_effective_context,
 * by a scan of the streams in flight.
 */
import type { Context, RootContext, StreamContext } from './context.js';

export class LiveContexts {
  private readonly rootsById = new Map<number, RootContext>();
  private readonly streams: StreamContext[] = [];

  /** Roots and streams alive. */
  get size(): number {
    return this.rootsById.size + this.streams.length;
  }

  get streamCount(): number {
    return this.streams.length;
  }

  add(ctx: Context): void {
    if (ctx.kind === 'root') {
      this.rootsById.set(ctx.id, ctx);
      return;
    }
    ctx.place = this.streams.length;
    this.streams.push(ctx);
  }

  delete(ctx: Context): void {
    if (ctx.kind === 'root') {
      this.rootsById.delete(ctx.id);
      return;
    }
    const { streams } = this;
    if (streams[ctx.place] !== ctx) return; // gone already
    const last = streams.pop()!;
    if (last !== ctx) {
      streams[ctx.place] = last;
      last.place = ctx.place;
    }
    ctx.place = -1;
  }

  get(id: number): Context | undefined {
    return this.rootsById.get(id) ?? this.streams.find((s) => s.id === id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  roots(): Iterable<RootContext> {
    return this.rootsById.values();
  }
}
