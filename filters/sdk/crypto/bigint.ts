/**
 * Just enough unsigned big-integer arithmetic for RSA public-key operations: conversion from
 * and to big-endian octet strings (RFC 8017 §4.1 OS2IP, §4.2 I2OSP) and modular exponentiation
 * with Montgomery multiplication over u32 limbs.
 *
 * Numbers are `StaticArray<u32>` of little-endian limbs (limb 0 = least significant 32 bits).
 * Products of two limbs plus two carries fit a u64: (2^32-1)^2 + 2(2^32-1) = 2^64-1.
 *
 * None of this is constant-time: it only ever handles public values (keys and signatures).
 */

/** `bytes` without its leading zero bytes (a view, not a copy). */
export function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  const len = bytes.length;
  let i = 0;
  while (i < len && unchecked(bytes[i]) == 0) i++;
  return i == 0 ? bytes : bytes.subarray(i);
}

/** OS2IP into exactly `limbs` limbs; null if the value needs more. */
export function limbsFromBytes(bytes: Uint8Array, limbs: i32): StaticArray<u32> | null {
  if (limbs < 0) return null;
  const out = new StaticArray<u32>(limbs);
  const len = bytes.length;
  for (let j = 0; j < len; j++) {
    // j counts from the least significant (last) byte.
    const b = <u32>unchecked(bytes[len - 1 - j]);
    if (b == 0) continue;
    const limb = j >> 2;
    if (limb >= limbs) return null;
    unchecked((out[limb] |= b << ((<u32>j & 3) << 3)));
  }
  return out;
}

/** I2OSP: the low `length` bytes of `a`, big-endian (higher limbs are ignored). */
export function limbsToBytes(a: StaticArray<u32>, length: i32): Uint8Array {
  const out = new Uint8Array(max(length, 0));
  const limbs = a.length;
  for (let j = 0; j < length; j++) {
    const limb = j >> 2;
    if (limb >= limbs) break;
    unchecked((out[length - 1 - j] = <u8>(unchecked(a[limb]) >> ((<u32>j & 3) << 3))));
  }
  return out;
}

/** Number of significant bits of `a` (0 for zero). */
export function bitLength(a: StaticArray<u32>): i32 {
  for (let i = a.length - 1; i >= 0; i--) {
    const limb = unchecked(a[i]);
    if (limb != 0) return (i << 5) + 32 - <i32>clz<u32>(limb);
  }
  return 0;
}

/** Bit `i` of `a` (0 beyond its length). */
@inline function bitAt(a: StaticArray<u32>, i: i32): u32 {
  const limb = i >> 5;
  return limb < a.length ? (unchecked(a[limb]) >> (<u32>i & 31)) & 1 : 0;
}

/** Sign of a - b over their first `k` limbs (both must have at least k). */
function compareLimbs(a: StaticArray<u32>, b: StaticArray<u32>, k: i32): i32 {
  for (let i = k - 1; i >= 0; i--) {
    const x = unchecked(a[i]);
    const y = unchecked(b[i]);
    if (x != y) return x > y ? 1 : -1;
  }
  return 0;
}

/** a < b, for values of any limb counts. */
export function lessThan(a: StaticArray<u32>, b: StaticArray<u32>): bool {
  const la = a.length;
  const lb = b.length;
  for (let i = max(la, lb) - 1; i >= 0; i--) {
    const x = i < la ? unchecked(a[i]) : 0;
    const y = i < lb ? unchecked(b[i]) : 0;
    if (x != y) return x < y;
  }
  return false;
}

/**
 * Arithmetic modulo an odd n of k limbs in Montgomery form: x is held as xR mod n with
 * R = 2^(32k), so a product needs no division, only the word-by-word reduction REDC
 * (Montgomery, "Modular multiplication without trial division", 1985), interleaved with the
 * multiplication one limb of b at a time.
 */
export class Montgomery {
  /** Limb count. */
  readonly k: i32;
  readonly n: StaticArray<u32>;
  /** -n^-1 mod 2^32: the factor that clears the lowest limb in each reduction step. */
  readonly n0inv: u32;
  /** R^2 mod n: multiplying by it converts into Montgomery form. */
  readonly rr: StaticArray<u32>;
  /** Scratch accumulator of k + 1 limbs, reused by every multiplication. */
  private t: StaticArray<u32>;

  /** A context for modulus `n` (limbs, top limb non-zero); null unless n is odd and > 1. */
  static create(n: StaticArray<u32>): Montgomery | null {
    const k = n.length;
    if (k == 0 || (unchecked(n[0]) & 1) == 0 || unchecked(n[k - 1]) == 0) return null;
    if (k == 1 && unchecked(n[0]) == 1) return null;
    return new Montgomery(n);
  }

  private constructor(n: StaticArray<u32>) {
    const k = n.length;
    this.k = k;
    this.n = n;
    // Newton's iteration for x = n0^-1 mod 2^32: an odd n0 is its own inverse mod 8 (3 bits),
    // and each x = x(2 - n0 x) doubles the correct bits: 6, 12, 24, 48.
    const n0 = unchecked(n[0]);
    let x = n0;
    for (let i = 0; i < 4; i++) x *= 2 - n0 * x;
    this.n0inv = 0 - x;
    this.t = new StaticArray<u32>(k + 1);
    this.rr = new StaticArray<u32>(k);
    this.computeRR();
  }

  /**
   * R^2 mod n without division. Write 32k = j * 2^s (s = 4, j = 2k). Doubling 2^(bits-1), which
   * is < n, modulo n up to 2^(32k + j) gives 2^j in Montgomery form (2^j * R); squaring that s
   * times in Montgomery form gives 2^(j * 2^s) = R in Montgomery form, which is R^2 mod n.
   * A doubling costs about 1/(2k) of a multiplication, so the ~2k doublings and 4 squarings cost
   * about 5 multiplications (2048 bits: 129 doublings).
   */
  private computeRR(): void {
    const k = this.k;
    const rr = this.rr;
    const top = bitLength(this.n) - 1;
    unchecked((rr[top >> 5] = <u32>1 << (<u32>top & 31)));
    for (let i = (k << 5) + (k << 1) - top; i > 0; i--) this.double(rr);
    for (let i = 0; i < 4; i++) this.mul(rr, rr, rr);
  }

  /** a = 2a mod n, for a < n. */
  private double(a: StaticArray<u32>): void {
    const k = this.k;
    let carry: u32 = 0;
    for (let i = 0; i < k; i++) {
      const v = unchecked(a[i]);
      unchecked((a[i] = (v << 1) | carry));
      carry = v >> 31;
    }
    // 2a < 2n, so one subtraction suffices.
    if (carry != 0 || compareLimbs(a, this.n, k) >= 0) this.subtractN(a, a);
  }

  /** out = src - n over k limbs (the borrow out of the top limb is dropped). */
  private subtractN(out: StaticArray<u32>, src: StaticArray<u32>): void {
    const k = this.k;
    const n = this.n;
    let borrow: u64 = 0;
    for (let i = 0; i < k; i++) {
      const d = <u64>unchecked(src[i]) - <u64>unchecked(n[i]) - borrow;
      unchecked((out[i] = <u32>d));
      borrow = d >> 63;
    }
  }

  /**
   * out = a * b * R^-1 mod n, for a, b < n (each k limbs). `out` may alias `a` or `b`: the
   * product is built in the scratch accumulator and copied out at the end.
   *
   * Each outer step adds a * b[i] and m * n to t and shifts t down one limb, m being chosen so the
   * dropped limb is zero. Both products are accumulated in the same inner pass, with one carry
   * each (c1 for a * b[i], c2 for m * n), so t is read and written once per limb.
   */
  mul(out: StaticArray<u32>, a: StaticArray<u32>, b: StaticArray<u32>): void {
    const k = this.k;
    const n = this.n;
    const t = this.t;
    const n0inv = this.n0inv;
    memory.fill(changetype<usize>(t), 0, <usize>(k + 1) << 2);
    const a0 = <u64>unchecked(a[0]);
    const n0 = <u64>unchecked(n[0]);
    for (let i = 0; i < k; i++) {
      const bi = <u64>unchecked(b[i]);
      let s = <u64>unchecked(t[0]) + a0 * bi;
      let c1 = s >> 32;
      const m = <u64>(<u32>s * n0inv); // (t + m * n) ≡ 0 mod 2^32
      let c2 = ((s & 0xffffffff) + m * n0) >> 32;
      for (let j = 1; j < k; j++) {
        s = <u64>unchecked(t[j]) + <u64>unchecked(a[j]) * bi + c1;
        c1 = s >> 32;
        s = (s & 0xffffffff) + m * <u64>unchecked(n[j]) + c2;
        c2 = s >> 32;
        unchecked((t[j - 1] = <u32>s));
      }
      s = <u64>unchecked(t[k]) + c1 + c2;
      unchecked((t[k - 1] = <u32>s));
      unchecked((t[k] = <u32>(s >> 32)));
    }
    // The result is < 2n here; one conditional subtraction brings it below n.
    if (unchecked(t[k]) != 0 || compareLimbs(t, n, k) >= 0) {
      this.subtractN(out, t);
    } else {
      memory.copy(changetype<usize>(out), changetype<usize>(t), <usize>k << 2);
    }
  }

  /**
   * base^exp mod n for base < n (k limbs) and any exponent, by left-to-right binary
   * exponentiation in Montgomery form. Returns a new k-limb value.
   */
  pow(base: StaticArray<u32>, exp: StaticArray<u32>): StaticArray<u32> {
    const k = this.k;
    const acc = new StaticArray<u32>(k);
    const ebits = bitLength(exp);
    if (ebits == 0) {
      unchecked((acc[0] = 1)); // x^0 = 1, and n > 1
      return acc;
    }
    const bm = new StaticArray<u32>(k);
    this.mul(bm, base, this.rr); // base * R mod n
    memory.copy(changetype<usize>(acc), changetype<usize>(bm), <usize>k << 2);
    for (let i = ebits - 2; i >= 0; i--) {
      this.mul(acc, acc, acc);
      if (bitAt(exp, i) != 0) this.mul(acc, acc, bm);
    }
    // Leave Montgomery form: multiply by 1 (REDC divides by R once more).
    memory.fill(changetype<usize>(bm), 0, <usize>k << 2);
    unchecked((bm[0] = 1));
    this.mul(acc, acc, bm);
    return acc;
  }
}
