import { describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { configSchema } from '../../gateway/config/schema.js';
import { createSharedState } from '../../gateway/shared-state/create.js';
import { startRedis } from '../helpers/redis-server.js';
import { text } from '../helpers/host.js';

/** The sharedState section as the configuration schema gives it, defaults applied. */
const section = (doc: unknown) => configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: doc }).sharedState;

describe('createSharedState', () => {
  it('builds the memory backend by default, with the quota of the configuration', () => {
    const state = createSharedState(section({ backend: 'memory', maxBytesPerVm: 4096 }));
    expect(state.backend).toBe('memory');
    // An entry over the quota of 4096 bytes is refused: the quota reached the store.
    expect(state.data.set('vm', 'k', new Uint8Array(5000), 0)).toBe(Status.BAD_ARGUMENT);
    expect(state.data.set('vm', 'k', text('v'), 0)).toBe(Status.OK);
    expect(state.stats()).toMatchObject([{ vmId: 'vm', entries: 1 }]);
  });

  it('builds the redis backend: shared data (the quota on its own copy) and queues through Redis', async () => {
    const redis = await startRedis();
    try {
      const options = section({ backend: 'redis', url: redis.url, maxBytesPerVm: 4096 });
      expect(options).toMatchObject({ backend: 'redis', prefix: 'edge:', cluster: false });
      const state = createSharedState(options, 'edge 1/a');
      expect(state.backend).toBe('redis');
      expect(state.data.set('vm', 'k', new Uint8Array(5000), 0)).toBe(Status.BAD_ARGUMENT);
      expect(state.data.set('vm', 'k', text('v'), 0)).toBe(Status.OK);
      expect(state.stats()).toMatchObject([{ vmId: 'vm', entries: 1 }]);
      const { id } = state.queues.register('vm', 'q', () => undefined);
      expect(state.queues.enqueue(id, text('item'))).toBe(Status.OK);
      for (let i = 0; i < 200 && state.replication()!.waiting > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(state.replication()).toEqual({ connected: true, waiting: 0, dropped: 0 });
      // The node id, made safe for the published form (no spaces) and unique per process.
      const writer = await redis.client().hget('edge:{766d}:versions', 'k');
      expect(writer).toMatch(/^1 edge_1_a-[0-9a-f]{8}$/);
      await state.close();
    } finally {
      await redis.stop();
    }
  });

  it('refuses a redis prefix that would break the hash tags', () => {
    expect(() => section({ backend: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'a{b}:' })).toThrow(/must not hold braces or spaces/);
  });

  it('frees the data and the queues on close()', async () => {
    const state = createSharedState(section({ backend: 'memory' }));
    state.data.set('vm', 'k', text('v'), 0);
    const { id: queue } = state.queues.register('vm', 'q', () => undefined);
    state.queues.enqueue(queue, text('item'));
    await state.close();
    expect(state.data.get('vm', 'k')).toBeUndefined();
    expect(state.queues.resolve('vm', 'q')).toBeUndefined();
    expect(state.queues.dequeue(queue)).toBe(Status.NOT_FOUND);
  });
});
