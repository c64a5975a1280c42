/**
 * How guest calls end badly (gateway/abi/trap.ts) and what the VM does about it (vm.ts, reference
 * §6.8): any trap fails the whole VM once, with the guest's last critical line and a named
 * backtrace; WASI proc_exit and AssemblyScript abort are traps too; start-up traps are start-up
 * errors; a failed VM answers CALL_FAILED and skips background work; a bad pointer is only a status.
 */
import { describe, expect, it } from 'vitest';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import { HeadersAction, LogLevel, Status } from '../../gateway/abi/enums.js';
import type { Scheduler } from '../../gateway/abi/ports.js';
import { GuestTrap, ProcExit, isTrap, wasmBacktrace } from '../../gateway/abi/trap.js';
import type { VmFailure } from '../../gateway/abi/vm.js';
import { GatewayError } from '../../gateway/errors.js';
import { TestStream, startVm, text } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const PLUGIN = { name: 'p', rootId: 'r', configuration: text('') };

const LOG = '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))';
const PROC_EXIT = '(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))';
const ABORT = '(import "env" "abort" (func $abort (param i32 i32 i32 i32)))';

/** Starts `wat`, expecting start-up to be refused; returns the error. */
function startFailure(wat: string): GatewayError {
  try {
    startVm(wat, { name: 'trap.wasm' });
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('the module started');
}

/** A VM with one root and one stream over `body` (a 0.2.1 guest), failures recorded. */
function streamOf(body: string, imports = '') {
  const t = startVm(guestWat({ imports, body: `(func (export "proxy_on_context_create") (param i32 i32)) ${body}` }),
    { name: 'trap.wasm' });
  const failures: VmFailure[] = [];
  t.vm.onFail((f) => failures.push(f));
  const root = t.vm.createRoot(PLUGIN);
  const host = new TestStream([[':path', '/'], [':method', 'GET']]);
  const stream = t.vm.createStream(root, host);
  return { ...t, failures, root, host, stream };
}

/** A Rust-style panic: the panic hook logs at critical, then the abort is `unreachable`. */
const PANIC = `
  (data (i32.const 16) "panicked at 'boom'")
  (func $rust_panic
    (drop (call $log (i32.const 5) (i32.const 16) (i32.const 18)))
    unreachable)
  (func $on_request_headers (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $rust_panic)
    (i32.const 0))`;

describe('a trap in a callback', () => {
  it("fails the VM with GW_ERR_ABI_TRAP, the guest's last critical line and a named backtrace", () => {
    const { vm, stream, failures, logger, root } = streamOf(PANIC, LOG);
    expect(stream.onRequestHeaders(2, true)).toBe(CALL_FAILED);
    expect(failures).toHaveLength(1);
    const failure = vm.failure!;
    expect(failure).toBe(failures[0]);
    expect(failure.code).toBe('GW_ERR_ABI_TRAP');
    expect(failure.message).toBe('trap: unreachable');
    expect(failure.guestMessage).toBe("panicked at 'boom'");
    expect(failure.backtrace[0]).toMatch(/^rust_panic \(wasm-function\[\d+\]:0x[0-9a-f]+\)$/);
    expect(failure.backtrace[1]).toMatch(/^on_request_headers \(wasm-function\[\d+\]:0x[0-9a-f]+\)$/);
    expect(failure.at).toBeInstanceOf(Date);
    const report = logger.lines.at(-1)!;
    expect(report.level).toBe(LogLevel.CRITICAL);
    expect(report.origin).toBe(root);
    expect(report.message).toMatch(/^VM failed in module trap\.wasm: trap: unreachable \(guest said: panicked at 'boom'\)\n {2}at rust_panic /);
  });

  it('does not quote a critical line the guest logged in an earlier callback', () => {
    const { vm, stream } = streamOf(`
      (data (i32.const 16) "upstream looks unhealthy")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $log (i32.const 5) (i32.const 16) (i32.const 24)))
        (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (i32.load (i32.const 200000)))`, LOG);
    expect(stream.onRequestHeaders(0, false)).toBe(HeadersAction.CONTINUE);
    expect(stream.onResponseHeaders(0, false)).toBe(CALL_FAILED);
    expect(vm.failure!.message).toBe('trap: memory access out of bounds');
    expect(vm.failure!.guestMessage).toBeNull();
  });

  it('fails the VM with GW_ERR_ABI_PROC_EXIT when the guest calls proc_exit(3)', () => {
    const { vm, stream } = streamOf(`
      (func $exit_three (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $proc_exit (i32.const 3))
        (i32.const 0))`, PROC_EXIT);
    expect(stream.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failure!.code).toBe('GW_ERR_ABI_PROC_EXIT');
    expect(vm.failure!.message).toBe('guest called proc_exit(3)');
    expect(vm.failure!.backtrace.join('\n')).toContain('exit_three');
  });

  it('decodes an AssemblyScript abort message (UTF-16LE, length at ptr - 4) and fails the VM with it', () => {
    const { vm, stream, logger } = streamOf(`
      ;; AS strings: u32 byte length at ptr - 4, then UTF-16LE; "bööm ☃" at 104, "assembly/index.ts" at 124
      (data (i32.const 100) "\\0c\\00\\00\\00b\\00\\f6\\00\\f6\\00m\\00 \\00\\03\\26")
      (data (i32.const 120) "\\22\\00\\00\\00a\\00s\\00s\\00e\\00m\\00b\\00l\\00y\\00/\\00i\\00n\\00d\\00e\\00x\\00.\\00t\\00s\\00")
      (func $on_request_headers (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $abort (i32.const 104) (i32.const 124) (i32.const 12) (i32.const 3))
        unreachable)`, ABORT);
    expect(stream.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    const message = 'abort: bööm ☃ at assembly/index.ts:12:3';
    expect(vm.failure!.code).toBe('GW_ERR_ABI_TRAP');
    expect(vm.failure!.message).toBe(message);
    expect(vm.failure!.guestMessage).toBe(message);
    expect(vm.failure!.backtrace.join('\n')).toContain('on_request_headers');
    expect(logger.lines.find((l) => l.message === message)?.level).toBe(LogLevel.CRITICAL);
  });

  it('reports an AssemblyScript abort with null message and file pointers without reading memory', () => {
    const { vm, stream } = streamOf(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $abort (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 2))
        unreachable)`, ABORT);
    expect(stream.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failure!.message).toBe('abort: (no message) at ?:1:2');
  });

  it('turns a trap in proxy_on_vm_start into a GatewayError naming the plugin and the module', () => {
    const { vm } = startVm(guestWat({ imports: LOG, body: `
      (data (i32.const 16) "panicked at 'bad config'")
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
        (drop (call $log (i32.const 5) (i32.const 16) (i32.const 24)))
        unreachable)` }), { name: 'trap.wasm' });
    let err: unknown;
    try {
      vm.createRoot(PLUGIN);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_ERR_ABI_TRAP');
    expect((err as GatewayError).message).toBe(
      `plugin p (root id "r", module trap.wasm): proxy_on_vm_start failed: trap: unreachable (guest said: panicked at 'bad config')`);
  });
});

describe('a trap while the module starts', () => {
  it('refuses the module with GW_ERR_ABI_START and a backtrace when the start section traps', () => {
    const err = startFailure(guestWat({ body: `
      (func $as_start_boom unreachable)
      (func $as_start (call $as_start_boom))
      (start $as_start)` }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toMatch(/^module trap\.wasm: instantiation \(start section\) failed: trap: unreachable\n {2}at as_start_boom .*\n {2}at as_start /);
  });

  it("refuses the module with GW_ERR_ABI_START, the backtrace and the guest's critical line when _initialize traps", () => {
    const err = startFailure(guestWat({ imports: LOG, body: `
      (data (i32.const 16) "panicked at 'init'")
      (func $ctor
        (drop (call $log (i32.const 5) (i32.const 16) (i32.const 18)))
        unreachable)
      (func $_initialize (export "_initialize") (call $ctor))` }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toMatch(/^module trap\.wasm: _initialize failed: trap: unreachable \(guest said: panicked at 'init'\)\n {2}at ctor .*\n {2}at _initialize /);
  });

  it('starts cleanly when a WASI command ends _start with proc_exit(0)', () => {
    const { vm, logger } = startVm(guestWat({ imports: `${LOG} ${PROC_EXIT}`, body: `
      (data (i32.const 16) "main done")
      (func (export "_start")
        (drop (call $log (i32.const 2) (i32.const 16) (i32.const 9)))
        (call $proc_exit (i32.const 0))
        unreachable)
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))` }));
    expect(vm.failed).toBe(false);
    expect(logger.messages()).toEqual(['main done']);
    const stream = vm.createStream(vm.createRoot(PLUGIN), new TestStream());
    expect(stream.onRequestHeaders(0, true)).toBe(HeadersAction.CONTINUE);
  });

  it('refuses the module with GW_ERR_ABI_START when _start calls proc_exit(1)', () => {
    const err = startFailure(guestWat({ imports: PROC_EXIT, body: `
      (func $_start (export "_start") (call $proc_exit (i32.const 1)))` }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toMatch(/^module trap\.wasm: _start failed: guest called proc_exit\(1\)\n {2}at _start /);
    expect(err.cause).toBeInstanceOf(ProcExit);
  });

  it('refuses the module with GW_ERR_ABI_START when _initialize calls proc_exit(0): only a command may exit', () => {
    const err = startFailure(guestWat({ imports: PROC_EXIT, body: `
      (func (export "_initialize") (call $proc_exit (i32.const 0)))` }));
    expect(err.code).toBe('GW_ERR_ABI_START');
    expect(err.message).toContain('_initialize failed: guest called proc_exit(0)');
  });
});

describe('a failed VM', () => {
  /** Timers and deferrals run only when the test says so. */
  function manualScheduler() {
    const ticks: Array<{ fn: () => void; cancelled: boolean }> = [];
    const deferred: Array<() => void> = [];
    const scheduler: Scheduler = {
      every(_periodMs, fn) {
        const tick = { fn, cancelled: false };
        ticks.push(tick);
        return { cancel: () => { tick.cancelled = true; } };
      },
      defer(fn) {
        deferred.push(fn);
      },
    };
    const flush = (): void => { for (const fn of deferred.splice(0)) fn(); };
    return { scheduler, ticks, flush };
  }

  /** Counts its callbacks at [0] on_tick, [4] on_queue_ready, [8] on_response_headers, [12] on_log. */
  const counting = guestWat({
    imports: `
    (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
    (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))`,
    body: `
    (data (i32.const 64) "jobs")
    (func $bump (param $at i32) (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1))))
    (func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
      (drop (call $tick (i32.const 1000)))
      (drop (call $register (i32.const 64) (i32.const 4) (i32.const 32)))
      (i32.const 1))
    (func (export "proxy_on_tick") (param i32) (call $bump (i32.const 0)))
    (func (export "proxy_on_queue_ready") (param i32 i32) (call $bump (i32.const 4)))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (call $bump (i32.const 8)) (i32.const 0))
    (func (export "proxy_on_log") (param i32) (call $bump (i32.const 12)))`,
  });

  it('calls each onFail listener once, however many callbacks are refused afterwards', () => {
    const { vm } = startVm(counting);
    const first: VmFailure[] = [];
    const second: VmFailure[] = [];
    vm.onFail((f) => first.push(f));
    vm.onFail((f) => second.push(f));
    const root = vm.createRoot(PLUGIN);
    const a = vm.createStream(root, new TestStream());
    const b = vm.createStream(root, new TestStream());
    expect(a.onRequestHeaders(0, false)).toBe(CALL_FAILED);
    expect(b.onRequestHeaders(0, false)).toBe(CALL_FAILED);
    expect(a.onResponseHeaders(0, false)).toBe(CALL_FAILED);
    expect(first).toEqual([vm.failure]);
    expect(second).toEqual([vm.failure]);
  });

  it('tells no listener that unsubscribed, even one that unsubscribes another while it is told', () => {
    const { vm } = startVm(counting);
    const told: string[] = [];
    const gone = vm.onFail(() => told.push('gone'));
    let second = (): void => undefined;
    vm.onFail(() => { told.push('first'); second(); });
    second = vm.onFail(() => told.push('second'));
    gone();
    gone();
    expect(vm.failListenerCount).toBe(2);
    const root = vm.createRoot(PLUGIN);
    expect(vm.createStream(root, new TestStream()).onRequestHeaders(0, false)).toBe(CALL_FAILED);
    // The second was told too: the listeners are those registered when the VM failed.
    expect(told).toEqual(['first', 'second']);
    expect(vm.failListenerCount).toBe(1);
  });

  it('answers CALL_FAILED to every stream callback and skips ticks, queue deliveries and on_log', () => {
    const { scheduler, ticks, flush } = manualScheduler();
    const { vm, sharedQueues } = startVm(counting, { ports: { scheduler } });
    const root = vm.createRoot(PLUGIN);
    const queueId = vm.mem.u32(32);
    ticks[0].fn();
    sharedQueues.enqueue(queueId, text('before'));
    flush();
    expect([vm.mem.u32(0), vm.mem.u32(4)]).toEqual([1, 1]);

    const stream = vm.createStream(root, new TestStream());
    expect(stream.onRequestHeaders(0, false)).toBe(CALL_FAILED);
    expect(ticks[0].cancelled).toBe(true);
    expect(stream.onResponseHeaders(0, false)).toBe(CALL_FAILED);
    expect(vm.createStream(root, new TestStream()).onResponseHeaders(0, true)).toBe(CALL_FAILED);
    ticks[0].fn(); // a timer that fires anyway is skipped
    sharedQueues.enqueue(queueId, text('after'));
    flush();
    stream.finish();
    expect([vm.mem.u32(0), vm.mem.u32(4), vm.mem.u32(8), vm.mem.u32(12)]).toEqual([1, 1, 0, 0]);
  });

  it('refuses new plugins with GW_ERR_ABI_VM_FAILED naming the plugin and the first failure', () => {
    const { vm } = startVm(counting, { name: 'trap.wasm' });
    const stream = vm.createStream(vm.createRoot(PLUGIN), new TestStream());
    stream.onRequestHeaders(0, false);
    expect(() => vm.createRoot({ name: 'late', rootId: '', configuration: text('') })).toThrow(
      expect.objectContaining({ code: 'GW_ERR_ABI_VM_FAILED', message: 'plugin late: VM of module trap.wasm has failed: trap: unreachable' }));
  });
});

describe('a bad pointer passed to a hostcall', () => {
  it('returns INVALID_MEMORY_ACCESS (6) and leaves the VM running', () => {
    const { vm, stream, host } = streamOf(`
      (data (i32.const 16) ":path")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        ;; message past the end of memory
        (i32.store (i32.const 0) (call $log (i32.const 2) (i32.const 131000) (i32.const 1000)))
        ;; a length that wraps past 2^32
        (i32.store (i32.const 4) (call $log (i32.const 2) (i32.const 16) (i32.const -1)))
        ;; a good key, but return slots outside memory
        (i32.store (i32.const 8) (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const -4) (i32.const 12)))
        ;; iovecs outside memory: WASI reports EFAULT (21)
        (i32.store (i32.const 12) (call $fd_write (i32.const 1) (i32.const 200000) (i32.const 1) (i32.const 20)))
        (i32.const 0))`, `${LOG}
      (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))`);
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.CONTINUE);
    expect(vm.failed).toBe(false);
    expect([vm.mem.u32(0), vm.mem.u32(4), vm.mem.u32(8)]).toEqual(Array(3).fill(Status.INVALID_MEMORY_ACCESS));
    expect(vm.mem.u32(12)).toBe(21);
    expect(host.actions).toEqual([]);
  });
});

describe('trap.ts', () => {
  it('treats restricted calls, aborts, proc_exit, runtime errors and stack overflows as traps, and nothing else', () => {
    expect(isTrap(new GuestTrap('x', 'restricted'))).toBe(true);
    expect(isTrap(new GuestTrap('x', 'abort'))).toBe(true);
    expect(isTrap(new ProcExit(0))).toBe(true);
    expect(isTrap(new WebAssembly.RuntimeError('unreachable'))).toBe(true);
    expect(isTrap(new RangeError('Maximum call stack size exceeded'))).toBe(true);
    expect(isTrap(new TypeError('x is undefined'))).toBe(false);
    expect(isTrap('unreachable')).toBe(false);
  });

  it('keeps only the wasm frames of a stack, without the module hash', () => {
    const err = new Error('x');
    err.stack = [
      'RuntimeError: unreachable',
      '    at boom (wasm://wasm/8c5a2f1e:wasm-function[3]:0x1a2)',
      '    at WasmVm.call (file:///gateway/abi/vm.js:10:5)',
      '    at on_request_headers (wasm://wasm/8c5a2f1e:wasm-function[7]:0x2b0)',
    ].join('\n');
    expect(wasmBacktrace(err)).toEqual([
      'boom (wasm-function[3]:0x1a2)',
      'on_request_headers (wasm-function[7]:0x2b0)',
    ]);
    expect(wasmBacktrace('not an error')).toEqual([]);
  });
});
