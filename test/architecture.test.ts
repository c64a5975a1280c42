/**
 * The layering rules of the design, checked on the import lines: abi/ knows only WebAssembly,
 * node:crypto and the shared leaves; lower layers never import upper ones.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../gateway/errors.js';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gms)].map((m) => m[1]);
}

/** For each layer, the module specifiers (or folders of gateway/) it may import. */
const RULES: Record<string, { packages: string[]; layers: string[] }> = {
  abi: { packages: ['node:crypto'], layers: ['abi', 'errors.ts', 'log.ts'] },
  modules: { packages: ['node:crypto', 'node:fs', 'node:fs/promises', 'lru-cache', 'undici', 'ioredis'], layers: ['modules', 'abi', 'errors.ts', 'log.ts'] },
  'shared-state': { packages: ['ioredis'], layers: ['shared-state', 'abi', 'errors.ts', 'log.ts'] },
  config: { packages: ['node:fs', 'yaml', 'zod', 're2js'], layers: ['config', 'errors.ts'] },
  proxy: {
    packages: ['node:http', 'node:http2', 'node:crypto', 'node:stream', 'node:zlib', 'undici', 'http-proxy-3'],
    layers: ['proxy', 'abi', 'modules', 'config', 'errors.ts', 'log.ts'],
  },
  admin: { packages: ['node:http', 'prom-client'], layers: ['admin', 'abi', 'errors.ts', 'log.ts'] },
};

describe('the layering of gateway/', () => {
  for (const [layer, rule] of Object.entries(RULES)) {
    it(`keeps ${layer}/ to its allowed imports`, () => {
      const dir = join(root, 'gateway', layer);
      const offending: string[] = [];
      for (const file of sources(dir)) {
        for (const spec of importsOf(file)) {
          if (spec.startsWith('.')) {
            const target = relative(join(root, 'gateway'), join(file, '..', spec)).replace(/\.js$/, '.ts');
            const top = target.split('/')[0];
            if (!rule.layers.includes(top)) offending.push(`${relative(root, file)} → ${spec}`);
          } else if (!rule.packages.includes(spec)) {
            offending.push(`${relative(root, file)} → ${spec}`);
          }
        }
      }
      expect(offending).toEqual([]);
    });
  }
});

describe('the error table', () => {
  it('documents every error code in the README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const missing = Object.keys(ErrorCodes).filter((code) => !readme.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
