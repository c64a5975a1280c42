import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type initWabt from 'wabt';
import { isGatewayError } from '../../gateway/errors.js';
import { createModuleStore } from '../../gateway/modules/module-store.js';

let dir: string;
let wabt: Awaited<ReturnType<typeof initWabt>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'module-store-'));
  wabt = await (await import('wabt')).default();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** A module exporting one empty function; different export names give different bytes. */
function wasm(exportName = 'f'): Uint8Array {
  const text = `(module (func (export "${exportName}")))`;
  return new Uint8Array(wabt.parseWat('m.wat', text).toBinary({}).buffer);
}

async function writeModule(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  return file;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The rejection of a promise, for asserting on code and message together. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const NOT_WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]);

describe('module store', () => {
  it('compiles a module once for two loads of the same bytes', async () => {
    const file = await writeModule('once.wasm', wasm());
    const store = createModuleStore();
    const first = await store.load({ file });
    const second = await store.load({ file });
    expect(store.stats().compiles).toBe(1);
    expect(second.module).toBe(first.module);
  });

  it('returns the lower-case sha256, size, bytes and name of the module', async () => {
    const bytes = wasm();
    const file = await writeModule('fields.wasm', bytes);
    const loaded = await createModuleStore().load({ file });
    expect(loaded.sha256).toBe(sha256(bytes));
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(loaded.size).toBe(bytes.byteLength);
    expect(Array.from(loaded.bytes)).toEqual(Array.from(bytes));
    expect(loaded.name).toBe(file);
    expect(Object.isFrozen(loaded)).toBe(true);
  });

  it('shares one compile between concurrent loads', async () => {
    const file = await writeModule('concurrent.wasm', wasm());
    const store = createModuleStore();
    const loads = await Promise.all([store.load({ file }), store.load({ file }), store.compile(wasm(), 'in-hand')]);
    expect(store.stats().compiles).toBe(1);
    expect(loads[1].module).toBe(loads[0].module);
    expect(loads[2].module).toBe(loads[0].module);
    expect(loads[2].name).toBe('in-hand');
  });

  it('treats two files with the same bytes as one module', async () => {
    const a = await writeModule('same-a.wasm', wasm());
    const b = await writeModule('same-b.wasm', wasm());
    const store = createModuleStore();
    const fromA = await store.load({ file: a });
    const fromB = await store.load({ file: b });
    expect(fromB.module).toBe(fromA.module);
    expect(fromB.name).toBe(b);
    expect(store.stats().compiles).toBe(1);
  });

  it('accepts a pinned sha256 in any letter case', async () => {
    const bytes = wasm();
    const file = await writeModule('pinned.wasm', bytes);
    const store = createModuleStore();
    await expect(store.load({ file, sha256: sha256(bytes) })).resolves.toMatchObject({ sha256: sha256(bytes) });
    await expect(store.load({ file, sha256: sha256(bytes).toUpperCase() })).resolves.toMatchObject({ sha256: sha256(bytes) });
  });

  it('rejects bytes that do not match the pinned sha256 and names the file', async () => {
    const bytes = wasm();
    const file = await writeModule('mismatch.wasm', bytes);
    const pinned = 'ab'.repeat(32);
    const store = createModuleStore();
    const err = await failure(store.load({ file, sha256: pinned }));
    expect(isGatewayError(err, 'GW_ERR_MODULE_SHA256')).toBe(true);
    expect(err.message).toContain(file);
    expect(err.message).toContain(pinned);
    expect(err.message).toContain(sha256(bytes));
    expect(store.stats().compiles).toBe(0);
  });

  it('names the module in a validation error', async () => {
    const engineText = await WebAssembly.compile(NOT_WASM).then(
      () => 'compiled',
      (err: Error) => err.message,
    );
    const file = await writeModule('invalid.wasm', NOT_WASM);
    const err = await failure(createModuleStore().load({ file }));
    expect(isGatewayError(err, 'GW_ERR_MODULE_INVALID')).toBe(true);
    expect(err.message).toContain(file);
    expect(err.message).toContain(engineText);
  });

  it('remembers invalid bytes and does not compile them again', async () => {
    const store = createModuleStore();
    const first = await failure(store.compile(NOT_WASM, 'first.wasm'));
    const again = await failure(store.compile(NOT_WASM, 'first.wasm'));
    const renamed = await failure(store.compile(NOT_WASM, 'second.wasm'));
    expect(store.stats().compiles).toBe(1);
    expect(again.message).toBe(first.message);
    expect(again.cause).toBe(first.cause);
    expect(isGatewayError(renamed, 'GW_ERR_MODULE_INVALID')).toBe(true);
    expect(renamed.message).toContain('second.wasm');
  });

  it('names each caller\'s module when concurrent loads share a failing compile', async () => {
    const store = createModuleStore();
    const [a, b] = await Promise.all([failure(store.compile(NOT_WASM, 'a.wasm')), failure(store.compile(NOT_WASM, 'b.wasm'))]);
    expect(store.stats().compiles).toBe(1);
    expect(a.message).toContain('a.wasm');
    expect(b.message).toContain('b.wasm');
  });

  it('does not remember an engine failure that is not a CompileError', async () => {
    const store = createModuleStore();
    vi.spyOn(WebAssembly, 'compile').mockRejectedValueOnce(new RangeError('out of memory'));
    const err = await failure(store.compile(wasm(), 'flaky.wasm'));
    expect(isGatewayError(err, 'GW_ERR_MODULE_COMPILE')).toBe(true);
    expect(err.message).toContain('flaky.wasm');
    expect(err.message).toContain('out of memory');
    await expect(store.compile(wasm(), 'flaky.wasm')).resolves.toMatchObject({ name: 'flaky.wasm' });
    expect(store.stats().compiles).toBe(2);
  });

  it('evicts least recently used modules when the byte budget is exceeded', async () => {
    const [a, b, c] = [wasm('a'), wasm('b'), wasm('c')];
    expect(a.byteLength).toBe(b.byteLength);
    const store = createModuleStore({ maxBytes: a.byteLength * 2 });
    await store.compile(a, 'a');
    await store.compile(b, 'b');
    await store.compile(a, 'a'); // a is now the most recently used
    await store.compile(c, 'c'); // over budget: b goes
    expect(store.stats()).toMatchObject({ compiles: 3, entries: 2, bytes: a.byteLength * 2 });
    await store.compile(a, 'a');
    expect(store.stats().compiles).toBe(3);
    await store.compile(b, 'b');
    expect(store.stats().compiles).toBe(4);
  });

  it('serves a module larger than the whole budget without caching it', async () => {
    const bytes = wasm();
    const store = createModuleStore({ maxBytes: bytes.byteLength - 1 });
    await expect(store.compile(bytes, 'big')).resolves.toMatchObject({ size: bytes.byteLength });
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('reports hits and misses', async () => {
    const bytes = wasm();
    const file = await writeModule('stats.wasm', bytes);
    const store = createModuleStore();
    expect(store.stats()).toEqual({ hits: 0, misses: 0, compiles: 0, entries: 0, bytes: 0 });
    await store.load({ file });
    await store.load({ file });
    await store.compile(bytes, 'again');
    expect(store.stats()).toEqual({ hits: 2, misses: 1, compiles: 1, entries: 1, bytes: bytes.byteLength });
  });

  it('read errors name the file and the OS reason', async () => {
    const file = join(dir, 'missing.wasm');
    const err = await failure(createModuleStore().load({ file }));
    expect(isGatewayError(err, 'GW_ERR_MODULE_READ')).toBe(true);
    expect(err.message).toContain(file);
    expect(err.message).toContain('ENOENT');
  });

  it('keeps its own copy of bytes passed to compile', async () => {
    const bytes = wasm();
    const original = Array.from(bytes);
    const store = createModuleStore();
    const loaded = await store.compile(bytes, 'borrowed');
    bytes.fill(0);
    expect(Array.from(loaded.bytes)).toEqual(original);
    expect(loaded.sha256).toBe(sha256(new Uint8Array(original)));
  });

  it('compiles again after clear and keeps its counters', async () => {
    const store = createModuleStore();
    const first = await store.compile(wasm(), 'm');
    store.clear();
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0, compiles: 1 });
    const second = await store.compile(wasm(), 'm');
    expect(second.module).not.toBe(first.module);
    expect(store.stats().compiles).toBe(2);
  });

  it('does not cache a compile that was in flight when the store was cleared', async () => {
    const store = createModuleStore();
    const pending = store.compile(wasm(), 'm');
    store.clear();
    await pending;
    expect(store.stats().entries).toBe(0);
  });

  it('instruments before compiling and keeps the original sha256, bytes and typed imports', async () => {
    const text = `(module (import "env" "proxy_log" (func (param i32 i32 i32) (result i32))) (memory (export "memory") 1) (func (export "f") (loop)))`;
    const bytes = new Uint8Array(wabt.parseWat('m.wat', text).toBinary({}).buffer);
    const loaded = await createModuleStore().compile(bytes, 'typed.wasm');
    expect(loaded.sha256).toBe(sha256(bytes));
    expect(loaded.bytes).toEqual(bytes);
    expect(loaded.imports).toEqual([{ module: 'env', name: 'proxy_log', kind: 'function', type: { params: ['i32', 'i32', 'i32'], results: ['i32'] } }]);
    expect(WebAssembly.Module.imports(loaded.module).map((i) => `${i.module}.${i.name}`))
      .toEqual(['env.proxy_log', 'edge-gateway:sandbox.budget_check']);
    // The default cap (128 MiB = 2048 pages) is compiled into the module's own memory.
    expect(loaded.sandbox.defined).toEqual({ initialPages: 1, capPages: 2048 });
    expect(loaded.forMemoryCap(128).module).toBe(loaded.module);
    const small = loaded.forMemoryCap(1);
    expect(small.module).not.toBe(loaded.module);
    expect(small.sandbox.defined).toEqual({ initialPages: 1, capPages: 16 });
    expect(loaded.forMemoryCap(1)).toBe(small);
  });

  it('refuses bytes the engine accepts but the reader cannot rewrite, with the reader\'s offset, and remembers them', async () => {
    const text = `(module (import "edge-gateway:sandbox" "budget_check" (func (result i32))))`;
    const bytes = new Uint8Array(wabt.parseWat('m.wat', text).toBinary({}).buffer);
    const store = createModuleStore();
    const err = await failure(store.compile(bytes, 'sneaky.wasm'));
    expect(isGatewayError(err, 'GW_ERR_MODULE_INVALID')).toBe(true);
    expect(err.message).toContain('sneaky.wasm');
    expect(err.message).toMatch(/byte offset \d+/);
    await failure(store.compile(bytes, 'sneaky.wasm'));
    expect(store.stats().compiles).toBe(1);
  });

  it('rejects a maxBytes that is not a positive integer with GW_ERR_MODULE_OPTIONS naming the value', () => {
    for (const maxBytes of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createModuleStore({ maxBytes })).toThrow(expect.objectContaining({
        code: 'GW_ERR_MODULE_OPTIONS', message: `module store maxBytes must be a positive integer number of bytes, got ${String(maxBytes)}`,
      }));
    }
  });

  it('keeps other artifacts (function components) in the same LRU and byte budget, made once per key at a time', async () => {
    const store = createModuleStore({ maxBytes: 100 });
    let made = 0;
    const make = (size: number) => async () => ({ size, id: ++made });
    const [a, b] = await Promise.all([store.keep('component/a', make(60)), store.keep('component/a', make(60))]);
    expect(a).toBe(b);
    expect(made).toBe(1);
    expect(await store.keep('component/a', make(60))).toBe(a);
    expect(store.stats()).toMatchObject({ entries: 1, bytes: 60 });
    await store.keep('component/b', make(60)); // over the budget: a, the least recently used, goes
    expect(store.stats()).toMatchObject({ entries: 1, bytes: 60 });
    expect(await store.keep('component/a', make(60))).not.toBe(a);
    await expect(store.keep('component/c', async () => { throw new Error('no'); })).rejects.toThrow('no');
    expect((await store.keep('component/c', make(10))).size).toBe(10);
  });
});
