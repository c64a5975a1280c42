/**
 * An ordered, case-insensitive header map as a Proxy-Wasm guest sees it: keys are lower-cased on
 * insertion, repeated keys are separate entries, and pseudo-headers (`:path`, `:status`) are plain
 * entries. Stored as one flat array so that marshalling to the pairs format walks a single array.
 */
import type { Pairs } from './pairs.js';

/** The first value of `key` (Envoy's rule for repeated headers) in flat pairs, or undefined. */
export function firstValue(pairs: Pairs, key: string): string | undefined {
  key = key.toLowerCase();
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === key) return pairs[i + 1];
  return undefined;
}

/** Sum of key and value lengths: what Envoy's `HeaderMap::byteSize()` reports. */
export function byteSize(pairs: Pairs): number {
  let size = 0;
  for (let i = 0; i < pairs.length; i++) size += pairs[i].length;
  return size;
}

export class HeaderMap {
  /** [k0, v0, k1, v1, …]; keys lower-case; byte strings (latin1). */
  pairs: Pairs;

  constructor(pairs: Pairs = []) {
    this.pairs = pairs;
  }

  /** Builds a map from any entries, lower-casing the keys. */
  static from(entries: Iterable<readonly [string, string]>): HeaderMap {
    const pairs: Pairs = [];
    for (const [k, v] of entries) pairs.push(k.toLowerCase(), v);
    return new HeaderMap(pairs);
  }

  get count(): number {
    return this.pairs.length >>> 1;
  }

  /** Sum of key and value lengths: what Envoy's `HeaderMap::byteSize()` reports. */
  get byteSize(): number {
    return byteSize(this.pairs);
  }

  /** The first value of `key`, or undefined. */
  get(key: string): string | undefined {
    return firstValue(this.pairs, key);
  }

  /** Every value of `key`, in order. */
  getAll(key: string): string[] {
    key = key.toLowerCase();
    const out: string[] = [];
    const p = this.pairs;
    for (let i = 0; i < p.length; i += 2) if (p[i] === key) out.push(p[i + 1]);
    return out;
  }

  add(key: string, value: string): void {
    this.pairs.push(key.toLowerCase(), value);
  }

  /** Leaves exactly one entry for `key`, in the place of its first occurrence (or appended). */
  replace(key: string, value: string): void {
    key = key.toLowerCase();
    const p = this.pairs;
    let i = 0;
    while (i < p.length && p[i] !== key) i += 2;
    if (i === p.length) {
      p.push(key, value);
      return;
    }
    p[i + 1] = value;
    this.removeFrom(key, i + 2);
  }

  /** Removes every entry for `key`; absent keys are fine. */
  remove(key: string): void {
    this.removeFrom(key.toLowerCase(), 0);
  }

  private removeFrom(key: string, start: number): void {
    const p = this.pairs;
    let w = start;
    for (let r = start; r < p.length; r += 2) {
      if (p[r] === key) continue;
      p[w] = p[r];
      p[w + 1] = p[r + 1];
      w += 2;
    }
    p.length = w;
  }

  /** Replaces the whole map (Envoy removes everything, pseudo-headers included, then adds). */
  setAll(pairs: Pairs): void {
    for (let i = 0; i < pairs.length; i += 2) pairs[i] = pairs[i].toLowerCase();
    this.pairs = pairs;
  }
}
