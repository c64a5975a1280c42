/**
 * The fleet module registry against a real redis-server: two ModuleRegistry instances on one
 * Redis are two gateway nodes; killing the server is an outage. Each test has its own key prefix
 * and cache directory, so none sees another's tags.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../gateway/errors.js';
import { ModuleRegistry, parseRegistryRef, type RegistryOptions } from '../../gateway/modules/registry.js';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import { eventually } from '../helpers/eventually.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const V1 = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
/** V1 plus a custom section named "abc": another valid module, another sha256. */
const V2 = new Uint8Array([...V1, 0, 4, 3, 97, 98, 99]);
const V3 = new Uint8Array([...V1, 0, 4, 3, 120, 121, 122]);
const SIG = 'c2lnbmF0dXJlIG9mIHRoZSBtb2R1bGUgYnl0ZXM=';

let prefixes = 0;
const opened: ModuleRegistry[] = [];

/** A node: its own cache directory unless given one; `prefix` shared by the nodes of a test. */
function node(url: string, prefix: string, extra: Partial<RegistryOptions> = {}): ModuleRegistry {
  const registry = ModuleRegistry.open({ url, prefix, cacheDir: mkdtempSync(join(tmpdir(), 'edge-gw-registry-')), connectTimeoutMs: 300, ...extra });
  opened.push(registry);
  return registry;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(() => { throw new Error('expected a rejection'); }, (err: Error) => err);
}

afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
});

describe('the module registry in Redis', () => {
  let redis: RedisServer;
  let prefix: string;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());
  const fresh = (): string => (prefix = `reg${++prefixes}:`);

  it('stores pushed bytes under their sha256 and resolves them by tag and by sha256', async () => {
    const a = node(redis.url, fresh());
    const sha = await a.push(V1, 'auth:stable', null);
    expect(sha).toBe(sha256Hex(V1));
    const byTag = await node(redis.url, prefix).resolve('auth:stable');
    expect(byTag).toEqual({ ref: 'auth:stable', sha256: sha, bytes: V1, signature: null, from: 'redis' });
    const bySha = await node(redis.url, prefix).resolve(sha.toUpperCase());
    expect(bySha.sha256).toBe(sha);
    expect(bySha.bytes).toEqual(V1);
    expect(await redis.client().get(`${prefix}tag:auth:stable`)).toBe(sha);
  });

  it('round-trips the signature pushed with the bytes', async () => {
    const a = node(redis.url, fresh());
    const sha = await a.push(V2, 'auth:canary', SIG);
    expect((await node(redis.url, prefix).resolve('auth:canary')).signature).toBe(SIG);
    expect((await node(redis.url, prefix).resolve(sha)).signature).toBe(SIG);
    expect(await redis.client().get(`${prefix}module:${sha}:sig`)).toBe(SIG);
  });

  it('tells a watching node that a tag moved within a second, once per sha256', async () => {
    const a = node(redis.url, fresh());
    const b = node(redis.url, prefix);
    await a.push(V1, 'auth:stable', null);
    expect((await b.resolve('auth:stable')).sha256).toBe(sha256Hex(V1));
    const moves: [string, string][] = [];
    // A long poll: only the channel can be quick enough.
    b.watch(['auth:stable'], (ref, sha) => moves.push([ref, sha]), 60_000);
    const raw = redis.client();
    expect(await eventually(async () => ((await raw.pubsub('NUMSUB', `${prefix}modules`)) as [string, number])[1] === 1)).toBe(true);
    const pushed = Date.now();
    const sha2 = await a.push(V2, 'auth:stable', null);
    expect(await eventually(() => moves.length > 0, 1000)).toBe(true);
    expect(Date.now() - pushed).toBeLessThan(1000);
    await a.push(V2, 'auth:stable', null); // the same sha again: not a move
    await a.push(V1, 'auth:other', null); // not watched
    await new Promise((r) => setTimeout(r, 100));
    expect(moves).toEqual([['auth:stable', sha2]]);
    expect((await b.resolve('auth:stable')).bytes).toEqual(V2);
  });

  it('catches through its poll a move no message told of', async () => {
    const a = node(redis.url, fresh());
    const b = node(redis.url, prefix);
    await a.push(V1, 'auth:stable', null);
    await b.resolve('auth:stable');
    const moves: [string, string][] = [];
    b.watch(['auth:stable'], (ref, sha) => moves.push([ref, sha]), 100);
    await new Promise((r) => setTimeout(r, 250)); // polls that find the sha resolve() returned: no call
    expect(moves).toEqual([]);
    const sha2 = await a.push(V2, null, null);
    await redis.client().set(`${prefix}tag:auth:stable`, sha2); // moved without a publish
    expect(await eventually(() => moves.length > 0, 1000)).toBe(true);
    expect(moves).toEqual([['auth:stable', sha2]]);
  });

  it('stops calling a watcher once it is stopped, and never watches a sha256 ref', async () => {
    const a = node(redis.url, fresh());
    const b = node(redis.url, prefix);
    const moves: string[] = [];
    const stop = b.watch(['auth:stable', sha256Hex(V1)], (ref) => moves.push(ref), 50);
    await a.push(V1, 'auth:stable', null);
    expect(await eventually(() => moves.length === 1, 1000)).toBe(true);
    stop();
    await a.push(V2, 'auth:stable', null);
    await new Promise((r) => setTimeout(r, 200));
    expect(moves).toEqual(['auth:stable']);
  });

  it('refuses bytes stored under another sha256 with GW_ERR_MODULE_SHA256', async () => {
    const a = node(redis.url, fresh());
    const sha1 = await a.push(V1, 'auth:stable', null);
    await redis.client().set(`${prefix}module:${sha1}`, Buffer.from(V2)); // tampered
    for (const ref of ['auth:stable', sha1]) {
      const err = await failure(node(redis.url, prefix).resolve(ref));
      expect(isGatewayError(err, 'GW_ERR_MODULE_SHA256')).toBe(true);
      expect(err.message).toBe(`module ${ref} stored under sha256 ${sha1} in Redis ${redis.url} does not match it: its bytes hash to ${sha256Hex(V2)}`);
    }
  });

  it('answers an unknown tag or missing bytes with GW_ERR_MODULE_REGISTRY naming the ref and the url', async () => {
    const b = node(redis.url, fresh());
    const tag = await failure(b.resolve('auth:nowhere'));
    expect(isGatewayError(tag, 'GW_ERR_MODULE_REGISTRY')).toBe(true);
    expect(tag.message).toBe(`cannot resolve module auth:nowhere: Redis ${redis.url} has no tag auth:nowhere`);
    const bytes = await failure(b.resolve('a'.repeat(64)));
    expect(bytes.message).toBe(`cannot resolve module ${'a'.repeat(64)}: Redis ${redis.url} has no bytes for module ${'a'.repeat(64)}`);
  });

  it('refuses malformed refs, tags and options with exact messages', async () => {
    expect(parseRegistryRef('auth:stable')).toEqual({ tag: 'auth:stable', sha256: null });
    expect(parseRegistryRef('AB'.repeat(32))).toEqual({ tag: null, sha256: 'ab'.repeat(32) });
    const neither = 'is neither a tag name:channel (each part of letters, digits, "_", "." and "-") nor a sha256 (64 hex digits)';
    for (const ref of ['auth', 'auth:', ':stable', 'auth:stable:1', 'auth/x:stable', 'auth stable', '']) {
      expect(() => parseRegistryRef(ref)).toThrow(`module registry ref ${JSON.stringify(ref)} ${neither}`);
    }
    expect(() => parseRegistryRef('abc123')).toThrow('module registry ref "abc123" looks like a sha256 but has 6 hex digits, not 64');
    const b = node(redis.url, fresh());
    const bad = await failure(b.resolve('auth'));
    expect(isGatewayError(bad, 'GW_ERR_MODULE_REGISTRY')).toBe(true);
    expect(() => b.watch(['auth:stable', 'nope'], () => undefined)).toThrow('module registry ref "nope"');
    await expect(b.push(V1, 'a'.repeat(64), null)).rejects.toThrow(`module registry tag "${'a'.repeat(64)}" must be name:channel, not a sha256`);
    expect(() => node('http://127.0.0.1:1', 'x:')).toThrow('module registry url http://127.0.0.1:1/ is not redis:// or rediss://');
    expect(() => node('redis://:secret@127.0.0.1:1', 'x:', { connectTimeoutMs: 0 })).toThrow('module registry connectTimeoutMs must be a positive integer, got 0');
  });

  it('writes what it resolved to the cache directory, bytes, signature and tag', async () => {
    const a = node(redis.url, fresh());
    const sha = await a.push(V2, 'auth:stable', SIG);
    const cacheDir = mkdtempSync(join(tmpdir(), 'edge-gw-registry-'));
    await node(redis.url, prefix, { cacheDir }).resolve('auth:stable');
    expect(readdirSync(cacheDir).sort()).toEqual([`${sha}.sig`, `${sha}.wasm`, 'tags']);
    expect(new Uint8Array(readFileSync(join(cacheDir, `${sha}.wasm`)))).toEqual(V2);
    expect(readFileSync(join(cacheDir, `${sha}.sig`), 'utf8')).toBe(SIG);
    expect(readFileSync(join(cacheDir, 'tags', 'auth@stable'), 'utf8')).toBe(sha);
  });
});

describe('the module registry while Redis is down', () => {
  let redis: RedisServer;
  let url: string;
  const cacheDir = mkdtempSync(join(tmpdir(), 'edge-gw-registry-'));
  let sha1: string;
  beforeAll(async () => {
    redis = await startRedis();
    url = redis.url;
    const a = ModuleRegistry.open({ url, prefix: 'edge:', cacheDir });
    sha1 = await a.push(V1, 'auth:stable', SIG);
    await a.resolve('auth:stable');
    await a.close();
    await redis.kill();
  });
  afterAll(() => redis.stop());

  it('answers from the cache directory with from "cache", by tag and by sha256', async () => {
    const b = node(url, 'edge:', { cacheDir });
    const started = Date.now();
    expect(await b.resolve('auth:stable')).toEqual({ ref: 'auth:stable', sha256: sha1, bytes: V1, signature: SIG, from: 'cache' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await b.resolve(sha1)).from).toBe('cache');
  });

  it('rejects with GW_ERR_MODULE_REGISTRY naming the url without its password when nothing is cached', async () => {
    const b = node(url.replace('redis://', 'redis://:hunter2@'), 'edge:');
    const err = await failure(b.resolve('auth:stable'));
    expect(isGatewayError(err, 'GW_ERR_MODULE_REGISTRY')).toBe(true);
    expect(err.message).toMatch(new RegExp(`^cannot resolve module auth:stable: Redis redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port} is unreachable \\(.+\\) and the cache directory .+ has no tag auth:stable$`));
    expect(err.message).not.toContain('hunter2');
    await expect(b.push(V1, 'auth:stable', null)).rejects.toThrow(/^cannot push module [0-9a-f]{64} to Redis redis:\/\/:\*\*\*@/);
  });

  it('refuses cached bytes that do not match their sha256', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'edge-gw-registry-'));
    writeFileSync(join(copy, `${sha1}.wasm`), V3);
    const err = await failure(node(url, 'edge:', { cacheDir: copy }).resolve(sha1));
    expect(isGatewayError(err, 'GW_ERR_MODULE_SHA256')).toBe(true);
    expect(err.message).toBe(`module ${sha1} stored under sha256 ${sha1} in the cache directory ${copy} does not match it: its bytes hash to ${sha256Hex(V3)}`);
  });

  it('tells a watcher of a move made while it was cut off from Redis, once Redis is back', async () => {
    const b = node(url, 'edge:', { cacheDir });
    await b.resolve('auth:stable'); // from the cache: the baseline
    const moves: [string, string][] = [];
    b.watch(['auth:stable'], (ref, sha) => moves.push([ref, sha]), 100);
    await new Promise((r) => setTimeout(r, 200));
    await redis.restart(); // empty: the move below is all it holds
    const a = node(url, 'edge:', { connectTimeoutMs: 3000 });
    const sha3 = await a.push(V3, 'auth:stable', null);
    expect(await eventually(() => moves.length > 0, 3000)).toBe(true);
    expect(moves).toEqual([['auth:stable', sha3]]);
    expect((await b.resolve('auth:stable')).from).toBe('redis');
  });
});
