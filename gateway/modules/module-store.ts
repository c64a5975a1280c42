/**
 * The compiled-module store: bytes in, compiled `WebAssembly.Module` out.
 *
 * What it guarantees:
 * - A module's identity is the SHA-256 of its bytes, never its path or name: two files with the
 *   same bytes are one module, and a file rewritten in place is a new one.
 * - A pinned `sha256` is checked before anything is compiled; bytes that do not match are
 *   rejected (GW_ERR_MODULE_SHA256) and never reach the engine.
 * - `WebAssembly.compile` runs once per SHA-256 while the module is cached: compiled modules live
 *   in an LRU bounded by the byte length of their modules (the compiled code size is not visible
 *   to JS; it grows with the bytes), and concurrent loads of the same bytes share one compile.
 * - Invalid bytes are remembered by SHA-256, so loading the same bad module again answers
 *   GW_ERR_MODULE_INVALID at once instead of paying for another compile. Only the engine's
 *   CompileError is remembered; any other failure (e.g. out of memory) is GW_ERR_MODULE_COMPILE
 *   and the next load tries again.
 * - Before compiling, the bytes are instrumented for the sandbox (wasm/instrument.ts: the CPU
 *   budget check and the capped memory import); that runs once per SHA-256 too, and the cache is
 *   keyed by (SHA-256, instrumentation version) so a new rewrite never meets an old compile.
 *   `bytes`, `sha256` and `imports` describe the original module, as its author built it.
 * - Every error is a GatewayError whose message names the file or module at fault.
 * - A module larger than the whole budget is compiled and returned, but not cached.
 * - `clear()` forgets cached and failed modules; a compile in flight at that moment still answers
 *   its callers but is not cached.
 */

import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.js';
import { readModuleFile } from './file-source.js';
import { fetchModule } from './url-source.js';
import { sameSha256, sha256Hex } from './sha256.js';
import { INSTRUMENTATION_VERSION, instrumentModule } from './wasm/instrument.js';
import { readImports } from './wasm/imports.js';
import { registerSandboxPlan, type SandboxPlan } from '../abi/sandbox.js';
import { DEFAULT_VM_LIMITS } from '../abi/limits.js';
import type { TypedImport } from '../abi/wasm-types.js';

/** Where a module's bytes come from. `sha256` pins the expected digest (any letter case). */
export interface FileModuleSource {
  file: string;
  sha256?: string;
}

/** A module served over HTTP(S); the pin is mandatory. */
export interface UrlModuleSource {
  url: string;
  sha256: string;
}

export type ModuleSource = FileModuleSource | UrlModuleSource;

/**
 * A compiled module and the bytes it was compiled from. Objects are frozen.
 * NB: `module` and `bytes` are shared by every load of the same SHA-256; never write to `bytes`.
 */
export interface LoadedModule {
  /** Lower-case hex SHA-256 of `bytes`. */
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  /** The module bytes, kept because the ABI host parses sections the JS API does not expose. */
  readonly bytes: Uint8Array;
  /** `bytes.byteLength`. */
  readonly size: number;
  /** What this load called the module (the file path for `load`), for messages. */
  readonly name: string;
  /** The original module's imports with function types (for signature and capability checks). */
  readonly imports: readonly TypedImport[];
  /** What the instrumenter did to `module`; hand it to the VM (VmOptions.sandbox). */
  readonly sandbox: SandboxPlan;
  /**
   * The module prepared for a memory cap: `module`/`sandbox` for the default cap
   * (DEFAULT_VM_LIMITS.memoryMb), otherwise instrumented and compiled on first use (synchronously,
   * once per cap; VMs are built at start and reload, never per request) and kept with this entry.
   */
  forMemoryCap(memoryMb: number): { readonly module: WebAssembly.Module; readonly sandbox: SandboxPlan };
}

export interface ModuleStoreStats {
  /** Loads answered from the cache. */
  hits: number;
  /** Loads not in the cache: they compiled, joined a compile in flight, or met a remembered failure. */
  misses: number;
  /** Calls to `WebAssembly.compile`. */
  compiles: number;
  /** Compiled modules cached now. */
  entries: number;
  /** Module bytes cached now (what `maxBytes` bounds). */
  bytes: number;
}

export interface ModuleStoreOptions {
  /** Budget of cached module bytes. Default 256 MiB. */
  maxBytes?: number;
}

export interface ModuleStore {
  /**
   * Reads (or fetches), verifies and compiles a module (GW_ERR_MODULE_READ / _FETCH / _SHA256 /
   * _INVALID / _COMPILE).
   */
  load(source: ModuleSource): Promise<LoadedModule>;
  /** Compiles bytes already in hand; `name` is used in messages. The store keeps its own copy. */
  compile(bytes: Uint8Array, name: string): Promise<LoadedModule>;
  /** The module of that sha256 if the cache holds it (a version run before, a module pushed earlier), else null. */
  cached(sha256: string, name: string): LoadedModule | null;
  /** Counters for metrics; hits, misses and compiles only grow (they survive `clear()`). */
  stats(): ModuleStoreStats;
  /**
   * Keeps another kind of compiled artifact in the same LRU and byte budget (an edge function's
   * component: functions/component-loader.ts) under `key`; `make` runs once per key at a time, and
   * a failure is not remembered.
   */
  keep<T extends { readonly size: number }>(key: string, make: () => Promise<T>): Promise<T>;
  /** Forgets cached and failed modules. */
  clear(): void;
}

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

// Distinct invalid modules remembered. An entry is a digest and an error, so this bound only keeps
// a stream of distinct bad uploads from growing memory without end.
const MAX_REMEMBERED_FAILURES = 256;

/** Builds a store; throws GW_ERR_MODULE_OPTIONS for a `maxBytes` that is not a positive integer. */
export function createModuleStore(options?: ModuleStoreOptions): ModuleStore {
  return new LruModuleStore(resolveMaxBytes(options));
}

function resolveMaxBytes(options: ModuleStoreOptions | undefined): number {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new GatewayError('GW_ERR_MODULE_OPTIONS', `module store maxBytes must be a positive integer number of bytes, got ${String(maxBytes)}`);
  }
  return maxBytes;
}

/** What the cache holds: a LoadedModule without the per-load name. */
type CachedModule = Omit<LoadedModule, 'name'>;
/** Another kind of artifact kept in the same LRU (ModuleStore.keep). */
interface KeptArtifact { readonly kept: true; readonly size: number; readonly value: unknown }
type CacheEntry = CachedModule | KeptArtifact;
const isModule = (entry: CacheEntry | undefined): entry is CachedModule => entry !== undefined && !('kept' in entry);

class LruModuleStore implements ModuleStore {
  private readonly cache: LRUCache<string, CacheEntry>;
  private readonly keeping = new Map<string, Promise<unknown>>();
  private readonly failures = new LRUCache<string, Error>({ max: MAX_REMEMBERED_FAILURES });
  private readonly inFlight = new Map<string, Promise<CachedModule>>();
  // Bumped by clear(), so compiles started before it do not repopulate the caches.
  private generation = 0;
  private hits = 0;
  private misses = 0;
  private compiles = 0;

  constructor(maxBytes: number) {
    this.cache = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      // lru-cache requires a positive size; an empty module cannot compile, but stay safe.
      sizeCalculation: (entry) => Math.max(1, entry.size),
    });
  }

  async load(source: ModuleSource): Promise<LoadedModule> {
    const name = 'url' in source ? source.url : source.file;
    const bytes = 'url' in source ? await fetchModule(source.url) : await readModuleFile(source.file);
    const sha256 = sha256Hex(bytes);
    if (source.sha256 !== undefined) checkPin(name, source.sha256, sha256);
    return this.resolve(sha256, bytes, name, false);
  }

  async compile(bytes: Uint8Array, name: string): Promise<LoadedModule> {
    return this.resolve(sha256Hex(bytes), bytes, name, true);
  }

  cached(sha256: string, name: string): LoadedModule | null {
    const entry = this.cache.get(cacheKey(sha256.toLowerCase()));
    if (!isModule(entry)) return null;
    this.hits++;
    return named(entry, name);
  }

  stats(): ModuleStoreStats {
    return {
      hits: this.hits,
      misses: this.misses,
      compiles: this.compiles,
      entries: this.cache.size,
      bytes: this.cache.calculatedSize,
    };
  }

  async keep<T extends { readonly size: number }>(key: string, make: () => Promise<T>): Promise<T> {
    const k = `kept:${key}`;
    const entry = this.cache.get(k);
    if (entry !== undefined && 'kept' in entry) {
      this.hits++;
      return entry.value as T;
    }
    this.misses++;
    let pending = this.keeping.get(k) as Promise<T> | undefined;
    if (pending === undefined) {
      const generation = this.generation;
      pending = make().then((value) => {
        if (generation === this.generation) this.cache.set(k, { kept: true, size: value.size, value });
        return value;
      }).finally(() => this.keeping.delete(k));
      this.keeping.set(k, pending);
    }
    return pending;
  }

  clear(): void {
    this.generation++;
    this.cache.clear();
    this.keeping.clear();
    this.failures.clear();
    this.inFlight.clear();
  }

  // Cache, then remembered failure, then a compile in flight, then a new compile.
  private async resolve(sha256: string, bytes: Uint8Array, name: string, borrowed: boolean): Promise<LoadedModule> {
    const key = cacheKey(sha256);
    const cached = this.cache.get(key);
    if (isModule(cached)) {
      this.hits++;
      return named(cached, name);
    }
    this.misses++;
    const failure = this.failures.get(key);
    if (failure !== undefined) throw compileFailure(name, failure);
    // NB: new Uint8Array(x) copies even when x is a Buffer (whose slice() would share memory), so
    // a caller reusing its buffer cannot change the bytes behind a cached digest.
    const pending = this.inFlight.get(sha256) ?? this.startCompile(sha256, borrowed ? new Uint8Array(bytes) : bytes);
    try {
      return named(await pending, name);
    } catch (err) {
      // Each caller gets an error naming its own module, even when it joined another's compile.
      throw compileFailure(name, err);
    }
  }

  private startCompile(sha256: string, bytes: Uint8Array): Promise<CachedModule> {
    this.compiles++;
    const pending = this.compileAndRemember(sha256, bytes, this.generation);
    this.inFlight.set(sha256, pending);
    // Identity check: after clear() a newer compile of the same digest may own the slot.
    const forget = (): void => {
      if (this.inFlight.get(sha256) === pending) this.inFlight.delete(sha256);
    };
    pending.then(forget, forget);
    return pending;
  }

  private async compileAndRemember(sha256: string, bytes: Uint8Array, generation: number): Promise<CachedModule> {
    try {
      const { imports, prepared } = await prepare(bytes);
      const module = await WebAssembly.compile(prepared.bytes);
      registerSandboxPlan(module, prepared.plan);
      const variants = new Map<number, { module: WebAssembly.Module; sandbox: SandboxPlan }>([[DEFAULT_VM_LIMITS.memoryMb, { module, sandbox: prepared.plan }]]);
      const forMemoryCap = (memoryMb: number): { module: WebAssembly.Module; sandbox: SandboxPlan } => {
        let variant = variants.get(memoryMb);
        if (variant === undefined) {
          const again = instrumentModule(bytes, { memoryMb });
          variant = { module: new WebAssembly.Module(again.bytes), sandbox: again.plan };
          registerSandboxPlan(variant.module, variant.sandbox);
          variants.set(memoryMb, variant);
        }
        return variant;
      };
      const entry: CachedModule = Object.freeze({ sha256, module, bytes, size: bytes.byteLength, imports, sandbox: prepared.plan, forMemoryCap });
      if (generation === this.generation) this.cache.set(cacheKey(sha256), entry);
      return entry;
    } catch (err) {
      if (invalid(err) && generation === this.generation) this.failures.set(cacheKey(sha256), err as Error);
      throw err;
    }
  }
}

/**
 * Typed imports and the instrumented bytes. When the binary reader refuses the bytes, the engine's
 * own verdict on the original is preferred (its messages are the ones users search for); only a
 * module the engine would accept but the reader cannot rewrite gets the reader's message.
 */
async function prepare(bytes: Uint8Array): Promise<{ imports: readonly TypedImport[]; prepared: ReturnType<typeof instrumentModule> }> {
  try {
    return { imports: Object.freeze(readImports(bytes)), prepared: instrumentModule(bytes, { memoryMb: DEFAULT_VM_LIMITS.memoryMb }) };
  } catch (err) {
    if (!invalid(err)) throw err;
    await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>); // throws the engine's CompileError
    throw err;
  }
}

function named(entry: CachedModule, name: string): LoadedModule {
  return Object.freeze({ ...entry, name });
}

/** Cached compiles are instrumented ones: a new instrumentation version is a new entry. */
function cacheKey(sha256: string): string {
  return `${sha256}/i${INSTRUMENTATION_VERSION}`;
}

/** Bytes that can never compile: the engine's verdict, or the binary reader's. */
function invalid(err: unknown): boolean {
  return err instanceof WebAssembly.CompileError || (err instanceof GatewayError && err.code === 'GW_ERR_MODULE_INVALID');
}

/** GW_ERR_MODULE_SHA256 when `actual` is not the pinned digest (also for function components: control/module-sources.ts). */
export function checkPin(file: string, pinned: string, actual: string): void {
  if (!sameSha256(pinned, actual)) {
    throw new GatewayError('GW_ERR_MODULE_SHA256', `module ${file} does not match its pinned sha256: expected ${pinned}, got ${actual}`);
  }
}

function compileFailure(name: string, err: unknown): GatewayError {
  if (invalid(err)) {
    const reason = err instanceof GatewayError ? err.message : (err as Error).message;
    return new GatewayError('GW_ERR_MODULE_INVALID', `module ${name} is not valid WebAssembly: ${reason}`, { cause: err });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError('GW_ERR_MODULE_COMPILE', `module ${name} could not be compiled: ${reason}`, { cause: err });
}
