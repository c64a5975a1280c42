/**
 * Builds what the tests load before any test runs, so that `npm test` alone is enough on a fresh
 * clone: the AssemblyScript filters of test/compat/proxy-runtime (its own toolchain, pinned).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

function npm(args: string[], cwd: string): void {
  execFileSync('npm', args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
}

export default function setup(): void {
  const compat = join(root, 'test/compat/proxy-runtime');
  const outputs = ['headers', 'callout', 'local-reply'].map((name) => join(compat, 'build', `${name}.wasm`));
  if (outputs.every((file) => existsSync(file))) return;
  if (!existsSync(join(compat, 'node_modules'))) npm(['ci', '--no-audit', '--no-fund'], compat);
  npm(['run', 'build'], compat);
}
