/**
 * What the main thread loads: a gateway that runs no edge function must not load what implements
 * WASI for functions (jco's preview2-shim, ~10 MB resident). The child's module resolutions are
 * watched through a module hook that names every package it resolves on stderr.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';

const HOOK = `export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url);
  if (m) process.stderr.write('resolved package ' + m[1] + '\\n');
  return resolved;
}`;
const asModule = (source: string): string => `data:text/javascript;base64,${Buffer.from(source).toString('base64')}`;
const WATCH = asModule(`import { register } from 'node:module'; register(${JSON.stringify(asModule(HOOK))});`);

const packages = (stderr: string): Set<string> => new Set([...stderr.matchAll(/^resolved package (\S+)$/gm)].map((m) => m[1]));

describe('the main thread', () => {
  let gw: GatewayProcess | undefined;
  afterEach(async () => { await gw?.stop(); gw = undefined; });

  it('loads no function runtime when no function is configured', async () => {
    gw = await GatewayProcess.start(writeConfigFile({
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      plugins: [{ name: 'tag', module: 'filters/dist/headers.wasm', configuration: { request: { set: { 'x-tag': 'a' } } } }],
      routes: [{ name: 'all', match: { pathPrefix: '/' }, cluster: 'backend', filters: ['tag'] }],
    }), ['--import', WATCH]);
    const loaded = packages(gw.stderr);
    expect(loaded.has('undici')).toBe(true); // the hook sees the packages the gateway loads
    expect([...loaded].filter((name) => name.startsWith('@bytecodealliance/'))).toEqual([]);
  });
});
