/**
 * Base64 (RFC 4648 §4) and base64url (§5) decoding and encoding.
 *
 * Decoders return null on any invalid input and never trap. They are strict where laxness would
 * let two different strings decode to the same bytes (JWS malleability, RFC 7515 §2): characters
 * outside the alphabet, misplaced or surplus '=', a length that leaves a single 6-bit group, and
 * non-zero pad bits (§3.5) are all rejected.
 */

/** The 6-bit value of an alphabet character, or -1. `url` picks '-' '_' (§5) over '+' '/' (§4). */
@inline function sextet(c: i32, url: bool): i32 {
  if (c >= 65 && c <= 90) return c - 65; // A-Z → 0..25
  if (c >= 97 && c <= 122) return c - 71; // a-z → 26..51
  if (c >= 48 && c <= 57) return c + 4; // 0-9 → 52..61
  if (c == (url ? 45 : 43)) return 62;
  if (c == (url ? 95 : 47)) return 63;
  return -1;
}

/** The alphabet character for a 6-bit value. */
@inline function alphabet(v: u32, url: bool): u16 {
  if (v < 26) return <u16>(65 + v);
  if (v < 52) return <u16>(71 + v);
  if (v < 62) return <u16>(v - 4);
  if (v == 62) return url ? 45 : 43;
  return url ? 95 : 47;
}

/** RFC 7468 §3: PEM bodies may carry spaces, tabs and line breaks between base64 characters. */
@inline function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

function decode(s: string, url: bool, skipSpace: bool): Uint8Array | null {
  const len = s.length;
  // Pass 1: validate and count, so the output is allocated once at its exact size.
  let data = 0;
  let pad = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (skipSpace && isSpace(c)) continue;
    if (c == 61) {
      // '=' only closes a standard base64 string (RFC 7515 §2 omits it from base64url).
      if (url || ++pad > 2) return null;
      continue;
    }
    if (pad > 0 || sextet(c, url) < 0) return null;
    data++;
  }
  const rem = data & 3;
  // One leftover character carries only 6 bits: not a whole byte (§4).
  if (rem == 1) return null;
  // With padding, the quantum must be complete: "xx==" or "xxx=" (§4).
  if (pad > 0 && ((data + pad) & 3) != 0) return null;

  const out = new Uint8Array((data >> 2) * 3 + (rem == 0 ? 0 : rem - 1));
  const dst = out.dataStart;
  let acc: u32 = 0;
  let bits: u32 = 0;
  let o: usize = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c == 61 || (skipSpace && isSpace(c))) continue;
    acc = (acc << 6) | <u32>sextet(c, url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(dst + o++, <u8>(acc >> bits));
    }
  }
  // §3.5: the bits left over after the last byte must be zero, or the encoding is not canonical.
  if ((acc & ((1 << bits) - 1)) != 0) return null;
  return out;
}

/** Decodes unpadded base64url as used by JWS/JWK (RFC 7515 §2); null if invalid. */
export function base64UrlDecode(s: string): Uint8Array | null {
  return decode(s, true, false);
}

/**
 * Decodes standard base64 (§4); padding may be present (then it must be correct) or omitted.
 * With `ignoreWhitespace`, spaces, tabs, CR and LF anywhere are skipped (PEM bodies).
 */
export function base64Decode(s: string, ignoreWhitespace: bool = false): Uint8Array | null {
  return decode(s, false, ignoreWhitespace);
}

function encode(bytes: Uint8Array, url: bool): string {
  const len = bytes.length;
  const full = len / 3;
  const rem = len - full * 3;
  // base64url drops the padding (RFC 7515 §2); standard base64 pads to a multiple of 4 (§4).
  const outLen = full * 4 + (rem == 0 ? 0 : url ? rem + 1 : 4);
  const out = changetype<string>(__new(<usize>outLen << 1, idof<string>()));
  const dst = changetype<usize>(out);
  const src = bytes.dataStart;
  let o: usize = 0;
  for (let i = 0; i < full; i++) {
    const p = src + <usize>i * 3;
    const v = (<u32>load<u8>(p) << 16) | (<u32>load<u8>(p, 1) << 8) | <u32>load<u8>(p, 2);
    store<u16>(dst + (o << 1), alphabet(v >> 18, url), 0);
    store<u16>(dst + (o << 1), alphabet((v >> 12) & 63, url), 2);
    store<u16>(dst + (o << 1), alphabet((v >> 6) & 63, url), 4);
    store<u16>(dst + (o << 1), alphabet(v & 63, url), 6);
    o += 4;
  }
  if (rem > 0) {
    const p = src + <usize>full * 3;
    const v = (<u32>load<u8>(p) << 16) | (rem == 2 ? <u32>load<u8>(p, 1) << 8 : 0);
    store<u16>(dst + (o << 1), alphabet(v >> 18, url), 0);
    store<u16>(dst + (o << 1), alphabet((v >> 12) & 63, url), 2);
    if (rem == 2) store<u16>(dst + (o << 1), alphabet((v >> 6) & 63, url), 4);
    else if (!url) store<u16>(dst + (o << 1), 61, 4);
    if (!url) store<u16>(dst + (o << 1), 61, 6);
  }
  return out;
}

/** Unpadded base64url (RFC 7515 §2). */
export function base64UrlEncode(bytes: Uint8Array): string {
  return encode(bytes, true);
}

/** Padded standard base64 (RFC 4648 §4). */
export function base64Encode(bytes: Uint8Array): string {
  return encode(bytes, false);
}
