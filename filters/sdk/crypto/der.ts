/**
 * RSA public keys from their usual text forms, as the big-endian modulus and exponent:
 *
 *   - PEM "PUBLIC KEY": SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) with rsaEncryption (RFC 3279 §2.3.1)
 *   - PEM "RSA PUBLIC KEY": PKCS#1 RSAPublicKey (RFC 8017 §A.1.1)
 *   - JWK "n" / "e" members (RFC 7518 §6.3.1), base64url
 *
 * The DER reader (X.690 §8.1, §10.1) accepts only the distinguished encoding: definite, minimal
 * lengths; minimal, non-negative INTEGERs; no trailing bytes. Every read is bounds-checked
 * first, so malformed input yields null rather than a trap.
 */
import { base64Decode, base64UrlDecode } from "./base64";
import { stripLeadingZeros } from "./bigint";

/** An RSA public key's integers, big-endian without leading zeros (both non-zero). */
export class RsaPublicKeyParts {
  n: Uint8Array;
  e: Uint8Array;

  constructor(n: Uint8Array, e: Uint8Array) {
    this.n = n;
    this.e = e;
  }
}

// X.690 §8.1.2 universal tags, with the constructed bit (0x20) for SEQUENCE.
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/** rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 §A.1), as DER content octets. */
const RSA_ENCRYPTION_OID = memory.data<u8>([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
const RSA_ENCRYPTION_OID_LENGTH: i32 = 9;

/** Largest content length accepted (3 length octets): far above any 4096-bit key. */
const MAX_LENGTH: i32 = 0xffffff;

/** A cursor over der[pos, end) that reads one TLV at a time. */
class DerReader {
  der: Uint8Array;
  pos: i32;
  end: i32;
  /** Content range of the element last read. */
  start: i32 = 0;
  stop: i32 = 0;

  constructor(der: Uint8Array, pos: i32, end: i32) {
    this.der = der;
    this.pos = pos;
    this.end = end;
  }

  get done(): bool {
    return this.pos == this.end;
  }

  /** Reads an element with identifier octet `tag`; on success its content is [start, stop). */
  read(tag: u8): bool {
    const der = this.der;
    let p = this.pos;
    // Identifier and first length octet. Only single-octet tags occur in these structures.
    if (this.end - p < 2 || der[p] != tag) return false;
    let len = <i32>der[p + 1];
    p += 2;
    if (len >= 0x80) {
      // §8.1.3.5 long form; 0x80 is the indefinite form, which DER forbids (§10.1).
      const count = len & 0x7f;
      if (count == 0 || count > 3 || this.end - p < count) return false;
      // §10.1: the fewest octets, so no leading zero octet.
      if (der[p] == 0) return false;
      len = 0;
      for (let i = 0; i < count; i++) len = (len << 8) | <i32>der[p + i];
      p += count;
      // §10.1: lengths below 128 must use the short form.
      if (len < 0x80 || len > MAX_LENGTH) return false;
    }
    if (this.end - p < len) return false;
    this.start = p;
    this.stop = p + len;
    this.pos = p + len;
    return true;
  }

  /** Reads a non-negative INTEGER (§8.3) and returns its magnitude without leading zeros. */
  readUnsigned(): Uint8Array | null {
    if (!this.read(TAG_INTEGER)) return null;
    const der = this.der;
    const start = this.start;
    const len = this.stop - start;
    if (len == 0) return null; // §8.3.1: at least one content octet
    const first = der[start];
    if (first & 0x80) return null; // negative
    // §8.3.2: the first nine bits are never all zero (a redundant leading 0x00).
    if (len > 1 && first == 0 && (der[start + 1] & 0x80) == 0) return null;
    return stripLeadingZeros(der.subarray(start, this.stop)).slice();
  }
}

/** PKCS#1 RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1). */
export function parsePkcs1PublicKeyDer(der: Uint8Array): RsaPublicKeyParts | null {
  return readRsaPublicKey(der, 0, der.length);
}

function readRsaPublicKey(der: Uint8Array, pos: i32, end: i32): RsaPublicKeyParts | null {
  const outer = new DerReader(der, pos, end);
  if (!outer.read(TAG_SEQUENCE) || !outer.done) return null;
  const seq = new DerReader(der, outer.start, outer.stop);
  const n = seq.readUnsigned();
  if (n === null) return null;
  const e = seq.readUnsigned();
  if (e === null || !seq.done) return null;
  if (n.length == 0 || e.length == 0) return null; // zero
  return new RsaPublicKeyParts(n, e);
}

/**
 * SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
 * (RFC 5280 §4.1), accepted only for rsaEncryption, whose BIT STRING holds an RSAPublicKey.
 */
export function parseSpkiPublicKeyDer(der: Uint8Array): RsaPublicKeyParts | null {
  const outer = new DerReader(der, 0, der.length);
  if (!outer.read(TAG_SEQUENCE) || !outer.done) return null;
  const spki = new DerReader(der, outer.start, outer.stop);

  // AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } (RFC 5280 §4.1.1.2)
  if (!spki.read(TAG_SEQUENCE)) return null;
  const alg = new DerReader(der, spki.start, spki.stop);
  if (!alg.read(TAG_OID) || alg.stop - alg.start != RSA_ENCRYPTION_OID_LENGTH) return null;
  if (memory.compare(der.dataStart + <usize>alg.start, RSA_ENCRYPTION_OID, <usize>RSA_ENCRYPTION_OID_LENGTH) != 0) return null;
  // RFC 3279 §2.3.1 requires NULL parameters; an absent field is tolerated as some encoders omit it.
  if (!alg.done && (!alg.read(TAG_NULL) || alg.stop != alg.start || !alg.done)) return null;

  // §8.6.2: the first content octet of a BIT STRING counts unused bits; a DER-encoded key has none.
  if (!spki.read(TAG_BIT_STRING) || !spki.done) return null;
  if (spki.stop - spki.start < 1 || der[spki.start] != 0) return null;
  return readRsaPublicKey(der, spki.start + 1, spki.stop);
}

/**
 * An RSA public key from PEM text (RFC 7468): the first "-----BEGIN PUBLIC KEY-----" (SPKI, §13)
 * or "-----BEGIN RSA PUBLIC KEY-----" (PKCS#1) block up to its matching END line. Text around
 * the block is ignored (§2); whitespace inside the base64 body is skipped (§3).
 */
export function parsePublicKeyPem(pem: string): RsaPublicKeyParts | null {
  const begin = pem.indexOf("-----BEGIN ");
  if (begin < 0) return null;
  const labelStart = begin + 11;
  const labelEnd = pem.indexOf("-----", labelStart);
  if (labelEnd < 0) return null;
  const label = pem.substring(labelStart, labelEnd);
  const spki = label == "PUBLIC KEY";
  if (!spki && label != "RSA PUBLIC KEY") return null;
  const bodyStart = labelEnd + 5;
  const bodyEnd = pem.indexOf("-----END " + label + "-----", bodyStart);
  if (bodyEnd < 0) return null;
  const der = base64Decode(pem.substring(bodyStart, bodyEnd), true);
  if (der === null) return null;
  return spki ? parseSpkiPublicKeyDer(der) : parsePkcs1PublicKeyDer(der);
}

/**
 * The modulus and exponent of an RSA JWK from its "n" and "e" members (RFC 7518 §6.3.1.1-2),
 * base64url without padding. Null if either is invalid base64url or zero.
 */
export function parseJwkRsaPublicKey(n: string, e: string): RsaPublicKeyParts | null {
  const nb = base64UrlDecode(n);
  const eb = base64UrlDecode(e);
  if (nb === null || eb === null) return null;
  const nv = stripLeadingZeros(nb);
  const ev = stripLeadingZeros(eb);
  if (nv.length == 0 || ev.length == 0) return null;
  return new RsaPublicKeyParts(nv.slice(), ev.slice());
}
