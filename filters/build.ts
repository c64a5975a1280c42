/**
 * Builds the filters:
 *   - every AssemblyScript filter, a folder with an `index.ts` (filters/<name>/index.ts), into
 *     filters/dist/<name>.wasm with asc, in parallel worker threads;
 *   - the WAT examples (filters/examples/*.wat) into filters/dist/<name>.wasm with wabt.
 *   - from the CLI only, the example edge functions (filters/functions/build.ts).
 *
 * Offline and deterministic: the same sources and the same assemblyscript version give the same
 * bytes. A filter whose sources (every file asc read) and flags are unchanged since its last build
 * is not compiled again (filters/dist/.asc-cache.json); `--force` rebuilds everything. Outputs
 * are written atomically (temp file + rename), so a concurrent reader never sees half a module.
 *
 *   npm run build:filters [-- --force] [-- headers …]
 *
 * `buildFilters` is also what test/global-setup.ts runs, for filters/ and for the test fixtures.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import wabtInit from 'wabt';
import { buildFunctions } from './functions/build.js';

const here = import.meta.dirname;
const root = resolve(here, '..');

/**
 * The asc flags of every filter:
 *   -O3            speed over size;
 *   --debug        keeps the name section (about 5 KB), so traps show function names; the code is
 *                  the same as without it;
 *   --runtime incremental
 *                  TLSF allocator + incremental GC, because a filter lives for millions of
 *                  requests: `stub` never frees memory and `minimal` needs explicit collections;
 *   --use abort=…  the SDK's abort handler (logs at critical level, then traps) instead of the
 *                  `env.abort` import, which Envoy does not provide. The name is relative to the
 *                  repository root, which is asc's base directory here.
 */
export const ASC_FLAGS: readonly string[] = ['-O3', '--debug', '--runtime', 'incremental', '--use', 'abort=filters/sdk/abort/proxyAbort'];

/** Folders of filters/ that are not filters. */
const NOT_FILTERS = new Set(['sdk', 'dist', 'examples', 'functions', 'node_modules']);

export interface BuildOptions {
  /** Folder holding one folder per filter (default filters/). */
  readonly sourceDir?: string;
  /** Where <name>.wasm goes (default filters/dist/). */
  readonly outDir?: string;
  /** Only these filters (default: all). */
  readonly only?: readonly string[];
  /** Ignore the cache. */
  readonly force?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface FilterBuild {
  readonly name: string;
  readonly output: string;
  /** `cached`: the sources did not change since the last build. */
  readonly outcome: 'built' | 'cached';
  readonly bytes: number;
  readonly ms: number;
}

interface CacheEntry {
  key: string;
  files: Record<string, string>;
}

interface CompileAnswer {
  ok: boolean;
  wasm: Uint8Array<ArrayBuffer> | null;
  files: Record<string, string>;
  stderr: string;
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

function ascVersion(): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules/assemblyscript/package.json'), 'utf8')) as { version: string }).version;
}

/** Writes through a temp file and a rename, so readers see the old or the new file, never a part. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Filter folders under `dir`: those with an index.ts. */
export function listFilters(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !NOT_FILTERS.has(name) && statSync(join(dir, name)).isDirectory() && existsSync(join(dir, name, 'index.ts')))
    .sort();
}

function readCache(file: string): Record<string, CacheEntry> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, CacheEntry>;
  } catch {
    return {};
  }
}

/**
 * What a filter's cache entry is keyed by, besides the sources asc read: the asc version, the flags
 * and the entry file (relative to the repository root). A change of any of them rebuilds.
 */
export function cacheKey(entry: string, flags: readonly string[] = ASC_FLAGS, version = ascVersion()): string {
  return sha256(JSON.stringify([version, flags, entry]));
}

function upToDate(entry: CacheEntry | undefined, key: string, output: string): boolean {
  if (entry === undefined || entry.key !== key || !existsSync(output)) return false;
  for (const [file, hash] of Object.entries(entry.files)) {
    const path = join(root, file);
    if (!existsSync(path) || sha256(readFileSync(path, 'utf8')) !== hash) return false;
  }
  return true;
}

/** What a module built with the SDK must look like; a message naming the problem, or null. */
function checkModule(entry: string, wasm: Uint8Array<ArrayBuffer>): string | null {
  const module = new WebAssembly.Module(wasm);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  for (const name of ['proxy_abi_version_0_2_1', 'proxy_on_memory_allocate', 'proxy_on_context_create']) {
    if (!exports.has(name)) return `${entry}: the module does not export ${name}; add \`export * from "../sdk/callbacks/lifecycle";\` (or "../sdk/exports") to it`;
  }
  const foreign = WebAssembly.Module.imports(module).filter((i) => i.module !== 'env' || !i.name.startsWith('proxy_'));
  if (foreign.length > 0) {
    return `${entry}: imports outside the Proxy-Wasm ABI (${foreign.map((i) => `${i.module}.${i.name}`).join(', ')}); `
      + 'they would not link in Envoy';
  }
  return null;
}

/** A small pool of asc workers; each compiles one filter at a time. */
async function compileAll(jobs: Array<{ entry: string }>, onDone: (index: number, answer: CompileAnswer) => void): Promise<void> {
  const size = Math.max(1, Math.min(jobs.length, availableParallelism()));
  let next = 0;
  const run = async (): Promise<void> => {
    const worker = new Worker(new URL('./build-worker.mjs', import.meta.url));
    try {
      while (next < jobs.length) {
        const index = next++;
        const answer = await new Promise<CompileAnswer>((resolveJob, reject) => {
          worker.once('message', resolveJob);
          worker.once('error', reject);
          worker.postMessage({ root, entry: jobs[index].entry, flags: ASC_FLAGS });
        });
        worker.removeAllListeners('error');
        onDone(index, answer);
      }
    } finally {
      await worker.terminate();
    }
  };
  await Promise.all(Array.from({ length: size }, run));
}

/**
 * Compiles every AssemblyScript filter of `sourceDir` that changed (or all, with `force`) into
 * `outDir`. Throws an Error naming the filter when one fails to compile or is not a valid
 * Proxy-Wasm module.
 */
export async function buildFilters(options: BuildOptions = {}): Promise<FilterBuild[]> {
  const sourceDir = options.sourceDir ?? here;
  const outDir = options.outDir ?? join(here, 'dist');
  const log = options.log ?? (() => {});
  const names = listFilters(sourceDir).filter((n) => options.only === undefined || options.only.includes(n));
  mkdirSync(outDir, { recursive: true });
  const cacheFile = join(outDir, '.asc-cache.json');
  const cache = readCache(cacheFile);
  const version = ascVersion();
  const results: FilterBuild[] = [];
  const jobs: Array<{ name: string; entry: string; output: string; key: string }> = [];
  for (const name of names) {
    const entry = relative(root, join(sourceDir, name, 'index.ts'));
    const output = join(outDir, `${name}.wasm`);
    const key = cacheKey(entry, ASC_FLAGS, version);
    if (!options.force && upToDate(cache[name], key, output)) {
      results.push({ name, output, outcome: 'cached', bytes: statSync(output).size, ms: 0 });
      log(`cached ${relative(root, output)}`);
    } else {
      jobs.push({ name, entry, output, key });
    }
  }
  const started = Date.now();
  const failures: string[] = [];
  await compileAll(jobs, (index, answer) => {
    const job = jobs[index];
    if (!answer.ok || answer.wasm === null) {
      failures.push(`${job.entry}: compilation failed\n${answer.stderr}`);
      return;
    }
    const problem = checkModule(job.entry, answer.wasm);
    if (problem !== null) {
      failures.push(problem);
      return;
    }
    writeAtomic(job.output, answer.wasm);
    cache[job.name] = { key: job.key, files: Object.fromEntries(Object.entries(answer.files).map(([f, text]) => [f, sha256(text)])) };
    const ms = Date.now() - started;
    results.push({ name: job.name, output: job.output, outcome: 'built', bytes: answer.wasm.length, ms });
    log(`built ${relative(root, job.output)} (${answer.wasm.length} bytes, ${ms} ms)`);
  });
  if (jobs.length > 0) writeAtomic(cacheFile, `${JSON.stringify(cache, null, 2)}\n`);
  if (failures.length > 0) throw new Error(`filter build failed:\n${failures.join('\n')}`);
  return results.sort((a, b) => a.name.localeCompare(b.name));
}

/** Assembles the WAT examples of filters/examples into `outDir`. */
export async function assembleExamples(outDir = join(here, 'dist'), log: (line: string) => void = () => {}): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const wabt = await wabtInit();
  for (const file of readdirSync(join(here, 'examples')).filter((f) => f.endsWith('.wat')).sort()) {
    const source = join(here, 'examples', file);
    const parsed = wabt.parseWat(source, readFileSync(source, 'utf8'), { bulk_memory: true });
    parsed.validate();
    const target = join(outDir, `${basename(file, '.wat')}.wasm`);
    const bytes = parsed.toBinary({ write_debug_names: true }).buffer;
    parsed.destroy();
    // Assembling is quick; writing only what changed keeps a watching gateway (and make-like tools) quiet.
    if (existsSync(target) && readFileSync(target).equals(bytes)) continue;
    writeAtomic(target, bytes);
    log(`built ${relative(root, target)}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const only = args.filter((a) => !a.startsWith('--'));
  const started = Date.now();
  try {
    await assembleExamples(undefined, console.log);
    await buildFilters({ force: args.includes('--force'), only: only.length > 0 ? only : undefined, log: console.log });
    await buildFunctions({ force: args.includes('--force'), only: only.length > 0 ? only : undefined, log: console.log });
    console.log(`filters built in ${Date.now() - started} ms`);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
