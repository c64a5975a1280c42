/**
 * RSASSA-PKCS1-v1_5 signature verification with SHA-256 (RFC 8017 §8.2.2, §9.2), i.e. JWS "RS256"
 * (RFC 7518 §3.3).
 *
 * Following §8.2.2 step 3, the expected encoding EM' is rebuilt from the message digest and
 * compared with the recovered EM as a whole, rather than parsing EM: there is no padding or ASN.1
 * parser on the attacker's data to get wrong (the class of Bleichenbacher-2006 forgeries).
 */
import { Montgomery, bitLength, lessThan, limbsFromBytes, limbsToBytes, stripLeadingZeros } from "./bigint";
import { SHA256_DIGEST_LENGTH, sha256 } from "./sha256";
import { constantTimeEqual } from "./timing";

/** RFC 7518 §3.3: RS256 keys must be at least 2048 bits. */
export const RSA_MIN_MODULUS_BITS: i32 = 2048;
/** Upper bound, so a hostile key cannot make each verification arbitrarily expensive. */
export const RSA_MAX_MODULUS_BITS: i32 = 4096;

/** RFC 8017 §9.2 note 1: DER of DigestInfo { sha256 (2.16.840.1.101.3.4.2.1), NULL }, hash follows. */
const SHA256_DIGEST_INFO = memory.data<u8>([
  0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
]);
const DIGEST_INFO_LENGTH: i32 = 19;

/**
 * A validated RSA public key (RFC 8017 §3.1) with its Montgomery context precomputed, for
 * verifying many signatures with one key (e.g. a JWKS entry parsed at configuration time).
 */
export class RsaPublicKey {
  /** Modulus n, big-endian, without leading zeros. */
  readonly modulus: Uint8Array;
  /** Public exponent e, big-endian, without leading zeros. */
  readonly exponent: Uint8Array;
  /** Bit length of n. */
  readonly bits: i32;
  /** k of RFC 8017: the length of n, and of every signature, in bytes. */
  readonly size: i32;
  private ctx: Montgomery;
  private e: StaticArray<u32>;

  /**
   * Checks and prepares a key from big-endian n and e (leading zeros allowed). Null unless
   * 2048 <= bits(n) <= 4096, n is odd, and e is odd with 3 <= e < n (§3.1; e = 1 would make
   * every encoded message its own signature).
   */
  static create(n: Uint8Array, e: Uint8Array): RsaPublicKey | null {
    const nb = stripLeadingZeros(n);
    const eb = stripLeadingZeros(e);
    const size = nb.length;
    if (size == 0 || eb.length == 0 || eb.length > size) return null;
    const limbs = (size + 3) >> 2;
    const nl = limbsFromBytes(nb, limbs);
    const el = limbsFromBytes(eb, limbs);
    if (nl === null || el === null) return null;
    const bits = bitLength(nl);
    if (bits < RSA_MIN_MODULUS_BITS || bits > RSA_MAX_MODULUS_BITS) return null;
    if ((unchecked(el[0]) & 1) == 0 || bitLength(el) < 2 || !lessThan(el, nl)) return null;
    const ctx = Montgomery.create(nl);
    if (ctx === null) return null; // even modulus
    return new RsaPublicKey(nb.slice(), eb.slice(), bits, size, ctx, el);
  }

  private constructor(modulus: Uint8Array, exponent: Uint8Array, bits: i32, size: i32, ctx: Montgomery, e: StaticArray<u32>) {
    this.modulus = modulus;
    this.exponent = exponent;
    this.bits = bits;
    this.size = size;
    this.ctx = ctx;
    this.e = e;
  }

  /** RSASSA-PKCS1-V1_5-VERIFY with SHA-256 over `message`. */
  verifyRS256(message: Uint8Array, signature: Uint8Array): bool {
    return this.verifyRS256Digest(sha256(message), signature);
  }

  /** The same, given the 32-byte SHA-256 digest of the message. */
  verifyRS256Digest(digest: Uint8Array, signature: Uint8Array): bool {
    const k = this.size;
    // §8.2.2 step 1: the signature is exactly k octets.
    if (signature.length != k || digest.length != SHA256_DIGEST_LENGTH) return false;
    // Step 2a-2b: OS2IP, then RSAVP1 rejects a representative outside [0, n - 1] (§5.2.2).
    const s = limbsFromBytes(signature, this.ctx.k);
    if (s === null || !lessThan(s, this.ctx.n)) return false;
    // Step 2b-2c: m = s^e mod n, EM = I2OSP(m, k).
    const em = limbsToBytes(this.ctx.pow(s, this.e), k);
    // Step 3-4: compare with EMSA-PKCS1-V1_5-ENCODE(M, k).
    const expected = encodeSha256(digest, k);
    return expected !== null && constantTimeEqual(em, expected);
  }
}

/**
 * EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 0x00 || 0x01 || PS (0xFF x (k - tLen - 3), at least 8) ||
 * 0x00 || DigestInfo || H. Null when k is too short for the 8-byte minimum of PS (step 4).
 */
function encodeSha256(digest: Uint8Array, k: i32): Uint8Array | null {
  const tLen = DIGEST_INFO_LENGTH + SHA256_DIGEST_LENGTH;
  if (k < tLen + 11) return null;
  const em = new Uint8Array(k);
  const p = em.dataStart;
  const psEnd = k - tLen - 1; // index of the 0x00 separator
  store<u8>(p, 0x01, 1);
  memory.fill(p + 2, 0xff, <usize>(psEnd - 2));
  memory.copy(p + <usize>psEnd + 1, SHA256_DIGEST_INFO, <usize>DIGEST_INFO_LENGTH);
  memory.copy(p + <usize>(k - SHA256_DIGEST_LENGTH), digest.dataStart, <usize>SHA256_DIGEST_LENGTH);
  return em;
}

/**
 * Verifies an RS256 signature of `message` under the key (n, e), both big-endian octet strings.
 * False for any invalid key, signature or mismatch; never traps. For repeated use of one key,
 * create an `RsaPublicKey` once instead.
 */
export function verifyRS256(n: Uint8Array, e: Uint8Array, message: Uint8Array, signature: Uint8Array): bool {
  const key = RsaPublicKey.create(n, e);
  return key !== null && key.verifyRS256(message, signature);
}
