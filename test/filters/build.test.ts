/**
 * filters/build.ts: which folders it treats as filters, and its cache (test/global-setup.ts has
 * already built everything, so an unchanged tree is served from the cache without compiling).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ASC_FLAGS, buildFilters, listFilters } from '../../filters/build.js';

const root = join(import.meta.dirname, '..', '..');

describe('the filter build', () => {
  it('treats every folder with an index.ts as a filter, but not sdk, dist or examples', () => {
    expect(listFilters(join(root, 'filters'))).toContain('headers');
    expect(listFilters(join(root, 'filters'))).not.toEqual(expect.arrayContaining(['sdk']));
    expect(listFilters(join(root, 'test/filters/fixtures'))).toEqual(expect.arrayContaining(['callout', 'probe']));
  });

  it('compiles with -O3, the incremental runtime and the SDK abort handler', () => {
    expect(ASC_FLAGS).toEqual(['-O3', '--debug', '--runtime', 'incremental', '--use', 'abort=filters/sdk/abort/proxyAbort']);
  });

  it('serves unchanged filters from its cache, recording every source file asc read', async () => {
    const results = await buildFilters({ only: ['headers'] });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ name: 'headers', outcome: 'cached' });
    const cache = JSON.parse(readFileSync(join(root, 'filters/dist/.asc-cache.json'), 'utf8')) as Record<string, { files: Record<string, string> }>;
    const files = cache.headers.files;
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['filters/headers/index.ts', 'filters/headers/config.ts', 'filters/sdk/json.ts', 'filters/sdk/abort.ts']));
    const sha = createHash('sha256').update(readFileSync(join(root, 'filters/sdk/exports.ts'), 'utf8')).digest('hex');
    expect(files['filters/sdk/exports.ts']).toBe(sha);
  });
});
