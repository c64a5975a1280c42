/**
 * The sandbox at run time (gateway/abi/budget.ts, memory-cap.ts, vm.ts): an instrumented guest
 * that loops is stopped once its outermost call passes its budget, start-up runs under
 * startCpuMs, a stack overflow is its own trap, and memory.grow past limits.memoryMb fails with -1
 * as the spec says. Modules compiled without instrumentation run as before, unbudgeted.
 */
import { describe, expect, it, vi } from 'vitest';
import { CPU_SAMPLE_MS } from '../../gateway/abi/limits.js';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import type { VmFailure } from '../../gateway/abi/vm.js';
import { GatewayError, isGatewayError } from '../../gateway/errors.js';
import { TestStream, startVm, text } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const PLUGIN = { name: 'looper', rootId: 'r', configuration: text('') };
const LOG = '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))';
const LIMITS = { cpuMs: 30, startCpuMs: 60, memoryMb: 1 };
// Generous: the machine running the suite is shared; the point is "stopped", not a benchmark.
const MARGIN_MS = 250;

const CREATE = '(func (export "proxy_on_context_create") (param i32 i32))';
const SPIN = '(loop $spin (br $spin))';

function sandboxed(body: string, imports = '', features: Record<string, boolean> = {}) {
  return startVm(guestWat({ imports, body: `${CREATE} ${body}` }), { name: 'looper.wasm', sandboxed: true, limits: LIMITS, features });
}

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('did not throw');
}

/** Runs on_request_headers of a fresh stream; returns its result, the failures and the time it took. */
function requestHeaders(t: ReturnType<typeof sandboxed>) {
  const failures: VmFailure[] = [];
  t.vm.onFail((f) => failures.push(f));
  const root = t.vm.createRoot(PLUGIN);
  const stream = t.vm.createStream(root, new TestStream([[':path', '/']]));
  const started = performance.now();
  const result = stream.onRequestHeaders(1, true);
  return { result, failures, ms: performance.now() - started };
}

describe('the CPU budget of a guest call', () => {
  it('stops an endless loop in on_request_headers after cpuMs with GW_ERR_ABI_BUDGET naming the callback and the budget', () => {
    const t = sandboxed(`(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) ${SPIN} (i32.const 0))`);
    const { result, failures, ms } = requestHeaders(t);
    expect(result).toBe(CALL_FAILED);
    expect(t.vm.failed).toBe(true);
    expect(failures).toHaveLength(1);
    expect(failures[0].code).toBe('GW_ERR_ABI_BUDGET');
    expect(failures[0].message).toContain('proxy_on_request_headers');
    expect(failures[0].message).toContain('limits.cpuMs = 30 ms');
    expect(ms).toBeGreaterThanOrEqual(LIMITS.cpuMs);
    expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
  });

  it.each([
    ['a br inside an if (AssemblyScript)', '(loop $l (if (i32.const 1) (then (br $l))))'],
    ['a br_if at the end (LLVM)', '(loop $l (nop) (br_if $l (i32.const 1)))'],
    ['a br_table back to the loop', '(block $out (loop $l (br_table $l $out (i32.const 0))))'],
    ['a loop with a parameter', '(i32.const 0) (loop $l (param i32) (br $l (i32.add (i32.const 1)))) (unreachable)'],
    ['a small loop nested in a large one', `(loop $o ${'(nop)'.repeat(2000)} (loop $i (br_if $i (i32.const 0))) (br $o))`],
  ])('stops an endless loop that repeats by %s', (_shape, loop) => {
    const t = sandboxed(`(type $p (func (param i32))) (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) ${loop} (i32.const 0))`, '', { multi_value: true });
    const { failures, ms } = requestHeaders(t);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
    expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
  });

  it('stops endless mutual recursion through function entries, without any loop', () => {
    const t = sandboxed(`
      (func $ping (param $n i32) (result i32) (return_call $pong (i32.add (local.get $n) (i32.const 1))))
      (func $pong (param $n i32) (result i32) (return_call $ping (local.get $n)))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (drop (call $ping (i32.const 0))) (i32.const 0))`,
      '', { tail_call: true });
    const { failures } = requestHeaders(t);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
  });

  it('counts bulk memory instructions by their length: a loop of 1 MiB memory.fill or memory.copy is stopped within its budget', () => {
    // One pass weighed 1 unit whatever its length: 10 000 passes of a 1 MiB fill ran ~1 s between
    // two looks at the clock (a 48 MiB fill: 151 s under a 30 ms budget).
    for (const op of ['(memory.fill (i32.const 0) (i32.const 7) (i32.const 0x100000))', '(memory.copy (i32.const 0) (i32.const 0x80000) (i32.const 0x80000))']) {
      const t = startVm(`(module
        (memory (export "memory") 16)
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
        (func (export "proxy_abi_version_0_2_1"))
        ${CREATE}
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $spin ${op} (br $spin)) (i32.const 0)))`,
      { name: 'looper.wasm', sandboxed: true, limits: LIMITS });
      const { result, failures, ms } = requestHeaders(t);
      expect(result).toBe(CALL_FAILED);
      expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
      expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
    }
  });

  it('counts table.fill by its length too: a loop of 1M-element fills is stopped within its budget', () => {
    const t = startVm(`(module
      (memory (export "memory") 1)
      (table $t 1048576 funcref)
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
      (func (export "proxy_abi_version_0_2_1"))
      ${CREATE}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (loop $spin (table.fill $t (i32.const 0) (ref.null func) (i32.const 1048576)) (br $spin)) (i32.const 0)))`,
    { name: 'looper.wasm', sandboxed: true, limits: LIMITS, features: { reference_types: true, bulk_memory: true } });
    const { failures, ms } = requestHeaders(t);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
    expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
  });

  it('stops a loop whose loop-free callee does the bulk work', () => {
    // The callee counts its fill on the global, though the caller holds its own count in a local.
    const t = startVm(`(module
      (memory (export "memory") 16)
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
      (func (export "proxy_abi_version_0_2_1"))
      ${CREATE}
      (func $fill (memory.fill (i32.const 0) (i32.const 7) (i32.const 0x100000)))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $spin (call $fill) (br $spin)) (i32.const 0)))`,
    { name: 'looper.wasm', sandboxed: true, limits: LIMITS });
    const { failures, ms } = requestHeaders(t);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
    expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
  });

  it('counts loops across calls as one: three nested loop functions below the interval each are still stopped', () => {
    // Each level loops 9 000 times (under the 10 000-check interval) and calls the level below:
    // with a counter per frame no level would ever reach a check, 7·10^11 iterations in all.
    const level = (name: string, inner: string) => `
      (func ${name} (local $i i32)
        (loop $l ${inner} (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 9000)))))`;
    const t = sandboxed(`
      ${level('$c', '(nop)')} ${level('$b', '(call $c)')} ${level('$a', '(call $b)')}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $forever (call $a) (br $forever)) (i32.const 0))`);
    const { result, failures, ms } = requestHeaders(t);
    expect(result).toBe(CALL_FAILED);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
    expect(ms).toBeLessThan(LIMITS.cpuMs + MARGIN_MS);
  });

  it('is armed per outermost call: short calls never add up to a trap', () => {
    // Each call spins ~5 ms; 20 of them (100 ms in all) stay under the 30 ms budget each.
    const t = sandboxed(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $until i64)
        (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0x20)))
        (local.set $until (i64.add (i64.load (i32.const 0x20)) (i64.const 5000000)))
        (loop $spin
          (drop (call $now (i32.const 1) (i64.const 0) (i32.const 0x20)))
          (br_if $spin (i64.lt_u (i64.load (i32.const 0x20)) (local.get $until))))
        (i32.const 0))`, '(import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))');
    const failures: VmFailure[] = [];
    t.vm.onFail((f) => failures.push(f));
    const root = t.vm.createRoot(PLUGIN);
    for (let i = 0; i < 20; i++) t.vm.createStream(root, new TestStream([[':path', '/']])).onRequestHeaders(1, true);
    expect(failures).toEqual([]);
  });

  it('reads the process CPU time at most once per CPU_SAMPLE_MS, however many calls look at the clock', () => {
    // Each call runs 25 000 iterations, past the check interval: every call looks at the clock.
    // A getrusage per look was the largest part of the budget's cost (api-key 30% slower).
    const t = sandboxed(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $i i32)
        (loop $spin (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $spin (i32.lt_u (local.get $i) (i32.const 25000))))
        (i32.const 0))`);
    const root = t.vm.createRoot(PLUGIN);
    const reads = vi.spyOn(process, 'cpuUsage');
    try {
      const started = performance.now();
      for (let i = 0; i < 300; i++) t.vm.createStream(root, new TestStream([[':path', '/']])).onRequestHeaders(1, true);
      const ms = performance.now() - started;
      expect(t.vm.failed).toBe(false);
      expect(reads.mock.calls.length).toBeLessThanOrEqual(Math.ceil(ms / CPU_SAMPLE_MS) + 1);
      expect(reads.mock.calls.length).toBeLessThan(300);
    } finally {
      reads.mockRestore();
    }
  });

  it('cannot be swallowed by a guest that catches the trap (legacy catch_all) and returns', () => {
    const t = startVm(guestWat({ body: `${CREATE}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (try (do ${SPIN}) (catch_all))
        (i32.const 0))` }), { name: 'catcher.wasm', sandboxed: true, limits: LIMITS, features: { exceptions: true } });
    const { failures } = requestHeaders(t);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_BUDGET']);
  });

  it('rejects a plugin whose on_vm_start loops: createRoot throws GW_ERR_ABI_BUDGET after startCpuMs', () => {
    const t = sandboxed(`(func (export "proxy_on_vm_start") (param i32 i32) (result i32) ${SPIN} (i32.const 1))`);
    const started = performance.now();
    const err = thrown(() => t.vm.createRoot(PLUGIN));
    const ms = performance.now() - started;
    expect(err.code).toBe('GW_ERR_ABI_BUDGET');
    expect(err.message).toContain('plugin looper');
    expect(err.message).toContain('proxy_on_vm_start');
    expect(err.message).toContain('limits.startCpuMs = 60 ms');
    expect(ms).toBeGreaterThanOrEqual(LIMITS.startCpuMs);
    expect(ms).toBeLessThan(LIMITS.startCpuMs + MARGIN_MS);
  });

  it('gives on_configure the start-up budget too, and a looping _initialize fails the VM start with GW_ERR_ABI_BUDGET', () => {
    const configure = sandboxed(`(func (export "proxy_on_configure") (param i32 i32) (result i32) ${SPIN} (i32.const 1))`);
    expect(thrown(() => configure.vm.createRoot(PLUGIN)).message).toContain('limits.startCpuMs');
    const err = thrown(() => sandboxed(`(func (export "_initialize") ${SPIN})`));
    expect(err.code).toBe('GW_ERR_ABI_BUDGET');
    expect(err.message).toContain('_initialize');
  });

  it('leaves a module compiled without instrumentation unbudgeted', () => {
    // 200k iterations of a counted loop: far past 10 checks' worth, finishes normally.
    const t = startVm(guestWat({ body: `${CREATE}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (local $i i32)
        (loop $l (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 200000))))
        (i32.const 0))` }), { name: 'plain.wasm', limits: { cpuMs: 0, startCpuMs: 0, memoryMb: 1 } });
    expect(requestHeaders(t).failures).toEqual([]);
  });
});

describe('a stack overflow in the guest', () => {
  it('fails the VM with GW_ERR_ABI_STACK', () => {
    const t = sandboxed(`
      (func $down (param $n i32) (result i32) (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (drop (call $down (i32.const 0))) (i32.const 0))`);
    const { result, failures } = requestHeaders(t);
    expect(result).toBe(CALL_FAILED);
    expect(failures.map((f) => f.code)).toEqual(['GW_ERR_ABI_STACK']);
    expect(failures[0].message).toContain('stack overflow');
  });
});

describe('the memory cap', () => {
  it('makes memory.grow past limits.memoryMb return -1, and the guest keeps running', () => {
    // 1 MiB = 16 pages; the guest has 2 and asks for 15 more, then 14 more.
    const t = sandboxed(`
      (data (i32.const 0x100) "grew")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 0x200) (memory.grow (i32.const 15)))
        (i32.store (i32.const 0x204) (memory.grow (i32.const 14)))
        (drop (call $log (i32.const 2) (i32.const 0x100) (i32.const 4)))
        (i32.const 0))`, LOG);
    const { result, failures } = requestHeaders(t);
    expect(failures).toEqual([]);
    expect(result).toBe(0);
    expect(t.vm.mem.u32(0x200)).toBe(0xffffffff);
    expect(t.vm.mem.u32(0x204)).toBe(2);
    expect(t.vm.mem.size).toBe(16 * 65536);
    expect(t.logger.messages()).toEqual(['grew']);
  });

  it('refuses a module that needs more memory at start than the cap with GW_ERR_ABI_MEMORY', () => {
    const err = thrown(() => startVm(`(module (memory (export "memory") 40) (func (export "malloc") (param i32) (result i32) (i32.const 0))
      (func (export "proxy_abi_version_0_2_1")))`, { name: 'big.wasm', sandboxed: true, limits: LIMITS }));
    expect(isGatewayError(err, 'GW_ERR_ABI_MEMORY')).toBe(true);
    expect(err.message).toContain('big.wasm');
    expect(err.message).toContain('limits.memoryMb = 1');
  });
});
