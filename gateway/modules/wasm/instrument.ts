/**
 * The sandbox rewrite, done once per module (cached with the compiled module under its SHA-256):
 *
 * - a new mutable i32 global counts down at the entry of functions on call cycles or with a large
 *   reach and before bulk memory and table instructions (by their length), and a new i32 local on
 *   every branch back to a loop (call-graph.ts, code-rewrite.ts); when one reaches 0 it calls a
 *   new function import (`edge-gateway:sandbox`.`budget_check`, `() -> i32`), which
 *   resets it or traps once the outermost guest call's deadline has passed (abi/sandbox.ts);
 * - the single defined memory gets the cap (`memoryMb`) as its maximum, so `memory.grow` past it
 *   returns -1 as the spec says. Without `memoryMb` it becomes an import the host creates per VM
 *   instead (one module for every cap); the store does not use that form on the hot path because
 *   V8 runs a module with a JS-created memory with millisecond p99 spikes (bench/README.md). A
 *   memory the module imports itself (emscripten's env.memory) is created by the host with the cap.
 *
 * The new function import shifts every defined function index by one: calls, return_calls and
 * ref.func in code and constant expressions, element segments (both encodings), exports, the start
 * function and the name section are rewritten. Debug sections whose code offsets would be stale
 * (DWARF, branch hints, relocations) are dropped.
 */
import { MEMORY_IMPORT, SANDBOX_MODULE, BUDGET_IMPORT, type MemoryImportPlan, type SandboxPlan } from '../../abi/sandbox.js';
import { BUDGET_CHECK_INTERVAL, WASM_PAGE_BYTES } from '../../abi/limits.js';
import { ByteReader, ByteWriter } from './leb.js';
import { readImportEntries } from './imports.js';
import { rewriteCode, rewriteConstExpr, type FuncRemap } from './code-rewrite.js';
import { rewriteNames } from './name-section.js';
import { expectEnd, findSection, readFuncTypes, readLimits, readSections, readValType, sectionRank, sectionReader, SectionId,
  skipRefType, type Limits, type Section } from './sections.js';

/** Bump when the rewrite changes: instrumented modules are cached under (sha256, version). */
export const INSTRUMENTATION_VERSION = 9;

export interface InstrumentOptions {
  /** Budget checks between host calls (default BUDGET_CHECK_INTERVAL). */
  readonly interval?: number;
  /** Cap for a defined memory; absent: the memory becomes an import (see the file header). */
  readonly memoryMb?: number;
  /** Unroll small inner loops so their checks run less often (loop-unroll.ts; default true). */
  readonly unroll?: boolean;
}

export interface InstrumentedModule {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly plan: SandboxPlan;
}

interface OutSection { id: number; payload: Uint8Array; name?: string }

/** Custom sections whose contents point at code offsets or indices we moved. */
function staleCustom(name: string): boolean {
  return name.startsWith('.debug') || name.startsWith('reloc.') || name.startsWith('metadata.code.')
    || name === 'linking' || name === 'sourceMappingURL';
}

/** Rewrites `bytes` (see the file header); GW_ERR_MODULE_INVALID naming the offset for malformed input. */
export function instrumentModule(bytes: Uint8Array, options: InstrumentOptions = {}): InstrumentedModule {
  const interval = options.interval ?? BUDGET_CHECK_INTERVAL;
  const sections = readSections(bytes);
  const imports = readImportEntries(bytes, sections);
  const reserved = imports.find((i) => i.module === SANDBOX_MODULE);
  if (reserved !== undefined) {
    new ByteReader(bytes).fail(`the module imports ${reserved.module}.${reserved.name}, a name reserved for the host's sandbox`, findSection(sections, SectionId.IMPORT)!.start);
  }
  const types = readFuncTypes(bytes, findSection(sections, SectionId.TYPE));
  const typeCount = types.length;
  const funcImports = imports.filter((i) => i.kind === 'function').length;
  const importedGlobals = imports.filter((i) => i.kind === 'global').length;
  const memoryImports = imports.filter((i) => i.kind === 'memory');
  const definedMemories = readMemories(bytes, findSection(sections, SectionId.MEMORY));
  const globalSection = findSection(sections, SectionId.GLOBAL);
  const definedGlobals = globalSection ? sectionReader(bytes, globalSection).u32() : 0;

  const remap: FuncRemap = (index) => (index >= funcImports ? index + 1 : index);
  const params = readFunctionTypes(bytes, findSection(sections, SectionId.FUNCTION), typeCount).map((t) => types[t].params.length);

  let memory: MemoryImportPlan | null = null;
  let uncapped: string | null = null;
  let convert: Limits | null = null;
  let capped: { limits: Limits; capPages: number } | null = null;
  const total = memoryImports.length + definedMemories.length;
  if (total > 1) uncapped = `the module declares ${total} memories`;
  else if (total === 1) {
    const limits = definedMemories[0] ?? memoryImports[0].limits!;
    if (limits.is64) uncapped = 'the module declares a 64-bit memory';
    else {
      if (definedMemories.length === 1 && options.memoryMb !== undefined) {
        capped = { limits, capPages: capPages(options.memoryMb) };
      } else {
        if (definedMemories.length === 1) convert = limits;
        const from = definedMemories.length === 1 ? { module: SANDBOX_MODULE, name: MEMORY_IMPORT } : memoryImports[0];
        memory = { module: from.module, name: from.name, initialPages: limits.min, maximumPages: limits.max, shared: limits.shared };
      }
    }
  }

  const out: OutSection[] = [];
  for (const s of sections) {
    const r = sectionReader(bytes, s);
    switch (s.id) {
      case SectionId.CUSTOM: {
        if (staleCustom(s.name!)) break;
        if (s.name === 'name') {
          const payload = rewriteNames(bytes, s.start, s.end, remap, { index: funcImports, name: `${SANDBOX_MODULE}.${BUDGET_IMPORT}` });
          if (payload !== null) out.push({ id: 0, name: 'name', payload });
        } else {
          out.push({ id: 0, name: s.name, payload: r.take(s.end - s.start) });
        }
        break;
      }
      case SectionId.TYPE: out.push({ id: s.id, payload: appendType(r) }); break;
      case SectionId.IMPORT: out.push({ id: s.id, payload: appendImports(r, typeCount, convert) }); break;
      case SectionId.MEMORY:
        if (capped !== null) out.push({ id: s.id, payload: cappedMemory(capped.limits, capped.capPages) });
        else if (convert === null) out.push({ id: s.id, payload: r.take(s.end - s.start) });
        break;
      case SectionId.TABLE: out.push({ id: s.id, payload: rewriteTables(r, remap) }); break;
      case SectionId.GLOBAL: out.push({ id: s.id, payload: rewriteGlobals(r, remap, interval) }); break;
      case SectionId.EXPORT: out.push({ id: s.id, payload: rewriteExports(r, remap) }); break;
      case SectionId.START: {
        const payload = new ByteWriter(8).u32(remap(r.u32())).finish();
        expectEnd(r, 'start section');
        out.push({ id: s.id, payload });
        break;
      }
      case SectionId.ELEMENT: out.push({ id: s.id, payload: rewriteElements(r, remap) }); break;
      case SectionId.CODE: out.push({ id: s.id, payload: rewriteCode(r, { remap, counterGlobal: importedGlobals + definedGlobals, budgetFunc: funcImports, funcImports, interval, params, unroll: options.unroll ?? true }) }); break;
      default: out.push({ id: s.id, payload: r.take(s.end - s.start) });
    }
  }
  if (findSection(sections, SectionId.TYPE) === undefined) insert(out, SectionId.TYPE, appendType(null));
  if (findSection(sections, SectionId.IMPORT) === undefined) insert(out, SectionId.IMPORT, appendImports(null, typeCount, convert));
  if (globalSection === undefined) insert(out, SectionId.GLOBAL, rewriteGlobals(null, remap, interval));
  return { bytes: assemble(out), plan: Object.freeze({ version: INSTRUMENTATION_VERSION, memory, uncapped,
    defined: capped === null ? null : { initialPages: capped.limits.min, capPages: capped.capPages } }) };
}

function insert(out: OutSection[], id: number, payload: Uint8Array): void {
  const at = out.findIndex((s) => s.id !== 0 && sectionRank(s.id) > sectionRank(id));
  out.splice(at === -1 ? out.length : at, 0, { id, payload });
}

function assemble(out: readonly OutSection[]): Uint8Array<ArrayBuffer> {
  const w = new ByteWriter(out.reduce((n, s) => n + s.payload.length + 16, 8));
  w.bytes(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
  for (const s of out) {
    if (s.id === 0) {
      const named = new ByteWriter(s.payload.length + 16).name(s.name!).bytes(s.payload).finish();
      w.u8(0).sized(named);
    } else {
      w.u8(s.id).sized(s.payload);
    }
  }
  return w.finish();
}

/** The rest of a vector after its count, verbatim, with `count + extra` in front. */
function grow(r: ByteReader | null, extra: number, capacity: number): ByteWriter {
  const count = r === null ? 0 : r.u32();
  const w = new ByteWriter(capacity);
  w.u32(count + extra);
  if (r !== null) w.bytes(r.take(r.end - r.pos));
  return w;
}

/** Type section + `() -> i32` for the budget import (its index is the old type count). */
function appendType(r: ByteReader | null): Uint8Array {
  return grow(r, 1, (r ? r.end - r.pos : 0) + 16).u8(0x60).u8(0).u8(1).u8(0x7f).finish();
}

function appendImports(r: ByteReader | null, budgetType: number, memory: Limits | null): Uint8Array {
  const w = grow(r, memory === null ? 1 : 2, (r ? r.end - r.pos : 0) + 64);
  w.name(SANDBOX_MODULE).name(BUDGET_IMPORT).u8(0x00).u32(budgetType);
  if (memory !== null) {
    w.name(SANDBOX_MODULE).name(MEMORY_IMPORT).u8(0x02).u8((memory.max !== null ? 1 : 0) | (memory.shared ? 2 : 0)).u32(memory.min);
    if (memory.max !== null) w.u32(memory.max);
  }
  return w.finish();
}

function capPages(memoryMb: number): number {
  return Math.min(65536, Math.floor((memoryMb * 1024 * 1024) / WASM_PAGE_BYTES));
}

/**
 * The memory section with maximum = min(declared, cap). A minimum over the cap keeps max = min so
 * the module still compiles; the VM refuses it by its plan (GW_ERR_ABI_MEMORY names the numbers).
 */
function cappedMemory(limits: Limits, cap: number): Uint8Array {
  const max = Math.max(limits.min, Math.min(limits.max ?? 65536, cap));
  return new ByteWriter(16).u32(1).u8(1 | (limits.shared ? 2 : 0)).u32(limits.min).u32(max).finish();
}

/** The function section: the type index of each defined function. */
function readFunctionTypes(bytes: Uint8Array, section: Section | undefined, typeCount: number): number[] {
  if (section === undefined) return [];
  const r = sectionReader(bytes, section);
  const count = r.u32();
  if (count > r.end - r.pos) r.fail(`${count} functions cannot fit`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const t = r.u32();
    if (t >= typeCount) r.fail(`function ${i} uses type ${t} of ${typeCount}`, at);
    out.push(t);
  }
  expectEnd(r, 'function section');
  return out;
}

function readMemories(bytes: Uint8Array, section: Section | undefined): Limits[] {
  if (section === undefined) return [];
  const r = sectionReader(bytes, section);
  const count = r.u32();
  const out: Limits[] = [];
  for (let i = 0; i < count; i++) out.push(readLimits(r));
  expectEnd(r, 'memory section');
  return out;
}

/** Tables may carry an initialiser expression (0x40 0x00 form of typed function references). */
function rewriteTables(r: ByteReader, remap: FuncRemap): Uint8Array {
  const count = r.u32();
  const w = new ByteWriter(r.end - r.pos + 8).u32(count);
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const withInit = r.bytes[r.pos] === 0x40;
    if (withInit && r.u8() === 0x40 && r.u8() !== 0) r.fail('table with initialiser: reserved byte is not 0', at + 1);
    skipRefType(r);
    readLimits(r);
    w.bytes(r.bytes.subarray(at, r.pos));
    if (withInit) rewriteConstExpr(r, w, remap);
  }
  expectEnd(r, 'table section');
  return w.finish();
}

/** Globals keep their initialisers (ref.func remapped); the budget counter is appended. */
function rewriteGlobals(r: ByteReader | null, remap: FuncRemap, interval: number): Uint8Array {
  const count = r === null ? 0 : r.u32();
  const w = new ByteWriter((r ? r.end - r.pos : 0) + 16).u32(count + 1);
  for (let i = 0; i < count; i++) {
    const at = r!.pos;
    readValType(r!);
    if (r!.u8() > 1) r!.fail(`global ${i}: mutability is not 0 or 1`, r!.pos - 1);
    w.bytes(r!.bytes.subarray(at, r!.pos));
    rewriteConstExpr(r!, w, remap);
  }
  if (r !== null) expectEnd(r, 'global section');
  return w.u8(0x7f).u8(0x01).u8(0x41).s32(interval).u8(0x0b).finish();
}

function rewriteExports(r: ByteReader, remap: FuncRemap): Uint8Array {
  const count = r.u32();
  const w = new ByteWriter(r.end - r.pos + 8).u32(count);
  for (let i = 0; i < count; i++) {
    const nameAt = r.pos;
    r.name();
    w.bytes(r.bytes.subarray(nameAt, r.pos));
    const kind = r.u8();
    if (kind > 4) r.fail(`export ${i}: unknown kind ${kind}`, r.pos - 1);
    const index = r.u32();
    w.u8(kind).u32(kind === 0 ? remap(index) : index);
  }
  expectEnd(r, 'export section');
  return w.finish();
}

/** Element segments, flags 0–7: function-index vectors (0–3) or expression vectors (4–7). */
function rewriteElements(r: ByteReader, remap: FuncRemap): Uint8Array {
  const count = r.u32();
  const w = new ByteWriter(r.end - r.pos + 16).u32(count);
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const flags = r.u32();
    if (flags > 7) r.fail(`element segment ${i}: unknown flags ${flags}`, at);
    w.u32(flags);
    if ((flags & 3) === 2) w.u32(r.u32()); // explicit table index
    if ((flags & 1) === 0) rewriteConstExpr(r, w, remap); // active: offset
    if ((flags & 3) !== 0) {
      // elemkind (0x00) or reference type
      const kindAt = r.pos;
      if ((flags & 4) === 0) {
        if (r.u8() !== 0) r.fail(`element segment ${i}: elemkind is not funcref`, kindAt);
      } else {
        skipRefType(r);
      }
      w.bytes(r.bytes.subarray(kindAt, r.pos));
    }
    const n = r.u32();
    if (n > r.end - r.pos) r.fail(`element segment ${i}: ${n} entries cannot fit`);
    w.u32(n);
    for (let k = 0; k < n; k++) {
      if ((flags & 4) === 0) w.u32(remap(r.u32()));
      else rewriteConstExpr(r, w, remap);
    }
  }
  expectEnd(r, 'element section');
  return w.finish();
}
