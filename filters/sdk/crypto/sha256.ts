/**
 * SHA-256 (FIPS 180-4 §6.2), streaming and one-shot, plus lower-case hex.
 *
 * The hash state, message schedule and partial block live in fixed buffers owned by each
 * `Sha256`, so hashing allocates nothing but the 32-byte digest. Words are read big-endian
 * (§3.1 convention) with `bswap` on Wasm's little-endian loads.
 */

/** §4.2.2: first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** §5.3.3: initial hash value H(0) (square roots of the first 8 primes). */
const H0 = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

export const SHA256_DIGEST_LENGTH: i32 = 32;
export const SHA256_BLOCK_LENGTH: i32 = 64;

/**
 * Incremental SHA-256: `update` any number of times, then `final`, which returns the digest and
 * resets the object so it can hash the next message.
 */
export class Sha256 {
  private state: StaticArray<u32> = new StaticArray<u32>(8);
  private schedule: StaticArray<u32> = new StaticArray<u32>(64);
  private block: StaticArray<u8> = new StaticArray<u8>(64);
  /** Bytes waiting in `block` (always < 64 between calls). */
  private used: i32 = 0;
  /** Message length in bytes so far; §5.1.1 appends it in bits. */
  private length: u64 = 0;

  constructor() {
    this.reset();
  }

  /** Forgets any absorbed data and starts a new message. */
  reset(): Sha256 {
    memory.copy(changetype<usize>(this.state), H0, 32);
    this.used = 0;
    this.length = 0;
    return this;
  }

  update(data: Uint8Array): Sha256 {
    this.absorb(data.dataStart, data.length);
    return this;
  }

  /** Absorbs data[start, end); bounds outside the array are clamped instead of trapping. */
  updateRange(data: Uint8Array, start: i32, end: i32): Sha256 {
    const len = data.length;
    if (start < 0) start = 0;
    if (end > len) end = len;
    if (end > start) this.absorb(data.dataStart + <usize>start, end - start);
    return this;
  }

  /** Pads (§5.1.1), processes the last block(s) and returns the 32-byte digest; then resets. */
  final(): Uint8Array {
    const bits = this.length << 3;
    const block = changetype<usize>(this.block);
    let used = this.used;
    store<u8>(block + <usize>used, 0x80);
    used++;
    // No room for the 64-bit length in this block: pad it out and start another.
    if (used > 56) {
      memory.fill(block + <usize>used, 0, <usize>(64 - used));
      this.compress(block);
      used = 0;
    }
    memory.fill(block + <usize>used, 0, <usize>(56 - used));
    store<u64>(block + 56, bswap<u64>(bits));
    this.compress(block);

    const out = new Uint8Array(SHA256_DIGEST_LENGTH);
    const state = changetype<usize>(this.state);
    for (let i = 0; i < 8; i++) {
      store<u32>(out.dataStart + (<usize>i << 2), bswap<u32>(load<u32>(state + (<usize>i << 2))));
    }
    this.reset();
    return out;
  }

  private absorb(ptr: usize, len: i32): void {
    this.length += <u64>len;
    const block = changetype<usize>(this.block);
    if (this.used > 0) {
      const take = min(64 - this.used, len);
      memory.copy(block + <usize>this.used, ptr, <usize>take);
      this.used += take;
      ptr += <usize>take;
      len -= take;
      if (this.used < 64) return;
      this.compress(block);
      this.used = 0;
    }
    // Whole blocks are hashed straight from the caller's memory, without a copy.
    while (len >= 64) {
      this.compress(ptr);
      ptr += 64;
      len -= 64;
    }
    if (len > 0) {
      memory.copy(block, ptr, <usize>len);
      this.used = len;
    }
  }

  /** §6.2.2: one 512-bit block at `p`. */
  private compress(p: usize): void {
    const w = changetype<usize>(this.schedule);
    for (let t: usize = 0; t < 16; t++) {
      store<u32>(w + (t << 2), bswap<u32>(load<u32>(p + (t << 2))));
    }
    for (let t: usize = 16; t < 64; t++) {
      const w15 = load<u32>(w + ((t - 15) << 2));
      const w2 = load<u32>(w + ((t - 2) << 2));
      // σ0 and σ1 of §4.1.2 (4.6, 4.7)
      const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >> 3);
      const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >> 10);
      store<u32>(w + (t << 2), s1 + load<u32>(w + ((t - 7) << 2)) + s0 + load<u32>(w + ((t - 16) << 2)));
    }

    const h = changetype<usize>(this.state);
    let a = load<u32>(h, 0);
    let b = load<u32>(h, 4);
    let c = load<u32>(h, 8);
    let d = load<u32>(h, 12);
    let e = load<u32>(h, 16);
    let f = load<u32>(h, 20);
    let g = load<u32>(h, 24);
    let hh = load<u32>(h, 28);
    for (let t: usize = 0; t < 64; t++) {
      // Σ1, Ch, Σ0 and Maj of §4.1.2 (4.2–4.5)
      const bigS1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = hh + bigS1 + ch + load<u32>(K + (t << 2)) + load<u32>(w + (t << 2));
      const bigS0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = bigS0 + maj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    store<u32>(h, load<u32>(h, 0) + a, 0);
    store<u32>(h, load<u32>(h, 4) + b, 4);
    store<u32>(h, load<u32>(h, 8) + c, 8);
    store<u32>(h, load<u32>(h, 12) + d, 12);
    store<u32>(h, load<u32>(h, 16) + e, 16);
    store<u32>(h, load<u32>(h, 20) + f, 20);
    store<u32>(h, load<u32>(h, 24) + g, 24);
    store<u32>(h, load<u32>(h, 28) + hh, 28);
  }
}

/** Shared by the one-shot helper so repeated calls reuse its buffers (Wasm is single-threaded). */
let oneShot: Sha256 | null = null;

/** SHA-256 of `data` in one call. */
export function sha256(data: Uint8Array): Uint8Array {
  let hasher = oneShot;
  if (hasher === null) {
    hasher = new Sha256();
    oneShot = hasher;
  }
  return hasher.reset().update(data).final();
}

/** Lower-case hexadecimal of `bytes` (two digits per byte). */
export function hex(bytes: Uint8Array): string {
  const len = bytes.length;
  const out = changetype<string>(__new(<usize>len << 2, idof<string>()));
  const dst = changetype<usize>(out);
  for (let i = 0; i < len; i++) {
    const b = <u32>unchecked(bytes[i]);
    store<u16>(dst + (<usize>i << 2), hexDigit(b >> 4));
    store<u16>(dst + (<usize>i << 2), hexDigit(b & 15), 2);
  }
  return out;
}

@inline function hexDigit(n: u32): u16 {
  return <u16>(n < 10 ? 48 + n : 87 + n);
}
