/**
 * Seeded mutations of WebAssembly modules, for fuzzing the load path. Each mutant is a pure
 * function of (seed, index), so a failure is reproduced from the two numbers printed with it
 * (`bench/fuzz-modules.ts --seed S --from I --count 1`).
 *
 * Byte-level mutations (bit flips, insertions, deletions, truncation) find parser bugs at any
 * offset; structural ones (section lengths, LEB128 overflow, duplicated, dropped or swapped
 * sections, bytes in function bodies) reach past the first check and into later ones.
 */

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence everywhere. */
export class Rand {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32-bit unsigned value. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** The PRNG of mutant `index` of run `seed`: independent of every other index. */
export function mutantRand(seed: number, index: number): Rand {
  return new Rand(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

/** One top-level section: `[start, end)` covers id, size and content. */
interface Section { id: number; start: number; sizeAt: number; contentAt: number; end: number }

/** Reads an unsigned LEB128 at `at`; null when it runs past the end or over 5 bytes. */
function readLeb(bytes: Uint8Array, at: number): { value: number; next: number } | null {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    if (at + i >= bytes.length) return null;
    const b = bytes[at + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
  }
  return null;
}

/** The sections that parse, in order (mutants are malformed: parsing stops at the first bad one). */
export function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  let at = 8;
  while (at < bytes.length) {
    const size = readLeb(bytes, at + 1);
    if (size === null || size.next + size.value > bytes.length) break;
    out.push({ id: bytes[at], start: at, sizeAt: at + 1, contentAt: size.next, end: size.next + size.value });
    at = size.next + size.value;
  }
  return out;
}

function leb(value: number, minBytes = 1): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0 || out.length + 1 < minBytes) b |= 0x80;
    out.push(b);
  } while (v > 0 || out.length < minBytes);
  return out;
}

function splice(bytes: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array {
  // An already mutated module may be shorter than the header the insertion point assumes: insert at the end then.
  at = Math.min(at, bytes.length);
  remove = Math.min(remove, bytes.length - at);
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at), 0);
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

function randomBytes(r: Rand, n: number): number[] {
  return Array.from({ length: n }, () => r.int(256));
}

type Mutator = (bytes: Uint8Array, r: Rand) => Uint8Array;

/** Lengths a corrupted size field takes: off by one, zero, past the end, or huge. */
function corruptLength(r: Rand, size: number, total: number): number {
  return r.pick([0, Math.max(0, size - 1), size + 1, r.int(2 * size + 2), total, 0xffffffff, 2 ** 31]);
}

export const MUTATORS: Readonly<Record<string, Mutator>> = {
  'bit-flip': (bytes, r) => {
    const out = bytes.slice();
    for (let n = 1 + r.int(8); n > 0; n--) out[r.int(out.length)] ^= 1 << r.int(8);
    return out;
  },
  'byte-insert': (bytes, r) => splice(bytes, r.int(bytes.length + 1), 0, randomBytes(r, 1 + r.int(16))),
  'byte-delete': (bytes, r) => {
    const at = r.int(bytes.length);
    return splice(bytes, at, Math.min(bytes.length - at, 1 + r.int(16)), []);
  },
  truncate: (bytes, r) => bytes.slice(0, r.int(bytes.length)),
  'section-length': (bytes, r) => {
    const s = sections(bytes);
    if (s.length === 0) return MUTATORS.truncate(bytes, r);
    const sec = r.pick(s);
    const width = sec.contentAt - sec.sizeAt;
    // Same width when the value fits (the rest of the module stays aligned), else a wider field.
    return splice(bytes, sec.sizeAt, width, leb(corruptLength(r, sec.end - sec.contentAt, bytes.length), width));
  },
  'leb-overflow': (bytes, r) => {
    const s = sections(bytes);
    if (s.length === 0) return MUTATORS['bit-flip'](bytes, r);
    const sec = r.pick(s);
    // The section size, or the first LEB of its content (a vector count, in most sections).
    const at = r.int(2) === 0 || sec.end === sec.contentAt ? sec.sizeAt : sec.contentAt;
    const old = readLeb(bytes, at);
    const width = old === null ? 1 : old.next - at;
    const overlong = r.pick([
      [0xff, 0xff, 0xff, 0xff, 0x7f], // 5 bytes, value over 2^32
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 6 bytes: over the u32 limit of 5
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // a u64 LEB where a u32 goes
      [0x80, 0x80, 0x80, 0x80], // never terminated
    ]);
    return splice(bytes, at, width, overlong);
  },
  'duplicate-section': (bytes, r) => {
    const s = sections(bytes);
    if (s.length === 0) return MUTATORS['byte-insert'](bytes, r);
    const sec = r.pick(s);
    const target = r.pick(s);
    return splice(bytes, r.int(2) === 0 ? sec.end : target.start, 0, bytes.subarray(sec.start, sec.end));
  },
  'drop-section': (bytes, r) => {
    const s = sections(bytes);
    if (s.length === 0) return MUTATORS.truncate(bytes, r);
    const sec = r.pick(s);
    return splice(bytes, sec.start, sec.end - sec.start, []);
  },
  'swap-sections': (bytes, r) => {
    const s = sections(bytes);
    if (s.length < 2) return MUTATORS['bit-flip'](bytes, r);
    const k = r.int(s.length - 1);
    const [a, b] = [s[k], s[k + 1]];
    const swapped = [...bytes.subarray(b.start, b.end), ...bytes.subarray(a.start, a.end)];
    return splice(bytes, a.start, b.end - a.start, swapped);
  },
  // Bytes inside function bodies: often still valid, with other instructions (traps, odd calls).
  'code-byte': (bytes, r) => {
    const code = sections(bytes).find((sec) => sec.id === 10);
    if (code === undefined || code.end - code.contentAt < 2) return MUTATORS['bit-flip'](bytes, r);
    const out = bytes.slice();
    for (let n = 1 + r.int(3); n > 0; n--) out[code.contentAt + 1 + r.int(code.end - code.contentAt - 1)] = r.int(256);
    return out;
  },
  // The operand of an i32.const (0x41) in code, same width: a valid module that hands the host
  // other pointers, lengths, enum values and statuses.
  'const-operand': (bytes, r) => {
    const code = sections(bytes).find((sec) => sec.id === 10);
    if (code === undefined) return MUTATORS['bit-flip'](bytes, r);
    const out = bytes.slice();
    for (let tries = 0, changed = 0; tries < 64 && changed < 1 + r.int(4); tries++) {
      const at = code.contentAt + r.int(code.end - code.contentAt);
      if (out[at] !== 0x41) continue;
      const old = readLeb(out, at + 1);
      if (old === null || old.next > code.end) continue;
      const width = old.next - at - 1;
      const value = r.pick([0, 1, 0xff, 0x7f, 0x3fff, 2 ** (7 * width - 1) - 1, r.int(2 ** (7 * width))]) % 2 ** (7 * width);
      out.set(leb(value, width).slice(0, width), at + 1);
      out[at + width] &= 0x7f; // keep it terminated where it was
      changed++;
    }
    return out;
  },
  // Static data the guest reads (strings, tables, runtime headers): always valid.
  'data-byte': (bytes, r) => {
    const data = sections(bytes).find((sec) => sec.id === 11);
    if (data === undefined || data.end === data.contentAt) return MUTATORS['bit-flip'](bytes, r);
    const out = bytes.slice();
    for (let n = 1 + r.int(16); n > 0; n--) out[data.contentAt + r.int(data.end - data.contentAt)] = r.int(256);
    return out;
  },
  // A character of an import or export name: a missing hostcall, callback or marker.
  'name-byte': (bytes, r) => {
    const named = sections(bytes).filter((sec) => (sec.id === 2 || sec.id === 7) && sec.end > sec.contentAt);
    if (named.length === 0) return MUTATORS['bit-flip'](bytes, r);
    const sec = r.pick(named);
    const out = bytes.slice();
    const at = sec.contentAt + r.int(sec.end - sec.contentAt);
    if (out[at] >= 0x61 && out[at] <= 0x7a) out[at] = 0x61 + r.int(26);
    else out[at] ^= 1 << r.int(8);
    return out;
  },
  // A custom section with random bytes, anywhere between sections: always valid.
  'custom-section': (bytes, r) => {
    const s = sections(bytes);
    const payload = [4, 0x66, 0x75, 0x7a, 0x7a, ...randomBytes(r, r.int(64))];
    const at = s.length === 0 ? 8 : r.pick([...s.map((sec) => sec.start), s[s.length - 1].end]);
    return splice(bytes, at, 0, [0, ...leb(payload.length), ...payload]);
  },
};

/** How often each mutator is picked: the ones that keep modules valid reach the VM and the guest. */
const WEIGHTS: Readonly<Record<string, number>> = {
  'bit-flip': 3, 'byte-insert': 2, 'byte-delete': 2, truncate: 2, 'section-length': 2, 'leb-overflow': 2,
  'duplicate-section': 2, 'drop-section': 2, 'swap-sections': 1, 'code-byte': 2, 'const-operand': 6,
  'data-byte': 4, 'name-byte': 3, 'custom-section': 1,
};

const NAMES = Object.keys(MUTATORS).flatMap((name) => Array<string>(WEIGHTS[name] ?? 1).fill(name));

/** One to three stacked mutations of `bytes`, and their names (`bit-flip+truncate`). */
export function mutate(bytes: Uint8Array, r: Rand): { bytes: Uint8Array; how: string } {
  let out = bytes;
  const how: string[] = [];
  for (let n = 1 + r.int(3); n > 0 && out.length > 0; n--) {
    const name = r.pick(NAMES);
    how.push(name);
    out = MUTATORS[name](out, r);
  }
  return { bytes: out, how: how.join('+') };
}
