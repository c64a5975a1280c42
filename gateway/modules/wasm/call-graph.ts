/**
 * Where the budget checks go, from the call graph of the defined functions. The aim is a bound on
 * the guest code that can run between two checks, at the lowest count of checks on hot paths:
 *
 * - every loop gets a check where it goes round again (its iterations are unbounded);
 * - a function gets an entry check when it is on a call cycle (recursion), makes indirect calls
 *   (which may reach anything), or when the code it can reach without passing a check (its body
 *   plus, per call site, what the unchecked callees reach) exceeds UNCHECKED_REACH_BYTES, which
 *   also stops a loop-free call tree that multiplies work;
 * - each check counts by the reach it covers (one per CHECK_CHUNK_BYTES), so a huge loop body or
 *   function spends the interval faster than a tight loop: the clock is read after a bounded
 *   amount of code, not after a fixed number of checks.
 * Small non-recursive functions, most of what LLVM leaves un-inlined, get no entry check.
 *
 * The count is one for the whole call: a function that loops keeps it in a local for speed and
 * hands it back to the global around every call that may count too (code-rewrite.ts), so that
 * loops in callees add to their callers' loops instead of each frame starting afresh (three
 * nested loop functions of 9 000 iterations each would otherwise never reach a check). The plan
 * says which functions may count (`touching`): those that loop, check at entry (recursion,
 * indirect calls), run bulk memory or table instructions (each counts by its length), call the
 * host (which may call the guest's allocator back), or call one that may.
 */
import type { ByteReader } from './leb.js';
import { bulkKind, newStep, next } from './instructions.js';

/** Code bytes one check unit stands for (roughly one small basic block's worth of time, ~0.1 µs). */
export const CHECK_CHUNK_BYTES = 256;
/**
 * What a bulk memory or table instruction counts: one unit per 2^shift bytes (or elements) of its
 * length. memset/memcpy run at roughly a KiB per CHECK_CHUNK_BYTES unit's time; a table element
 * (a reference, with its write barrier) costs more. Without this a loop of one 48 MiB memory.fill
 * weighed 1 per pass and held the thread for 151 s under a 30 ms budget.
 */
export const BULK_BYTES_SHIFT = 10;
export const BULK_ELEMENTS_SHIFT = 6;

/** Reach above which a loop-free, non-recursive function still gets its entry check. */
export const UNCHECKED_REACH_BYTES = 16 * 1024;

export interface BodyInfo {
  readonly start: number;
  readonly end: number;
  readonly loops: boolean;
  readonly indirect: boolean;
  /** Calls a function import (a hostcall may re-enter the guest, e.g. its allocator). */
  readonly imports: boolean;
  /** Catches exceptions (try, try_table, delegate): the body keeps the count on the global. */
  readonly catches: boolean;
  /** Has bulk memory or table instructions: each counts by its length (code-rewrite.ts). */
  readonly bulk: boolean;
  /** Defined callees (0-based among defined functions), once per call site. */
  readonly callees: readonly number[];
}

export interface CheckPlan {
  readonly entry: boolean;
  /** Units each check of this function counts (≥ 1, ≤ the interval). */
  readonly weight: number;
  /** A call to it may count (see the file header): a caller holding the count hands it over. */
  readonly touching: boolean;
  /** Code bytes a caller inherits by calling it: 0 when it checks at entry. */
  readonly exposed: number;
}

/** One pass over the bodies (after the locals) of the code section at `r.pos`; `r` is restored. */
export function scanBodies(r: ByteReader, funcImports: number): BodyInfo[] {
  const saved = r.pos;
  const step = newStep();
  const out: BodyInfo[] = [];
  try {
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const size = r.u32();
      const start = r.pos;
      const end = start + size;
      if (end > r.end) r.fail(`function body ${i} is larger than the code section`, start);
      const callees: number[] = [];
      let loops = false;
      let indirect = false;
      let imports = false;
      let catches = false;
      let bulk = false;
      const groups = r.u32();
      for (let g = 0; g < groups; g++) {
        r.u32();
        const t = r.u8();
        if (t === 0x63 || t === 0x64) r.s33();
      }
      while (r.pos < end) {
        next(r, step);
        const op = step.opcode;
        if (op === 0x10 || op === 0x12) {
          if (step.funcIndex >= funcImports) callees.push(step.funcIndex - funcImports);
          else imports = true;
        } else if (op === 0x11 || op === 0x13 || op === 0x14 || op === 0x15) indirect = true;
        else if (op === 0x03) loops = true;
        else if (op === 0x06 || op === 0x1f || op === 0x18) catches = true;
        else if (bulkKind(step) !== null) bulk = true;
      }
      r.pos = end;
      out.push({ start, end, loops, indirect, imports, catches, bulk, callees });
    }
    return out;
  } finally {
    r.pos = saved;
  }
}

/** Entry checks and weights per defined function (see the file header). */
export function planChecks(bodies: readonly BodyInfo[], interval: number): CheckPlan[] {
  const n = bodies.length;
  const reach = new Float64Array(n);
  const exposed = new Float64Array(n); // what a caller inherits: 0 for a checked function
  const touching = new Uint8Array(n);
  const plan: CheckPlan[] = new Array(n);
  for (const scc of stronglyConnected(bodies)) {
    const cyclic = scc.length > 1 || bodies[scc[0]].callees.includes(scc[0]);
    for (const f of scc) {
      const b = bodies[f];
      let w = b.end - b.start;
      let calleeTouches = false;
      for (const c of b.callees) {
        if (c >= n) continue;
        w += exposed[c];
        if (touching[c] === 1) calleeTouches = true;
      }
      reach[f] = Math.min(w, 1e15);
      const entry = cyclic || b.indirect || reach[f] > UNCHECKED_REACH_BYTES;
      exposed[f] = entry ? 0 : reach[f];
      // In a cycle every member checks at entry, so callees later in the same SCC need no look.
      const touches = entry || b.loops || b.imports || b.bulk || calleeTouches;
      touching[f] = touches ? 1 : 0;
      plan[f] = { entry, weight: weightOf(reach[f], interval), touching: touches, exposed: exposed[f] };
    }
  }
  return plan;
}

/** Check units for `bytes` of code (see the file header). */
export function weightOf(bytes: number, interval: number): number {
  return Math.max(1, Math.min(interval, Math.ceil(bytes / CHECK_CHUNK_BYTES)));
}

/** Tarjan's SCCs, iteratively (modules have tens of thousands of functions); callees' SCCs come first. */
function stronglyConnected(bodies: readonly BodyInfo[]): number[][] {
  const n = bodies.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const out: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<[number, number]> = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (work.length > 0) {
      const top = work[work.length - 1];
      const [v, k] = top;
      const callees = bodies[v].callees;
      if (k < callees.length) {
        top[1]++;
        const w = callees[k];
        if (w >= n) continue;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], index[w]);
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low[parent] = Math.min(low[parent], low[v]);
      }
      if (low[v] === index[v]) {
        const scc: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          scc.push(w);
        } while (w !== v);
        out.push(scc);
      }
    }
  }
  return out;
}
