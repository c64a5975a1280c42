/**
 * Shared queues across edge nodes through Redis Streams, behind the synchronous ABI.
 *
 * Guarantees:
 * - **Any node resolves and enqueues** to a queue registered on any node: registrations are kept
 *   in a Redis set and announced, so each node knows them all (loaded when it connects). A node
 *   that has not heard of a queue yet answers NOT_FOUND to resolve, as for an unknown queue.
 * - **Enqueue** answers OK at once; the item goes to the queue's stream (XADD) in order with the
 *   node's other writes, and waits with them while Redis is away (redis-link.ts).
 * - **Delivery is at least once, to the nodes that registered the queue**: each registering node
 *   reads the stream as a consumer of the group `edge`, named by its node id, so two nodes
 *   registering one queue share its items. Items it read wait in the node, and its root gets
 *   `on_queue_ready` for each; an item is acknowledged (XACK) when the guest dequeues it. An item
 *   read but not dequeued when the node dies stays pending in Redis under the node's id and is
 *   delivered again when a node with that id registers the queue again (it reads its pending items
 *   first); an ack lost with the connection delivers the item again too. Items another consumer
 *   left pending longer than `queueClaimIdleMs` (a node that never came back) are claimed by a
 *   registering node (XAUTOCLAIM) and delivered there.
 * - **Bounds**: a node holds at most FETCH_BATCH items of a queue not yet dequeued (it reads more
 *   when the guest dequeued them); a stream keeps about MAX_STREAM_ITEMS items, the oldest trimmed.
 * Names and vm_ids are byte-exact (hex in the keys), items binary.
 */
import { Status } from '../abi/enums.js';
import type { QueueListener, QueueRegistration, SharedQueueStore } from '../abi/ports.js';
import { Fifo } from './fifo.js';
import type { SharedQueueStats } from './memory.js';
import { hex, queueChannel, queueRegistry, queueStream } from './redis-layout.js';
import type { Client, RedisLink } from './redis-link.js';

/** Items a node reads from a stream at once, and holds undequeued at most. */
export const FETCH_BATCH = 64;
/** About how many items a queue's stream keeps (XADD MAXLEN ~): Redis's memory bound per queue. */
export const MAX_STREAM_ITEMS = 100_000;
const GROUP = 'edge';

interface Item {
  readonly id: string;
  readonly data: Uint8Array;
}

interface Queue {
  readonly id: number;
  readonly vmId: string;
  readonly name: string;
  readonly stream: string;
  /** "<vm_id hex> <name hex>": its registry member and announcements. */
  readonly member: string;
  listener: QueueListener | null;
  /** Items read from the stream, not yet dequeued, their stream ids and their bytes. */
  items: Fifo<Item>;
  held: Set<string>;
  bytes: number;
  /** Where the next read starts: "0" (this node's pending items first), then ">" (new ones). */
  from: string;
  reading: boolean;
  /** An item was announced while a read ran: read again after it. */
  again: boolean;
}

type StreamReply = Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;

export class RedisSharedQueues implements SharedQueueStore {
  private readonly byId = new Map<number, Queue>();
  /** By "<vm_id hex> <name hex>", the form the channel announces them in. */
  private readonly byMember = new Map<string, Queue>();
  /** Every registered queue anywhere, as "<vm_id hex> <name hex>". */
  private readonly known = new Set<string>();
  private nextId = 1;
  /** Enqueues dropped (the link's queue full, or Redis refused them), by vm_id. */
  private readonly dropped = new Map<string, number>();
  private readonly channel: string;

  private readonly claims: NodeJS.Timeout;

  /**
   * `consumer`: this node's stable id (node.id), so that a restarted node finds its pending items.
   * `claimIdleMs`: pending items of another consumer idle this long are claimed (XAUTOCLAIM) when
   * this node reads its pending items, and every half of it: a node that never comes back does
   * not keep its items for ever.
   */
  constructor(private readonly link: RedisLink, private readonly consumer: string, private readonly warn: (message: string) => void,
    private readonly claimIdleMs: number) {
    this.channel = queueChannel(link.prefix);
    this.claims = setInterval(() => {
      for (const queue of this.byId.values()) {
        if (queue.listener === null) continue;
        queue.from = '0';
        this.read(queue);
      }
    }, Math.max(50, claimIdleMs / 2));
    this.claims.unref();
  }

  register(vmId: string, name: string, listener: QueueListener): QueueRegistration {
    const queue = this.queue(vmId, name);
    const first = queue.listener === null;
    queue.listener = listener;
    this.known.add(queue.member);
    if (first) this.announce(queue);
    return {
      id: queue.id,
      unsubscribe: () => { if (queue.listener === listener) queue.listener = null; },
    };
  }

  /**
   * Makes the queue's stream and group (from the start of the stream: items enqueued before any
   * consumer are kept for it), lists it in the registry and tells the other nodes; then reads.
   */
  private announce(queue: Queue): void {
    const { member } = queue;
    void this.link.ordered(member.length, `registration of queue ${JSON.stringify(queue.name)}`, async (c: Client) => {
      await c.xgroup('CREATE', queue.stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
        if (!/BUSYGROUP/.test(err.message)) throw err;
      });
      await c.sadd(queueRegistry(this.link.prefix), member);
      await c.publish(this.channel, `R ${member}`);
      return 1;
    }).then(() => this.read(queue));
  }

  resolve(vmId: string, name: string): number | undefined {
    const member = `${hex(vmId)} ${hex(name)}`;
    return this.byMember.get(member)?.id ?? (this.known.has(member) ? this.queue(vmId, name).id : undefined);
  }

  enqueue(queueId: number, data: Uint8Array): typeof Status.OK | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    const item = Buffer.from(data);
    void this.link.ordered(item.length, `enqueue to queue ${JSON.stringify(queue.name)}`, (c: Client) =>
      (c as unknown as { edgeEnqueue(...args: unknown[]): Promise<number> }).edgeEnqueue(
        queue.stream, item, this.channel, MAX_STREAM_ITEMS, `I ${queue.member}`))
      .then((reply) => { if (reply === null) this.dropped.set(queue.vmId, (this.dropped.get(queue.vmId) ?? 0) + 1); });
    return Status.OK;
  }

  dequeue(queueId: number): Uint8Array | typeof Status.EMPTY | typeof Status.NOT_FOUND {
    const queue = this.byId.get(queueId);
    if (queue === undefined) return Status.NOT_FOUND;
    const item = queue.items.shift();
    if (item === undefined) return Status.EMPTY;
    queue.bytes -= item.data.length;
    queue.held.delete(item.id);
    void this.link.ordered(item.id.length, `ack on queue ${JSON.stringify(queue.name)}`, (c: Client) => c.xack(queue.stream, GROUP, item.id));
    if (queue.items.length === 0) this.read(queue);
    return item.data;
  }

  /** A message on the queue channel: a registration to learn, or an item to read. */
  message(message: Buffer): void {
    const text = message.toString('latin1');
    const match = /^([RI]) ([0-9a-f]*) ([0-9a-f]*)$/.exec(text);
    if (match === null) {
      this.warn(`ignored on the shared-queue channel: ${text.slice(0, 120)}`);
      return;
    }
    const member = `${match[2]} ${match[3]}`;
    this.known.add(member);
    if (match[1] === 'I') {
      const queue = this.byMember.get(member);
      if (queue !== undefined && queue.listener !== null) this.read(queue);
    }
  }

  /**
   * Connected (again): the registry is loaded, and every queue registered here is registered again
   * (a Redis that restarted empty lost its streams) and read from its pending items on: what it
   * held undequeued is still pending in Redis and comes again.
   */
  reload(): void {
    void this.link.now((c) => c.smembers(queueRegistry(this.link.prefix))).then((members) => {
      for (const m of members) if (/^[0-9a-f]* [0-9a-f]*$/.test(m)) this.known.add(m);
    }, (err: Error) => this.warn(`loading the shared-queue registry failed: ${err.message}`));
    for (const queue of this.byId.values()) {
      if (queue.listener === null) continue;
      queue.items = new Fifo();
      queue.held.clear();
      queue.bytes = 0;
      queue.from = '0';
      this.announce(queue);
    }
  }

  stats(): SharedQueueStats[] {
    const byVm = new Map<string, SharedQueueStats>();
    for (const q of this.byId.values()) {
      const s = byVm.get(q.vmId) ?? { vmId: q.vmId, bytes: 0, items: 0, dropped: 0 };
      byVm.set(q.vmId, { ...s, bytes: s.bytes + q.bytes, items: s.items + q.items.length });
    }
    return [...byVm.values()].map((s) => ({ ...s, dropped: this.dropped.get(s.vmId) ?? 0 }));
  }

  clear(): void {
    clearInterval(this.claims);
    this.byId.clear();
    this.byMember.clear();
    this.known.clear();
  }

  private queue(vmId: string, name: string): Queue {
    const member = `${hex(vmId)} ${hex(name)}`;
    let queue = this.byMember.get(member);
    if (queue === undefined) {
      queue = {
        id: this.nextId++, vmId, name, stream: queueStream(this.link.prefix, vmId, name), member,
        listener: null, items: new Fifo(), held: new Set(), bytes: 0, from: '0', reading: false, again: false,
      };
      this.byId.set(queue.id, queue);
      this.byMember.set(queue.member, queue);
    }
    return queue;
  }

  /** Reads the next items of a queue registered here, while it holds fewer than FETCH_BATCH. */
  private read(queue: Queue): void {
    if (queue.reading) {
      queue.again = true;
      return;
    }
    if (queue.listener === null || queue.items.length >= FETCH_BATCH || !this.link.connected) return;
    queue.reading = true;
    queue.again = false;
    const from = queue.from;
    this.link.now(async (c) => {
      // Reading its own pending items, the node first takes over those another consumer left idle.
      if (from === '0') await c.xautoclaim(queue.stream, GROUP, this.consumer, this.claimIdleMs, '0-0', 'COUNT', FETCH_BATCH, 'JUSTID');
      return c.xreadgroupBuffer('GROUP', GROUP, this.consumer, 'COUNT', FETCH_BATCH - queue.items.length,
        'STREAMS', queue.stream, from) as Promise<StreamReply>;
    }).then((reply) => {
      queue.reading = false;
      const entries = reply?.[0]?.[1] ?? [];
      // This node's pending items are all read once a read from "0" comes back short.
      if (from === '0' && entries.length < FETCH_BATCH) queue.from = '>';
      for (const [id, fields] of entries) {
        const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString('latin1') === 'd');
        if (at < 0) continue; // an entry trimmed meanwhile, or not ours
        const sid = id.toString('latin1');
        if (queue.held.has(sid)) continue; // pending under this node and already held here
        queue.held.add(sid);
        const data = new Uint8Array(fields[at + 1]);
        queue.items.push({ id: sid, data });
        queue.bytes += data.length;
        queue.listener?.(queue.id);
      }
      if (queue.again || (from === '0' && queue.from === '>') || (from === '>' && entries.length > 0)) this.read(queue);
    }, (err: Error) => {
      queue.reading = false;
      // Redis went away (the next ready reads again), or refused the stream (a foreign key).
      if (err.name === 'ReplyError') this.warn(`reading queue ${JSON.stringify(queue.name)} failed: ${err.message}`);
    });
  }
}
