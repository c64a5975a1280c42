/**
 * Builds the example edge functions: every folder of filters/functions/ holding an `index.js`
 * becomes filters/dist/functions/<name>.wasm, a WebAssembly component exporting
 * `wasi:http/incoming-handler`, made with componentize-js (StarlingMonkey).
 *
 * A build takes about 13 s and 780 MB of memory, so functions are built one at a time, and one whose
 * files (every file of its folder), componentize-js version and WIT are unchanged since its last
 * build is not built again (filters/dist/functions/.cache.json); `force` rebuilds everything.
 * componentize-js is a devDependency: without it (a production install) nothing is built.
 *
 * Run by filters/build.ts (`npm run build`, `npm run build:filters`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const here = import.meta.dirname;
const root = resolve(here, '../..');
const defaultOutDir = join(root, 'filters/dist/functions');

const COMPONENTIZE_DIR = join(root, 'node_modules/@bytecodealliance/componentize-js');

/** The WASI version of componentize-js 0.23's engine; the WIT must name the same one to link. */
const WASI_VERSION = '0.2.10';
/** The WIT that jco ships, which is written for this version. */
const JCO_WIT_VERSION = '0.2.12';
const WIT_PACKAGES = ['wasi-cli', 'wasi-clocks', 'wasi-filesystem', 'wasi-http', 'wasi-io', 'wasi-random', 'wasi-sockets'];
const WORLD = `package edge:function;
world function {
  import wasi:cli/environment@${WASI_VERSION};
  export wasi:http/incoming-handler@${WASI_VERSION};
}
`;

/** `\0asm`, then the component layer's version (0x0d 0x00) and layer (0x01 0x00). */
const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

export interface FunctionBuildOptions {
  /** Ignore the cache. */
  readonly force?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Only these functions (default: all). */
  readonly only?: readonly string[];
  /** Folder holding one folder per function (default filters/functions/). */
  readonly sourceDir?: string;
  /** Where <name>.wasm goes (default filters/dist/functions/). */
  readonly outDir?: string;
}

export interface FunctionBuild {
  readonly name: string;
  readonly output: string;
  /** `cached`: nothing the build depends on changed since the last build. */
  readonly outcome: 'built' | 'cached';
  readonly bytes: number;
  readonly ms: number;
}

/** What the Node build of `@bytecodealliance/preview2-shim/filesystem` offers to set preopens. */
interface NodeShimFilesystem {
  _setPreopens(preopens: Record<string, string>): void;
  _getPreopens(): unknown[];
  _clearPreopens(): void;
}

interface CacheEntry {
  key: string;
  files: Record<string, string>;
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Writes through a temp file and a rename, so readers see the old or the new file, never a part. */
function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

function readCache(cacheFile: string): Record<string, CacheEntry> {
  try {
    return JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, CacheEntry>;
  } catch {
    return {};
  }
}

/** Function folders: those with an index.js. */
export function listFunctions(dir = here): string[] {
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory() && existsSync(join(dir, name, 'index.js')))
    .sort();
}

/** Every file under `dir`, relative to the repository root, sorted. */
function filesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((file) => join(dir, file))
    .filter((file) => statSync(file).isFile())
    .map((file) => relative(root, file))
    .sort();
}

/**
 * The WIT componentize-js builds against, as file → text (relative to the .wit folder). It is
 * generated rather than committed: the WASI packages ship with jco (componentize-js's own
 * dependency, so they match the toolchain), but for a newer WASI patch version than the engine
 * imports, and a component whose WIT names another version than the engine does not link. Only the
 * `@version` suffixes are rewritten; the 0.2.x patch releases share these interfaces.
 */
function witFiles(): Map<string, string> {
  // Where Node resolves jco from componentize-js: its own node_modules first, then the hoisted one.
  const jcoDir = [join(COMPONENTIZE_DIR, 'node_modules/@bytecodealliance/jco'), join(root, 'node_modules/@bytecodealliance/jco')]
    .find((dir) => existsSync(join(dir, 'package.json')));
  if (jcoDir === undefined) throw new Error('filters/functions: @bytecodealliance/jco (a dependency of componentize-js) is not installed');
  const builtin = join(jcoDir, 'lib/wit/builtin', JCO_WIT_VERSION);
  const files = new Map<string, string>([['world.wit', WORLD]]);
  for (const pkg of WIT_PACKAGES) {
    const dir = join(builtin, pkg);
    if (!existsSync(dir)) throw new Error(`filters/functions: ${relative(root, dir)} is missing; the installed jco no longer ships WASI ${JCO_WIT_VERSION}`);
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
      if (!statSync(join(dir, file)).isFile()) continue;
      files.set(join('deps', pkg, file), readFileSync(join(dir, file), 'utf8').replaceAll(`@${JCO_WIT_VERSION}`, `@${WASI_VERSION}`));
    }
  }
  return files;
}

function writeWit(files: Map<string, string>, witDir: string): void {
  for (const [file, text] of files) {
    const path = join(witDir, file);
    mkdirSync(dirname(path), { recursive: true });
    writeAtomic(path, text);
  }
}

/** A message naming the function when `bytes` is not a component, or null. */
function checkComponent(name: string, bytes: Uint8Array): string | null {
  // WebAssembly.validate only knows core modules; a component is told apart by its preamble.
  if (bytes.length >= COMPONENT_PREAMBLE.length && COMPONENT_PREAMBLE.every((b, i) => bytes[i] === b)) return null;
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `filters/functions/${name}: componentize-js did not produce a WebAssembly component (first bytes: ${head || 'none'})`;
}

/**
 * Builds the functions that changed (or all, with `force`), one at a time. Throws an Error naming
 * the functions that failed, after building the others.
 */
export async function buildFunctions(options: FunctionBuildOptions = {}): Promise<FunctionBuild[]> {
  const log = options.log ?? (() => {});
  if (!existsSync(join(COMPONENTIZE_DIR, 'package.json'))) {
    log('skipped filters/functions: @bytecodealliance/componentize-js is not installed (a devDependency)');
    return [];
  }
  const sourceDir = options.sourceDir ?? here;
  const outDir = options.outDir ?? defaultOutDir;
  const witDir = join(outDir, '.wit');
  const cacheFile = join(outDir, '.cache.json');
  const names = listFunctions(sourceDir).filter((n) => options.only === undefined || options.only.includes(n));
  if (names.length === 0) return [];
  mkdirSync(outDir, { recursive: true });
  const version = (JSON.parse(readFileSync(join(COMPONENTIZE_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  const wit = witFiles();
  const toolKey = sha256(JSON.stringify([version, [...wit].map(([file, text]) => [file, sha256(text)])]));
  const cache = readCache(cacheFile);
  const results: FunctionBuild[] = [];
  const failures: string[] = [];
  let componentize: typeof import('@bytecodealliance/componentize-js').componentize | undefined;
  let clearPreopens: (() => void) | undefined;
  try {
    for (const name of names) {
      const output = join(outDir, `${name}.wasm`);
      const files = Object.fromEntries(filesOf(join(sourceDir, name)).map((file) => [file, sha256(readFileSync(join(root, file)))]));
      const key = sha256(JSON.stringify([toolKey, files]));
      if (!options.force && cache[name]?.key === key && existsSync(output)) {
        results.push({ name, output, outcome: 'cached', bytes: statSync(output).size, ms: 0 });
        log(`cached ${relative(root, output)}`);
        continue;
      }
      if (componentize === undefined) {
        writeWit(wit, witDir);
        // componentize-js runs its WIT splicer (a component) on preview2-shim, which since 0.26
        // starts with no preopened directories; the splicer then cannot read the WIT folder
        // ("reading file …/wit: No such file or directory (os error 44)"). Preopening the host's
        // root lets it read absolute paths. The shim's preopens are process-wide, so they are
        // cleared again afterwards when there were none.
        // Cast: the package lists its "types" condition before "node", so TypeScript sees the
        // browser typings (in-memory file data) rather than the Node ones (host paths).
        const shim = (await import('@bytecodealliance/preview2-shim/filesystem')) as unknown as NodeShimFilesystem;
        if (shim._getPreopens().length === 0) clearPreopens = shim._clearPreopens;
        shim._setPreopens({ '/': '/' });
        // Imported only now: it loads the splicer, which a cached build does not need.
        componentize = (await import('@bytecodealliance/componentize-js')).componentize;
      }
      const started = Date.now();
      try {
        const { component } = await componentize({ sourcePath: join(sourceDir, name, 'index.js'), witPath: witDir, worldName: 'function' });
        const problem = checkComponent(name, component);
        if (problem !== null) {
          failures.push(problem);
          continue;
        }
        writeAtomic(output, component);
        cache[name] = { key, files };
        // Saved after each function, so an interrupted build keeps what it finished.
        writeAtomic(cacheFile, `${JSON.stringify(cache, null, 2)}\n`);
        const ms = Date.now() - started;
        results.push({ name, output, outcome: 'built', bytes: component.length, ms });
        log(`built ${relative(root, output)} (${component.length} bytes, ${ms} ms)`);
      } catch (err) {
        failures.push(`filters/functions/${name}: componentize-js failed\n${(err as Error).message}`);
      }
    }
  } finally {
    clearPreopens?.();
  }
  if (failures.length > 0) throw new Error(`function build failed:\n${failures.join('\n')}`);
  return results.sort((a, b) => a.name.localeCompare(b.name));
}
