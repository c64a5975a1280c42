import { describe, expect, it } from 'vitest';
import { sameSha256, sha256Hex } from '../../gateway/modules/sha256.js';

describe('sha256', () => {
  it('hashes bytes to the lower-case hex digest of the FIPS 180-2 "abc" vector', () => {
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('compares a pinned digest with a computed one regardless of letter case', () => {
    const digest = sha256Hex(new Uint8Array([1, 2, 3]));
    expect(sameSha256(digest.toUpperCase(), digest)).toBe(true);
    expect(sameSha256('00'.repeat(32), digest)).toBe(false);
  });
});
