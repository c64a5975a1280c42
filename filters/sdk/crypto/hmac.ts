/**
 * HMAC-SHA256 (RFC 2104 §2, with SHA-256 as H: B = 64, L = 32), one-shot and incremental.
 */
import { Sha256, SHA256_BLOCK_LENGTH, sha256 } from "./sha256";
import { constantTimeEqual } from "./timing";

/** RFC 2104 §2: ipad and opad bytes. */
const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;

/**
 * Incremental HMAC: `update` the message, then `final` for the 32-byte tag. `final` re-keys the
 * object, so one instance can MAC many messages with the same key.
 */
export class HmacSha256 {
  private inner: Sha256 = new Sha256();
  private outer: Sha256 = new Sha256();
  private innerPad: Uint8Array = new Uint8Array(SHA256_BLOCK_LENGTH);
  private outerPad: Uint8Array = new Uint8Array(SHA256_BLOCK_LENGTH);

  constructor(key: Uint8Array) {
    // §2 step (1)/(2): a key longer than B is first hashed; the key is zero-padded to B bytes.
    const k = key.length > SHA256_BLOCK_LENGTH ? sha256(key) : key;
    const klen = k.length;
    for (let i = 0; i < SHA256_BLOCK_LENGTH; i++) {
      const b: u8 = i < klen ? unchecked(k[i]) : 0;
      unchecked((this.innerPad[i] = b ^ IPAD));
      unchecked((this.outerPad[i] = b ^ OPAD));
    }
    this.inner.update(this.innerPad);
  }

  update(data: Uint8Array): HmacSha256 {
    this.inner.update(data);
    return this;
  }

  /** H(K ^ opad, H(K ^ ipad, text)), then ready for the next message under the same key. */
  final(): Uint8Array {
    const innerHash = this.inner.final();
    this.outer.reset().update(this.outerPad).update(innerHash);
    const tag = this.outer.final();
    this.inner.update(this.innerPad);
    return tag;
  }
}

/** HMAC-SHA256 of `message` under `key` (any key length, including empty). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new HmacSha256(key).update(message).final();
}

/** True if `tag` is the HMAC-SHA256 of `message` under `key`, compared in constant time. */
export function verifyHmacSha256(key: Uint8Array, message: Uint8Array, tag: Uint8Array): bool {
  return constantTimeEqual(hmacSha256(key, message), tag);
}
