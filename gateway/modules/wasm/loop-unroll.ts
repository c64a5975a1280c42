/**
 * Unrolls small innermost loops before the budget rewrite, so that their check (code-rewrite.ts)
 * runs once per several iterations instead of once per iteration. The guest's own tight loops
 * (hashing rounds, base64, string compares in a language runtime) are where the checks cost: a
 * subtract and a branch on a loop body of a few dozen instructions. Unrolling needs no trip count
 * and changes no behaviour: the body is copied n times, and each copy's "continue" runs into the
 * next copy (the last one back to the loop head), while falling off a copy's end leaves the loop
 * as the original does:
 *
 *   block $exit (bt)                ;; the loop's own block type
 *     loop $L                       ;; the check goes here, weighing n iterations
 *       block $s(n-1) … block $s1
 *         B1  br $exit              ;; its `br $L` is `br $s1`: into B2
 *       end
 *       B2  br $exit
 *       …
 *       Bn  br $exit                ;; its `br $L` is the real back edge
 *     end
 *     unreachable
 *   end
 *
 * Inside copy j, a branch to the loop label keeps its index (the next copy's block, or the loop
 * for the last), a branch past it gains the n - j + 1 labels added around it.
 *
 * Only loops this can copy without doubt are unrolled: no loop inside, an empty or single-value
 * block type (no loop parameters), no exception handling (its labels and catch targets), and a
 * body of at most UNROLL_BYTES. Anything else is copied as it is.
 */
import { ByteReader, ByteWriter } from './leb.js';
import { newStep, next, NO_PARAM_BLOCK_TYPES } from './instructions.js';

/** Largest loop body (bytes) unrolled at all; smaller bodies get more copies, up to MAX_COPIES. */
export const UNROLL_BYTES = 1024;
export const MAX_COPIES = 4;

/** Copies a loop body of `size` bytes gets. */
export function copiesFor(size: number): number {
  return size > UNROLL_BYTES ? 1 : Math.max(1, Math.min(MAX_COPIES, Math.floor(UNROLL_BYTES / size)));
}

interface LoopSpan {
  /** Offset of the `loop` opcode, of its block type, of its body and of its `end`. */
  readonly at: number;
  readonly typeAt: number;
  readonly bodyAt: number;
  end: number;
  inner: boolean;
  plain: boolean;
}

const step = newStep();

/** The loops of instructions `bytes[start, end)` (a body after its locals), outermost first. */
function findLoops(bytes: Uint8Array, start: number, end: number): LoopSpan[] {
  const r = new ByteReader(bytes, start, end);
  const loops: LoopSpan[] = [];
  const open: Array<LoopSpan | null> = [];
  while (r.pos < end) {
    const at = r.pos;
    next(r, step);
    const op = step.opcode;
    if (op === 0x03) {
      for (const o of open) if (o !== null) o.inner = true;
      const span: LoopSpan = { at, typeAt: at + 1, bodyAt: r.pos, end: -1, inner: false, plain: NO_PARAM_BLOCK_TYPES.has(bytes[at + 1]) };
      loops.push(span);
      open.push(span);
    } else if (op === 0x02 || op === 0x04) {
      open.push(null);
    } else if (op === 0x06 || op === 0x1f || op === 0x07 || op === 0x18 || op === 0x19) {
      // try, try_table, catch, delegate, catch_all: the enclosing loops stay as they are.
      for (const o of open) if (o !== null) o.plain = false;
      if (op === 0x06 || op === 0x1f) open.push(null);
      else if (op === 0x18) open.pop(); // delegate ends its try
    } else if (op === 0x0b) {
      const done = open.pop();
      if (done) done.end = at;
    }
  }
  return loops;
}

/**
 * Writes `bytes[from, to)` (one copy of a loop body) to `out`, adding `shift` to every branch
 * label that reaches past the loop.
 */
function copyBody(bytes: Uint8Array, from: number, to: number, shift: number, out: ByteWriter): void {
  const r = new ByteReader(bytes, from, to);
  let depth = 0; // blocks open inside the copy
  let copied = from;
  const label = (l: number): number => (l > depth ? l + shift : l);
  while (r.pos < to) {
    const at = r.pos;
    next(r, step);
    const op = step.opcode;
    if (op === 0x02 || op === 0x04) depth++;
    else if (op === 0x0b) depth--;
    else if (op === 0x0c || op === 0x0d || op === 0xd5 || op === 0xd6 || op === 0x0e) {
      out.bytes(bytes.subarray(copied, at + 1));
      const lr = new ByteReader(bytes, at + 1, to);
      if (op === 0x0e) {
        const n = lr.u32();
        out.u32(n);
        for (let i = 0; i <= n; i++) out.u32(label(lr.u32()));
      } else {
        out.u32(label(lr.u32()));
      }
      copied = r.pos;
    }
  }
  out.bytes(bytes.subarray(copied, to));
}

/**
 * The instructions `bytes[start, end)` with their small innermost loops unrolled, or null when
 * there is none to unroll.
 */
export function unrollLoops(bytes: Uint8Array, start: number, end: number): Uint8Array | null {
  const loops = findLoops(bytes, start, end).filter((l) => !l.inner && l.plain && l.end > 0 && copiesFor(l.end - l.bodyAt) > 1);
  if (loops.length === 0) return null;
  const out = new ByteWriter((end - start) * 2);
  let copied = start;
  for (const loop of loops) {
    const n = copiesFor(loop.end - loop.bodyAt);
    out.bytes(bytes.subarray(copied, loop.at));
    out.u8(0x02).u8(bytes[loop.typeAt]); // block $exit (bt)
    out.u8(0x03).u8(0x40); // loop $L
    for (let j = 1; j < n; j++) out.u8(0x02).u8(0x40); // block $s(n-1) … $s1
    for (let j = 1; j <= n; j++) {
      const shift = n - j + 1;
      copyBody(bytes, loop.bodyAt, loop.end, shift, out);
      out.u8(0x0c).u32(shift); // br $exit: falling off the body leaves the loop
      if (j < n) out.u8(0x0b);
    }
    out.u8(0x0b).u8(0x00).u8(0x0b); // end loop, unreachable, end block
    copied = loop.end + 1;
  }
  out.bytes(bytes.subarray(copied, end));
  return out.finish();
}
