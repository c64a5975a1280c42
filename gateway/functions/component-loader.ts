/**
 * A function's component, ready to instantiate: its bytes transpiled by jco into bindings (an ES
 * module exporting instantiate()) and core modules, the core modules compiled once. Done at load,
 * never per request, and kept under the component's SHA-256:
 *   - in memory, in the module store's LRU and byte budget (ModuleStore.keep), beside the
 *     plugins' modules (a swap back to a recent version, or several functions on one component,
 *     compile nothing);
 *   - on disk, under <modules.cacheDir>/functions/v1/<sha256>/, because transpiling takes one to three
 *     seconds of jco's own WebAssembly: a restart reads the result instead. The files are
 *     written to a temporary folder renamed into place, so a reader never sees half of them.
 * Transpiling runs in a worker thread (transpile-worker.ts) so it does not stall serving.
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GatewayError } from '../errors.js';
import type { ModuleStore } from '../modules/module-store.js';
import { sha256Hex } from '../modules/sha256.js';
import { capDefinedMemories } from '../modules/wasm/memory-max.js';
import { exportMutableGlobals } from '../modules/wasm/export-globals.js';
import { startThread } from './thread.js';
import { PROVIDED, unversioned } from './wasi-interfaces.js';

export interface LoadedComponent {
  readonly sha256: string;
  /** URL of the bindings module, for the worker threads to import. */
  readonly glueUrl: string;
  readonly modules: Record<string, WebAssembly.Module>;
  readonly imports: string[];
  /** Bytes of the core modules: what the store's byte budget counts. */
  readonly size: number;
}

/** .mjs: the bindings are an ES module wherever the cache folder is (no package.json says so there). */
const BINDINGS = 'component.mjs';
const META = 'imports.json';
/** A component's preamble: "\0asm", then version 0x0d and layer 1 (a core module has layer 0). */
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];


/** Whether `bytes` start as a component does (watch mode's test that a file is whole enough to try). */
export function isComponentFile(bytes: Uint8Array): boolean {
  return bytes.length > COMPONENT_PREAMBLE.length && COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b);
}

/** Checks the preamble: a clear word for a core module or other bytes given as a function. */
export function checkComponent(bytes: Uint8Array, label: string): void {
  const isWasm = bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (isWasm && bytes[4] === 1 && bytes[6] === 0) {
    throw new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: is a core WebAssembly module, not a component (build it as a wasi:http component, e.g. with componentize-js)`);
  }
  if (!COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b)) {
    throw new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: is not a WebAssembly component (no component preamble)`);
  }
}

const WASM_PAGE = 65536;
/** The cache folder's layout version: a gateway with another layout keeps its own. */
const LAYOUT = 'v1';

/** `memoryMb`: the cap every core module's own memories get (limits.memoryMb). */
export function loadComponent(bytes: Uint8Array, label: string, cacheDir: string, memoryMb: number, store: ModuleStore): Promise<LoadedComponent> {
  checkComponent(bytes, label);
  const sha256 = sha256Hex(bytes);
  return store.keep(`component/${sha256}/${memoryMb}`,
    () => prepare(bytes, sha256, label, join(cacheDir, 'functions', LAYOUT, sha256), (memoryMb * 1024 * 1024) / WASM_PAGE));
}

async function prepare(bytes: Uint8Array, sha256: string, label: string, dir: string, maxPages: number): Promise<LoadedComponent> {
  const files = await readCached(dir) ?? await transpileAndKeep(bytes, label, dir);
  const imports = JSON.parse(Buffer.from(files.get(META)!).toString('utf8')) as string[];
  const missing = imports.filter((name) => !(PROVIDED as readonly string[]).includes(unversioned(name)));
  if (missing.length > 0) {
    throw new GatewayError('GW_ERR_FUNCTION_IMPORT', `${label}: imports ${missing.join(', ')}, which functions do not provide`);
  }
  const modules: Record<string, WebAssembly.Module> = {};
  let size = 0;
  for (const [name, data] of files) {
    if (!name.endsWith('.wasm')) continue;
    const capped = exportMutableGlobals(capDefinedMemories(data, maxPages, `${label}: core module ${name}`));
    try {
      modules[name] = await WebAssembly.compile(capped as Uint8Array<ArrayBuffer>);
    } catch (err) {
      throw new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: core module ${name} does not compile: ${(err as Error).message}`);
    }
    size += data.length;
  }
  return { sha256, glueUrl: pathToFileURL(join(dir, BINDINGS)).href, modules, imports, size };
}

async function readCached(dir: string): Promise<Map<string, Uint8Array> | null> {
  try {
    const names = await readdir(dir);
    if (!names.includes(BINDINGS) || !names.includes(META)) return null;
    const files = new Map<string, Uint8Array>();
    for (const name of names) if (name === META || name.endsWith('.wasm')) files.set(name, await readFile(join(dir, name)));
    return files;
  } catch {
    return null;
  }
}

async function transpileAndKeep(bytes: Uint8Array, label: string, dir: string): Promise<Map<string, Uint8Array>> {
  const result = await transpile(bytes, label);
  const files = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(result.files)) {
    if (name === 'component.js') files.set(BINDINGS, data);
    else if (name.endsWith('.wasm')) files.set(name, data);
  }
  if (!files.has(BINDINGS)) throw new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: jco produced no bindings`);
  files.set(META, Buffer.from(JSON.stringify(result.imports)));
  const temp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  await mkdir(temp, { recursive: true });
  for (const [name, data] of files) await writeFile(join(temp, name), data);
  try {
    await rename(temp, dir);
  } catch {
    // Another process put the same component there first (its files are the same), or a
    // broken folder is in the way: replace that one.
    if (await readCached(dir) === null) {
      await rm(dir, { recursive: true, force: true });
      await rename(temp, dir).catch(() => {});
    }
    await rm(temp, { recursive: true, force: true });
  }
  return files;
}

function transpile(bytes: Uint8Array, label: string): Promise<{ files: Record<string, Uint8Array>; imports: string[] }> {
  return new Promise((resolve, reject) => {
    const thread = startThread('transpile-worker', { workerData: bytes });
    thread.once('message', (m: { ok: true; files: Record<string, Uint8Array>; imports: string[] } | { ok: false; message: string }) => {
      void thread.terminate();
      if (m.ok) resolve(m);
      else reject(new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: jco could not transpile it: ${m.message}`));
    });
    thread.once('error', (err) => reject(new GatewayError('GW_ERR_FUNCTION_COMPONENT', `${label}: jco could not transpile it: ${err.message}`)));
  });
}
