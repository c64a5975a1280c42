/**
 * The one codec for Proxy-Wasm serialised maps ("pairs", reference §5.10):
 *
 *   u32 LE count N
 *   N × { u32 LE key_len, u32 LE value_len }
 *   N × { key bytes, 0x00, value bytes, 0x00 }      (the NULs are not counted in the lengths)
 *
 * Maps are flat arrays [k0, v0, k1, v1, …] of byte strings (latin1, one char per byte), which keeps
 * header bytes exact and lets the hot path avoid per-entry objects. Header maps, local-response
 * headers, callout headers and map-typed property values all go through this file.
 */
import { MAX_PAIRS_BYTES, MAX_PAIRS_COUNT } from './limits.js';

/** Flat list of byte strings: keys at even indexes, values at odd ones. */
export type Pairs = string[];

/** Serialised size of `pairs`; 0 for an empty map (returned to guests as ptr=0, len=0). */
export function pairsSize(pairs: Pairs): number {
  const n = pairs.length >>> 1;
  if (n === 0) return 0;
  let size = 4 + n * 8;
  for (let i = 0; i < pairs.length; i++) size += pairs[i].length + 1;
  return size;
}

/** Writes `pairs` into `out` at `offset`; `out` must hold `pairsSize(pairs)` bytes there. */
export function encodePairsInto(pairs: Pairs, out: Buffer, offset: number): void {
  const n = pairs.length >>> 1;
  out.writeUInt32LE(n, offset);
  let table = offset + 4;
  let data = table + n * 8;
  for (let i = 0; i < pairs.length; i += 2) {
    const key = pairs[i];
    const value = pairs[i + 1];
    out.writeUInt32LE(key.length, table);
    out.writeUInt32LE(value.length, table + 4);
    table += 8;
    data += out.write(key, data, 'latin1');
    out[data++] = 0;
    data += out.write(value, data, 'latin1');
    out[data++] = 0;
  }
}

export function encodePairs(pairs: Pairs): Buffer {
  const out = Buffer.allocUnsafe(pairsSize(pairs));
  if (out.length > 0) encodePairsInto(pairs, out, 0);
  return out;
}

/**
 * Decodes a pairs blob, or returns null when it is malformed: over the size or count limits, a
 * length past the end, a terminator that is not 0x00, or trailing bytes. The three encodings of
 * an empty map are accepted: zero bytes, a single 0x00 and N=0.
 */
export function decodePairs(bytes: Uint8Array): Pairs | null {
  const len = bytes.length;
  if (len === 0 || (len === 1 && bytes[0] === 0)) return [];
  if (len < 4 || len > MAX_PAIRS_BYTES) return null;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, len);
  const n = buf.readUInt32LE(0);
  if (n > MAX_PAIRS_COUNT) return null;
  let table = 4;
  let data = 4 + n * 8;
  if (data > len) return null;
  const pairs: Pairs = new Array(n * 2);
  for (let i = 0; i < n; i++) {
    const keyLen = buf.readUInt32LE(table);
    const valueLen = buf.readUInt32LE(table + 4);
    table += 8;
    if (data + keyLen + 1 + valueLen + 1 > len) return null;
    if (buf[data + keyLen] !== 0 || buf[data + keyLen + 1 + valueLen] !== 0) return null;
    pairs[2 * i] = buf.toString('latin1', data, data + keyLen);
    data += keyLen + 1;
    pairs[2 * i + 1] = buf.toString('latin1', data, data + valueLen);
    data += valueLen + 1;
  }
  return data === len ? pairs : null;
}
