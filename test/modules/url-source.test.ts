import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../gateway/errors.js';
import { createModuleStore } from '../../gateway/modules/module-store.js';
import { watToBytes } from '../helpers/wat.js';

const module = watToBytes('(module (func (export "f")))');
const digest = createHash('sha256').update(module).digest('hex');

describe('modules served over HTTP', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/filter.wasm') {
        res.writeHead(200, { 'content-type': 'application/wasm' });
        res.end(module);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('fetches, verifies the pinned sha256 and compiles a module from a URL', async () => {
    const store = createModuleStore();
    const loaded = await store.load({ url: `${base}/filter.wasm`, sha256: digest.toUpperCase() });
    expect(loaded.sha256).toBe(digest);
    expect(loaded.name).toBe(`${base}/filter.wasm`);
    expect(WebAssembly.Module.exports(loaded.module).map((e) => e.name)).toEqual(['f']);
  });

  it('refuses bytes that do not match the pin and names the URL', async () => {
    const err = await createModuleStore().load({ url: `${base}/filter.wasm`, sha256: '0'.repeat(64) }).catch((e: unknown) => e);
    expect(isGatewayError(err, 'GW_ERR_MODULE_SHA256')).toBe(true);
    expect((err as Error).message).toBe(`module ${base}/filter.wasm does not match its pinned sha256: expected ${'0'.repeat(64)}, got ${digest}`);
  });

  it('reports a non-200 answer and an unreachable server as GW_ERR_MODULE_FETCH naming the URL', async () => {
    const missing = await createModuleStore().load({ url: `${base}/nope.wasm`, sha256: digest }).catch((e: unknown) => e);
    expect(isGatewayError(missing, 'GW_ERR_MODULE_FETCH')).toBe(true);
    expect((missing as Error).message).toBe(`cannot fetch module ${base}/nope.wasm: HTTP 404`);
    const refused = await createModuleStore().load({ url: 'http://127.0.0.1:1/x.wasm', sha256: digest }).catch((e: unknown) => e);
    expect(isGatewayError(refused, 'GW_ERR_MODULE_FETCH')).toBe(true);
    expect((refused as Error).message).toMatch(/^cannot fetch module http:\/\/127\.0\.0\.1:1\/x\.wasm: /);
  });
});
