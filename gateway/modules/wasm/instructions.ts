/**
 * The instruction walker: steps over one instruction of a code body or constant expression and
 * knows the immediates of every opcode real toolchains emit: MVP, sign extension, saturating
 * truncation and bulk memory/table (0xFC), reference types, multi-value block types (s33 type
 * index), SIMD (0xFD), threads (0xFE), tail calls, typed function references, legacy exception
 * handling (try/catch/catch_all/delegate/throw/rethrow) and try_table. An opcode it does not know
 * is GW_ERR_MODULE_INVALID: skipping the wrong number of bytes would make a rewrite corrupt the
 * code, so guessing is never an option.
 */
import type { ByteReader } from './leb.js';

/** What the instrumenter must see of an instruction; everything else is copied verbatim. */
export const Op = {
  OTHER: 0,
  /** call, return_call, ref.func: `funcIndex` holds the function index, `indexAt` its offset. */
  FUNC_INDEX: 1,
  /** loop and its block type: a budget check goes right after it. */
  LOOP: 2,
  END: 3,
  /** br, br_if, br_table, br_on_null, br_on_non_null: `label` holds the outermost label it may take. */
  BRANCH: 4,
} as const;

/**
 * First bytes of the block types whose loop label carries no values: empty, or one result value
 * type (i32 i64 f32 f64 v128 funcref externref). A type index may have parameters.
 */
export const NO_PARAM_BLOCK_TYPES: ReadonlySet<number> = new Set([0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/** Where `next` leaves details of the instruction it just read. */
export interface Step {
  op: number;
  opcode: number;
  funcIndex: number;
  /** Offset of the function index immediate (FUNC_INDEX only). */
  indexAt: number;
  /** The largest label index of a branch (BRANCH only). */
  label: number;
  /** The sub-opcode of a 0xFC instruction (saturating truncation, bulk memory and tables). */
  sub: number;
}

/**
 * 0xFC sub-opcodes whose work grows with their length operand (the top of the stack): memory.init,
 * memory.copy, memory.fill, and the table forms. One of them can take milliseconds.
 */
const BULK_MEMORY_OPS: ReadonlySet<number> = new Set([8, 10, 11]);
const BULK_TABLE_OPS: ReadonlySet<number> = new Set([12, 14, 17]);

/** What the instruction `next` just read is: a bulk memory or table instruction, or neither. */
export function bulkKind(step: Step): 'memory' | 'table' | null {
  if (step.opcode !== 0xfc) return null;
  return BULK_MEMORY_OPS.has(step.sub) ? 'memory' : BULK_TABLE_OPS.has(step.sub) ? 'table' : null;
}

const enum Imm { NONE, BLOCK, U32, U32X2, MEMARG, BR_TABLE, SELECT_T, I32, I64, F32, F64, HEAP, TRY_TABLE, FUNC, LOOP, END, LABEL }

/** Immediates of the one-byte opcodes; undefined = unknown opcode. */
const ONE_BYTE: (Imm | undefined)[] = new Array(256);
function set(from: number, to: number, imm: Imm): void {
  for (let op = from; op <= to; op++) ONE_BYTE[op] = imm;
}
set(0x00, 0x01, Imm.NONE); // unreachable nop
set(0x02, 0x02, Imm.BLOCK); // block
set(0x03, 0x03, Imm.LOOP); // loop
set(0x04, 0x04, Imm.BLOCK); // if
set(0x05, 0x05, Imm.NONE); // else
set(0x06, 0x06, Imm.BLOCK); // try (legacy exception handling)
set(0x07, 0x09, Imm.U32); // catch tag, throw tag, rethrow label
set(0x0a, 0x0a, Imm.NONE); // throw_ref
set(0x0b, 0x0b, Imm.END);
set(0x0c, 0x0d, Imm.LABEL); // br br_if
set(0x0e, 0x0e, Imm.BR_TABLE);
set(0x0f, 0x0f, Imm.NONE); // return
set(0x10, 0x10, Imm.FUNC); // call
set(0x11, 0x11, Imm.U32X2); // call_indirect type table
set(0x12, 0x12, Imm.FUNC); // return_call
set(0x13, 0x13, Imm.U32X2); // return_call_indirect type table
set(0x14, 0x15, Imm.U32); // call_ref return_call_ref (type index)
set(0x18, 0x18, Imm.U32); // delegate label
set(0x19, 0x19, Imm.NONE); // catch_all
set(0x1a, 0x1b, Imm.NONE); // drop select
set(0x1c, 0x1c, Imm.SELECT_T);
set(0x1f, 0x1f, Imm.TRY_TABLE);
set(0x20, 0x26, Imm.U32); // local.get/set/tee global.get/set table.get/set
set(0x28, 0x3e, Imm.MEMARG); // loads and stores
set(0x3f, 0x40, Imm.U32); // memory.size memory.grow (memory index)
set(0x41, 0x41, Imm.I32);
set(0x42, 0x42, Imm.I64);
set(0x43, 0x43, Imm.F32);
set(0x44, 0x44, Imm.F64);
set(0x45, 0xc4, Imm.NONE); // numeric, including sign extension 0xC0–0xC4
set(0xd0, 0xd0, Imm.HEAP); // ref.null
set(0xd1, 0xd1, Imm.NONE); // ref.is_null
set(0xd2, 0xd2, Imm.FUNC); // ref.func
set(0xd3, 0xd4, Imm.NONE); // ref.eq ref.as_non_null
set(0xd5, 0xd6, Imm.LABEL); // br_on_null br_on_non_null

/** 0xFC: saturating truncation (0–7) and bulk memory/table (8–17). */
const FC: readonly Imm[] = [
  Imm.NONE, Imm.NONE, Imm.NONE, Imm.NONE, Imm.NONE, Imm.NONE, Imm.NONE, Imm.NONE,
  Imm.U32X2, // memory.init data mem
  Imm.U32, // data.drop
  Imm.U32X2, // memory.copy mem mem
  Imm.U32, // memory.fill
  Imm.U32X2, // table.init elem table
  Imm.U32, // elem.drop
  Imm.U32X2, // table.copy
  Imm.U32, Imm.U32, Imm.U32, // table.grow table.size table.fill
];

/** Reads one instruction at `r.pos` into `step`. */
export function next(r: ByteReader, step: Step): void {
  const at = r.pos;
  const opcode = r.u8();
  step.opcode = opcode;
  step.op = Op.OTHER;
  let imm = ONE_BYTE[opcode];
  if (imm === undefined) {
    if (opcode === 0xfc) imm = FC[(step.sub = r.u32())];
    else if (opcode === 0xfd) imm = simd(r, at);
    else if (opcode === 0xfe) imm = atomic(r, at);
    if (imm === undefined) r.fail(`unknown opcode 0x${opcode.toString(16)}${opcode >= 0xfc ? ` ${sub(r, at)}` : ''}`, at);
  }
  immediates(r, imm, step);
}

// The sub-opcode of a prefixed instruction, re-read for the error message.
function sub(r: ByteReader, at: number): string {
  const saved = r.pos;
  r.pos = at + 1;
  const value = r.u32();
  r.pos = saved;
  return String(value);
}

function immediates(r: ByteReader, imm: Imm, step: Step): void {
  switch (imm) {
    case Imm.NONE: return;
    case Imm.END: step.op = Op.END; return;
    case Imm.LOOP: step.op = Op.LOOP; r.s33(); return;
    case Imm.BLOCK: r.s33(); return; // 0x40, a value type (negative single byte) or a type index
    case Imm.U32: r.u32(); return;
    case Imm.U32X2: r.u32(); r.u32(); return;
    case Imm.MEMARG: memarg(r); return;
    case Imm.LABEL: step.op = Op.BRANCH; step.label = r.u32(); return;
    case Imm.BR_TABLE: {
      const n = r.u32();
      if (n > r.end - r.pos) r.fail(`br_table of ${n} labels cannot fit`);
      let label = 0;
      for (let i = 0; i <= n; i++) label = Math.max(label, r.u32());
      step.op = Op.BRANCH;
      step.label = label;
      return;
    }
    case Imm.SELECT_T: {
      const n = r.u32();
      if (n > r.end - r.pos) r.fail(`select of ${n} types cannot fit`);
      for (let i = 0; i < n; i++) valType(r);
      return;
    }
    case Imm.I32: r.skipLeb(32); return;
    case Imm.I64: r.skipLeb(64); return;
    case Imm.F32: r.skip(4); return;
    case Imm.F64: r.skip(8); return;
    case Imm.HEAP: r.s33(); return;
    case Imm.TRY_TABLE: {
      r.s33();
      const n = r.u32();
      if (n > r.end - r.pos) r.fail(`try_table of ${n} catches cannot fit`);
      for (let i = 0; i < n; i++) {
        const kind = r.u8();
        if (kind > 3) r.fail(`unknown try_table catch kind ${kind}`, r.pos - 1);
        if (kind < 2) r.u32(); // catch / catch_ref name a tag
        r.u32(); // label
      }
      return;
    }
    case Imm.FUNC:
      step.op = Op.FUNC_INDEX;
      step.indexAt = r.pos;
      step.funcIndex = r.u32();
      return;
  }
}

function memarg(r: ByteReader): void {
  const align = r.u32();
  if ((align & 0x40) !== 0) r.u32(); // multi-memory: a memory index follows
  r.skipLeb(64); // offset (u64 for memory64)
}

function valType(r: ByteReader): void {
  const b = r.u8();
  if (b === 0x63 || b === 0x64) r.s33();
}

/** 0xFD: immediates by sub-opcode (SIMD and relaxed SIMD). */
function simd(r: ByteReader, at: number): Imm | undefined {
  const op = r.u32();
  if (op <= 11 || op === 92 || op === 93) return Imm.MEMARG; // loads, splats, store, load*_zero
  if (op === 12 || op === 13) {
    r.skip(16); // v128.const, i8x16.shuffle
    return Imm.NONE;
  }
  if (op >= 21 && op <= 34) {
    r.u8(); // extract/replace lane
    return Imm.NONE;
  }
  if (op >= 84 && op <= 91) {
    memarg(r); // load/store lane: memarg then lane
    r.u8();
    return Imm.NONE;
  }
  // Everything else (arithmetic, comparisons, conversions, relaxed SIMD up to 0x113) has no
  // immediates; an opcode in a gap is copied as is and the engine refuses it at compile.
  if (op <= 0x113) return Imm.NONE;
  void at;
  return undefined;
}

/** 0xFE: threads (notify/wait, fence, atomic loads/stores/rmw). */
function atomic(r: ByteReader, at: number): Imm | undefined {
  const op = r.u32();
  // memory.atomic.wait32/64 block the calling thread until another notifies it or the timeout
  // (-1: never) runs out: on the gateway's one thread no budget check could ever stop it.
  if (op === 1 || op === 2) r.fail(`memory.atomic.wait${op === 1 ? 32 : 64} would block the event loop (no other thread can wake it): refused`, at);
  if (op === 0) return Imm.MEMARG;
  if (op === 3) {
    if (r.u8() !== 0) r.fail('atomic.fence reserved byte is not 0', r.pos - 1);
    return Imm.NONE;
  }
  if (op >= 0x10 && op <= 0x4e) return Imm.MEMARG;
  void at;
  return undefined;
}

/** A fresh Step for `next`. */
export function newStep(): Step {
  return { op: Op.OTHER, opcode: 0, funcIndex: 0, indexAt: 0, label: 0, sub: 0 };
}
