/**
 * The connections of the Redis backend (ioredis, loaded only when the backend is used): one for
 * writes and reads, one subscribed to the shared-data and shared-queue channels, and the commands
 * waiting for Redis.
 *
 * Writes never wait on the request path: `write` queues one and answers a promise. Every write
 * stays in `unanswered`, in the order the guests made them, until Redis answers it; what could not
 * be sent (Redis down, a connection lost with commands in flight) is sent again, in order, when the
 * connection is ready again. Each write carries the link's next write number, so a write sent
 * twice (its answer was lost with the connection, or it timed out) is applied once: Redis skips
 * a number it has taken from this node (redis-layout.ts, WRITE_SCRIPT). The queue is bounded
 * (MAX_UNANSWERED_WRITES, MAX_UNANSWERED_BYTES): over either, the oldest write not yet sent is
 * dropped, answered null and counted (`dropped`); its value stays in the node's own copy.
 *
 * Commands fail fast while Redis is away (no ioredis offline queue): the requests that made the
 * writes were answered long ago, and the replay above keeps the order ioredis's queue would lose
 * across a reconnect. A command that timed out on a connection still up is sent again after
 * RETRY_MS. The subscriber keeps ioredis's queue and subscribes itself on every connection.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { decodeUpdate, ENQUEUE_SCRIPT, queueChannel, updateChannel, vmKeys, WRITE_SCRIPT, writerKey, type Update } from './redis-layout.js';
import type { ReplicaLink, WriteAnswer } from './replica.js';

/** Writes waiting for Redis, at most (see the file header): a minute of 160 writes a second. */
export const MAX_UNANSWERED_WRITES = 10_000;
/** Bytes of keys and values waiting for Redis, at most. */
export const MAX_UNANSWERED_BYTES = 16 * 1024 * 1024;
/** How long a command may wait for Redis's answer before it is given up (and sent again). */
const COMMAND_TIMEOUT_MS = 2000;
/** How long a command given up on a connection still up waits before it is sent again. */
const RETRY_MS = 100;

export interface RedisLinkOptions {
  readonly url: string;
  /** Treat `url` as one node of a Redis Cluster. */
  readonly cluster?: boolean;
  readonly prefix: string;
  /** This node's id in the versions Redis keeps (who wrote last). */
  readonly node: string;
}

/** What the link tells its owner. */
export interface LinkEvents {
  /** A write published by any node (this one's too). */
  update(update: Update): void;
  /** A message on the channel that is not a write: logged by the owner, ignored. */
  foreign(message: Buffer): void;
  /** A message on the queue channel (redis-queues.ts). */
  queue(message: Buffer): void;
  /** Connected (again): the owner reloads what it holds. */
  ready(): void;
  /** The connection state changed (true: ready); called once per change. */
  state(connected: boolean, reason?: string): void;
}

/** A command waiting for Redis, in order (a shared-data write, a queue's enqueue or ack). */
interface Pending {
  /** Bytes it holds, against MAX_UNANSWERED_BYTES. */
  readonly bytes: number;
  /** What it is, for a log line when Redis refuses it. */
  readonly what: string;
  sent: boolean;
  readonly run: (client: Client) => Promise<unknown>;
  readonly answer: (reply: unknown) => void;
}

export type Client = Redis | Cluster;
type Reply = [number, number, Buffer?];

export class RedisLink implements ReplicaLink {
  /** Writes dropped from a full queue while Redis was away. */
  dropped = 0;
  connected = false;
  // Set once ioredis is loaded (open): until then the link is away, as in an outage.
  private client: Client | null = null;
  private subscriber: Client | null = null;
  private readonly channel: string;
  private readonly unanswered: Pending[] = [];
  /** Number of the last write queued: Redis takes each number of this node once. */
  private writes = 0;
  private unansweredBytes = 0;
  private closed = false;
  private clientUp = false;
  private subscribed = false;
  /** The state last told to the owner (null: none yet). */
  private reported: boolean | null = null;

  constructor(private readonly options: RedisLinkOptions, private readonly events: LinkEvents) {
    this.channel = updateChannel(options.prefix);
    void this.open();
  }

  /**
   * Loads ioredis and connects. NB: loaded here, not at the top of the file: ioredis costs a
   * gateway ~14 MB of RSS, and most gateways run the memory backend.
   */
  private async open(): Promise<void> {
    const ioredis: IoRedis = await import('ioredis');
    if (this.closed) return;
    const { options } = this;
    const common: RedisOptions = {
      enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    };
    const client = this.client = connect(ioredis, options, common);
    // The subscriber subscribes itself on every connection and says when it is subscribed, so
    // that a reload after it misses no write (replicated-data.ts: ready → reload).
    const subscriber = this.subscriber = connect(ioredis, options, { ...common, enableOfflineQueue: true, commandTimeout: undefined, autoResubscribe: false });
    client.defineCommand('edgeWrite', { numberOfKeys: 4, lua: WRITE_SCRIPT });
    client.defineCommand('edgeEnqueue', { numberOfKeys: 1, lua: ENQUEUE_SCRIPT });
    client.on('ready', () => {
      this.clientUp = true;
      for (const w of this.unanswered) if (!w.sent) this.send(w);
      this.settle();
    });
    client.on('close', () => this.lost('connection closed'));
    // ioredis reports every failed attempt; the state change is told once (report).
    client.on('error', (err: Error) => this.report(false, err.message));
    subscriber.on('error', () => undefined);
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel, queueChannel(options.prefix)).then(() => {
        this.subscribed = true;
        this.settle();
      }, () => undefined); // the connection went again: the next ready subscribes
    });
    subscriber.on('close', () => {
      this.subscribed = false;
      this.lost('subscriber connection closed');
    });
    const dataChannel = Buffer.from(this.channel);
    // This node's own writes come back too: its answers already said what became of them.
    const own = Buffer.from(`${options.node} `);
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (!channel.equals(dataChannel)) {
        this.events.queue(message);
        return;
      }
      if (message.length >= own.length && own.equals(message.subarray(0, own.length))) return;
      const update = decodeUpdate(message);
      if (update === null) this.events.foreign(message);
      else this.events.update(update);
    });
  }

  get node(): string {
    return this.options.node;
  }

  get prefix(): string {
    return this.options.prefix;
  }

  /** Writes waiting for Redis now. */
  get waiting(): number {
    return this.unanswered.length;
  }

  /** Queues a write (see the file header); resolves with Redis's answer, or null when it was dropped. */
  write(vmId: string, key: string, value: Uint8Array, base: string): Promise<WriteAnswer | null> {
    const number = String(++this.writes);
    const run = (client: Client) => (client as unknown as { edgeWriteBuffer(...args: unknown[]): Promise<Reply> }).edgeWriteBuffer(
      ...vmKeys(this.options.prefix, vmId), writerKey(this.options.prefix, vmId, this.options.node), Buffer.from(key, 'latin1'), Buffer.from(value.buffer, value.byteOffset, value.length),
      base, this.channel, this.options.node, Buffer.from(vmId, 'latin1'), number);
    return this.ordered(key.length + value.length, `write of ${JSON.stringify(key)} in vm_id ${JSON.stringify(vmId)}`, run)
      .then((reply) => (reply === null ? null : Number(reply[0]) === 1 ? { accepted: true, version: Number(reply[1]) }
        : { accepted: false, version: Number(reply[1]), value: new Uint8Array(reply[2] ?? Buffer.alloc(0)) }));
  }

  /**
   * Queues a command in order with the writes (see the file header): sent now when Redis is there,
   * else when it is back. Resolves with its reply, or null when it was dropped or Redis refused it.
   */
  ordered<T>(bytes: number, what: string, run: (client: Client) => Promise<T>): Promise<T | null> {
    return new Promise((answer) => {
      const pending: Pending = { bytes, what, sent: false, run, answer: answer as (reply: unknown) => void };
      this.unanswered.push(pending);
      this.unansweredBytes += bytes;
      this.trim();
      if (this.clientUp) this.send(pending);
    });
  }

  /** Runs a read now; rejects while Redis is away (the caller reads again on the next ready). */
  now<T>(run: (client: Client) => Promise<T>): Promise<T> {
    return this.client === null ? Promise.reject(new Error('Redis is not connected yet')) : run(this.client);
  }

  /** The vm_id's entries as Redis holds them: key → [version text, value]. */
  async load(vmId: string): Promise<Map<string, [string, Uint8Array]>> {
    const [values, versions] = vmKeys(this.options.prefix, vmId);
    const [v, n] = await this.now((c) => Promise.all([
      c.callBuffer('HGETALL', values) as Promise<Buffer[]>,
      c.callBuffer('HGETALL', versions) as Promise<Buffer[]>,
    ]));
    const byKey = new Map<string, Buffer>();
    for (let i = 0; i + 1 < v.length; i += 2) byKey.set(v[i].toString('latin1'), v[i + 1]);
    const out = new Map<string, [string, Uint8Array]>();
    for (let i = 0; i + 1 < n.length; i += 2) {
      const key = n[i].toString('latin1');
      const value = byKey.get(key);
      if (value !== undefined) out.set(key, [n[i + 1].toString('latin1'), value]);
    }
    return out;
  }

  /** Ends both connections at once (no QUIT: it would wait for a Redis that may be away); waiting writes are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.unanswered.splice(0)) w.answer(null);
    this.unansweredBytes = 0;
    this.client?.disconnect();
    this.subscriber?.disconnect();
  }

  private send(pending: Pending): void {
    pending.sent = true;
    pending.run(this.client!).then((reply) => {
      if (this.forget(pending)) pending.answer(reply);
    }, (err: Error) => this.failed(pending, err));
  }

  /**
   * A command Redis refused for its content (a foreign value under our prefix: WRONGTYPE) is
   * dropped; one lost with the connection waits to be sent again.
   */
  private failed(pending: Pending, err: Error): void {
    if (this.closed) return;
    if (err.name === 'ReplyError') {
      if (this.forget(pending)) pending.answer(null);
      this.dropped++;
      this.events.foreign(Buffer.from(`${pending.what}: ${err.message}`));
      return;
    }
    pending.sent = false;
    // Lost with the connection: the next ready sends it. Timed out on a connection still up (a
    // slow Redis): nothing else would, so it goes again shortly. The first copy may still be on
    // its way, ahead of later writes; its number keeps the copy that comes second from applying.
    if (this.clientUp) {
      setTimeout(() => {
        if (!pending.sent && this.clientUp && !this.closed && this.unanswered.includes(pending)) this.send(pending);
      }, RETRY_MS).unref();
    }
  }

  private forget(pending: Pending): boolean {
    const at = this.unanswered.indexOf(pending);
    if (at < 0) return false;
    this.unanswered.splice(at, 1);
    this.unansweredBytes -= pending.bytes;
    return true;
  }

  /** Drops the oldest unsent writes while the queue is over its bounds. */
  private trim(): void {
    while (this.unanswered.length > MAX_UNANSWERED_WRITES || this.unansweredBytes > MAX_UNANSWERED_BYTES) {
      const at = this.unanswered.findIndex((w) => !w.sent);
      if (at < 0) return;
      const [w] = this.unanswered.splice(at, 1);
      this.unansweredBytes -= w.bytes;
      this.dropped++;
      w.answer(null);
    }
  }

  /** Both connections are up (again): the owner reloads what it holds. */
  private settle(): void {
    if (this.closed || !this.clientUp || !this.subscribed || this.connected) return;
    this.connected = true;
    this.report(true);
    this.events.ready();
  }

  private lost(reason: string): void {
    if (this.closed) return;
    if (reason === 'connection closed') {
      this.clientUp = false;
      for (const w of this.unanswered) w.sent = false;
    }
    this.connected = false;
    this.report(false, reason);
  }

  private report(connected: boolean, reason?: string): void {
    if (this.closed || this.reported === connected) return;
    this.reported = connected;
    this.events.state(connected, reason);
  }
}

/** The two classes of ioredis, loaded lazily (RedisLink.open). */
interface IoRedis { Redis: typeof Redis; Cluster: typeof Cluster }

function connect(ioredis: IoRedis, options: RedisLinkOptions, common: RedisOptions): Client {
  if (options.cluster !== true) return new ioredis.Redis(options.url, common);
  const url = new URL(options.url);
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue: common.enableOfflineQueue,
    clusterRetryStrategy: common.retryStrategy,
    redisOptions: {
      commandTimeout: common.commandTimeout, maxRetriesPerRequest: common.maxRetriesPerRequest,
      username: url.username || undefined, password: url.password || undefined,
      tls: url.protocol === 'rediss:' ? {} : undefined,
    },
  };
  return new ioredis.Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], clusterOptions);
}
