/**
 * Comparisons whose running time does not depend on where the inputs differ, for MACs and API
 * keys: an early-exit compare lets an attacker find a valid tag byte by byte from response times.
 *
 * Only the contents are protected; the lengths are compared first and may leak (a MAC's length is
 * public, and API keys should be compared as fixed-length digests, e.g. SHA-256 of the key).
 */

/** True if `a` and `b` hold the same bytes; every byte is visited whatever the contents. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): bool {
  const len = a.length;
  if (len != b.length) return false;
  let diff: u32 = 0;
  for (let i = 0; i < len; i++) {
    diff |= <u32>unchecked(a[i]) ^ <u32>unchecked(b[i]);
  }
  return diff == 0;
}

/** The same for strings, over their UTF-16 code units. */
export function constantTimeEqualString(a: string, b: string): bool {
  const len = a.length;
  if (len != b.length) return false;
  const pa = changetype<usize>(a);
  const pb = changetype<usize>(b);
  let diff: u32 = 0;
  for (let i = 0; i < len; i++) {
    diff |= <u32>load<u16>(pa + (<usize>i << 1)) ^ <u32>load<u16>(pb + (<usize>i << 1));
  }
  return diff == 0;
}
