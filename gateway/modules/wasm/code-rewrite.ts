/**
 * Rewrites of instruction sequences: function bodies get a budget check after every `loop` and,
 * when they call other defined functions, at entry, and every function index (call, return_call, ref.func) moves past the added import.
 * Constant expressions (global, table and element initialisers) only get the index shift.
 */
import { ByteReader, ByteWriter } from './leb.js';
import { newStep, next, Op } from './instructions.js';

/** Maps an old function index to the new one (defined functions shift by one). */
export type FuncRemap = (index: number) => number;

/**
 * The check: `counter -= 1; if (counter <= 0) counter = budget_check()`. Signed compare, not
 * `eqz`: if a guest ever catches the host's trap (legacy catch_all), the counter stays ≤ 0 and the
 * very next check calls the host again, which keeps throwing until the outermost call ends.
 */
export function budgetCheck(counterGlobal: number, budgetFunc: number): Uint8Array {
  return new ByteWriter(24)
    .u8(0x23).u32(counterGlobal) // global.get
    .u8(0x41).u8(0x01) // i32.const 1
    .u8(0x6b) // i32.sub
    .u8(0x24).u32(counterGlobal) // global.set
    .u8(0x23).u32(counterGlobal) // global.get
    .u8(0x41).u8(0x00) // i32.const 0
    .u8(0x4c) // i32.le_s
    .u8(0x04).u8(0x40) // if (empty block type)
    .u8(0x10).u32(budgetFunc) // call budget_check
    .u8(0x24).u32(counterGlobal) // global.set
    .u8(0x0b) // end
    .finish();
}

const step = newStep();

/**
 * Copies instructions from `r` up to `end` into `out`, remapping function indices and, when
 * `check` is given, inserting it after each loop's block type. Returns the last opcode read.
 */
function copyInstructions(r: ByteReader, end: number, out: ByteWriter, remap: FuncRemap, check: Uint8Array | null, stopAtEnd: boolean): number {
  const bytes = r.bytes;
  let from = r.pos;
  let last = -1;
  while (r.pos < end) {
    next(r, step);
    last = step.opcode;
    if (step.op === Op.FUNC_INDEX) {
      out.bytes(bytes.subarray(from, step.indexAt)).u32(remap(step.funcIndex));
      from = r.pos;
    } else if (step.op === Op.LOOP && check !== null) {
      out.bytes(bytes.subarray(from, r.pos)).bytes(check);
      from = r.pos;
    } else if (step.op === Op.END && stopAtEnd) {
      break;
    }
  }
  if (r.pos > end) r.fail('instruction runs past the end of its body');
  out.bytes(bytes.subarray(from, r.pos));
  return last;
}

/** A constant expression (ends at its first `end`; it holds no blocks). */
export function rewriteConstExpr(r: ByteReader, out: ByteWriter, remap: FuncRemap): void {
  const at = r.pos;
  const last = copyInstructions(r, r.end, out, remap, null, true);
  if (last !== 0x0b) r.fail('constant expression without end', at);
}

/**
 * Whether the body from `r.pos` to `end` calls another defined function (directly, indirectly or
 * by reference). Only such a function needs the entry check: without calls its running time is
 * bounded by its size and its loops (which have their own checks), and recursion or a call chain
 * that multiplies work goes through a calling function. Leaf functions are most of what LLVM
 * leaves un-inlined, so skipping them keeps the cost per request low.
 */
function callsDefined(r: ByteReader, end: number, funcImports: number): boolean {
  const saved = r.pos;
  try {
    while (r.pos < end) {
      next(r, step);
      const op = step.opcode;
      if ((op === 0x10 || op === 0x12) && step.funcIndex >= funcImports) return true;
      if (op === 0x11 || op === 0x13 || op === 0x14 || op === 0x15) return true;
    }
    return false;
  } finally {
    r.pos = saved;
  }
}

/** The code section: each body keeps its locals, gains the entry check if it calls, and is re-sized. */
export function rewriteCode(r: ByteReader, remap: FuncRemap, check: Uint8Array, funcImports: number): Uint8Array {
  const count = r.u32();
  const out = new ByteWriter(r.end - r.pos + count * (check.length * 2 + 8));
  out.u32(count);
  const body = new ByteWriter(4096);
  for (let i = 0; i < count; i++) {
    const sizeAt = r.pos;
    const size = r.u32();
    const end = r.pos + size;
    if (end > r.end) r.fail(`function body ${i} is larger than the code section`, sizeAt);
    const localsAt = r.pos;
    const groups = r.u32();
    for (let g = 0; g < groups; g++) {
      r.u32();
      const t = r.u8();
      if (t === 0x63 || t === 0x64) r.s33();
    }
    if (r.pos > end) r.fail(`locals of function body ${i} run past its end`, localsAt);
    body.length = 0;
    body.bytes(r.bytes.subarray(localsAt, r.pos));
    if (callsDefined(r, end, funcImports)) body.bytes(check);
    const last = copyInstructions(r, end, body, remap, check, false);
    if (r.pos !== end || last !== 0x0b) r.fail(`function body ${i} does not end with end`, end);
    out.u32(body.length).bytes(body.finish());
  }
  if (r.pos !== r.end) r.fail('code section has bytes after its last body');
  return out.finish();
}
