/**
 * Starting a WasmVm (gateway/abi/vm.ts constructor and start(), gateway/abi/vm-start.ts): what a
 * module must export, the order of its start functions, what each refusal says, and the memory cap
 * the VM applies to an instrumented module. Traps during start-up are in trap.test.ts, the start-up
 * budget in budget.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { WasmVm } from '../../gateway/abi/vm.js';
import { GatewayError } from '../../gateway/errors.js';
import { instrumentModule } from '../../gateway/modules/wasm/instrument.js';
import { RecordingLogger, startVm } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

const ABI = '(func (export "proxy_abi_version_0_2_1"))';
const ALLOC = '(func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))';

function startFailure(wat: string, name = 'start.wasm'): GatewayError {
  try {
    startVm(wat, { name });
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('the VM started');
}

describe('a module the VM refuses to start', () => {
  it('has no Proxy-Wasm ABI version export: GW_ERR_ABI_VERSION naming the module and the exports it looked for', () => {
    const err = startFailure(`(module (memory (export "memory") 1) ${ALLOC})`, 'plain.wasm');
    expect(err.code).toBe('GW_ERR_ABI_VERSION');
    expect(err.message).toBe('module plain.wasm: missing or unknown Proxy-Wasm ABI version '
      + '(no proxy_abi_version_0_1_0, _0_2_0 or _0_2_1 export)');
  });

  it('keeps its memory to itself: GW_ERR_ABI_EXPORT, as the host cannot read what it does not see', () => {
    const err = startFailure(`(module (memory 1) ${ALLOC} ${ABI})`);
    expect(err.code).toBe('GW_ERR_ABI_EXPORT');
    expect(err.message).toBe('module start.wasm: does not export its linear memory as "memory"');
  });

  it('exports no allocator, or one that does not take exactly the size: GW_ERR_ABI_EXPORT naming both names', () => {
    const message = 'module start.wasm: exports no allocator (proxy_on_memory_allocate or malloc)';
    expect(startFailure(`(module (memory (export "memory") 1) ${ABI})`).message).toBe(message);
    const twoParams = startFailure(`(module (memory (export "memory") 1) ${ABI}
      (func (export "malloc") (param i32 i32) (result i32) (i32.const 1024)))`);
    expect([twoParams.code, twoParams.message]).toEqual(['GW_ERR_ABI_EXPORT', message]);
  });

  it('exports a callback with the wrong parameter count for its ABI version: GW_ERR_ABI_EXPORT naming export and version', () => {
    const err = startFailure(guestWat({ body: '(func (export "proxy_on_request_headers") (param i32 i32) (result i32) (i32.const 0))' }));
    expect(err.code).toBe('GW_ERR_ABI_EXPORT');
    expect(err.message).toBe('module start.wasm: export proxy_on_request_headers takes 2 parameters, ABI 0.2.1 expects 3');
    // Two parameters are right for 0.1.0, which has no end_of_stream flag.
    expect(startVm(guestWat({ abi: '0_1_0', body: '(func (export "proxy_on_request_headers") (param i32 i32) (result i32) (i32.const 0))' }))
      .vm.failed).toBe(false);
  });

  it('imports a function the host does not have: GW_ERR_ABI_LINK naming the module, even without typed imports', () => {
    const err = startFailure(guestWat({ imports: '(import "env" "proxy_teleport" (func (param i32) (result i32)))', body: '' }), 'link.wasm');
    expect(err.code).toBe('GW_ERR_ABI_LINK');
    expect(err.message).toMatch(/^module link\.wasm: .*proxy_teleport/);
    expect(err.cause).toBeInstanceOf(WebAssembly.LinkError);
  });
});

describe('the start functions of a module', () => {
  /** Each start function appends its mark (1 start section, 2 _initialize, 3 main, 4 __main_void, 5 _start) at [0..]. */
  const marking = (exports: string): string => guestWat({ body: `
    (global $at (mut i32) (i32.const 0))
    (func $mark (param $m i32) (i32.store8 (global.get $at) (local.get $m)) (global.set $at (i32.add (global.get $at) (i32.const 1))))
    (func $start (call $mark (i32.const 1)))
    (start $start)
    ${exports}` });
  const marks = (wat: string): number[] => {
    const { vm } = startVm(wat);
    return [...vm.mem.current().subarray(0, 4)].filter((m) => m !== 0);
  };
  const INITIALIZE = '(func (export "_initialize") (call $mark (i32.const 2)))';
  const MAIN = '(func (export "main") (param i32 i32) (result i32) (call $mark (i32.const 3)) (i32.const 0))';
  const MAIN_VOID = '(func (export "__main_void") (result i32) (call $mark (i32.const 4)) (i32.const 0))';
  const START = '(func (export "_start") (call $mark (i32.const 5)))';

  it('runs a reactor\'s _initialize after the start section, then main(argc, argv) when it takes both', () => {
    expect(marks(marking(`${INITIALIZE} ${MAIN} ${MAIN_VOID}`))).toEqual([1, 2, 3]);
  });

  it('runs __main_void after _initialize when there is no two-parameter main', () => {
    expect(marks(marking(`${INITIALIZE} ${MAIN_VOID}`))).toEqual([1, 2, 4]);
    expect(marks(marking(`${INITIALIZE} (func (export "main") (result i32) (call $mark (i32.const 3)) (i32.const 0)) ${MAIN_VOID}`)))
      .toEqual([1, 2, 4]);
  });

  it('runs a command\'s _start only when there is no _initialize, and neither main', () => {
    expect(marks(marking(`${START} ${MAIN}`))).toEqual([1, 5]);
    expect(marks(marking(`${START} ${INITIALIZE}`))).toEqual([1, 2]);
  });

  it('names the stage that failed: _initialize also for a main that traps after it', () => {
    const err = startFailure(marking(`${INITIALIZE} (func (export "main") (param i32 i32) (result i32) unreachable)`));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toMatch(/^module start\.wasm: _initialize failed: trap: unreachable/);
  });

  it('leaves the VM running, out of start-up, once they return', () => {
    const { vm } = startVm(marking(INITIALIZE));
    expect(vm.failed).toBe(false);
    expect(vm.budget.startup).toBe(false);
  });
});

describe('the memory cap of an instrumented module', () => {
  const GROW = `
    (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages)))`;
  const limits = (memoryMb: number) => ({ cpuMs: 1000, startCpuMs: 1000, memoryMb });
  const vmOf = (wat: string, preparedMb: number | undefined, memoryMb: number): WasmVm => {
    const prepared = instrumentModule(watToBytes(wat), preparedMb === undefined ? {} : { memoryMb: preparedMb });
    return new WasmVm(new WebAssembly.Module(prepared.bytes), {
      name: 'capped.wasm', sandbox: prepared.plan, limits: limits(memoryMb), ports: { logger: new RecordingLogger() },
    });
  };
  const grow = (vm: WasmVm, pages: number): number => vm.call(vm.createRoot({ name: 'p', rootId: 'r', configuration: new Uint8Array() }),
    vm.instance.exports.grow as (n: number) => number, pages);

  it('creates a memory the module imports with the cap as its maximum: growing past it answers -1', () => {
    const wat = `(module (import "env" "memory" (memory 2)) (export "memory" (memory 0)) ${ALLOC} ${ABI} ${GROW})`;
    const vm = vmOf(wat, undefined, 1);
    expect(grow(vm, 15)).toBe(0xffffffff);
    expect(grow(vm, 14)).toBe(2);
    expect(vm.mem.size).toBe(16 * 65536);
  });

  it('also caps the memory a module declares when it was instrumented without a cap, as an import the VM creates', () => {
    const vm = vmOf(guestWat({ body: GROW }), undefined, 1);
    expect(grow(vm, 15)).toBe(0xffffffff);
    expect(grow(vm, 14)).toBe(2);
  });

  it('refuses a module prepared for another cap than the VM\'s: GW_ERR_ABI_MEMORY naming both', () => {
    let err: unknown;
    try {
      vmOf(guestWat({ body: GROW }), 1, 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_ABI_MEMORY');
    expect((err as GatewayError).message).toBe('module capped.wasm: prepared for a cap of 16 pages, not limits.memoryMb = 2');
  });

  it('refuses a module whose imported memory starts above the cap', () => {
    const wat = `(module (import "env" "memory" (memory 40)) (export "memory" (memory 0)) ${ALLOC} ${ABI})`;
    expect(() => vmOf(wat, undefined, 1)).toThrow(/^module capped\.wasm: needs 40 pages \(2\.5 MiB\) of memory at start, over limits\.memoryMb = 1$/);
  });
});
