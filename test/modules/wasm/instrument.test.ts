/**
 * The sandbox rewrite (gateway/modules/wasm/instrument.ts and its walker): golden small cases read
 * back through wabt, every module of the repository still validates and behaves the same, every
 * family of opcodes real toolchains emit is walked, and unknown opcodes are refused.
 */
import { readdirSync, readFileSync } from 'node:fs';
import wabtInit from 'wabt';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../gateway/errors.js';
import { INSTRUMENTATION_VERSION, instrumentModule } from '../../../gateway/modules/wasm/instrument.js';
import { SANDBOX_MODULE } from '../../../gateway/abi/sandbox.js';
import { Guest, loggingFilter } from '../../helpers/guests.js';
import { watToBytes } from '../../helpers/wat.js';

const wabt = await wabtInit();
const ALL = { exceptions: true, simd: true, threads: true, tail_call: true, multi_value: true, reference_types: true };

function text(bytes: Uint8Array): string {
  const m = wabt.readWasm(bytes, { readDebugNames: true, ...ALL });
  try {
    m.applyNames();
    return m.toText({ foldExprs: false });
  } finally {
    m.destroy();
  }
}

/** Instantiates with a budget import that counts calls; `memory` for the sandbox's memory import. */
function run(bytes: Uint8Array, memory?: WebAssembly.Memory) {
  let checks = 0;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), {
    [SANDBOX_MODULE]: { budget_check: () => { checks++; return 3; }, memory: memory ?? new WebAssembly.Memory({ initial: 1 }) },
  });
  return { exports: instance.exports as Record<string, (...a: number[]) => number>, checks: () => checks };
}

describe('instrumentModule on small modules', () => {
  const src = watToBytes(`(module
    (import "env" "log" (func $log (param i32)))
    (memory (export "memory") 1 4)
    (table 2 funcref)
    (elem (i32.const 0) $sum $start)
    (global $g (mut i32) (i32.const 7))
    (func $sum (export "sum") (param $n i32) (result i32) (local $acc i32)
      (loop $l
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
      (local.get $acc))
    (func $start (global.set $g (call $sum (i32.const 3))))
    (func $indirect (export "indirect") (result i32) (call_indirect (param i32) (result i32) (i32.const 4) (i32.const 0)))
    (start $start))`, 'small.wat');
  const out = instrumentModule(src, { interval: 3, unroll: false });

  it('adds the budget import after the existing ones, the counter global, and moves the memory into an import', () => {
    const wat = text(out.bytes);
    expect(wat).toContain('(import "env" "log" (func $log (type 0)))');
    expect(wat).toMatch(/\(import "edge-gateway:sandbox" "budget_check" \(func \$edge-gateway:sandbox\.budget_check \(type \d\)\)\)/);
    expect(wat).toContain('(import "edge-gateway:sandbox" "memory" (memory (;0;) 1 4))');
    expect(wat).toMatch(/\(global \(;1;\) \(mut i32\) \(i32\.const 3\)\)/);
    expect(wat).not.toMatch(/^\s*\(memory/m);
    expect(out.plan).toEqual({ version: INSTRUMENTATION_VERSION, memory: { module: SANDBOX_MODULE, name: 'memory', initialPages: 1, maximumPages: 4, shared: false }, uncapped: null, defined: null });
  });

  it('puts a check on each branch back to a loop and at the entry of functions that call indirectly, and keeps names, element segments, exports and start', () => {
    const wat = text(out.bytes);
    const check = 'global.get 1\n    i32.const 1\n    i32.sub\n    global.set 1\n    global.get 1\n    i32.const 0\n    i32.le_s\n    if  ;; label = @1\n      call $edge-gateway:sandbox.budget_check\n      global.set 1\n    end';
    // $indirect may reach anything: the entry check on the global. $start only calls the small
    // $sum and $sum calls nothing: no entry checks (call-graph.ts). $sum loops, so it gets a local
    // counter (index 2), loaded from the global on entry, checked where `br_if` goes back to the
    // loop (the first pass is not checked) and handed back at the end.
    const fn = (name: string): string => wat.slice(wat.indexOf(`(func ${name} `), wat.indexOf('(func', wat.indexOf(`(func ${name} `) + 1));
    expect(fn('$indirect')).toContain(`(result i32)\n    ${check}`);
    expect(fn('$start')).not.toContain('global.get 1');
    expect(wat).toContain('(func $sum (type 1) (param $n i32) (result i32)\n    (local $acc i32) (local i32)\n    global.get 1\n    local.set 2\n'
      + '    loop  ;; label = @1\n      local.get $acc\n      local.get $n\n      i32.add\n      local.set $acc\n      local.get $n\n      i32.const 1\n'
      + '      i32.sub\n      local.tee $n\n      if  ;; label = @2\n        local.get 2\n        i32.const 1\n        i32.sub\n        local.tee 2\n'
      + '        i32.const 0\n        i32.le_s\n        if  ;; label = @3\n          call $edge-gateway:sandbox.budget_check\n          local.set 2\n'
      + '        end\n        br 1 (;@1;)\n      end\n    end\n    local.get $acc\n    local.get 2\n    global.set 1)');
    expect(wat).toContain('call $sum');
    expect(wat).toContain('(elem (;0;) (i32.const 0) func $sum $start)');
    expect(wat).toContain('(export "sum" (func $sum))');
    expect(wat).toContain('(start $start)');
  });

  it('behaves as the original: same results, and the host is called every `interval` checks', () => {
    const before = new WebAssembly.Instance(new WebAssembly.Module(src as Uint8Array<ArrayBuffer>), { env: { log: () => {} } }).exports as Record<string, (n?: number) => number>;
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    let checks = 0;
    const after = new WebAssembly.Instance(new WebAssembly.Module(out.bytes as Uint8Array<ArrayBuffer>), {
      env: { log: () => {} }, [SANDBOX_MODULE]: { budget_check: () => { checks++; return 3; }, memory },
    }).exports as Record<string, (n?: number) => number>;
    expect(after.sum(100)).toBe(before.sum(100));
    expect(after.indirect()).toBe(before.indirect());
    // One count for the whole run, from 3; sum(n) checks n - 1 times (each branch back to its
    // loop): sum(3) in start leaves 1, sum(100) makes 33 host calls (and leaves 1), the entry check
    // of indirect makes 1 (back to 3), then sum(4) in indirect 1.
    expect(checks).toBe(33 + 1 + 1);
    expect(after.memory).toBe(memory);
  });

  it('hands the held count back to the global around calls that may count and wherever a looping function leaves', () => {
    const wat = text(instrumentModule(watToBytes(`(module
      (import "env" "log" (func $log (param i32)))
      (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func $counts (loop $l (br_if $l (i32.const 0))))
      (func $outer (param $n i32) (result i32)
        (block $out
          (loop $l
            (drop (call $leaf (local.get $n)))
            (call $counts)
            (call $log (local.get $n))
            (br_if $out (i32.eqz (local.get $n)))
            (br_if 2 (local.get $n) (i32.eq (local.get $n) (i32.const 7)))
            (if (i32.eq (local.get $n) (i32.const 9)) (then (return (i32.const 9))))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $l)))
        (local.get $n)))`, 'held.wat'), { interval: 3, unroll: false }).bytes);
    const at = wat.indexOf('(func $outer');
    const outer = wat.slice(at, wat.indexOf('\n  (', at));
    const store = 'local.get 1\n\\s*global.set 0';
    const load = 'global.get 0\n\\s*local.set 1';
    // The leaf neither loops nor calls: no hand-over. $counts loops and the host may call the
    // guest's allocator back: a store before and a load after each.
    expect(outer).toMatch(/local.get \$n\n\s*call \$leaf\n\s*drop/);
    expect(outer).toMatch(new RegExp(`${store}\\n\\s*call \\$counts\\n\\s*${load}`));
    expect(outer).toMatch(new RegExp(`${store}\\n\\s*call \\$log\\n\\s*${load}`));
    // A branch out of the function (label 2 inside the loop is the function's own), a return and
    // the final end store; a branch to a block inside does not.
    expect(outer).toMatch(new RegExp(`i32.eqz\\n\\s*br_if 1`));
    expect(outer).toMatch(new RegExp(`i32.eq\\n\\s*${store}\\n\\s*br_if 2`));
    expect(outer).toMatch(new RegExp(`${store}\\n\\s*return`));
    expect(outer).toMatch(new RegExp(`local.get \\$n\\n\\s*${store}\\)`));
  });

  it('checks a loop only when it goes round again: a loop that leaves in its first pass costs no check', () => {
    const once = watToBytes(`(module (func (export "find") (param $n i32) (result i32) (local $i i32)
      (block $found (loop $l
        (br_if $found (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (local.get $i)))`, 'once.wat');
    const calls = (n: number): number => {
      let checks = 0;
      const instance = new WebAssembly.Instance(new WebAssembly.Module(instrumentModule(once, { interval: 1, unroll: false }).bytes as Uint8Array<ArrayBuffer>), {
        [SANDBOX_MODULE]: { budget_check: () => { checks++; return 1; }, memory: new WebAssembly.Memory({ initial: 1 }) },
      });
      expect((instance.exports.find as (n: number) => number)(n)).toBe(n);
      return checks;
    };
    expect(calls(0)).toBe(0);
    expect(calls(1)).toBe(1);
    expect(calls(10)).toBe(10);
  });

  it('weighs a loop check by one iteration of that loop, not by the function around it', () => {
    // $f reaches $big's ~3 000 bytes once, outside its loop: the function weighs 12+ units, the
    // tight loop one. A loop that calls $big weighs what one iteration reaches.
    const nops = '(nop)'.repeat(3000);
    const wat = text(instrumentModule(watToBytes(`(module
      (func $big ${nops})
      (func $f (param $n i32)
        (call $big)
        (loop $tight (br_if $tight (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
        (loop $heavy (call $big) (br_if $heavy (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`, 'weights.wat'), { unroll: false }).bytes);
    const f = wat.slice(wat.indexOf('(func $f'), wat.indexOf('\n  (', wat.indexOf('(func $f')));
    const weights = [...f.matchAll(/local.get 1\n\s*i32.const (\d+)\n\s*i32.sub\n\s*local.tee 1/g)].map((m) => Number(m[1]));
    expect(weights).toEqual([1, 12]);
  });

  it('keeps an imported memory as it is and reports it for the host to create', () => {
    const plan = instrumentModule(watToBytes('(module (import "env" "memory" (memory 3)) (func))')).plan;
    expect(plan.memory).toEqual({ module: 'env', name: 'memory', initialPages: 3, maximumPages: null, shared: false });
  });

  it('refuses a module that imports from the sandbox namespace itself', () => {
    const bytes = watToBytes(`(module (import "${SANDBOX_MODULE}" "budget_check" (func (result i32))))`);
    expect(() => instrumentModule(bytes)).toThrow(/reserved for the host/);
  });
});

describe('the instruction walker', () => {
  it('walks SIMD, threads, bulk memory, reference types, multi-value blocks, tail calls and exception handling', () => {
    const src = watToBytes(`(module
      (type $pair (func (param i32) (result i32 i32)))
      (memory (export "memory") 1 1)
      (table $t 2 funcref)
      (tag $e (param i32))
      (elem declare func $id)
      (func $id (param i32) (result i32) (local.get 0))
      (func (export "simd") (result i32)
        (v128.store offset=16 (i32.const 0) (v128.const i32x4 1 2 3 4))
        (i32x4.extract_lane 2 (i32x4.add (v128.load offset=16 (i32.const 0)) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (v128.const i64x2 0 0) (v128.const i64x2 0 0))))
        (drop (v128.load8_lane 3 (i32.const 0) (v128.const i64x2 0 0))))
      (func (export "atomics") (result i32)
        (drop (i32.atomic.rmw.add (i32.const 64) (i32.const 5)))
        (atomic.fence)
        (i32.atomic.load (i32.const 64)))
      (func (export "bulk") (result i32)
        (memory.fill (i32.const 100) (i32.const 9) (i32.const 4))
        (memory.copy (i32.const 200) (i32.const 100) (i32.const 4))
        (drop (table.grow $t (ref.func $id) (i32.const 1)))
        (i32.add (i32.load8_u (i32.const 203)) (i32.trunc_sat_f32_s (f32.const 1.5))))
      (func (export "multi") (result i32)
        (i32.const 1) (block (type $pair) (drop) (i32.const 20) (i32.const 22) (br 0)) (i32.add))
      (func (export "tail") (result i32) (return_call $id (i32.const 11)))
      (func (export "eh") (result i32)
        (try (result i32) (do (throw $e (i32.const 5))) (catch $e (i32.extend8_s)) (catch_all (i32.const -1)))))`, 'features.wat', ALL);
    const out = instrumentModule(src);
    expect(WebAssembly.validate(out.bytes)).toBe(true);
    const plan = out.plan.memory!;
    const memory = new WebAssembly.Memory({ initial: plan.initialPages, maximum: plan.maximumPages! });
    const before = new WebAssembly.Instance(new WebAssembly.Module(src as Uint8Array<ArrayBuffer>), {}).exports as Record<string, () => number>;
    const after = run(out.bytes, memory).exports;
    for (const name of ['simd', 'atomics', 'bulk', 'multi', 'tail', 'eh']) expect([name, after[name]()]).toEqual([name, before[name]()]);
  });

  it('refuses memory.atomic.wait32 and wait64 with GW_ERR_MODULE_INVALID: a wait on the one thread blocks the event loop past any budget', () => {
    for (const wait of ['(drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))',
      '(drop (memory.atomic.wait64 (i32.const 0) (i64.const 0) (i64.const -1)))']) {
      const bytes = watToBytes(`(module (memory (export "memory") 1 1) (func (export "f") ${wait}))`, 'wait.wat', ALL);
      let err: unknown;
      try {
        instrumentModule(bytes);
      } catch (e) {
        err = e;
      }
      expect(isGatewayError(err, 'GW_ERR_MODULE_INVALID')).toBe(true);
      expect(String(err)).toMatch(/memory\.atomic\.wait(32|64) would block the event loop/);
    }
    // notify wakes nobody here and returns at once: it stays allowed.
    const notify = watToBytes('(module (memory (export "memory") 1 1) (func (export "f") (result i32) (memory.atomic.notify (i32.const 0) (i32.const 1))))', 'notify.wat', ALL);
    expect(WebAssembly.validate(instrumentModule(notify).bytes)).toBe(true);
  });

  it('refuses an unknown opcode with GW_ERR_MODULE_INVALID naming its offset, never copies it blindly', () => {
    const src = watToBytes('(module (func (drop (i32.const 1))))');
    const bad = Uint8Array.from(src);
    const at = bad.lastIndexOf(0x1a); // drop
    bad[at] = 0x27; // no such opcode
    try {
      instrumentModule(bad);
      throw new Error('accepted');
    } catch (err) {
      expect(isGatewayError(err, 'GW_ERR_MODULE_INVALID')).toBe(true);
      expect((err as Error).message).toContain(`unknown opcode 0x27`);
      expect((err as Error).message).toContain(`byte offset ${at}`);
    }
    bad[at] = 0xfc;
    bad[at + 1] = 0x7f; // 0xFC 127: no such sub-opcode
    expect(() => instrumentModule(bad)).toThrow(/unknown opcode 0xfc 127/);
  });
});

const repo = (dir: string, ext: '.wasm' | '.wat'): Array<[string, Uint8Array]> => readdirSync(new URL(`../../../${dir}/`, import.meta.url))
  .filter((f) => f.endsWith(ext))
  .map((f) => {
    const path = new URL(`../../../${dir}/${f}`, import.meta.url);
    return [`${dir}/${f}`, f.endsWith('.wat') ? watToBytes(readFileSync(path, 'utf8'), f) : new Uint8Array(readFileSync(path))];
  });

export const REPO_MODULES: Array<[string, Uint8Array]> = [
  ...repo('filters/dist', '.wasm'), ...repo('test/compat/proxy-runtime/build', '.wasm'),
  ...repo('test/filters/fixtures/dist', '.wasm'), ...repo('test/fixtures/sdk-shapes', '.wat'),
  ['guests.ts logging filter', watToBytes(loggingFilter())],
  ['guests.ts header filter', watToBytes(new Guest().build({ on: { proxy_on_request_headers: true, proxy_on_vm_start: true, proxy_on_tick: true } }))],
];

describe('instrumentModule on every module of the repository', () => {
  it.each(REPO_MODULES)('%s validates after the rewrite and keeps its imports and exports', (_name, bytes) => {
    const out = instrumentModule(bytes);
    expect(WebAssembly.validate(out.bytes)).toBe(true);
    const before = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const after = new WebAssembly.Module(out.bytes as Uint8Array<ArrayBuffer>);
    expect(WebAssembly.Module.exports(after)).toEqual(WebAssembly.Module.exports(before));
    const added = WebAssembly.Module.imports(after).filter((i) => i.module === SANDBOX_MODULE).map((i) => i.name);
    expect(WebAssembly.Module.imports(after).filter((i) => i.module !== SANDBOX_MODULE))
      .toEqual(WebAssembly.Module.imports(before).filter((i) => i.kind !== 'memory' || out.plan.memory?.module !== SANDBOX_MODULE));
    expect(added).toEqual(out.plan.memory?.module === SANDBOX_MODULE ? ['budget_check', 'memory'] : ['budget_check']);
  });
});
