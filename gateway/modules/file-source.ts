/**
 * The file source: module bytes from the local filesystem. Every failure becomes
 * GW_ERR_MODULE_READ with the path and the OS reason, so a config pointing at a missing or
 * unreadable module says which one and why.
 */

import { readFile } from 'node:fs/promises';
import { GatewayError } from '../errors.js';

/** Reads a whole module file. Rejects with GW_ERR_MODULE_READ naming the file. */
export async function readModuleFile(file: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(file);
    // A plain Uint8Array view (no copy): Buffer's slice() shares memory where Uint8Array's
    // copies, and the bytes travel to code that expects the standard behaviour.
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_READ', `cannot read module file ${file}: ${osReason(err)}`, { cause: err });
  }
}

// Node's fs errors already carry code, syscall and path ("ENOENT: no such file or directory,
// open '/x.wasm'"); anything else (should not happen) is stringified as is.
function osReason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
