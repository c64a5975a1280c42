/**
 * Builds what the tests load before any test runs, so that `npm test` alone is enough on a fresh
 * clone:
 *   - the AssemblyScript filters of test/compat/proxy-runtime (its own toolchain, pinned);
 *   - the filters of filters/ (filters/dist, AssemblyScript and WAT examples) and the SDK test
 *     fixtures of test/filters/fixtures (their dist/), with filters/build.ts;
 *   - the example edge functions (filters/functions) and the test's misbehaving one
 *     (test/functions/fixtures), with componentize-js (filters/functions/build.ts).
 * Unchanged sources are served from their caches, so this costs well under a second after the
 * first build.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assembleExamples, buildFilters } from '../filters/build.js';
import { buildFunctions } from '../filters/functions/build.js';

const root = join(import.meta.dirname, '..');

function npm(args: string[], cwd: string): void {
  execFileSync('npm', args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
}

function buildCompat(): void {
  const compat = join(root, 'test/compat/proxy-runtime');
  const outputs = ['headers', 'callout', 'local-reply'].map((name) => join(compat, 'build', `${name}.wasm`));
  if (outputs.every((file) => existsSync(file))) return;
  if (!existsSync(join(compat, 'node_modules'))) npm(['ci', '--no-audit', '--no-fund'], compat);
  npm(['run', 'build'], compat);
}

export default async function setup(): Promise<void> {
  buildCompat();
  const log = (line: string): void => {
    if (line.startsWith('built ')) console.log(`global-setup: ${line}`);
  };
  await assembleExamples();
  await Promise.all([
    buildFilters({ log }),
    buildFilters({ sourceDir: join(root, 'test/filters/fixtures'), outDir: join(root, 'test/filters/fixtures/dist'), log }),
  ]);
  // componentize-js takes seconds and most of a gigabyte per component: one at a time, after the rest.
  await buildFunctions({ log });
  await buildFunctions({ sourceDir: join(root, 'test/functions/fixtures'), outDir: join(root, 'test/functions/fixtures/dist'), log });
}
