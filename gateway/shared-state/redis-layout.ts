/**
 * Where shared data lives in Redis and how a write travels (the model is in replicated-data.ts).
 *
 * Per vm_id, these keys under one hash tag, so that they share a Redis Cluster slot and one
 * script can update them atomically:
 *   <prefix>{<vm_id hex>}:values            HASH  key → value bytes
 *   <prefix>{<vm_id hex>}:versions          HASH  key → "<version> <node id>" (the last writer)
 *   <prefix>{<vm_id hex>}:seq               the vm_id's version counter (INCR)
 *   <prefix>{<vm_id hex>}:writer:<node id>  the number of the node's last write taken, expiring
 *                                           WRITER_TTL_MS after that write
 * Node ids are unique per process (create.ts): a fleet that restarts often leaves one writer key
 * per process that wrote, so each expires by itself once its process has stopped writing.
 * The vm_id goes in as hex: vm_ids are arbitrary bytes and a `}` in one would end the hash tag.
 * Keys are the ABI's latin1 strings, stored byte for byte; values are binary.
 *
 * Every accepted write is published on `<prefix>shared-data` as
 *   "<node> <version> <vm_id length> <key length> " + vm_id + key + value
 * (lengths in bytes, decimal), which decodeUpdate reads back byte-exact.
 *
 * Shared queues (redis-queues.ts): a stream per queue, `<prefix>{<vm_id hex>}:queue:<name hex>`,
 * read by the consumer group `edge`; the set `<prefix>queues` lists every registered queue; and
 * the channel `<prefix>shared-queues` carries "R <vm_id hex> <name hex>" (registered) and
 * "I <vm_id hex> <name hex>" (an item was added).
 */

const vmTag = (prefix: string, vmId: string): string => `${prefix}{${hex(vmId)}}`;

/** The keys of one vm_id's data (see the file header). */
export function vmKeys(prefix: string, vmId: string): [values: string, versions: string, seq: string] {
  const tag = vmTag(prefix, vmId);
  return [`${tag}:values`, `${tag}:versions`, `${tag}:seq`];
}

/** The key of `node`'s last write number in a vm_id (see the file header). */
export function writerKey(prefix: string, vmId: string, node: string): string {
  return `${vmTag(prefix, vmId)}:writer:${node}`;
}

/**
 * How long Redis remembers a node's last write number after that write: 24 h. The number only
 * has to outlive a copy of a write sent again, which comes seconds later (a command timeout, a
 * reconnect's replay); a day also covers a node cut off from Redis that long with a write in flight.
 */
export const WRITER_TTL_MS = 24 * 60 * 60 * 1000;

export function updateChannel(prefix: string): string {
  return `${prefix}shared-data`;
}

/** Shared queues (redis-queues.ts): registrations and new items are announced here. */
export function queueChannel(prefix: string): string {
  return `${prefix}shared-queues`;
}

/** A queue's stream, under its vm_id's hash tag; the name goes in as hex, like the vm_id. */
export function queueStream(prefix: string, vmId: string, name: string): string {
  return `${prefix}{${hex(vmId)}}:queue:${hex(name)}`;
}

/** The set of every registered queue, as "<vm_id hex> <name hex>" members. */
export function queueRegistry(prefix: string): string {
  return `${prefix}queues`;
}

export function hex(text: string): string {
  return Buffer.from(text, 'latin1').toString('hex');
}

/**
 * The write, atomic in Redis: KEYS values, versions, seq, the node's writer key; ARGV key, value, base, channel,
 * node, vm_id, number. `number` counts the node's writes in the order its guests made them; a
 * write whose number is not above the node's last one taken was taken already (sent again after
 * its answer was lost, or after a timeout while the first copy was still on its way) and is not
 * applied twice: applied again after other nodes' writes, it would bring an old value back. It is
 * answered like a refused CAS, with Redis's current version and value, which the node then takes.
 * `base` "" writes unconditionally; else the write goes through only when no other node wrote the
 * key since version `base` (the current version is `base`, or a later one by this node: its own
 * earlier writes in flight). Accepted → {1, version}; refused → {0, current version, current value}.
 */
export const WRITE_SCRIPT = `
local key, value, base, node = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
-- The key's current version and writer, read only by a refusal or a CAS.
local function current()
  local text = redis.call('HGET', KEYS[2], key)
  if not text then return 0, '' end
  local space = string.find(text, ' ', 1, true)
  return tonumber(string.sub(text, 1, space - 1)), string.sub(text, space + 1)
end
-- A foreign value at the writer key reads as no write taken (the README: foreign values are ignored).
if tonumber(ARGV[7]) <= (tonumber(redis.call('GET', KEYS[4]) or '0') or 0) then
  return {0, (current()), redis.call('HGET', KEYS[1], key) or ''}
end
redis.call('SET', KEYS[4], ARGV[7], 'PX', ${WRITER_TTL_MS})
if base ~= '' then
  local version, writer = current()
  local b = tonumber(base)
  if version ~= b and not (version > b and writer == node) then
    return {0, version, redis.call('HGET', KEYS[1], key) or ''}
  end
end
local v = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], key, value)
redis.call('HSET', KEYS[2], key, v .. ' ' .. node)
redis.call('PUBLISH', ARGV[4], node .. ' ' .. v .. ' ' .. #ARGV[6] .. ' ' .. #key .. ' ' .. ARGV[6] .. key .. value)
return {1, v}
`;

/** One published write, decoded. */
export interface Update {
  readonly node: string;
  readonly version: number;
  readonly vmId: string;
  readonly key: string;
  readonly value: Uint8Array;
}

const SPACE = 0x20;

/** Reads a published write; null for anything else on the channel (a foreign or truncated message). */
export function decodeUpdate(message: Buffer): Update | null {
  const fields: string[] = [];
  let at = 0;
  while (fields.length < 4) {
    const space = message.indexOf(SPACE, at);
    if (space < 0) return null;
    fields.push(message.toString('latin1', at, space));
    at = space + 1;
  }
  const [node, versionText, vmLenText, keyLenText] = fields;
  const version = Number(versionText);
  const vmLen = Number(vmLenText);
  const keyLen = Number(keyLenText);
  if (node === '' || !Number.isSafeInteger(version) || version < 1 || !Number.isSafeInteger(vmLen) || vmLen < 0
    || !Number.isSafeInteger(keyLen) || keyLen < 0 || at + vmLen + keyLen > message.length) return null;
  return {
    node, version,
    vmId: message.toString('latin1', at, at + vmLen),
    key: message.toString('latin1', at + vmLen, at + vmLen + keyLen),
    value: new Uint8Array(message.subarray(at + vmLen + keyLen)),
  };
}

/** A stored "<version> <node>" entry of the versions hash; null when it is not one. */
export function parseVersion(text: string): { version: number; node: string } | null {
  const space = text.indexOf(' ');
  if (space < 1) return null;
  const version = Number(text.slice(0, space));
  return Number.isSafeInteger(version) && version > 0 ? { version, node: text.slice(space + 1) } : null;
}

/**
 * An enqueue: KEYS the queue's stream; ARGV item, channel, MAX_STREAM_ITEMS, announcement. XADD
 * and the announcement in one script, so a consumer told of an item finds it.
 */
export const ENQUEUE_SCRIPT = `
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'd', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[4])
return 1
`;
