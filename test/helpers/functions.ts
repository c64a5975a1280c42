/**
 * Edge-function fixtures: the example components of filters/functions and the misbehaving one of
 * test/functions/fixtures (built by global-setup.ts), and one transpile cache for every test, so
 * each component is transpiled once per run (the cache is keyed by the component's sha256).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

export const HELLO = join(root, 'filters/dist/functions/hello.wasm');
export const FETCH = join(root, 'filters/dist/functions/fetch.wasm');
export const ENV = join(root, 'filters/dist/functions/env.wasm');
export const MISBEHAVE = join(root, 'test/functions/fixtures/dist/misbehave.wasm');
export const FUNCTION_CACHE = join(tmpdir(), `edge-gateway-test-functions-${process.getuid?.() ?? 0}`);
