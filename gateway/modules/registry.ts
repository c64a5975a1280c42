/**
 * The fleet module registry: module bytes in Redis under their SHA-256, and tags naming one of them.
 * `edge-gateway push FILE --tag auth:stable` moves a tag; each node whose plugin says `module: {
 * redis: "auth:stable" }` hears of it within a second (watch) and loads the new bytes (resolve).
 *
 * Redis layout (`<prefix>` is RegistryOptions.prefix, e.g. `edge:`):
 * - `<prefix>module:<sha256>`     the module bytes (SET, binary), immutable: the key is their digest.
 * - `<prefix>module:<sha256>:sig` the detached signature text (base64 ed25519), only when pushed with one.
 * - `<prefix>tag:<ref>`           the lower-case hex sha256 the tag `name:channel` names now.
 * - channel `<prefix>modules`     a message `<ref> <sha256>` each time a tag moves.
 * A push writes bytes and signature first, then the tag, then publishes, so a node that sees a tag
 * always finds its bytes. Every command is single-key, so a Redis Cluster needs no hash tags.
 *
 * Cache directory (what a node that starts while Redis is down runs, and says so: `from: 'cache'`):
 * `<sha256>.wasm`, `<sha256>.sig`, `tags/<name>@<channel>` (the sha256), each written to a temp
 * name then renamed, bytes before tag. Bytes read from Redis or the cache are checked against their
 * sha256 (GW_ERR_MODULE_SHA256): both are shared, and the digest is the module's identity.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { GatewayError } from '../errors.js';
import { sha256Hex } from './sha256.js';

export interface RegistryOptions {
  /** `redis://` or `rediss://` URL; named in messages without its password. */
  readonly url: string;
  /** Prefix of every key and of the channel, e.g. `edge:`, so one Redis can hold several fleets. */
  readonly prefix: string;
  /** `url` is one node of a Redis Cluster (every command is single-key, so slots do not matter). */
  readonly cluster?: boolean;
  /** Local cache directory, created when missing: what resolve() answers while Redis is down. */
  readonly cacheDir: string;
  /** How long a command waits for a connection before Redis counts as unreachable. Default 1000. */
  readonly connectTimeoutMs?: number;
}

/** A module as the registry holds it. */
export interface RegistryModule {
  /** The ref it was resolved by (a tag or a sha256), as given. */
  readonly ref: string;
  /** Lower-case hex SHA-256 of `bytes`, checked. */
  readonly sha256: string;
  readonly bytes: Uint8Array;
  /** The detached signature pushed with the bytes (base64 ed25519), or null; verifying it is the caller's. */
  readonly signature: string | null;
  /** 'redis' when read from Redis now, 'cache' when Redis was unreachable and the cache answered. */
  readonly from: 'redis' | 'cache';
}

const TAG = /^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
/** A command's answer may carry a module of megabytes: wait longer for it than for a connection. */
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * Splits a ref into a tag (`name:channel`) or a sha256 (64 hex digits, returned lower case).
 * Throws GW_ERR_MODULE_REGISTRY naming the ref and what is wrong with it.
 */
export function parseRegistryRef(ref: string): { tag: string | null; sha256: string | null } {
  if (TAG.test(ref)) return { tag: ref, sha256: null };
  if (SHA256.test(ref)) return { tag: null, sha256: ref.toLowerCase() };
  const why = /^[0-9a-fA-F]+$/.test(ref) ? `looks like a sha256 but has ${ref.length} hex digits, not 64`
    : 'is neither a tag name:channel (each part of letters, digits, "_", "." and "-") nor a sha256 (64 hex digits)';
  throw registryError(`module registry ref ${JSON.stringify(ref)} ${why}`);
}

type Client = Redis | Cluster;

/** One watch() call: its tags, and the sha256 it last reported (or started from) for each. */
type Watcher = { readonly refs: ReadonlySet<string>; readonly onMove: (ref: string, sha256: string) => void; readonly last: Map<string, string> };

export class ModuleRegistry {
  private client: Promise<Client> | null = null;
  private subscriber: Promise<Client> | null = null;
  private closed = false;
  private lastError = 'no connection yet';
  /** ref → the sha256 the latest resolve() answered: the baseline of a later watch(). */
  private readonly resolved = new Map<string, string>();
  private readonly watchers = new Set<Watcher>();
  /** ref → the tick of the last message about it; ticks order messages and polls. */
  private readonly heard = new Map<string, number>();
  private tick = 0;

  private constructor(private readonly options: Required<RegistryOptions>, private readonly where: string) {}

  /** Validates the options (GW_ERR_MODULE_REGISTRY); connects on first use, not here. */
  static open(options: RegistryOptions): ModuleRegistry {
    if (!URL.canParse(options.url)) throw registryError('module registry url is not a URL');
    const url = new URL(options.url);
    if (url.password !== '') url.password = '***';
    const where = url.toString();
    const timeout = options.connectTimeoutMs ?? 1000;
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw registryError(`module registry url ${where} is not redis:// or rediss://`);
    if (typeof options.cacheDir !== 'string' || options.cacheDir === '') throw registryError('module registry cacheDir must be a directory path');
    if (!Number.isSafeInteger(timeout) || timeout <= 0) throw registryError(`module registry connectTimeoutMs must be a positive integer, got ${String(timeout)}`);
    return new ModuleRegistry(Object.freeze({ ...options, cluster: options.cluster === true, connectTimeoutMs: timeout }), where);
  }

  /** Stores bytes (and signature) under their sha256, then, when tag is given, moves the tag and publishes. Returns the sha256. */
  async push(bytes: Uint8Array, tag: string | null, signature: string | null): Promise<string> {
    if (tag !== null && parseRegistryRef(tag).tag === null) throw registryError(`module registry tag ${JSON.stringify(tag)} must be name:channel, not a sha256`);
    const [sha256, prefix] = [sha256Hex(bytes), this.options.prefix];
    try {
      const client = await this.ready();
      await client.set(`${prefix}module:${sha256}`, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (signature !== null) await client.set(`${prefix}module:${sha256}:sig`, signature);
      if (tag !== null) {
        await client.set(`${prefix}tag:${tag}`, sha256);
        await client.publish(`${prefix}modules`, `${tag} ${sha256}`);
      }
    } catch (err) {
      throw registryError(`cannot push module ${sha256} to Redis ${this.where}: ${reason(err)}`, err);
    }
    return sha256;
  }

  /**
   * The module a ref names now: from Redis (then written to the cache dir), or, only when Redis is
   * unreachable, from the cache dir (`from: 'cache'`): an answer of Redis is final. Unknown tag,
   * missing bytes, nothing cached → GW_ERR_MODULE_REGISTRY naming the ref and the Redis url (never
   * the password); bytes not matching their sha256 → GW_ERR_MODULE_SHA256.
   */
  async resolve(ref: string): Promise<RegistryModule> {
    const { tag, sha256 } = parseRegistryRef(ref);
    const { prefix, cacheDir } = this.options;
    let found: RegistryModule;
    try {
      const client = await this.ready();
      found = await lookup(ref, tag, sha256, 'redis', {
        name: `Redis ${this.where}`, lead: '',
        tag: (t) => client.get(`${prefix}tag:${t}`).catch(replyError(ref)),
        module: (sha) => Promise.all([client.getBuffer(`${prefix}module:${sha}`), client.get(`${prefix}module:${sha}:sig`)]).catch(replyError(ref)),
      });
      await this.cache(found, tag).catch((err: unknown) => {
        throw registryError(`cannot write module ${ref} to the cache directory ${cacheDir}: ${reason(err)}`, err);
      });
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      found = await lookup(ref, tag, sha256, 'cache', {
        name: `the cache directory ${cacheDir}`, lead: `Redis ${this.where} is unreachable (${reason(err)}) and `,
        tag: async (t) => (await readCached(`${cacheDir}/tags/${tagFile(t)}`))?.toString('latin1').trim() ?? null,
        module: (sha) => Promise.all([readCached(`${cacheDir}/${sha}.wasm`), readCached(`${cacheDir}/${sha}.sig`).then((sig) => sig?.toString('utf8') ?? null)]),
      });
    }
    this.resolved.set(ref, found.sha256);
    for (const w of this.watchers) if (w.refs.has(ref) && !w.last.has(ref)) w.last.set(ref, found.sha256);
    return found;
  }

  /**
   * Calls onMove(ref, sha256) when a watched tag moves: through the channel, and a poll every pollMs
   * (timer unref'd) that catches messages missed while disconnected. Once per distinct sha per ref:
   * never for the sha last reported, nor for the sha resolve() returned (before the watch, or first
   * after it). A sha256 ref never moves; a malformed one throws. Returns what stops this watch.
   */
  watch(refs: readonly string[], onMove: (ref: string, sha256: string) => void, pollMs = 1000): () => void {
    const tags = new Set(refs.filter((ref) => parseRegistryRef(ref).tag !== null));
    if (tags.size === 0 || this.closed) return () => undefined;
    const watcher: Watcher = { refs: tags, onMove, last: new Map([...tags].flatMap((ref) => (this.resolved.has(ref) ? [[ref, this.resolved.get(ref)!]] : []))) };
    this.watchers.add(watcher);
    this.subscriber ??= this.connect(true).then((sub) => {
      sub.on('message', (_channel: string, message: string) => this.heardOf(message));
      sub.subscribe(`${this.options.prefix}modules`).catch(() => undefined); // ioredis resubscribes on reconnect
      return sub;
    });
    this.subscriber.catch(() => undefined);
    let polling: Promise<void> | null = null; // one poll at a time: a slow Redis does not pile them up
    const timer = setInterval(() => { polling ??= this.poll(watcher).finally(() => { polling = null; }); }, pollMs).unref();
    return () => { clearInterval(timer); this.watchers.delete(watcher); };
  }

  /** Closes both connections at once (no QUIT: Redis may be away) and stops every watch; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    for (const c of await Promise.allSettled([this.client, this.subscriber])) if (c.status === 'fulfilled') c.value?.disconnect();
  }

  /** Bytes and signature first, then the tag: a cached tag always finds its bytes. */
  private async cache(found: RegistryModule, tag: string | null): Promise<void> {
    const dir = this.options.cacheDir;
    await mkdir(`${dir}/tags`, { recursive: true });
    await atomicWrite(`${dir}/${found.sha256}.wasm`, found.bytes);
    if (found.signature !== null) await atomicWrite(`${dir}/${found.sha256}.sig`, found.signature);
    if (tag !== null) await atomicWrite(`${dir}/tags/${tagFile(tag)}`, found.sha256);
  }

  /** Reads every tag of a watcher; a missed message shows up here within pollMs. */
  private async poll(watcher: Watcher): Promise<void> {
    const started = ++this.tick;
    const client = await this.ready().catch(() => null);
    if (client === null) return; // Redis is away: the next poll asks again
    await Promise.all([...watcher.refs].map(async (ref) => {
      const sha256 = await client.get(`${this.options.prefix}tag:${ref}`).catch(() => null);
      // NB: a message heard while this GET was in flight is newer than its answer: do not go back.
      if (sha256 !== null && SHA256.test(sha256) && (this.heard.get(ref) ?? 0) < started) this.moved(watcher, ref, sha256.toLowerCase());
    }));
  }

  /** A message on the channel: `<ref> <sha256>`; anything else is not ours and is ignored. */
  private heardOf(message: string): void {
    const [ref, sha256, extra] = message.split(' ');
    if (extra !== undefined || sha256 === undefined || !TAG.test(ref) || !SHA256.test(sha256)) return;
    this.heard.set(ref, ++this.tick);
    for (const w of this.watchers) if (w.refs.has(ref)) this.moved(w, ref, sha256.toLowerCase());
  }

  private moved(watcher: Watcher, ref: string, sha256: string): void {
    if (watcher.last.get(ref) === sha256 || !this.watchers.has(watcher)) return;
    watcher.last.set(ref, sha256);
    // NB: not inside ioredis's event handler nor the poll's promise: a throwing onMove is the caller's uncaught exception.
    queueMicrotask(() => { if (this.watchers.has(watcher)) watcher.onMove(ref, sha256); });
  }

  /** The command connection once it is ready; rejects after connectTimeoutMs (Redis unreachable). */
  private async ready(): Promise<Client> {
    if (this.closed) throw registryError(`the module registry of Redis ${this.where} is closed`);
    const client = await (this.client ??= this.connect(false));
    if (client.status === 'ready') return client;
    return new Promise((resolve, reject) => {
      const onReady = (): void => { clearTimeout(timer); resolve(client); };
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new Error(`no connection after ${this.options.connectTimeoutMs} ms: ${this.lastError}`));
      }, this.options.connectTimeoutMs);
      client.once('ready', onReady);
    });
  }

  /**
   * Loads ioredis and connects. NB: loaded here, not at the top of the file: ioredis costs a
   * gateway ~14 MB of RSS, and most gateways load modules from files. Commands fail fast while
   * Redis is away (no offline queue): the cache answers instead. The subscriber keeps the queue,
   * so its SUBSCRIBE waits for Redis, and ioredis subscribes it again on every reconnect.
   */
  private async connect(subscriber: boolean): Promise<Client> {
    const ioredis = await import('ioredis');
    const { url, cluster, connectTimeoutMs } = this.options;
    const common: RedisOptions = {
      enableOfflineQueue: subscriber, maxRetriesPerRequest: subscriber ? null : 0, connectTimeout: connectTimeoutMs,
      commandTimeout: subscriber ? undefined : COMMAND_TIMEOUT_MS, retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    };
    const u = new URL(url);
    const client: Client = !cluster ? new ioredis.Redis(url, common) : new ioredis.Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
      enableOfflineQueue: subscriber, clusterRetryStrategy: common.retryStrategy,
      redisOptions: { ...common, username: u.username || undefined, password: u.password || undefined, tls: u.protocol === 'rediss:' ? {} : undefined },
    });
    client.on('error', (err: Error) => { this.lastError = err.message; });
    if (this.closed) client.disconnect();
    return client;
  }
}

/** Where resolve() reads a tag and a module: Redis, or the cache directory. */
interface Place {
  readonly name: string; // what messages call it
  readonly lead: string; // what they say before it: why the cache is asked
  tag(tag: string): Promise<string | null>;
  module(sha256: string): Promise<[Uint8Array | null, string | null]>;
}

/** What `ref` names in `place`, its bytes checked against their sha256. */
async function lookup(ref: string, tag: string | null, pinned: string | null, from: 'redis' | 'cache', place: Place): Promise<RegistryModule> {
  const named = pinned ?? await place.tag(tag!);
  const missing = (what: string): GatewayError => registryError(`cannot resolve module ${ref}: ${place.lead}${place.name} ${what}`);
  if (named === null) throw missing(`has no tag ${tag}`);
  if (!SHA256.test(named)) throw missing(`holds ${JSON.stringify(named.slice(0, 80))} for tag ${tag}, not a sha256`);
  const sha256 = named.toLowerCase();
  const [bytes, signature] = await place.module(sha256);
  if (bytes === null) throw missing(`has no bytes for module ${sha256}`);
  const actual = sha256Hex(bytes);
  if (actual !== sha256) throw new GatewayError('GW_ERR_MODULE_SHA256', `module ${ref} stored under sha256 ${sha256} in ${place.name} does not match it: its bytes hash to ${actual}`);
  return Object.freeze({ ref, sha256, bytes: new Uint8Array(bytes), signature, from });
}

/** A cache file, or null when there is none. */
const readCached = (file: string): Promise<Buffer | null> => readFile(file).catch((err: NodeJS.ErrnoException) => {
  if (err.code === 'ENOENT') return null;
  throw registryError(`cannot read the module cache ${file}: ${err.message}`, err);
});

/** A Redis error reply (WRONGTYPE, NOAUTH…) is Redis's answer, not an outage: no cache fallback. */
const replyError = (ref: string) => (err: unknown): never => {
  throw (err as Error).name !== 'ReplyError' ? err : registryError(`cannot resolve module ${ref}: Redis answered ${reason(err)}`, err);
};

/** `auth:stable` → `auth@stable`: ':' is not allowed in Windows file names. */
const tagFile = (tag: string): string => tag.replace(':', '@');

/** A unique temp name, so that two workers sharing the directory never write one file. */
async function atomicWrite(file: string, data: Uint8Array | string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, data);
  await rename(temp, file);
}

const registryError = (message: string, cause?: unknown): GatewayError => new GatewayError('GW_ERR_MODULE_REGISTRY', message, cause === undefined ? undefined : { cause });
const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));
