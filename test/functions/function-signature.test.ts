/**
 * Signed components: a function whose components must be signed by a trusted key, from a file
 * with its `.sig` and through the admin API with `x-module-signature`.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Gateway } from '../../gateway/gateway.js';
import { parseConfig } from '../../gateway/config/load.js';
import { createLogger } from '../../gateway/log.js';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import { generateSigningKeys, signSha256 } from '../../gateway/modules/signature.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ENV, FUNCTION_CACHE, HELLO } from '../helpers/functions.js';
import { Writable } from 'node:stream';

const TOKEN = 'function-signature-test-token';
const keys = generateSigningKeys();
const sign = (bytes: Uint8Array): string => signSha256(sha256Hex(bytes), keys.privateKeyPem);

describe('signed function components', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fn-signed-'));
  const signed = join(dir, 'hello.wasm');
  const unsigned = join(dir, 'unsigned.wasm');
  let gw: TestGateway;
  const doc = (component: string): Record<string, unknown> => ({
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    modules: { cacheDir: FUNCTION_CACHE, trustedKeys: [keys.publicKeyPem] },
    functions: [{ name: 'hello', component, requireSignature: true }],
    routes: [{ name: 'hello', match: { pathPrefix: '/' }, function: 'hello' }],
  });

  beforeAll(async () => {
    copyFileSync(HELLO, signed);
    writeFileSync(`${signed}.sig`, sign(readFileSync(HELLO)));
    copyFileSync(HELLO, unsigned);
    gw = await startGateway(doc(signed));
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a component signed by a trusted key, and says which key signed it', async () => {
    expect(await (await request(`${gw.url}/a`)).body.text()).toBe('hello from /a\n');
    const listed = await (await request(`${gw.adminUrl}/functions`)).body.json() as Array<{ signedBy: string }>;
    expect(listed[0]!.signedBy).toBe('trustedKeys[0]');
  });

  it('refuses to start on an unsigned component, with the signature code', async () => {
    const config = parseConfig({ listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }], ...doc(unsigned) }, 'signed.yaml');
    const created = Gateway.create(config, { logger: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })) });
    await expect(created).rejects.toMatchObject({ code: 'GW_ERR_MODULE_SIGNATURE', message: expect.stringContaining('functions[0] (hello)') });
  });

  it('swaps through the admin API only with a signature that verifies', async () => {
    const bytes = readFileSync(ENV);
    const put = (headers: Record<string, string>) => request(`${gw.adminUrl}/functions/hello/component`, {
      method: 'PUT', body: bytes, headers: { 'content-type': 'application/wasm', authorization: `Bearer ${TOKEN}`, ...headers },
    });
    const bare = await put({});
    expect(bare.statusCode).toBe(422);
    expect(await bare.body.json()).toMatchObject({ error: 'GW_ERR_MODULE_SIGNATURE' });
    const wrong = await put({ 'x-module-signature': sign(readFileSync(HELLO)) });
    expect(wrong.statusCode).toBe(422);
    await wrong.body.dump();
    expect(await (await request(`${gw.url}/b`)).body.text()).toBe('hello from /b\n');
    const good = await put({ 'x-module-signature': sign(bytes) });
    expect(good.statusCode).toBe(200);
    await good.body.dump();
    expect(await (await request(`${gw.url}/c`)).body.text()).toBe('{}');
  });
});
