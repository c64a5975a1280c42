/**
 * The contexts alive in a VM (gateway/abi/live-contexts.ts): roots by id, streams in an unordered
 * array that a removal fills from its end. Every live context stays findable by its id, whatever
 * order streams end in, and a context goes once.
 */
import { describe, expect, it } from 'vitest';
import type { Context, RootContext, StreamContext } from '../../gateway/abi/context.js';
import { LiveContexts } from '../../gateway/abi/live-contexts.js';

const root = (id: number): RootContext => ({ kind: 'root', id }) as RootContext;
const stream = (id: number): StreamContext => ({ kind: 'stream', id, place: -1 }) as StreamContext;

describe('the live contexts of a VM', () => {
  it('find every live root and stream by id after streams end in any order, and forget the ended ones', () => {
    const live = new LiveContexts();
    const r = root(1);
    live.add(r);
    const streams = [2, 3, 4, 5, 6].map(stream);
    for (const s of streams) live.add(s);
    expect([live.size, live.streamCount]).toEqual([6, 5]);
    // The first, a middle one and the last end: the rest move into their places.
    for (const s of [streams[0], streams[2], streams[4]]) live.delete(s);
    expect([live.size, live.streamCount]).toEqual([3, 2]);
    for (const id of [1, 3, 5]) expect(live.get(id)?.id).toBe(id);
    for (const id of [2, 4, 6]) expect(live.has(id)).toBe(false);
    expect([...live.roots()]).toEqual([r]);
  });

  it('lets a context go once: a second delete of an ended stream moves no other', () => {
    const live = new LiveContexts();
    const [a, b, c] = [7, 8, 9].map(stream);
    for (const s of [a, b, c]) live.add(s);
    live.delete(a);
    live.delete(a);
    expect(live.streamCount).toBe(2);
    expect([live.get(8), live.get(9)]).toEqual([b, c]);
    live.delete(root(99) as Context); // never added
    expect(live.size).toBe(2);
  });
});
