/**
 * The HTTP(S) source: module bytes fetched from a URL, always with a pinned SHA-256 (as Envoy's
 * remote data source requires), so what runs is exactly what the operator reviewed. Failures are
 * GW_ERR_MODULE_FETCH naming the URL; a size cap keeps a wrong URL from filling memory.
 */
import { request } from 'undici';
import { GatewayError } from '../errors.js';

/** Largest module accepted from a URL. */
export const MAX_REMOTE_MODULE_BYTES = 64 * 1024 * 1024;

const FETCH_TIMEOUT_MS = 30_000;

export async function fetchModule(url: string): Promise<Uint8Array> {
  let res;
  try {
    res = await request(url, { method: 'GET', headersTimeout: FETCH_TIMEOUT_MS, bodyTimeout: FETCH_TIMEOUT_MS, maxRedirections: 0 } as Parameters<typeof request>[1]);
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_FETCH', `cannot fetch module ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new GatewayError('GW_ERR_MODULE_FETCH', `cannot fetch module ${url}: HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_REMOTE_MODULE_BYTES) {
      res.body.destroy();
      throw new GatewayError('GW_ERR_MODULE_FETCH', `cannot fetch module ${url}: larger than ${MAX_REMOTE_MODULE_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const buf = Buffer.concat(chunks, size);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
