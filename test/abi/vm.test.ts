/**
 * WasmVm (gateway/abi/vm.ts) once started: guest calls and their results, calls nested in calls
 * (current and effective context, deferred side effects, the shared budget deadline), failure
 * (fail state, log line, listeners, timers, dropped side effects), the allocator, the import check
 * and the token counters. Start-up is in vm-start.test.ts; the budget against real loops in
 * budget.test.ts; traps of each kind in trap.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../gateway/abi/callbacks.js';
import { CALL_FAILED, type RootContext } from '../../gateway/abi/context.js';
import { HeadersAction, LogLevel, Status } from '../../gateway/abi/enums.js';
import { BUDGET_CHECK_INTERVAL } from '../../gateway/abi/limits.js';
import type { ForeignFunction, Scheduler } from '../../gateway/abi/ports.js';
import { WasmVm, type VmFailure } from '../../gateway/abi/vm.js';
import type { TypedImport } from '../../gateway/abi/wasm-types.js';
import { GatewayError } from '../../gateway/errors.js';
import { instrumentModule } from '../../gateway/modules/wasm/instrument.js';
import { RecordingLogger, TestStream, startVm, text } from '../helpers/host.js';
import { guestWat, watToBytes } from '../helpers/wat.js';

const plugin = (name: string) => ({ name, rootId: 'r', configuration: text('') });
const exported = (vm: WasmVm, name: string): GuestFn => vm.instance.exports[name] as GuestFn;
const CREATE = '(func (export "proxy_on_context_create") (param i32 i32))';
const LOG = '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))';
const CONTINUE = '(import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))';
const FOREIGN = '(import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))';

const headerFilter = guestWat({
  imports: `
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 16) ":path")
  (data (i32.const 32) "x-path")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 100) (i32.const 104)))
    (drop (call $add (i32.const 0) (i32.const 32) (i32.const 6) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
    (i32.const 0))`,
});

describe('WasmVm', () => {
  it('runs a header filter that copies :path into a new request header', () => {
    const { vm } = startVm(headerFilter);
    const root = vm.createRoot({ name: 'p', rootId: 'r', configuration: text('{}') });
    const host = new TestStream([[':path', '/hello?x=1'], [':method', 'GET']]);
    const stream = vm.createStream(root, host);
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.CONTINUE);
    expect(host.maps[0]!.get('x-path')).toBe('/hello?x=1');
    stream.finish();
    expect(vm.contexts.size).toBe(1);
  });

  it('fails the VM when the guest traps and reports the trap', () => {
    const { vm, logger } = startVm(guestWat({ body: `
      (func (export "proxy_on_context_create") (param i32 i32))
      (func $boom (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)` }));
    const root = vm.createRoot({ name: 'p', rootId: 'r', configuration: text('') });
    const stream = vm.createStream(root, new TestStream());
    expect(stream.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failure?.code).toBe('GW_ERR_ABI_TRAP');
    expect(vm.failure?.backtrace.join('\n')).toContain('boom');
    expect(logger.messages().join('\n')).toContain('unreachable');
  });
});

describe('WasmVm import check (VmOptions.imports, VmOptions.allowedHostcalls)', () => {
  /** Imports proxy_log with one parameter too few, and logs from its start function. */
  const wrongLog = guestWat({
    imports: '(import "env" "proxy_log" (func $log (param i32 i32) (result i32)))',
    body: `
  (data (i32.const 16) "started")
  (func $start (drop (call $log (i32.const 16) (i32.const 7))))
  (start $start)`,
  });
  const i32 = 'i32' as const;
  const asRead: TypedImport[] = [{ module: 'env', name: 'proxy_log', kind: 'function', type: { params: [i32, i32], results: [i32] } }];

  const startError = (fn: () => unknown): GatewayError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof GatewayError) return err;
      throw err;
    }
    throw new Error('the VM started');
  };

  it('refuses a module whose import has another signature before instantiating it: GW_ERR_ABI_LINK, and its start never runs', () => {
    const logger = new RecordingLogger();
    const err = startError(() => startVm(wrongLog, { name: 'wrong.wasm', imports: asRead, ports: { logger } }));
    expect(err.code).toBe('GW_ERR_ABI_LINK');
    expect(err.message).toContain('module wrong.wasm');
    expect(err.message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32, i32) -> i32');
    expect(logger.lines).toEqual([]);
  });

  it('links the same module when no typed imports are given (what instantiation alone checks)', () => {
    expect(startVm(wrongLog).vm.failed).toBe(false);
  });

  it('refuses a module importing a hostcall outside allowedHostcalls: GW_ERR_ABI_CAPABILITY naming it', () => {
    const ok = [{ ...asRead[0], type: { params: [i32, i32, i32], results: [i32] } }];
    const err = startError(() => startVm(wrongLog, { imports: ok, allowedHostcalls: ['proxy_get_property'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).toContain('does not list: proxy_log');
    expect(startVm(headerFilter, { allowedHostcalls: ['proxy_get_header_map_value', 'proxy_add_header_map_value'] }).vm.failed).toBe(false);
  });

  it('enforces allowedHostcalls on the import names alone when no typed imports are given', () => {
    const err = startError(() => startVm(headerFilter, { allowedHostcalls: ['proxy_get_header_map_value'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).toContain('does not list: proxy_add_header_map_value');
  });

  it('leaves the host\'s own sandbox imports of an instrumented module out of the name-only check', () => {
    const instrumented = guestWat({
      imports: `
  (import "edge-gateway:sandbox" "budget_check" (func $budget (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))`,
      body: '(func (export "proxy_on_context_create") (param i32 i32))',
    });
    const err = startError(() => startVm(instrumented, { allowedHostcalls: ['fd_write'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).not.toContain('edge-gateway:sandbox');
  });
});

describe('a guest call', () => {
  const arithmetic = guestWat({ body: `${CREATE}
    (func (export "sum") (param i32 i32 i32 i32 i32) (result i32)
      (i32.add (local.get 0) (i32.add (local.get 1) (i32.add (local.get 2) (i32.add (local.get 3) (local.get 4))))))
    (func (export "minus_one") (result i32) (i32.const -1))
    (func (export "nothing"))
    (func (export "count") (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1))))
    (func (export "boom") unreachable)` });

  it('passes up to five arguments and answers the i32 result unsigned, or 0 for a function without one', () => {
    const { vm } = startVm(arithmetic);
    const root = vm.createRoot(plugin('p'));
    expect(vm.call(root, exported(vm, 'sum'), 1, 20, 300, 4000, 50000)).toBe(54321);
    expect(vm.call(root, exported(vm, 'minus_one'))).toBe(0xffffffff);
    expect(vm.call(root, exported(vm, 'nothing'))).toBe(0);
  });

  it('answers CALL_FAILED without entering the guest once the VM has failed', () => {
    const { vm } = startVm(arithmetic);
    const root = vm.createRoot(plugin('p'));
    vm.call(root, exported(vm, 'count'));
    expect(vm.call(root, exported(vm, 'boom'))).toBe(CALL_FAILED);
    expect(vm.call(root, exported(vm, 'count'))).toBe(CALL_FAILED);
    expect(vm.callRoot(root, exported(vm, 'count'))).toBe(0);
    expect(vm.mem.u32(0)).toBe(1);
  });
});

/**
 * Logs "before", calls the foreign function "nest" (where the test runs a nested guest call),
 * continues the stream, logs "after". The stream whose id is at 0x100 first sets the effective
 * context to the id at 0x104.
 */
const nesting = guestWat({
  imports: `${LOG} ${CONTINUE} ${FOREIGN}
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))`,
  body: `${CREATE}
  (data (i32.const 16) "before")
  (data (i32.const 32) "after")
  (data (i32.const 48) "nest")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eq (local.get $ctx) (i32.load (i32.const 0x100))) (then (drop (call $effective (i32.load (i32.const 0x104))))))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 6)))
    (drop (call $foreign (i32.const 48) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $continue (i32.const 0)))
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 5)))
    (i32.const 0))`,
});

/** A VM of `nesting` whose foreign function "nest" runs `inner` once, the first time it is called. */
function nestingVm() {
  let inner: (() => void) | null = null;
  const nest: ForeignFunction = () => {
    const run = inner;
    inner = null;
    run?.();
    return new Uint8Array(0);
  };
  const t = startVm(nesting, { ports: { foreignFunctions: new Map([['nest', nest]]) } });
  const said = (): string[] => t.logger.lines.map((l) => `${l.origin?.pluginName} ${l.message}`);
  return { ...t, said, nestNext: (fn: () => void) => { inner = fn; } };
}

describe('a guest call made while another one runs (a port calling back into the VM)', () => {
  it('runs in its own context, and the outer call gets its running and effective context back', () => {
    const { vm, said, nestNext } = nestingVm();
    const outer = vm.createRoot(plugin('outer'));
    const inner = vm.createRoot(plugin('inner'));
    const effective = vm.createRoot(plugin('effective'));
    const innerStream = (): void => { vm.createStream(inner, new TestStream()).onRequestHeaders(0, true); };

    nestNext(innerStream);
    vm.createStream(outer, new TestStream()).onRequestHeaders(0, true);
    expect(said()).toEqual(['outer before', 'inner before', 'inner after', 'outer after']);

    const stream = vm.createStream(outer, new TestStream());
    vm.mem.setU32(0x100, stream.id);
    vm.mem.setU32(0x104, effective.id);
    nestNext(innerStream);
    stream.onRequestHeaders(0, true);
    expect(said().slice(4)).toEqual(['effective before', 'inner before', 'inner after', 'effective after']);
    expect(vm.current).toBe(null);
    expect(vm.effective).toBe(null);
  });

  it('queues its side effects until the outermost call returns, then applies every one in order', () => {
    const { vm, nestNext } = nestingVm();
    const root = vm.createRoot(plugin('p'));
    const applied: string[] = [];
    const outerHost = new TestStream();
    const innerHost = new TestStream();
    outerHost.continueStream = (type) => applied.push(`outer continue:${type}`);
    innerHost.continueStream = (type) => applied.push(`inner continue:${type}`);
    let appliedWhenInnerReturned: string[] = ['the nested call did not run'];
    nestNext(() => {
      vm.createStream(root, innerHost).onRequestHeaders(0, true);
      appliedWhenInnerReturned = [...applied];
    });
    vm.createStream(root, outerHost).onRequestHeaders(0, true);
    expect(appliedWhenInnerReturned).toEqual([]);
    expect(applied).toEqual(['inner continue:0', 'outer continue:0']);
  });

  it('runs against the deadline of the outermost call, which the nested call does not restart', () => {
    const cpuMs = 30;
    // Interval 1: the outer call's first loop check (10 iterations go round its unrolled copies
    // at least once) starts the clock before nesting; the nested call loops past the interval the
    // host hands back, so it looks at the clock too.
    const wat = guestWat({
      imports: FOREIGN,
      body: `${CREATE}
      (data (i32.const 48) "nest")
      (func $spin (param $n i32) (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $spin (i32.const 10))
        (drop (call $foreign (i32.const 48) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
        (i32.const 0))
      (func (export "proxy_on_tick") (param i32) (call $spin (i32.const 100000)))`,
    });
    const prepared = instrumentModule(watToBytes(wat), { memoryMb: 2, interval: 1 });
    let innerResult = -2;
    const ports = {
      logger: new RecordingLogger(),
      foreignFunctions: new Map<string, ForeignFunction>([['nest', () => {
        const until = performance.now() + 2 * cpuMs;
        while (performance.now() < until) { /* the outer call's time passes */ }
        innerResult = vm.callRoot(inner, vm.callbacks.onTick, inner.id);
        return new Uint8Array(0);
      }]]),
    };
    const vm = new WasmVm(new WebAssembly.Module(prepared.bytes), {
      name: 'nested.wasm', sandbox: prepared.plan, limits: { cpuMs, startCpuMs: 1000, memoryMb: 2 }, ports,
    });
    const outer = vm.createRoot(plugin('outer'));
    const inner: RootContext = vm.createRoot(plugin('inner'));
    let told = 0;
    vm.onFail(() => told++);
    expect(vm.createStream(outer, new TestStream()).onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(innerResult).toBe(CALL_FAILED);
    expect(told).toBe(1); // the nested trap failed the VM; the outer call's end does not again
    expect(vm.failure?.code).toBe('GW_ERR_ABI_BUDGET');
    expect(vm.failure?.message).toContain(`proxy_on_request_headers ran past its CPU budget: limits.cpuMs = ${cpuMs} ms`);
  });
});

describe('a guest call that traps', () => {
  /** A manual scheduler: timers run when the test says so, and record their cancellation. */
  function timers() {
    const made: Array<{ cancelled: boolean }> = [];
    const scheduler: Scheduler = {
      every() {
        const timer = { cancelled: false };
        made.push(timer);
        return { cancel: () => { timer.cancelled = true; } };
      },
      defer() {},
    };
    return { scheduler, made };
  }

  const trapping = guestWat({
    imports: `${CONTINUE}
    (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))`,
    body: `${CREATE}
    (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (drop (call $tick (i32.const 1000))) (i32.const 1))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (drop (call $continue (i32.const 0)))
      unreachable)`,
  });

  it('fails the VM: one CRITICAL line naming the module, with the calling plugin as origin, and every root\'s timer stopped', () => {
    const { scheduler, made } = timers();
    const { vm, logger } = startVm(trapping, { name: 'trapping.wasm', ports: { scheduler } });
    const a = vm.createRoot(plugin('a'));
    vm.createRoot(plugin('b'));
    expect(made).toEqual([{ cancelled: false }, { cancelled: false }]);
    expect(vm.createStream(a, new TestStream()).onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failed).toBe(true);
    expect(made).toEqual([{ cancelled: true }, { cancelled: true }]);
    const critical = logger.lines.filter((l) => l.level === LogLevel.CRITICAL);
    expect(critical).toHaveLength(1);
    expect(critical[0].message).toMatch(/^VM failed in module trapping\.wasm: trap: unreachable\n {2}at /);
    expect(critical[0].origin).toBe(a);
  });

  it('tells every listener the failure the VM keeps', () => {
    const { vm } = startVm(trapping);
    const told: Array<[string, VmFailure]> = [];
    vm.onFail((f) => told.push(['first', f]));
    vm.onFail((f) => told.push(['second', f]));
    vm.createStream(vm.createRoot(plugin('p')), new TestStream()).onRequestHeaders(0, true);
    expect(told).toEqual([['first', vm.failure], ['second', vm.failure]]);
    expect(vm.failure).toMatchObject({ code: 'GW_ERR_ABI_TRAP', message: 'trap: unreachable', guestMessage: null });
  });

  it('drops the side effects it had queued: the stream it continued before trapping is not continued', () => {
    const { vm } = startVm(trapping);
    const host = new TestStream();
    vm.createStream(vm.createRoot(plugin('p')), host).onRequestHeaders(0, true);
    expect(host.actions).toEqual([]);
  });
});

describe('the CPU budget around guest calls', () => {
  it('is disarmed when the outermost call ends, even by running out of budget', () => {
    const { vm } = startVm(guestWat({ body: `${CREATE}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $spin (br $spin)) (i32.const 0))` }),
    { sandboxed: true, limits: { cpuMs: 10, startCpuMs: 1000, memoryMb: 2 } });
    expect(vm.createStream(vm.createRoot(plugin('p')), new TestStream()).onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failure?.code).toBe('GW_ERR_ABI_BUDGET');
    expect(vm.budget.expired).toBe(true);
    // Disarmed, the check answers the next interval instead of the budget trap.
    expect(vm.budget.check()).toBe(BUDGET_CHECK_INTERVAL);
  });
});

describe('the allocator', () => {
  /** Allocates through the bump allocator, or answers the pointer at 0x130 when 0x134 is set; logs "alloc" each time. */
  const allocating = guestWat({
    allocator: 'bump',
    imports: `${LOG}
    (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))`,
    body: `${CREATE}
    (data (i32.const 16) "alloc")
    (data (i32.const 32) "after")
    (data (i32.const 48) ":path")
    (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
      (drop (call $log (i32.const 2) (i32.const 16) (i32.const 5)))
      (if (result i32) (i32.load (i32.const 0x134)) (then (i32.load (i32.const 0x130))) (else (call $alloc (local.get $n)))))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (i32.store (i32.const 0x120) (call $get (i32.const 0) (i32.const 48) (i32.const 5) (i32.const 0x110) (i32.const 0x114)))
      (i32.store (i32.const 0x124) (call $get (i32.const 0) (i32.const 48) (i32.const 5) (i32.const 0x118) (i32.const 0x11c)))
      (drop (call $log (i32.const 2) (i32.const 32) (i32.const 5)))
      (i32.const 0))`,
  });
  const statuses = (vm: WasmVm): number[] => [vm.mem.u32(0x120), vm.mem.u32(0x124)];

  it('runs as the VM context, in the allocation phase, and gives the calling callback its context and phase back', () => {
    const { vm, logger } = startVm(allocating);
    vm.createStream(vm.createRoot(plugin('p')), new TestStream([[':path', '/a']])).onRequestHeaders(1, true);
    expect(vm.failed).toBe(false);
    expect(statuses(vm)).toEqual([Status.OK, Status.OK]);
    expect(logger.lines.map((l) => [l.origin?.pluginName ?? 'vm', l.message])).toEqual([['vm', 'alloc'], ['vm', 'alloc'], ['p', 'after']]);
  });

  it('answering a null or out-of-bounds pointer makes the hostcall INVALID_MEMORY_ACCESS, and the VM keeps running', () => {
    for (const pointer of [0, 0xffff_0000]) {
      const { vm } = startVm(allocating);
      vm.mem.setU32(0x130, pointer);
      vm.mem.setU32(0x134, 1);
      vm.createStream(vm.createRoot(plugin('p')), new TestStream([[':path', '/a']])).onRequestHeaders(1, true);
      expect(vm.failed, `pointer ${pointer}`).toBe(false);
      expect(statuses(vm), `pointer ${pointer}`).toEqual([Status.INVALID_MEMORY_ACCESS, Status.INVALID_MEMORY_ACCESS]);
    }
  });
});

describe('callout tokens and metric ids', () => {
  it('numbers http calls 4, 8, …, gRPC calls 5, 9, … and gRPC streams 6, 10, …; peekToken does not take one', () => {
    const { vm } = startVm(guestWat({ body: '' }));
    expect([vm.peekToken(0), vm.peekToken(0)]).toEqual([4, 4]);
    expect([vm.token(0), vm.token(0), vm.token(1), vm.token(2), vm.token(1), vm.token(2)]).toEqual([4, 8, 5, 6, 9, 10]);
    expect(vm.peekToken(0)).toBe(12);
  });

  it('numbers metrics by type the same way: counters 4, 8, …, gauges 5, 9, …, histograms 6, 10, …', () => {
    const { vm } = startVm(guestWat({ body: '' }));
    const sink = { define: () => ({ add() {}, set() {}, observe() {}, value: () => 0 }) };
    const origin = { pluginName: 'p', rootId: 'r', vmId: '' };
    const ids = (['a', 'b'] as const).flatMap((name) => ([0, 1, 2] as const).map((type) => vm.metrics.define(type, name, sink, origin)));
    expect(ids).toEqual([4, 5, 6, 8, 9, 10]);
  });
});
