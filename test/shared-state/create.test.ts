import { describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { configSchema } from '../../gateway/config/schema.js';
import { isGatewayError } from '../../gateway/errors.js';
import { checkSharedState, createSharedState } from '../../gateway/shared-state/create.js';
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

  it('refuses the redis backend, not implemented yet, with GW_ERR_CONFIG_UNSUPPORTED naming the field', () => {
    const redis = section({ backend: 'redis', url: 'redis://127.0.0.1:6379' });
    let err: unknown;
    try {
      createSharedState(redis);
    } catch (e) {
      err = e;
    }
    expect(isGatewayError(err, 'GW_ERR_CONFIG_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toBe('sharedState.backend: "redis" is not implemented yet; use "memory" (data shared within this process only)');
    expect(() => checkSharedState(redis)).toThrow((err as Error).message);
    expect(() => checkSharedState(section({ backend: 'memory' }))).not.toThrow();
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
