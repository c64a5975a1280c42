/**
 * SHA-256 of module bytes, the identity of a module everywhere in the gateway: the key of the
 * compiled-module cache, the pin in `{ file, sha256 }` / `{ url, sha256 }` sources, and part of
 * the VM key (module SHA-256, vmId, VM configuration).
 */

import { createHash } from 'node:crypto';

/** Lower-case hex SHA-256 of `bytes` (64 characters). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * True when a pinned digest names the same bytes as a computed one. Pins are compared
 * case-insensitively because `sha256sum` prints lower case while other tools and registries
 * print upper case, and both are the same digest.
 */
export function sameSha256(pinned: string, actual: string): boolean {
  return pinned.toLowerCase() === actual.toLowerCase();
}
