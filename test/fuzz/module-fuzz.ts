/**
 * The module fuzz driver: real seed modules (the shipped filters, the SDK-shaped fixtures, small
 * WAT guests), mutated, then taken through the gateway's public load path exactly as a plugin is:
 * the module store (compile, or load from a file with its sha256 pin) → VmPool.startPlugin
 * (instantiation, start functions, on_vm_start, on_configure) → a stream's request headers and
 * its end (on_log, on_done, on_delete) → the root's on_done. Whatever the store and the VM add
 * to that path (instrumentation, import checks, limits) is fuzzed with it.
 *
 * Each mutant ends in one outcome: `ok`, or the stage and the GW_ERR_* code it stopped with.
 * Anything else (an exception that is not a GatewayError with a known code) is an escape.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogLevel } from '../../gateway/abi/enums.js';
import { parseConfig } from '../../gateway/config/load.js';
import { ErrorCodes, GatewayError } from '../../gateway/errors.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/log.js';
import { PluginsError } from '../../gateway/proxy/generation.js';
import { createModuleStore, type LoadedModule, type ModuleStore } from '../../gateway/modules/module-store.js';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import { VmPool } from '../../gateway/abi/vm-pool.js';
import { MemorySharedData, MemorySharedQueues } from '../../gateway/shared-state/memory.js';
import { Guest, loggingFilter } from '../helpers/guests.js';
import { MemoryMetrics, TestStream } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';
import { mutantRand, mutate } from './mutate.js';

const ROOT = join(import.meta.dirname, '../..');

export interface SeedModule {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** A plugin configuration the unmutated module accepts, so mutants get past on_configure. */
  readonly configuration: string;
}

/** Configurations the shipped filters accept (from their READMEs and config/gateway.yaml). */
const FILTER_CONFIGS: Readonly<Record<string, unknown>> = {
  'api-key': { keys: [{ name: 'demo', sha256: 'c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c' }], header: 'x-api-key' },
  'body-guard': { maxRequestBytes: 65536, jsonContentTypes: ['application/json'], redact: ['#{4}-#{4}-#{4}-#{4}'] },
  cors: { allowOrigins: ['https://app.example.com'], allowMethods: ['GET', 'POST'], allowHeaders: ['content-type'], maxAge: 600 },
  'ext-authz': { cluster: 'authz', path: '/check', timeoutMs: 500 },
  headers: { request: { set: { 'x-edge': '1' } }, response: { remove: ['server'] } },
  jwt: { keys: [{ kid: 'hs-2024', alg: 'HS256', secret: 'a shared secret of at least 32 bytes!' }] },
  'rate-limit': { key: { source: 'client' }, capacity: 20, refillPerSecond: 10 },
};

/** A guest that reads and writes headers and answers locally for /deny. */
function headerGuest(): string {
  const g = new Guest();
  return g.build({
    on: {
      proxy_on_context_create: true,
      proxy_on_request_headers: `(call $log_header (i32.const 0) ${g.lit(':path')})
        (call $add_header (i32.const 0) ${g.lit('x-fuzz')} ${g.lit('1')})
        (if (call $path_is ${g.lit('/deny')})
          (then (drop (call $proxy_send_local_response (i32.const 403) ${g.lit('')} ${g.lit('no')} ${g.pairs([['x-a', 'b']])} (i32.const -1)))))
        (i32.const 0)`,
      proxy_on_log: true,
      proxy_on_done: true,
      proxy_on_delete: true,
    },
  });
}

/** Every seed: filters/dist/*.wasm, test/fixtures/sdk-shapes/*.wat and the guests above. */
export function seedModules(): SeedModule[] {
  const seeds: SeedModule[] = [];
  const dist = join(ROOT, 'filters/dist');
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.wasm')).sort()) {
    const name = file.slice(0, -'.wasm'.length);
    const config = FILTER_CONFIGS[name];
    seeds.push({ name, bytes: new Uint8Array(readFileSync(join(dist, file))), configuration: config === undefined ? '' : JSON.stringify(config) });
  }
  const shapes = join(ROOT, 'test/fixtures/sdk-shapes');
  for (const file of readdirSync(shapes).filter((f) => f.endsWith('.wat')).sort()) {
    seeds.push({ name: `sdk-shape ${file}`, bytes: watToBytes(readFileSync(join(shapes, file), 'utf8'), file), configuration: '' });
  }
  seeds.push({ name: 'wat logging filter', bytes: watToBytes(loggingFilter()), configuration: '' });
  seeds.push({ name: 'wat header guest', bytes: watToBytes(headerGuest()), configuration: '' });
  seeds.push({ name: 'wat minimal guest', bytes: watToBytes(guestWat({ body: '' })), configuration: '' });
  return seeds;
}

/**
 * A guest whose on_vm_start never returns: with a CPU budget in force it fails to start with
 * GW_ERR_ABI_BUDGET; without one it hangs (probed in a child process, supervise.ts).
 */
export const LOOPING_GUEST: SeedModule = {
  name: 'looping guest',
  bytes: watToBytes(guestWat({ body: '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (loop $spin (br $spin)) (i32.const 1))' })),
  configuration: '',
};

/** How one mutant ended: `ok`, or `<stage>:<GW_ERR code>` (stages: load, start, stream). */
export type Outcome = string;

/** Thrown for anything that is not a GatewayError with a code of the table. */
export class Escape extends Error {}

function coded(stage: string, err: unknown): Outcome {
  if (err instanceof GatewayError && err.code in ErrorCodes) return `${stage}:${err.code}`;
  const what = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
  throw new Escape(`${stage}: not a coded GatewayError: ${what}`);
}

const REQUEST: Array<[string, string]> = [
  [':method', 'GET'], [':path', '/deny'], [':authority', 'example.com'], [':scheme', 'http'],
  ['x-api-key', 'demo-key'], ['origin', 'https://app.example.com'], ['content-type', 'application/json'],
];

// A logger that discards but asks for every level, so proxy_log's reads of guest memory run.
const logger = { level: () => LogLevel.TRACE, log: (): void => undefined };

/** Takes one module's bytes through the load path; `file` loads them from disk with a pin instead. */
export async function loadPath(store: ModuleStore, bytes: Uint8Array, seed: SeedModule, file: string | null): Promise<Outcome> {
  let module: LoadedModule;
  try {
    module = file === null ? await store.compile(bytes, `mutant of ${seed.name}`) : await store.load({ file, sha256: sha256Hex(bytes) });
  } catch (err) {
    return coded('load', err);
  }
  const pool = new VmPool({ logger, metrics: new MemoryMetrics(), sharedData: new MemorySharedData(), sharedQueues: new MemorySharedQueues() });
  let root;
  try {
    root = pool.startPlugin(module, { vmId: '', vmConfiguration: new Uint8Array(0) },
      { name: 'fuzz', rootId: '', configuration: Buffer.from(seed.configuration) });
  } catch (err) {
    return coded('start', err);
  }
  const vm = root.vm;
  const stream = vm.createStream(root, new TestStream(REQUEST));
  stream.onRequestHeaders(REQUEST.length, false);
  stream.finish();
  pool.stopPlugin(root);
  if (vm.failure === null) return 'ok';
  if (!(vm.failure.code in ErrorCodes)) throw new Escape(`stream: VM failed with an unknown code ${vm.failure.code}`);
  return `stream:${vm.failure.code}`;
}

export interface MutantResult {
  readonly index: number;
  readonly seed: string;
  readonly how: string;
  /** Which entry of the store took the bytes: `compile`, or `file` (store.load with a pin). */
  readonly via: 'compile' | 'file';
  readonly outcome: Outcome;
}

/**
 * Mutant `index` of run `seed`: which seed module, which mutations, and how it ended. One in
 * sixteen goes through a file in `dir` and the pinned `store.load`, the others through `compile`.
 */
export async function runMutant(seed: number, index: number, seeds: readonly SeedModule[], store: ModuleStore, dir: string): Promise<MutantResult> {
  const r = mutantRand(seed, index);
  const base = r.pick(seeds);
  const { bytes, how } = mutate(base.bytes, r);
  let file: string | null = null;
  if (r.int(16) === 0) {
    file = join(dir, 'mutant.wasm');
    writeFileSync(file, bytes);
  }
  return { index, seed: base.name, how, via: file === null ? 'compile' : 'file', outcome: await loadPath(store, bytes, base, file) };
}

/**
 * Mutants [from, from + count) as the plugins of one configuration (each its own file and route
 * filter), through Gateway.validate: the whole of Generation.build, its collection of every
 * failing plugin and the disposal of those that started. Returns the codes of the failures, in
 * plugin order, and how many started; throws what is not a PluginsError of coded failures.
 */
export async function validateMutants(seed: number, from: number, count: number, seeds: readonly SeedModule[], dir: string): Promise<{ started: number; failures: string[] }> {
  const plugins = [];
  for (let i = from; i < from + count; i++) {
    const r = mutantRand(seed, i);
    const base = r.pick(seeds);
    const file = join(dir, `mutant-${i}.wasm`);
    writeFileSync(file, mutate(base.bytes, r).bytes);
    plugins.push({ name: `m${i}`, module: file, configuration: base.configuration });
  }
  const config = parseConfig({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
    plugins,
    routes: [{ name: 'all', cluster: 'backend', filters: plugins.map((p) => p.name) }],
  }, 'fuzz.yaml');
  const silent = createLogger('error');
  silent.level = 'silent';
  try {
    const summary = await Gateway.validate(config, { logger: silent });
    return { started: summary.plugins, failures: [] };
  } catch (err) {
    if (!(err instanceof PluginsError)) throw err;
    for (const f of err.failures) coded('build', f.error);
    return { started: count - err.failures.length, failures: err.failures.map((f) => f.error.code) };
  }
}

/** A store as the gateway makes one, bounded small: thousands of distinct mutants pass through. */
export function fuzzStore(): ModuleStore {
  return createModuleStore({ maxBytes: 4 * 1024 * 1024 });
}
