/**
 * Rewrites of instruction sequences: function bodies get a budget check on every branch back to a
 * loop (or at the loop head where that cannot be done, loopPlans), on the count held in a local
 * (on the global in a body that catches), with small inner loops unrolled first (loop-unroll.ts);
 * where call-graph.ts says so, a check at entry (on the global); before each bulk memory or table
 * instruction, a charge by its length (bulkCharge); every function index (call, return_call,
 * ref.func) moves past the added import.
 * Constant expressions (global, table and element initialisers) only get the index shift.
 */
import { ByteReader, ByteWriter } from './leb.js';
import { bulkKind, newStep, next, NO_PARAM_BLOCK_TYPES, Op } from './instructions.js';
import { BULK_BYTES_SHIFT, BULK_ELEMENTS_SHIFT, planChecks, scanBodies, weightOf, type CheckPlan } from './call-graph.js';
import { unrollLoops } from './loop-unroll.js';

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
    .bytes(spendAndAsk(counterGlobal, budgetFunc))
    .finish();
}

/** Stores the decremented count (on the stack) in the global and asks the host once it is spent. */
function spendAndAsk(counterGlobal: number, budgetFunc: number): Uint8Array {
  return new ByteWriter(24)
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
 * Before a bulk memory or table instruction, whose length is on top of the stack: the count (on
 * the global) goes down by the length >> `shift` (call-graph.ts), and the host is asked as at any
 * check once it is spent. The length goes through the body's scratch local and stays on the stack
 * for the instruction.
 */
function bulkCharge(scratch: number, counterGlobal: number, budgetFunc: number, shift: number): Uint8Array {
  return new ByteWriter(40)
    .u8(0x22).u32(scratch) // local.tee scratch
    .u8(0x23).u32(counterGlobal) // global.get
    .u8(0x20).u32(scratch) // local.get scratch
    .u8(0x41).s32(shift) // i32.const shift
    .u8(0x76) // i32.shr_u
    .u8(0x6b) // i32.sub
    .bytes(spendAndAsk(counterGlobal, budgetFunc))
    .finish();
}

/** A body's bulk charges, built once per body (bulkCharge). */
interface BulkCharges {
  readonly memory: Uint8Array;
  readonly table: Uint8Array;
}

/**
 * How a looping body holds the count (see call-graph.ts): in local `local`, loaded from the
 * global at entry and handed back before anything that may count or leave; `touching` says
 * which function indices (old numbering) may count.
 */
interface HeldCount {
  readonly local: number;
  readonly global: number;
  readonly touching: (funcIndex: number) => boolean;
}

/** Where a loop's check goes and what it counts (loopPlans). */
interface LoopCheck {
  readonly bytes: Uint8Array;
  /** At the loop head (every entry); otherwise on each branch back to the loop. */
  readonly atHead: boolean;
}

/**
 * Copies instructions from `r` up to `end` into `out`, remapping function indices and, when
 * `checks` is given, placing each loop's check (LoopCheck): right after the loop's block type, or
 * before each branch back to it (`br L` → `check; br L`, `br_if L` → `if check; br L+1 end`);
 * with `held`, also the hand-overs (HeldCount). Returns the last opcode read.
 */
function copyInstructions(r: ByteReader, end: number, out: ByteWriter, remap: FuncRemap, checks: readonly LoopCheck[] | null,
  stopAtEnd: boolean, held: HeldCount | null = null, bulk: BulkCharges | null = null): number {
  let loop = 0;
  const bytes = r.bytes;
  const store = held === null ? null : new ByteWriter(12).u8(0x20).u32(held.local).u8(0x24).u32(held.global).finish(); // local.get; global.set
  const load = held === null ? null : new ByteWriter(12).u8(0x23).u32(held.global).u8(0x21).u32(held.local).finish(); // global.get; local.set
  let from = r.pos;
  let last = -1;
  // Constructs open inside the body, innermost last: a loop's index in `checks`, or -1. A branch
  // to label `labels.length` or beyond leaves the function.
  const labels: number[] = [];
  while (r.pos < end) {
    const at = r.pos;
    next(r, step);
    const opcode = step.opcode;
    last = opcode;
    let after = false;
    if (held !== null) {
      let before = false;
      if (opcode === 0x0b) before = labels.length === 0; // the body's own end: leaving
      else if (step.op === Op.BRANCH) before = step.label >= labels.length;
      else if (opcode === 0x10) before = after = held.touching(step.funcIndex);
      else if (opcode === 0x11 || opcode === 0x14) before = after = true; // call_indirect, call_ref
      else before = opcode === 0x0f || opcode === 0x12 || opcode === 0x13 || opcode === 0x15 // return, return_call*
        || opcode === 0x08 || opcode === 0x09 || opcode === 0x0a; // throw, rethrow, throw_ref
      if (before) {
        out.bytes(bytes.subarray(from, at)).bytes(store!);
        from = at;
      }
    }
    if (opcode === 0x02 || opcode === 0x04 || opcode === 0x06 || opcode === 0x1f) labels.push(-1);
    else if (opcode === 0x03) labels.push(checks === null ? -1 : loop++);
    else if (opcode === 0x0b || opcode === 0x18) labels.pop(); // end, delegate (ends its try)
    if (step.op === Op.FUNC_INDEX) {
      out.bytes(bytes.subarray(from, step.indexAt)).u32(remap(step.funcIndex));
      from = r.pos;
    } else if (step.op === Op.LOOP && checks !== null && checks[loop - 1].atHead) {
      out.bytes(bytes.subarray(from, r.pos)).bytes(checks[loop - 1].bytes);
      from = r.pos;
    } else if ((opcode === 0x0c || opcode === 0x0d) && checks !== null && step.label < labels.length) {
      const target = labels[labels.length - 1 - step.label];
      if (target >= 0 && !checks[target].atHead) {
        out.bytes(bytes.subarray(from, at));
        if (opcode === 0x0c) out.bytes(checks[target].bytes).u8(0x0c).u32(step.label);
        else out.u8(0x04).u8(0x40).bytes(checks[target].bytes).u8(0x0c).u32(step.label + 1).u8(0x0b);
        from = r.pos;
      }
    } else if (step.op === Op.END && stopAtEnd) {
      break;
    }
    const kind = bulk === null ? null : bulkKind(step);
    if (kind !== null) {
      // The charge is on the global: a held count is handed over around it.
      out.bytes(bytes.subarray(from, at));
      if (held !== null) out.bytes(store!);
      out.bytes(bulk![kind]).bytes(bytes.subarray(at, r.pos));
      if (held !== null) out.bytes(load!);
      from = r.pos;
    }
    if (after) {
      out.bytes(bytes.subarray(from, r.pos)).bytes(load!);
      from = r.pos;
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
 * The loop-head check on the count held in a local: `c -= w; if (c <= 0) c = budget_check()`. A
 * local lives in a register, so a tight loop pays one subtract and one branch; the same on the
 * global would add a store-to-load dependency to every iteration (jwt's hashing loops measured
 * ~25%). The local is loaded from the global at entry and handed back around calls that may
 * count and wherever the function leaves (HeldCount), so one count spans the whole call.
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

/**
 * Each loop's check, in the order the loops open. Its weight is the units of one iteration (its
 * bytes plus what its calls reach without a check, call-graph.ts), not of the whole function, so
 * a tight loop in a large function reads the clock no more often than the same loop alone.
 *
 * The check goes on the branches back to the loop rather than at its head, so a loop that runs
 * once (a string compare that differs at the first character, a search that hits at once) pays
 * nothing: its one pass is straight code, bounded like the rest of the function. It stays at the
 * head of a loop whose label carries values (loop parameters) or that a br_table, a br_on_* or a
 * try_table's catch may take, where a check cannot be put in front of the branch alone.
 */
function loopPlans(r: ByteReader, end: number, plan: readonly CheckPlan[], funcImports: number, interval: number,
  check: (weight: number) => Uint8Array): LoopCheck[] {
  const saved = r.pos;
  const loops: Array<{ weight: number; atHead: boolean }> = [];
  // Open constructs: the loop's index in `loops` (-1 for other blocks), its start, what its calls reach.
  const open: Array<{ loop: number; start: number; reach: number }> = [];
  try {
    while (r.pos < end) {
      const at = r.pos;
      next(r, step);
      const opcode = step.opcode;
      if (opcode === 0x1f) {
        // try_table: a catch may land on any enclosing label, a loop's too; those keep the head check.
        for (const o of open) if (o.loop >= 0) loops[o.loop].atHead = true;
      }
      if (opcode === 0x02 || opcode === 0x04 || opcode === 0x06 || opcode === 0x1f) open.push({ loop: -1, start: at, reach: 0 });
      else if (opcode === 0x03) {
        const params = !NO_PARAM_BLOCK_TYPES.has(r.bytes[at + 1]);
        open.push({ loop: loops.push({ weight: 0, atHead: params }) - 1, start: at, reach: 0 });
      } else if (opcode === 0x0b || opcode === 0x18) {
        const done = open.pop();
        if (done === undefined) continue; // the body's own end
        if (done.loop >= 0) loops[done.loop].weight = weightOf(r.pos - done.start + done.reach, interval);
        if (open.length > 0) open[open.length - 1].reach += done.reach;
      } else if ((opcode === 0x10 || opcode === 0x12) && step.funcIndex >= funcImports && open.length > 0) {
        open[open.length - 1].reach += plan[step.funcIndex - funcImports]?.exposed ?? 0;
      } else if (opcode === 0x0e || opcode === 0xd5 || opcode === 0xd6) {
        // Every loop this branch may reach keeps its check at the head (step.label is the largest label).
        for (let d = 0; d <= step.label && d < open.length; d++) {
          const target = open[open.length - 1 - d].loop;
          if (target >= 0) loops[target].atHead = true;
        }
      }
    }
    return loops.map((l) => ({ bytes: check(l.weight), atHead: l.atHead }));
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
  /** Unroll small inner loops first (loop-unroll.ts). */
  readonly unroll: boolean;
}

/**
 * The code section: each body keeps its locals (plus the loop counter if it loops), gains the
 * entry check if it calls, a check on every branch back to a loop, and is re-sized.
 */
export function rewriteCode(r: ByteReader, ctx: CodeContext): Uint8Array {
  const countAt = r.pos;
  const count = r.u32();
  if (count !== ctx.params.length) r.fail(`code section has ${count} bodies for ${ctx.params.length} functions`);
  r.pos = countAt;
  const bodies = scanBodies(r, ctx.funcImports);
  const plan = planChecks(bodies, ctx.interval);
  const touching = (funcIndex: number): boolean => funcIndex < ctx.funcImports || plan[funcIndex - ctx.funcImports]?.touching !== false;
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
    body.length = 0;
    let checks: LoopCheck[] | null = null;
    let held: HeldCount | null = null;
    // The instructions to copy: the body's own, or with its small loops unrolled (loop-unroll.ts).
    let code = r;
    let codeEnd = end;
    // Added i32 locals, after all others (index params + declared locals on): the held count of
    // a body that loops and does not catch, then the bulk instructions' scratch.
    const holds = bodies[i].loops && !bodies[i].catches;
    const added = (holds ? 1 : 0) + (bodies[i].bulk ? 1 : 0);
    if (added > 0) body.u32(groups + 1).bytes(r.bytes.subarray(groupsAt, r.pos)).u32(added).u8(0x7f);
    else body.bytes(r.bytes.subarray(localsAt, r.pos));
    const scratch = locals + (holds ? 1 : 0);
    const bulk: BulkCharges | null = !bodies[i].bulk ? null : {
      memory: bulkCharge(scratch, ctx.counterGlobal, ctx.budgetFunc, BULK_BYTES_SHIFT),
      table: bulkCharge(scratch, ctx.counterGlobal, ctx.budgetFunc, BULK_ELEMENTS_SHIFT),
    };
    if (bodies[i].loops) {
      const unrolled = !ctx.unroll || bodies[i].catches ? null : unrollLoops(r.bytes, r.pos, end);
      if (unrolled !== null) {
        code = new ByteReader(unrolled);
        codeEnd = unrolled.length;
      }
      if (holds) {
        held = { local: locals, global: ctx.counterGlobal, touching };
        checks = loopPlans(code, codeEnd, plan, ctx.funcImports, ctx.interval, (w) => loopCheck(locals, ctx.budgetFunc, w));
      } else {
        // A body that catches keeps the count on the global: a catch arrives from a callee's
        // throw without passing a point where the local could be reloaded.
        checks = loopPlans(code, codeEnd, plan, ctx.funcImports, ctx.interval, (w) => budgetCheck(ctx.counterGlobal, ctx.budgetFunc, w));
      }
    }
    if (entry) body.bytes(budgetCheck(ctx.counterGlobal, ctx.budgetFunc, weight));
    if (held !== null) body.u8(0x23).u32(ctx.counterGlobal).u8(0x21).u32(locals); // local = global
    const last = copyInstructions(code, codeEnd, body, ctx.remap, checks, false, held, bulk);
    if (code.pos !== codeEnd || last !== 0x0b) r.fail(`function body ${i} does not end with end`, end);
    r.pos = end;
    out.u32(body.length).bytes(body.finish());
  }
  if (r.pos !== r.end) r.fail('code section has bytes after its last body');
  return out.finish();
}
