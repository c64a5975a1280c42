/**
 * Watch mode for a function's component file: a new component written over it serves new
 * requests; a half-written one is refused and the running one keeps serving.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ENV, FUNCTION_CACHE, HELLO } from '../helpers/functions.js';

describe('a watched component file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fn-watch-'));
  const file = join(dir, 'hello.wasm');
  let gw: TestGateway;

  beforeAll(async () => {
    copyFileSync(HELLO, file);
    gw = await startGateway({
      modules: { cacheDir: FUNCTION_CACHE },
      functions: [{ name: 'hello', component: { file, watch: true }, environment: { WATCHED: 'yes' } }],
      routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const body = async (): Promise<string> => (await request(`${gw.url}/w`)).body.text();
  const logged = (text: string): boolean => gw.logs.some((l) => typeof l.msg === 'string' && l.msg.includes(text));

  it('swaps to the component written over the file', async () => {
    expect(await body()).toBe('hello from /w\n');
    writeFileSync(`${file}.tmp`, readFileSync(ENV));
    renameSync(`${file}.tmp`, file);
    expect(await eventually(async () => (await body()) === '{"WATCHED":"yes"}', 15_000)).toBe(true);
    expect(logged(`function hello: watch: ${file} changed: component`)).toBe(true);
  }, 20_000);

  it('refuses a half-written component and keeps serving the running one', async () => {
    writeFileSync(file, readFileSync(HELLO).subarray(0, 4096));
    expect(await eventually(() => logged('changed but was refused, the running component keeps serving'), 15_000)).toBe(true);
    expect(await body()).toBe('{"WATCHED":"yes"}');
  }, 20_000);
});
