/**
 * Property values as Envoy serialises them for `proxy_get_property` (reference §5.11): strings and
 * bytes raw, integers, timestamps and durations as 8 bytes LE, bools as one byte, maps and lists
 * in the pairs format. Property sources (the data plane, node info) build values with these.
 */
import { encodePairs, type Pairs } from './pairs.js';

export function propString(value: string): Uint8Array {
  return Buffer.from(value, 'utf8');
}

/** int64 / uint64 / timestamp (ns since epoch) / duration (ns): 8 bytes little-endian. */
export function propInt(value: number | bigint): Uint8Array {
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)));
  return out;
}

export function propDouble(value: number): Uint8Array {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleLE(value);
  return out;
}

export function propBool(value: boolean): Uint8Array {
  return Uint8Array.of(value ? 1 : 0);
}

/** A map: each key and value already serialised as a byte string (latin1). */
export function propMap(pairs: Pairs): Uint8Array {
  return encodePairs(pairs);
}

/** A list: pairs whose keys are the elements and whose values are empty. */
export function propList(items: readonly string[]): Uint8Array {
  const pairs: Pairs = [];
  for (const item of items) pairs.push(item, '');
  return encodePairs(pairs);
}

/** Splits a NUL-separated property path (no trailing NUL) into its segments. */
export function splitPath(raw: string): string[] {
  return raw.split('\0');
}
