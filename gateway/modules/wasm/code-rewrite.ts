/**
 * Rewrites of instruction sequences: function bodies get a budget check after every `loop` (on a
 * local counter) and, where call-graph.ts says so, at entry (on the global counter); every
 * function index (call, return_call, ref.func) moves past the added import.
 * Constant expressions (global, table and element initialisers) only get the index shift.
 */
import { ByteReader, ByteWriter } from './leb.js';
import { newStep, next, Op } from './instructions.js';
import { planChecks, scanBodies } from './call-graph.js';

/** Maps an old function index to the new one (defined functions shift by one). */
export type FuncRemap = (index: number) => number;

/**
 * The entry check: `counter -= 1; if (counter <= 0) counter = budget_check()` on the global. Signed compare, not
 * `eqz`: if a guest ever catches the host's trap (legacy catch_all), the counter stays ≤ 0 and the
 * very next check calls the host again, which keeps throwing until the outermost call ends.
 */
export function budgetCheck(counterGlobal: number, budgetFunc: number, weight = 1): Uint8Array {
  return new ByteWriter(24)
    .u8(0x23).u32(counterGlobal) // global.get
    .u8(0x41).s32(weight) // i32.const weight (call-graph.ts)
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
 * The loop-head check on a local counter: `c -= 1; if (c <= 0) c = budget_check()`. A local
 * lives in a register, so a tight loop pays one subtract and one branch; the same on a global
 * would add a store-to-load dependency to every iteration (jwt's hashing loops measured ~25%).
 * The local starts at the interval on entry: loops that span calls are counted by the caller's
 * loop, recursion by the entry check on the global.
 */
function loopCheck(local: number, budgetFunc: number, weight: number): Uint8Array {
  return new ByteWriter(24)
    .u8(0x20).u32(local) // local.get
    .u8(0x41).s32(weight) // i32.const weight
    .u8(0x6b) // i32.sub
    .u8(0x22).u32(local) // local.tee
    .u8(0x41).u8(0x00) // i32.const 0
    .u8(0x4c) // i32.le_s
    .u8(0x04).u8(0x40) // if
    .u8(0x10).u32(budgetFunc) // call budget_check
    .u8(0x21).u32(local) // local.set
    .u8(0x0b) // end
    .finish();
}

/** Whether the body from `r.pos` to `end` has a loop (`r` is restored). */
function scanLoops(r: ByteReader, end: number): boolean {
  const saved = r.pos;
  try {
    while (r.pos < end) {
      next(r, step);
      if (step.opcode === 0x03) return true;
    }
    return false;
  } finally {
    r.pos = saved;
  }
}

/** What the code rewrite needs to know about the module. */
export interface CodeContext {
  readonly remap: FuncRemap;
  /** The budget counter global and the budget_check import's function index. */
  readonly counterGlobal: number;
  readonly budgetFunc: number;
  readonly funcImports: number;
  readonly interval: number;
  /** Parameter count of each defined function, in code order. */
  readonly params: readonly number[];
}

/**
 * The code section: each body keeps its locals (plus the loop counter if it loops), gains the
 * entry check if it calls, a check after every loop, and is re-sized.
 */
export function rewriteCode(r: ByteReader, ctx: CodeContext): Uint8Array {
  const countAt = r.pos;
  const count = r.u32();
  if (count !== ctx.params.length) r.fail(`code section has ${count} bodies for ${ctx.params.length} functions`);
  r.pos = countAt;
  const plan = planChecks(scanBodies(r, ctx.funcImports), ctx.interval);
  r.u32();
  const out = new ByteWriter(r.end - r.pos + count * 64);
  out.u32(count);
  const body = new ByteWriter(4096);
  for (let i = 0; i < count; i++) {
    const sizeAt = r.pos;
    const size = r.u32();
    const end = r.pos + size;
    if (end > r.end) r.fail(`function body ${i} is larger than the code section`, sizeAt);
    const localsAt = r.pos;
    const groups = r.u32();
    const groupsAt = r.pos;
    let locals = ctx.params[i];
    for (let g = 0; g < groups; g++) {
      locals += r.u32();
      const t = r.u8();
      if (t === 0x63 || t === 0x64) r.s33();
    }
    if (r.pos > end) r.fail(`locals of function body ${i} run past its end`, localsAt);
    const { entry, weight } = plan[i];
    const loops = scanLoops(r, end);
    body.length = 0;
    let loopCheckBytes: Uint8Array | null = null;
    if (loops) {
      // One more i32 local, after all others: index = params + declared locals.
      body.u32(groups + 1).bytes(r.bytes.subarray(groupsAt, r.pos)).u32(1).u8(0x7f);
      loopCheckBytes = loopCheck(locals, ctx.budgetFunc, weight);
    } else {
      body.bytes(r.bytes.subarray(localsAt, r.pos));
    }
    if (entry) body.bytes(budgetCheck(ctx.counterGlobal, ctx.budgetFunc, weight));
    if (loopCheckBytes !== null) body.u8(0x41).s32(ctx.interval).u8(0x21).u32(locals); // local = interval
    const last = copyInstructions(r, end, body, ctx.remap, loopCheckBytes, false);
    if (r.pos !== end || last !== 0x0b) r.fail(`function body ${i} does not end with end`, end);
    out.u32(body.length).bytes(body.finish());
  }
  if (r.pos !== r.end) r.fail('code section has bytes after its last body');
  return out.finish();
}
