/**
 * The Redis backend of shared data against a real redis-server: two backends on one Redis are two
 * nodes. What one node writes, the other reads; keys and values stay byte-exact; a node that comes
 * later loads what is there; CAS conflicts across nodes end with the winner everywhere; a Redis
 * outage costs no write and ends with every node converged.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../gateway/abi/enums.js';
import { configSchema } from '../../gateway/config/schema.js';
import { createSharedState, type SharedState, type SharedStateEvents } from '../../gateway/shared-state/create.js';
import { updateChannel, vmKeys, WRITE_SCRIPT, WRITER_TTL_MS, writerKey } from '../../gateway/shared-state/redis-layout.js';
import { MAX_UNANSWERED_WRITES } from '../../gateway/shared-state/redis-link.js';
import { eventually } from '../helpers/eventually.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../helpers/redis-server.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));


interface Node {
  readonly state: SharedState;
  readonly warnings: string[];
  readonly changes: Array<[boolean, string | undefined]>;
}

describe('the redis shared-data backend', () => {
  let redis: RedisServer;
  const nodes: Node[] = [];
  let prefix = 0;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.state.close();
  });

  /** `count` nodes on one prefix (default: a fresh one), each connected before it is handed out. */
  async function fleet(count: number, on = `t${prefix++}:`): Promise<Node[]> {
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: redis.url, prefix: on } }).sharedState;
    const made: Node[] = [];
    for (let i = 0; i < count; i++) {
      const warnings: string[] = [];
      const changes: Array<[boolean, string | undefined]> = [];
      const events: SharedStateEvents = { warn: (m) => warnings.push(m), connection: (c, r) => changes.push([c, r]) };
      const node = { state: createSharedState(options, `node-${i}`, events), warnings, changes };
      nodes.push(node);
      made.push(node);
    }
    for (const n of made) expect(await eventually(() => n.state.replication()?.connected === true)).toBe(true);
    return made;
  }

  it('shows a value set on one node to a guest on another', async () => {
    const [a, b] = await fleet(2);
    expect(b.state.data.get('vm', 'greeting')).toBeUndefined(); // b uses the vm_id from now on
    expect(a.state.data.set('vm', 'greeting', text('hello'), 0)).toBe(Status.OK);
    expect(await eventually(() => str(b.state.data.get('vm', 'greeting')?.value) === 'hello')).toBe(true);
    // Each node's CAS is its own: a fresh one on b.
    expect(b.state.data.get('vm', 'greeting')!.cas).toBeGreaterThan(0);
  });

  it('keeps keys (latin1) and values (binary) byte-exact, and vm_ids apart, whatever bytes they hold', async () => {
    const [a, b] = await fleet(2);
    const key = 'k \u00ff\u0000}{:x';
    const vmId = 'vm}{ \u00e9';
    const value = new Uint8Array([0, 255, 32, 10, 13, 0x7b, 0x7d, 128]);
    b.state.data.get(vmId, key);
    b.state.data.get('other', key);
    expect(a.state.data.set(vmId, key, value, 0)).toBe(Status.OK);
    expect(await eventually(() => b.state.data.get(vmId, key) !== undefined)).toBe(true);
    expect([...b.state.data.get(vmId, key)!.value]).toEqual([...value]);
    expect(b.state.data.get('other', key)).toBeUndefined();
    const [values] = vmKeys(`t${prefix - 1}:`, vmId);
    const stored = await redis.client().hgetBuffer(values, Buffer.from(key, 'latin1'));
    expect([...stored!]).toEqual([...value]);
  });

  it('loads what Redis holds when a node first uses a vm_id, including the ABI delete (an empty value)', async () => {
    const [a] = await fleet(1);
    a.state.data.set('vm', 'kept', text('1'), 0);
    a.state.data.set('vm', 'gone', text('x'), 0);
    a.state.data.set('vm', 'gone', new Uint8Array(0), 0);
    expect(await eventually(() => a.state.replication()!.waiting === 0)).toBe(true);
    const [late] = await fleet(1, `t${prefix - 1}:`);
    const c = late.state;
    c.data.get('vm', 'kept');
    expect(await eventually(() => str(c.data.get('vm', 'kept')?.value) === '1')).toBe(true);
    expect(c.data.get('vm', 'gone')?.value.length).toBe(0);
  });

  it('keeps CAS exact within a node, as the memory backend does', async () => {
    const [a] = await fleet(1);
    a.state.data.set('vm', 'n', text('0'), 0);
    const { cas } = a.state.data.get('vm', 'n')!;
    expect(a.state.data.set('vm', 'n', text('1'), cas)).toBe(Status.OK);
    expect(a.state.data.set('vm', 'n', text('2'), cas)).toBe(Status.CAS_MISMATCH);
    expect(str(a.state.data.get('vm', 'n')!.value)).toBe('1');
  });

  it('resolves a CAS conflict across nodes for the first write to reach Redis: the loser then reads the winner', async () => {
    const [a, b] = await fleet(2);
    a.state.data.set('vm', 'owner', text('nobody'), 0);
    expect(await eventually(() => str(b.state.data.get('vm', 'owner')?.value) === 'nobody')).toBe(true);
    const casA = a.state.data.get('vm', 'owner')!.cas;
    const casB = b.state.data.get('vm', 'owner')!.cas;
    // Both saw the same version; both claim it. Each node says OK at once (the ABI cannot wait).
    expect(a.state.data.set('vm', 'owner', text('a'), casA)).toBe(Status.OK);
    expect(b.state.data.set('vm', 'owner', text('b'), casB)).toBe(Status.OK);
    // a's script ran first (it was sent first on its own connection; both are one round trip away).
    const settled = () => str(a.state.data.get('vm', 'owner')?.value) === str(b.state.data.get('vm', 'owner')?.value)
      && a.state.replication()!.waiting === 0 && b.state.replication()!.waiting === 0;
    expect(await eventually(settled)).toBe(true);
    const winner = str(a.state.data.get('vm', 'owner')!.value)!;
    expect(['a', 'b']).toContain(winner);
    const [values, , seq] = vmKeys(`t${prefix - 1}:`, 'vm');
    expect((await redis.client().hget(values, 'owner'))).toBe(winner);
    // Redis took two writes of the key: "nobody" and the winner's; the loser's was refused.
    expect(await redis.client().get(seq)).toBe('2');
    // The loser's guest holds a stale CAS: its next CAS write fails locally, and it reads the winner.
    const loser = winner === 'a' ? b : a;
    const stale = winner === 'a' ? casB : casA;
    expect(loser.state.data.set('vm', 'owner', text('again'), stale)).toBe(Status.CAS_MISMATCH);
  });

  it('folds the writes of one key made while one is in flight into one, its last value', async () => {
    const [a, b] = await fleet(2);
    b.state.data.get('vm', 'n');
    for (let i = 1; i <= 100; i++) a.state.data.set('vm', 'n', text(String(i)), 0);
    expect(await eventually(() => str(b.state.data.get('vm', 'n')?.value) === '100')).toBe(true);
    // The first went at once; the other 99 folded into one behind it.
    const [, , seq] = vmKeys(`t${prefix - 1}:`, 'vm');
    expect(await redis.client().get(seq)).toBe('2');
  });

  it('ends unconditional writes from both nodes with the last one Redis took, on both nodes', async () => {
    const [a, b] = await fleet(2);
    a.state.data.get('vm', 'x');
    b.state.data.get('vm', 'x');
    for (let i = 0; i < 50; i++) {
      a.state.data.set('vm', 'x', text(`a${i}`), 0);
      b.state.data.set('vm', 'x', text(`b${i}`), 0);
    }
    const [values] = vmKeys(`t${prefix - 1}:`, 'vm');
    const inRedis = async () => redis.client().hget(values, 'x');
    expect(await eventually(() => a.state.replication()!.waiting === 0 && b.state.replication()!.waiting === 0)).toBe(true);
    const last = await inRedis();
    expect(await eventually(() => str(a.state.data.get('vm', 'x')?.value) === last && str(b.state.data.get('vm', 'x')?.value) === last)).toBe(true);
  });

  it('sends a write again when Redis was too slow to answer it in time, on a connection that stayed up', async () => {
    const [a, b] = await fleet(2);
    b.state.data.get('vm', 'slow');
    // Redis holds every write command for 2.5 s: longer than a command's 2 s timeout.
    await redis.client().call('CLIENT', 'PAUSE', '2500', 'WRITE');
    a.state.data.set('vm', 'slow', text('late but there'), 0);
    expect(await eventually(() => str(b.state.data.get('vm', 'slow')?.value) === 'late but there', 8000)).toBe(true);
    expect(await eventually(() => a.state.replication()!.waiting === 0)).toBe(true);
    expect(a.state.replication()!.connected).toBe(true);
  }, 15_000);

  it('applies a write sent twice once: its copy, after another node\'s write, does not bring the old value back', async () => {
    const [b] = await fleet(1);
    b.state.data.get('vm', 'k'); // b follows the vm_id
    const on = `t${prefix - 1}:`;
    const keys = vmKeys(on, 'vm');
    const client = redis.client();
    client.defineCommand('edgeWrite', { numberOfKeys: 4, lua: WRITE_SCRIPT });
    // As RedisLink.write sends it: the node's id and its write number.
    const write = (node: string, number: number, value: string): Promise<unknown> =>
      (client as unknown as { edgeWrite(...args: string[]): Promise<unknown> }).edgeWrite(...keys, writerKey(on, 'vm', node), 'k', value, '', updateChannel(on), node, 'vm', String(number));
    expect(await write('a-1', 1, 'old')).toEqual([1, 1]);
    expect(await write('c-1', 1, 'new')).toEqual([1, 2]);
    // a's write 1 again, as a link sends it when the answer was lost: skipped, answered with what Redis holds.
    expect(await write('a-1', 1, 'old')).toEqual([0, 2, 'new']);
    expect(await client.hget(keys[0], 'k')).toBe('new');
    expect(await client.get(keys[2])).toBe('2');
    // a's next write goes through, and b ends with it.
    expect(await write('a-1', 2, 'newer')).toEqual([1, 3]);
    expect(await eventually(() => str(b.state.data.get('vm', 'k')?.value) === 'newer')).toBe(true);
  });

  it('remembers a node\'s last write number for a day after that write, so a stopped process leaves nothing behind', async () => {
    const [a] = await fleet(1);
    a.state.data.set('vm', 'k', text('v'), 0);
    expect(await eventually(() => a.state.replication()!.waiting === 0)).toBe(true);
    const client = redis.client();
    const writers = await client.keys(`t${prefix - 1}:*:writer:*`);
    expect(writers).toHaveLength(1);
    const ttl = await client.pttl(writers[0]);
    expect(ttl).toBeGreaterThan(WRITER_TTL_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(WRITER_TTL_MS);
    // A foreign value there reads as no write taken: the next write still goes through.
    await client.set(writers[0], 'not a number');
    a.state.data.set('vm', 'k', text('w'), 0);
    expect(await eventually(() => a.state.replication()!.waiting === 0)).toBe(true);
    expect(await client.get(writers[0])).toMatch(/^\d+$/);
    expect(a.warnings.join('\n')).not.toMatch(/attempt to compare/);
  });

  it('ignores a foreign value under its prefix and a foreign message on its channel, with a warning, and goes on', async () => {
    const [a, b] = await fleet(2);
    const p = `t${prefix - 1}:`;
    const [values] = vmKeys(p, 'vm');
    const client = redis.client();
    await client.set(values, 'not a hash');
    b.state.data.get('vm', 'k');
    a.state.data.set('vm', 'k', text('v'), 0);
    await client.publish(updateChannel(p), 'garbage');
    expect(await eventually(() => a.warnings.length > 0 && b.warnings.some((w) => w.includes('garbage')))).toBe(true);
    expect(a.warnings.join('\n')).toMatch(/WRONGTYPE/);
    // The node's own copy still has it; another vm_id still replicates.
    expect(str(a.state.data.get('vm', 'k')?.value)).toBe('v');
    b.state.data.get('vm2', 'k');
    a.state.data.set('vm2', 'k', text('w'), 0);
    expect(await eventually(() => str(b.state.data.get('vm2', 'k')?.value) === 'w')).toBe(true);
  });
});

describe('the redis shared-data backend through an outage', () => {
  let redis: RedisServer;
  afterAll(async () => {
    await redis?.stop();
  });

  it('writes locally while Redis is down, says so once, replays the writes in order when it is back, and the nodes converge', async () => {
    redis = await startRedis();
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: redis.url, prefix: 'o:' } }).sharedState;
    const changes: Array<[string, boolean]> = [];
    const a = createSharedState(options, 'a', { warn: () => undefined, connection: (c) => changes.push(['a', c]) });
    const b = createSharedState(options, 'b', { warn: () => undefined, connection: (c) => changes.push(['b', c]) });
    try {
      expect(await eventually(() => a.replication()!.connected && b.replication()!.connected)).toBe(true);
      b.data.get('vm', 'k');
      for (let i = 0; i < 5; i++) a.data.set('vm', 'k', text(`before-${i}`), 0);
      expect(await eventually(() => str(b.data.get('vm', 'k')?.value) === 'before-4')).toBe(true);

      await redis.kill();
      expect(await eventually(() => !a.replication()!.connected && !b.replication()!.connected)).toBe(true);
      for (let i = 0; i < 3; i++) {
        expect(a.data.set('vm', 'k', text(`during-${i}`), 0)).toBe(Status.OK);
        await new Promise((r) => setImmediate(r));
      }
      expect(str(a.data.get('vm', 'k')?.value)).toBe('during-2');
      // Nothing answers while Redis is away: each turn's write goes on to the link's bounded queue.
      expect(a.replication()!.waiting).toBe(3);

      // Back, empty (no persistence): a replays its writes in order and b reloads. Redis counts
      // from 1 again, so the last write has version 3, older than the 5 b saw before: b must
      // take Redis's word after a reconnect, not compare with versions of the Redis that died.
      await redis.restart();
      expect(await eventually(() => a.replication()!.connected && a.replication()!.waiting === 0, 8000)).toBe(true);
      expect(await eventually(() => str(b.data.get('vm', 'k')?.value) === 'during-2', 8000)).toBe(true);
      expect(await redis.client().hget('o:{766d}:values', 'k')).toBe('during-2');
      expect(a.replication()!.dropped).toBe(0);
      // Told once per change and node: up, down, up.
      expect(changes.filter(([n]) => n === 'a').map(([, c]) => c)).toEqual([true, false, true]);
      expect(changes.filter(([n]) => n === 'b').map(([, c]) => c)).toEqual([true, false, true]);
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);

  it('keeps at most MAX_UNANSWERED_WRITES writes waiting for an absent Redis, dropping the oldest and counting them', async () => {
    const { freePort } = await import('../helpers/redis-server.js');
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: `redis://127.0.0.1:${await freePort()}`, prefix: 'd:' } }).sharedState;
    const a = createSharedState(options, 'a');
    try {
      // A first write goes and is never answered; the next ones must not gather behind it
      // without a bound, but go on to the link, whose queue is bounded.
      a.data.set('vm', 'first', text('v'), 0);
      await new Promise((r) => setImmediate(r));
      for (let i = 0; i < MAX_UNANSWERED_WRITES + 5; i++) expect(a.data.set('vm', `k${i}`, text('v'), 0)).toBe(Status.OK);
      await new Promise((r) => setImmediate(r));
      expect(a.replication()).toEqual({ connected: false, waiting: MAX_UNANSWERED_WRITES, dropped: 6 });
      // The node's own copy keeps them all.
      expect(str(a.data.get('vm', 'k0')?.value)).toBe('v');
    } finally {
      await a.close();
    }
  });

  it('serves from its own copy when Redis is not there at start, and replicates once it comes', async () => {
    const { freePort } = await import('../helpers/redis-server.js');
    const port = await freePort();
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: `redis://127.0.0.1:${port}`, prefix: 's:' } }).sharedState;
    const changes: boolean[] = [];
    const a = createSharedState(options, 'a', { warn: () => undefined, connection: (c) => changes.push(c) });
    try {
      expect(a.data.set('vm', 'k', text('early'), 0)).toBe(Status.OK);
      expect(str(a.data.get('vm', 'k')?.value)).toBe('early');
      expect(await eventually(() => changes.length > 0)).toBe(true);
      expect(changes).toEqual([false]);
      await redis?.stop();
      redis = await startRedis([], port);
      expect(await eventually(() => a.replication()!.connected && a.replication()!.waiting === 0, 8000)).toBe(true);
      expect(await redis.client().hget('s:{766d}:values', 'k')).toBe('early');
    } finally {
      await a.close();
    }
  }, 30_000);
});

describe('the redis shared-data backend on a Redis Cluster of 3 masters', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('shares the data of vm_ids in different slots between two nodes, and resolves a CAS conflict in the slot of its vm_id', async () => {
    const options = configSchema.parse({ listeners: [{ name: 'l', port: 0 }], sharedState: { backend: 'redis', url: cluster.url, cluster: true, prefix: 'c:' } }).sharedState;
    const a = createSharedState(options, 'a');
    const b = createSharedState(options, 'b');
    try {
      expect(await eventually(() => a.replication()!.connected && b.replication()!.connected, 10_000)).toBe(true);
      // Twenty vm_ids: their hash tags spread over the three masters' slots.
      const vmIds = Array.from({ length: 20 }, (_, i) => `vm-${i}`);
      for (const vm of vmIds) b.data.get(vm, 'k');
      for (const vm of vmIds) a.data.set(vm, 'k', text(`v-${vm}`), 0);
      expect(await eventually(() => vmIds.every((vm) => str(b.data.get(vm, 'k')?.value) === `v-${vm}`), 10_000)).toBe(true);

      a.data.set('vm-0', 'owner', text('nobody'), 0);
      expect(await eventually(() => str(b.data.get('vm-0', 'owner')?.value) === 'nobody', 5000)).toBe(true);
      a.data.set('vm-0', 'owner', text('a'), a.data.get('vm-0', 'owner')!.cas);
      b.data.set('vm-0', 'owner', text('b'), b.data.get('vm-0', 'owner')!.cas);
      const agreed = () => a.replication()!.waiting === 0 && b.replication()!.waiting === 0
        && str(a.data.get('vm-0', 'owner')?.value) === str(b.data.get('vm-0', 'owner')?.value);
      expect(await eventually(agreed, 5000)).toBe(true);
      expect(['a', 'b']).toContain(str(a.data.get('vm-0', 'owner')!.value));
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);
});
