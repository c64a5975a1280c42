/**
 * Loop unrolling before the budget rewrite (gateway/modules/wasm/loop-unroll.ts): unrolled
 * modules compute what the originals compute for every trip count and every way out of a loop,
 * their checks run once per several iterations, and loops it cannot copy safely are left alone.
 */
import wabtInit from 'wabt';
import { describe, expect, it } from 'vitest';
import { instrumentModule } from '../../../gateway/modules/wasm/instrument.js';
import { copiesFor, MAX_COPIES, UNROLL_BYTES } from '../../../gateway/modules/wasm/loop-unroll.js';
import { SANDBOX_MODULE } from '../../../gateway/abi/sandbox.js';
import { watToBytes } from '../../helpers/wat.js';

const wabt = await wabtInit();
const EH = { exceptions: true };

function text(bytes: Uint8Array): string {
  const m = wabt.readWasm(bytes, { readDebugNames: true, exceptions: true });
  try {
    m.applyNames();
    return m.toText({ foldExprs: false });
  } finally {
    m.destroy();
  }
}

type Fn = (...a: number[]) => number;

/** A run that checks more than 1 000 times is a loop gone wrong: it throws instead of hanging the test. */
function bounded(): () => number {
  let calls = 0;
  return () => {
    if (++calls > 1000) throw new Error('the loop does not end');
    return 1000;
  };
}

function instantiate(bytes: Uint8Array, onCheck: () => number = bounded()): Record<string, Fn> {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), {
    [SANDBOX_MODULE]: { budget_check: onCheck, memory: new WebAssembly.Memory({ initial: 1 }) },
  }).exports as Record<string, Fn>;
}

/** The text of function `name` in `wat`. */
function fn(wat: string, name: string): string {
  const at = wat.indexOf(`(func ${name} `);
  return wat.slice(at, wat.indexOf('\n  (', at + 1));
}

// Loops of every shape the unroller must keep exact: a back edge at the end (LLVM), a back edge
// inside an `if` (AssemblyScript), an early return, a branch to a block inside the body, a
// br_table over the loop, an inner block and an outer one, a loop with a result, and a loop that
// leaves by a branch to the function's own label.
const SHAPES = `(module
  (func $llvm (export "llvm") (param $n i32) (result i32) (local $acc i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const -1))))
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 3)) (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func $as (export "as") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $for
      (if (i32.lt_s (local.get $i) (local.get $n))
        (then
          (local.set $acc (i32.xor (i32.add (local.get $acc) (local.get $i)) (i32.const 0x55)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $for))))
    (i32.add (local.get $acc) (local.get $i)))
  (func $early (export "early") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (if (i32.eq (local.get $i) (i32.const 7)) (then (return (i32.const 700))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func $table (export "table") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $out
      (loop $l
        (block $skip
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $out (i32.gt_u (local.get $i) (local.get $n)))
          (br_table $skip $l $out (i32.rem_u (local.get $i) (i32.const 3))))
        (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $i))))
        (br $l)))
    (i32.add (i32.mul (local.get $acc) (i32.const 1000)) (local.get $i)))
  (func $result (export "result") (param $n i32) (result i32) (local $i i32)
    (loop $l (result i32)
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (br_if $l (i32.lt_s (local.get $i) (local.get $n)))
      (i32.mul (local.get $i) (i32.const 10))))
  (func $leave (export "leave") (param $n i32) (result i32) (local $i i32)
    (block $done
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if 2 (i32.const 5) (i32.eq (local.get $i) (i32.const 11)))
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (br $l)))
    (local.get $i)))`;

describe('loop unrolling', () => {
  const src = watToBytes(SHAPES, 'shapes.wat');
  const unrolled = instrumentModule(src, { interval: 1000 }).bytes;

  it('copies a small loop body up to MAX_COPIES times and one of UNROLL_BYTES or more not at all', () => {
    expect(copiesFor(10)).toBe(MAX_COPIES);
    expect(copiesFor(UNROLL_BYTES / 2)).toBe(2);
    expect(copiesFor(UNROLL_BYTES + 1)).toBe(1);
    const wat = fn(text(unrolled), '$llvm');
    expect(wat.match(/i32\.mul/g)).toHaveLength(MAX_COPIES);
    expect(wat.match(/^\s*loop/gm)).toHaveLength(1);
  });

  it('computes what the original computes for every trip count and every way out of the loop', () => {
    const before = new WebAssembly.Instance(new WebAssembly.Module(src as Uint8Array<ArrayBuffer>)).exports as Record<string, Fn>;
    const after = instantiate(unrolled);
    for (const name of ['llvm', 'as', 'early', 'table', 'result', 'leave']) {
      for (let n = 0; n <= 13; n++) expect([name, n, after[name](n)]).toEqual([name, n, before[name](n)]);
    }
  });

  it('checks once per copy group: a four-copy loop of 100 iterations goes back to its head, and checks, 24 times', () => {
    const spin = watToBytes('(module (func (export "spin") (param $n i32) (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))');
    // Each host call hands out one unit, so every check that runs calls the host.
    const checks = (unroll: boolean): number => {
      let calls = 0;
      instantiate(instrumentModule(spin, { interval: 1, unroll }).bytes, () => { calls++; return 1; }).spin(100);
      return calls;
    };
    expect(checks(true)).toBe(24);
    expect(checks(false)).toBe(99);
  });

  it('leaves alone a loop with a loop inside, a loop that catches, a loop with parameters and a large loop', () => {
    const wat = text(instrumentModule(watToBytes(`(module
      (type $p (func (param i32) (result i32)))
      (tag $e)
      (func $outer (export "outer") (param $n i32) (local $i i32)
        (loop $o (loop $in (br_if $in (i32.eqz (i32.const 7)))) (br_if $o (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (func $catches (export "catches") (param $n i32)
        (loop $l (try (do (nop)) (catch_all)) (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (func $params (export "params") (param $n i32) (result i32)
        (local.get $n) (loop $l (type $p) (i32.sub (i32.const 1)) (local.tee $n) (br_if $l (local.get $n))))
      (func $large (export "large") (param $n i32)
        (loop $l ${'(nop)'.repeat(UNROLL_BYTES)} (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`, 'kept.wat', EH)).bytes);
    // The inner loop of $outer is unrolled (four copies of its body), the outer one is not.
    expect(fn(wat, '$outer').match(/^\s*loop/gm)).toHaveLength(2);
    expect(fn(wat, '$outer').match(/i32.const 7/g)).toHaveLength(MAX_COPIES);
    for (const name of ['$catches', '$params', '$large']) expect([name, fn(wat, name).match(/^\s*loop/gm)?.length]).toEqual([name, 1]);
    expect(fn(wat, '$catches').match(/try/g)).toHaveLength(1);
    expect(fn(wat, '$large').match(/nop/g)).toHaveLength(UNROLL_BYTES);
  });
});
