/**
 * The replica's model (gateway/shared-state/replicated-data.ts) step by step, against a link whose
 * answers the test hands out in the order it chooses: the orders a real Redis produces only
 * under load and outages (test/shared-state/redis-data.test.ts runs the same code against one).
 */
import { describe, expect, it } from 'vitest';
import { ReplicatedSharedData } from '../../gateway/shared-state/replicated-data.js';
import type { ReplicaLink, WriteAnswer } from '../../gateway/shared-state/replica.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A link whose writes wait until the test answers them; loads answer what `stored` holds. */
class ScriptedLink implements ReplicaLink {
  readonly node = 'me';
  connected = true;
  readonly writes: Array<{ key: string; value: string; base: string; answer: (a: WriteAnswer | null) => void }> = [];
  stored = new Map<string, [string, Uint8Array]>();
  write(_vmId: string, key: string, value: Uint8Array, base: string): Promise<WriteAnswer | null> {
    return new Promise((answer) => this.writes.push({ key, value: str(value)!, base, answer }));
  }
  load(): Promise<Map<string, [string, Uint8Array]>> {
    return Promise.resolve(new Map(this.stored));
  }
}

describe('a replicated copy of shared data', () => {
  it('forgets, on a reconnect, a newer version it held back for its own pending write: a Redis that restarted empty counts from 1', async () => {
    const link = new ScriptedLink();
    const data = new ReplicatedSharedData(link, { maxBytesPerVm: 1 << 20, warn: () => undefined });
    data.get('vm', 'k');
    await turn();
    data.set('vm', 'k', text('mine'), 0);
    await turn();
    expect(link.writes).toHaveLength(1);
    // Another node's write, version 900 of the old Redis, arrives while this node's is in flight: held back.
    data.received({ node: 'other', version: 900, vmId: 'vm', key: 'k', value: text('old redis') });
    // Redis restarts empty: the link is ready again, the copy reloads (nothing there yet)…
    data.reload();
    await turn();
    // …and the write lost with the old Redis is answered by the new one, version 1.
    link.writes[0].answer({ accepted: true, version: 1 });
    await turn();
    expect(str(data.get('vm', 'k')?.value)).toBe('mine');
    // The other node writes again: version 2 of the new Redis. It must win over "version 900".
    data.received({ node: 'other', version: 2, vmId: 'vm', key: 'k', value: text('new redis') });
    expect(str(data.get('vm', 'k')?.value)).toBe('new redis');
  });

  it('applies the highest version once its own writes are answered, and a refused CAS write gives way to the winner', async () => {
    const link = new ScriptedLink();
    const data = new ReplicatedSharedData(link, { maxBytesPerVm: 1 << 20, warn: () => undefined });
    data.get('vm', 'k');
    data.received({ node: 'other', version: 5, vmId: 'vm', key: 'k', value: text('five') });
    const { cas } = data.get('vm', 'k')!;
    data.set('vm', 'k', text('mine'), cas);
    await turn();
    expect(link.writes[0].base).toBe('5');
    data.received({ node: 'other', version: 6, vmId: 'vm', key: 'k', value: text('six') });
    expect(str(data.get('vm', 'k')?.value)).toBe('mine'); // held back while its own write is in flight
    link.writes[0].answer({ accepted: false, version: 6, value: text('six') });
    await turn();
    expect(str(data.get('vm', 'k')?.value)).toBe('six');
    expect(data.get('vm', 'k')!.cas).not.toBe(cas);
  });
});
