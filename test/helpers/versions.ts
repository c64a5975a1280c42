/**
 * Module versions for live-plugin tests: the stamp example filter (filters/examples/stamp.wat) with
 * its `x-served-by` value replaced, so each version is another module (another sha256) whose
 * responses say which version served them; a version that traps on every request; one whose
 * on_configure refuses.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import { guestWat, watToBytes } from './wat.js';

const STAMP = readFileSync('filters/examples/stamp.wat', 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'edge-gw-versions-'));

/** The stamp filter answering `x-served-by: <label>` (12 characters, as the original's "edge-gateway"). */
export function stampVersion(label: string): Uint8Array {
  if (label.length !== 12) throw new Error(`a version label is 12 characters: "${label}"`);
  return watToBytes(STAMP.replace('(data (i32.const 48) "edge-gateway")', `(data (i32.const 48) "${label}")`), `${label}.wat`);
}

/** Traps in on_request_headers. */
export function trappingVersion(): Uint8Array {
  return watToBytes(guestWat({
    body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)`,
  }), 'trap.wat');
}

/** Refuses its configuration (on_configure answers false): its root cannot start. */
export function refusingVersion(): Uint8Array {
  return watToBytes(guestWat({
    body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))`,
  }), 'refuse.wat');
}

let counter = 0;

/** Writes `bytes` to a new .wasm file and returns its path. */
export function versionFile(bytes: Uint8Array, name = 'version'): string {
  const file = join(dir, `${name}-${counter++}.wasm`);
  writeFileSync(file, bytes);
  return file;
}

export const sha = (bytes: Uint8Array): string => sha256Hex(bytes);
