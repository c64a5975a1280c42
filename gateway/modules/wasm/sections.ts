/**
 * The section layer of a WebAssembly binary (core spec §5.5): the header, then sections as
 * (id, payload). Known sections must appear once each in the spec's order; custom sections (id 0)
 * may appear anywhere. Also the shared readers of section contents the import reader and the
 * instrumenter both need: value types, limits, func types.
 */
import type { FuncType, ValType } from '../../abi/wasm-types.js';
import { ByteReader } from './leb.js';

export const SectionId = {
  CUSTOM: 0, TYPE: 1, IMPORT: 2, FUNCTION: 3, TABLE: 4, MEMORY: 5, GLOBAL: 6, EXPORT: 7, START: 8,
  ELEMENT: 9, CODE: 10, DATA: 11, DATA_COUNT: 12, TAG: 13,
} as const;

/** Position of each known section in the required order (the tag section sits after memory). */
const ORDER: readonly number[] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6];
//                               id: 0  1  2  3  4  5  6  7  8  9 10 11 12 13

export function sectionRank(id: number): number {
  return ORDER[id];
}

export interface Section {
  readonly id: number;
  /** Offset of the payload in the module, and one past its end. */
  readonly start: number;
  readonly end: number;
  /** For custom sections: the name; `start` is then just after the name. */
  readonly name?: string;
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Splits a module into sections; throws GW_ERR_MODULE_INVALID (with the offset) for bad framing. */
export function readSections(bytes: Uint8Array): Section[] {
  const r = new ByteReader(bytes);
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) r.fail('missing the \\0asm magic', 0);
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) r.fail('unsupported binary version (not 1)', 4);
  r.pos = 8;
  const sections: Section[] = [];
  let lastRank = 0;
  while (!r.atEnd) {
    const at = r.pos;
    const id = r.u8();
    if (id > 13) r.fail(`unknown section id ${id}`, at);
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    if (id === SectionId.CUSTOM) {
      const sub = new ByteReader(bytes, start, start + size);
      const name = sub.name();
      sections.push({ id, start: sub.pos, end: start + size, name });
      continue;
    }
    const rank = sectionRank(id);
    if (rank <= lastRank) r.fail(`section ${id} out of order or repeated`, at);
    lastRank = rank;
    sections.push({ id, start, end: start + size });
  }
  return sections;
}

export function findSection(sections: readonly Section[], id: number): Section | undefined {
  return sections.find((s) => s.id === id);
}

/** A reader over one section's payload; `done()` checks it was consumed exactly. */
export function sectionReader(bytes: Uint8Array, section: Section): ByteReader {
  return new ByteReader(bytes, section.start, section.end);
}

export function expectEnd(r: ByteReader, what: string): void {
  if (r.pos !== r.end) r.fail(`${what}: ${r.end - r.pos} bytes left over`);
}

const VALTYPES: Readonly<Record<number, ValType>> = {
  0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref',
};

/**
 * A value type. Typed references (0x63/0x64 + heap type, function-references proposal) are read
 * and reported as funcref/externref by their heap type's family, which is all the ABI checks need.
 */
export function readValType(r: ByteReader): ValType {
  const at = r.pos;
  const b = r.u8();
  const t = VALTYPES[b];
  if (t !== undefined) return t;
  if (b === 0x63 || b === 0x64) {
    const heap = r.s33();
    return heap === -0x11 ? 'externref' : 'funcref';
  }
  return r.fail(`unknown value type 0x${b.toString(16)}`, at);
}

/** Skips a table's reference type (0x70, 0x6f, or 0x63/0x64 + heap type). */
export function skipRefType(r: ByteReader): void {
  const at = r.pos;
  const b = r.u8();
  if (b === 0x63 || b === 0x64) r.s33();
  else if (b !== 0x70 && b !== 0x6f && !(b >= 0x69 && b <= 0x74)) r.fail(`unknown reference type 0x${b.toString(16)}`, at);
}

export interface Limits {
  readonly min: number;
  readonly max: number | null;
  readonly shared: boolean;
  readonly is64: boolean;
}

/** Limits of a memory or table: flags (bit 0 max, bit 1 shared, bit 2 64-bit), min, max. */
export function readLimits(r: ByteReader): Limits {
  const at = r.pos;
  const flags = r.u8();
  if (flags > 7) r.fail(`unknown limits flags 0x${flags.toString(16)}`, at);
  const is64 = (flags & 4) !== 0;
  const min = is64 ? r.u64() : r.u32();
  const max = (flags & 1) !== 0 ? (is64 ? r.u64() : r.u32()) : null;
  return { min, max, shared: (flags & 2) !== 0, is64 };
}

/** The type section as func types; any other form (GC rec groups, struct, array) is refused. */
export function readFuncTypes(bytes: Uint8Array, section: Section | undefined): FuncType[] {
  if (section === undefined) return [];
  const r = sectionReader(bytes, section);
  const count = r.u32();
  const types: FuncType[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const form = r.u8();
    if (form !== 0x60) r.fail(`type ${i} is not a function type (form 0x${form.toString(16)})`, at);
    const params = readValTypes(r);
    const results = readValTypes(r);
    types.push({ params, results });
  }
  expectEnd(r, 'type section');
  return types;
}

function readValTypes(r: ByteReader): ValType[] {
  const n = r.u32();
  if (n > r.end - r.pos) r.fail(`${n} value types cannot fit`);
  const out: ValType[] = [];
  for (let i = 0; i < n; i++) out.push(readValType(r));
  return out;
}
