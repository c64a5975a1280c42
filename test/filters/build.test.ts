/**
 * filters/build.ts: which folders it treats as filters, the flags asc really compiles with, and
 * its cache, both ways: a filter whose sources, flags and asc version are unchanged is served
 * from the cache, and any change rebuilds it. The cache tests build a tiny filter of their own in
 * a scratch folder inside the repository (asc resolves the SDK and the `--use abort=` name
 * relative to the repository root), so they never touch filters/dist.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASC_FLAGS, buildFilters, cacheKey, listFilters } from '../../filters/build.js';

const root = join(import.meta.dirname, '..', '..');
/** A build is a few seconds of asc per filter on an idle machine; leave room for a busy one. */
const BUILD_MS = 180_000;

describe('the filter build', () => {
  it('treats every folder with an index.ts as a filter, but not sdk, dist or examples', () => {
    expect(listFilters(join(root, 'filters'))).toContain('headers');
    expect(listFilters(join(root, 'filters'))).not.toEqual(expect.arrayContaining(['sdk']));
    expect(listFilters(join(root, 'test/filters/fixtures'))).toEqual(expect.arrayContaining(['callout', 'probe']));
  });

  it('records in the cache of filters/dist every source file asc read for a shipped filter, by SHA-256', () => {
    const cache = JSON.parse(readFileSync(join(root, 'filters/dist/.asc-cache.json'), 'utf8')) as Record<string, { files: Record<string, string> }>;
    const files = cache.headers.files;
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['filters/headers/index.ts', 'filters/headers/config.ts', 'filters/sdk/json.ts', 'filters/sdk/abort.ts']));
    const sha = createHash('sha256').update(readFileSync(join(root, 'filters/sdk/callbacks/lifecycle.ts'), 'utf8')).digest('hex');
    expect(files['filters/sdk/callbacks/lifecycle.ts']).toBe(sha);
  });
});

describe('a filter built by the filter build', () => {
  let scratch: string;
  let sourceDir: string;
  let outDir: string;
  let entry: string;
  let output: string;
  const build = async (): Promise<'built' | 'cached'> => {
    const results = await buildFilters({ sourceDir, outDir });
    expect(results.map((r) => r.name)).toEqual(['tiny']);
    return results[0].outcome;
  };
  const sdk = (from: string): string => relative(from, join(root, 'filters/sdk'));
  const writeGreeting = (greeting: string): void => {
    writeFileSync(join(sourceDir, 'tiny', 'greeting.ts'), `// @ts-nocheck: AssemblyScript\nexport const GREETING = "${greeting}";\n`);
  };
  const cacheFile = (): string => join(outDir, '.asc-cache.json');
  const readCache = (): Record<string, { key: string; files: Record<string, string> }> => JSON.parse(readFileSync(cacheFile(), 'utf8'));

  beforeAll(async () => {
    scratch = mkdtempSync(join(root, 'test/filters/.build-'));
    sourceDir = join(scratch, 'src');
    outDir = join(scratch, 'dist');
    const dir = join(sourceDir, 'tiny');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.ts'), [
      '// @ts-nocheck: AssemblyScript, a scratch filter of test/filters/build.test.ts',
      `import { RootContext, logInfo, registerRootContext } from "${sdk(dir)}/index";`,
      'import { GREETING } from "./greeting";',
      `export * from "${sdk(dir)}/exports";`,
      'class Tiny extends RootContext {',
      '  onConfigure(size: usize): bool { logInfo(GREETING); return true; }',
      '}',
      'registerRootContext((id: u32) => new Tiny(id), "tiny");',
      '',
    ].join('\n'));
    writeGreeting('hello');
    entry = relative(root, join(dir, 'index.ts'));
    output = join(outDir, 'tiny.wasm');
    expect(await build()).toBe('built');
  }, BUILD_MS);

  afterAll(() => {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('is compiled without a cache entry, and shows each asc flag: the name section (--debug), the incremental runtime, the SDK abort handler', () => {
    const module = new WebAssembly.Module(readFileSync(output));
    const names = readFileSync(output).toString('latin1');
    expect(WebAssembly.Module.customSections(module, 'name')).toHaveLength(1);
    expect(names).toContain('~lib/rt/itcms/__new');
    expect(names).not.toContain('~lib/rt/stub/');
    expect(names).toContain('filters/sdk/abort/proxyAbort');
    expect(WebAssembly.Module.imports(module).filter((i) => !i.name.startsWith('proxy_'))).toEqual([]);
    expect(readCache().tiny.key).toBe(cacheKey(entry));
  });

  it('is byte for byte what asc makes of it with -O3, --debug, the incremental runtime and the SDK abort handler', () => {
    const reference = join(scratch, 'reference.wasm');
    const flags = ['-O3', '--debug', '--runtime', 'incremental', '--use', 'abort=filters/sdk/abort/proxyAbort'];
    execFileSync(process.execPath, [join(root, 'node_modules/assemblyscript/bin/asc.js'), entry, ...flags, '--outFile', reference],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    expect(Buffer.compare(readFileSync(output), readFileSync(reference))).toBe(0);
  }, BUILD_MS);

  it('is served from the cache while nothing changed, without writing the output again', async () => {
    const before = statSync(output).mtimeMs;
    expect(await build()).toBe('cached');
    expect(statSync(output).mtimeMs).toBe(before);
  }, BUILD_MS);

  it('is rebuilt when a file its entry imports changes, and the module changes with it', async () => {
    const before = readFileSync(output);
    writeGreeting('hello again');
    expect(await build()).toBe('built');
    expect(readFileSync(output).equals(before)).toBe(false);
    expect(readFileSync(output).includes(Buffer.from('hello again', 'utf16le'))).toBe(true); // AssemblyScript strings are UTF-16
    expect(await build()).toBe('cached');
  }, BUILD_MS);

  it('is rebuilt when its cache entry was made with other flags, and the entry is keyed by the real ones again', async () => {
    const cache = readCache();
    cache.tiny.key = cacheKey(entry, [...ASC_FLAGS, '--noAssert']);
    writeFileSync(cacheFile(), JSON.stringify(cache));
    expect(await build()).toBe('built');
    expect(readCache().tiny.key).toBe(cacheKey(entry));
  }, BUILD_MS);

  it('is rebuilt when its output is gone, whatever the cache says', async () => {
    rmSync(output);
    expect(await build()).toBe('built');
    expect(statSync(output).size).toBeGreaterThan(0);
  }, BUILD_MS);
});
