import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../gateway/abi/callbacks.js';
import { CALL_FAILED, type Context, type RootContext } from '../../gateway/abi/context.js';
import { HeadersAction, LogLevel, Status } from '../../gateway/abi/enums.js';
import type { Scheduler } from '../../gateway/abi/ports.js';
import { GatewayError } from '../../gateway/errors.js';
import { RecordingLogger, TestStream, startVm, text, until, type TestVm } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const EVENTS = 0x1000; // count, then (code, a, b) per callback received
const LOG_LEVEL = 0x20; // proxy_get_log_level's u32
const NOW = 0x28; // proxy_get_current_time_nanoseconds's u64
const MESSAGE = 0x100;

/** code → [name, how many of (a, b) to show]. */
const EVENT_NAMES: Record<number, [string, number]> = {
  1: ['context_create', 2], 2: ['vm_start', 2], 3: ['configure', 2], 4: ['request_headers', 2],
  5: ['log', 1], 6: ['done', 1], 7: ['delete', 1], 8: ['tick', 1], 9: ['response_headers', 2],
};

interface RecorderOptions {
  /** What on_vm_start, on_configure and on_done return (default 1). */
  vmStart?: number;
  configure?: number;
  done?: number;
  /** Extra instructions at the end of on_request_headers, on_done and on_tick. */
  onRequestHeaders?: string;
  onDone?: string;
  onTick?: string;
}

/**
 * A guest that appends every callback it receives to a log in memory, as (code, a, b), and
 * exports `log`, `set_tick`, `call_done` (proxy_done, logging its status as event 10),
 * `log_level` and `now` for the test to call as the root or a stream.
 */
function recorder(o: RecorderOptions = {}): string {
  return guestWat({
    imports: `
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_get_log_level" (func $get_log_level (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))`,
    body: `
  (func $event (param $code i32) (param $a i32) (param $b i32)
    (local $at i32)
    (local.set $at (i32.add (i32.const ${EVENTS + 4}) (i32.mul (i32.load (i32.const ${EVENTS})) (i32.const 12))))
    (i32.store (local.get $at) (local.get $code))
    (i32.store offset=4 (local.get $at) (local.get $a))
    (i32.store offset=8 (local.get $at) (local.get $b))
    (i32.store (i32.const ${EVENTS}) (i32.add (i32.load (i32.const ${EVENTS})) (i32.const 1))))

  (func (export "log") (param $level i32) (param $ptr i32) (param $len i32) (result i32)
    (call $log (local.get $level) (local.get $ptr) (local.get $len)))
  (func (export "set_tick") (param $ms i32) (result i32) (call $set_tick (local.get $ms)))
  (func $call_done (export "call_done") (result i32)
    (local $status i32)
    (local.set $status (call $done))
    (call $event (i32.const 10) (local.get $status) (i32.const 0))
    (local.get $status))
  (func (export "log_level") (result i32) (call $get_log_level (i32.const ${LOG_LEVEL})))
  (func (export "now") (result i32) (call $now (i32.const ${NOW})))

  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (call $event (i32.const 1) (local.get $id) (local.get $parent)))
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (call $event (i32.const 2) (local.get $root) (local.get $size))
    (i32.const ${o.vmStart ?? 1}))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (call $event (i32.const 3) (local.get $root) (local.get $size))
    (i32.const ${o.configure ?? 1}))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $event (i32.const 4) (local.get $ctx) (local.get $n))
    ${o.onRequestHeaders ?? ''}
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $event (i32.const 9) (local.get $ctx) (local.get $n))
    (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32)
    (call $event (i32.const 5) (local.get $ctx) (i32.const 0)))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (call $event (i32.const 6) (local.get $ctx) (i32.const 0))
    ${o.onDone ?? ''}
    (i32.const ${o.done ?? 1}))
  (func (export "proxy_on_delete") (param $ctx i32)
    (call $event (i32.const 7) (local.get $ctx) (i32.const 0)))
  (func (export "proxy_on_tick") (param $root i32)
    (call $event (i32.const 8) (local.get $root) (i32.const 0))
    ${o.onTick ?? ''})`,
  });
}

/** Every callback the guest received, as `name(args)`; proxy_done calls as `proxy_done → status`. */
function events(t: TestVm): string[] {
  const mem = t.vm.mem;
  const out: string[] = [];
  for (let i = 0; i < mem.u32(EVENTS); i++) {
    const at = EVENTS + 4 + 12 * i;
    const [code, a, b] = [mem.u32(at), mem.u32(at + 4), mem.u32(at + 8)];
    if (code === 10) out.push(`proxy_done → ${a}`);
    else out.push(`${EVENT_NAMES[code][0]}(${[a, b].slice(0, EVENT_NAMES[code][1]).join(', ')})`);
  }
  return out;
}

const ticks = (t: TestVm): number => events(t).filter((e) => e.startsWith('tick')).length;

function plugin(name = 'plugin', configuration = ''): { name: string; rootId: string; configuration: Uint8Array } {
  return { name, rootId: `${name}-root`, configuration: text(configuration) };
}

function run(t: TestVm, ctx: Context, name: string, ...args: number[]): number {
  return t.vm.call(ctx, t.vm.instance.exports[name] as GuestFn, ...args);
}

/** Node's timers, counting the periodic ones still running. */
class CountingScheduler implements Scheduler {
  running = 0;
  every(periodMs: number, fn: () => void): { cancel(): void } {
    const timer = setInterval(fn, periodMs);
    timer.unref();
    this.running++;
    let live = true;
    return {
      cancel: () => {
        if (!live) return;
        live = false;
        this.running--;
        clearInterval(timer);
      },
    };
  }
  defer(fn: () => void): void {
    setImmediate(fn);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function startedRoot(o: RecorderOptions = {}, options: Parameters<typeof startVm>[1] = {}): TestVm & { root: RootContext } {
  const t = startVm(recorder(o), options);
  return { ...t, root: t.vm.createRoot(plugin()) };
}

describe('root context start-up', () => {
  it('calls on_context_create(R, 0), then on_vm_start(R, vm config size), then on_configure(R, plugin config size)', () => {
    const t = startVm(recorder(), { vmConfiguration: text('vm-config') });
    const root = t.vm.createRoot(plugin('p', '{"a":1}'));
    expect(root.id).toBe(1);
    expect(events(t)).toEqual(['context_create(1, 0)', 'vm_start(1, 9)', 'configure(1, 7)']);
    expect(root.alive).toBe(true);
  });

  it('numbers contexts from 1, with roots and streams drawing from one counter', () => {
    const t = startVm(recorder());
    const first = t.vm.createRoot(plugin('first'));
    const s1 = t.vm.createStream(first, new TestStream());
    const s2 = t.vm.createStream(first, new TestStream());
    const second = t.vm.createRoot(plugin('second'));
    expect([first.id, s1.id, s2.id, second.id]).toEqual([1, 2, 3, 4]);
    expect(events(t).slice(3)).toEqual(['context_create(4, 0)', 'vm_start(4, 0)', 'configure(4, 0)']);
  });

  it('fails the plugin with GW_ERR_ABI_VM_START, naming it, when on_vm_start returns false', () => {
    const t = startVm(recorder({ vmStart: 0 }));
    let error: unknown;
    try {
      t.vm.createRoot(plugin('auth'));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('GW_ERR_ABI_VM_START');
    expect((error as GatewayError).message).toContain('plugin auth (root id "auth-root", module test.wasm)');
    expect((error as GatewayError).message).toContain('proxy_on_vm_start returned false');
    expect(events(t)).toEqual(['context_create(1, 0)', 'vm_start(1, 0)']);
    expect(t.vm.contexts.size).toBe(0);
  });

  it('fails the plugin with GW_ERR_ABI_CONFIGURE, naming it, when on_configure returns false', () => {
    const t = startVm(recorder({ configure: 0 }));
    expect(() => t.vm.createRoot(plugin('auth', 'bad'))).toThrow(expect.objectContaining({
      code: 'GW_ERR_ABI_CONFIGURE',
      message: expect.stringContaining('plugin auth (root id "auth-root", module test.wasm): proxy_on_configure returned false'),
    }));
    expect(events(t)).toEqual(['context_create(1, 0)', 'vm_start(1, 0)', 'configure(1, 3)']);
    expect(t.vm.contexts.size).toBe(0);
  });
});

describe('stream contexts', () => {
  it('are told to the guest lazily, just before their first callback, and once', () => {
    const t = startedRoot();
    const stream = t.vm.createStream(t.root, new TestStream([[':path', '/'], [':method', 'GET'], [':authority', 'a']]));
    expect(events(t)).toHaveLength(3);
    expect(stream.onRequestHeaders(3, true)).toBe(HeadersAction.CONTINUE);
    expect(stream.onResponseHeaders(0, true)).toBe(HeadersAction.CONTINUE);
    expect(events(t).slice(3)).toEqual(['context_create(2, 1)', 'request_headers(2, 3)', 'response_headers(2, 0)']);
  });

  it('end with on_log, then on_done, then on_delete', () => {
    const t = startedRoot();
    const stream = t.vm.createStream(t.root, new TestStream());
    stream.onRequestHeaders(0, true);
    stream.finish();
    expect(events(t).slice(3)).toEqual(['context_create(2, 1)', 'request_headers(2, 0)', 'log(2)', 'done(2)', 'delete(2)']);
    expect(t.vm.contexts.has(stream.id)).toBe(false);
  });

  it('are created on finish when no callback reached them, so on_log still runs', () => {
    const t = startedRoot();
    const stream = t.vm.createStream(t.root, new TestStream());
    stream.finish();
    expect(events(t).slice(3)).toEqual(['context_create(2, 1)', 'log(2)', 'done(2)', 'delete(2)']);
  });

  it('are deleted even when on_done returns false, which Envoy ignores for streams', () => {
    const t = startedRoot({ done: 0 });
    const stream = t.vm.createStream(t.root, new TestStream());
    stream.finish();
    stream.finish();
    expect(events(t).slice(3)).toEqual(['context_create(2, 1)', 'log(2)', 'done(2)', 'delete(2)']);
    expect(stream.alive).toBe(false);
  });
});

describe('root shutdown', () => {
  it('deletes the root right after on_done returns true', () => {
    const t = startedRoot();
    t.root.shutdown();
    expect(events(t).slice(3)).toEqual(['done(1)', 'delete(1)']);
    expect(t.root.alive).toBe(false);
    expect(t.vm.contexts.size).toBe(0);
  });

  it('waits after on_done returns false, and deletes the root after the guest call that calls proxy_done returns', () => {
    const t = startedRoot({ done: 0 });
    t.root.shutdown();
    expect(events(t).slice(3)).toEqual(['done(1)']);
    expect([t.root.alive, t.root.pendingDone]).toEqual([true, true]);
    expect(run(t, t.root, 'call_done')).toBe(Status.OK);
    // on_delete came after the guest recorded proxy_done's status, i.e. after the call returned.
    expect(events(t).slice(3)).toEqual(['done(1)', 'proxy_done → 0', 'delete(1)']);
    expect(t.root.alive).toBe(false);
    expect(t.vm.contexts.size).toBe(0);
  });

  it('answers proxy_done with NOT_FOUND when the root is not waiting for it', () => {
    const t = startedRoot();
    expect(run(t, t.root, 'call_done')).toBe(Status.NOT_FOUND);
    expect(events(t).slice(3)).toEqual(['proxy_done → 1']);
    expect(t.root.alive).toBe(true);
  });

  it('keeps ticking a root that waits for proxy_done, and deletes it after the on_tick that calls it', async () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot({ done: 0, onTick: '(drop (call $call_done))' }, { ports: { scheduler } });
    run(t, t.root, 'set_tick', 10);
    await until(() => ticks(t) >= 1);
    // Before shutdown the root is not waiting: proxy_done answers NOT_FOUND.
    expect(events(t).slice(3, 5)).toEqual(['tick(1)', 'proxy_done → 1']);
    t.root.shutdown();
    const shutdownAt = events(t).length - 1;
    expect(events(t)[shutdownAt]).toBe('done(1)');
    await until(() => !t.root.alive);
    expect(events(t).slice(shutdownAt)).toEqual(['done(1)', 'tick(1)', 'proxy_done → 0', 'delete(1)']);
    expect(scheduler.running).toBe(0);
  });

  it('stops the timer of a root deleted right after on_done returns true', () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot({}, { ports: { scheduler } });
    run(t, t.root, 'set_tick', 10);
    t.root.shutdown();
    expect(scheduler.running).toBe(0);
  });

  it('deletes a waiting root after an on_tick that calls proxy_done, and stops its timer', async () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot({ done: 0, onDone: '(drop (call $set_tick (i32.const 10)))', onTick: '(drop (call $call_done))' },
      { ports: { scheduler } });
    t.root.shutdown();
    await until(() => !t.root.alive);
    expect(events(t).slice(3)).toEqual(['done(1)', 'tick(1)', 'proxy_done → 0', 'delete(1)']);
    expect(scheduler.running).toBe(0);
  });
});

describe('proxy_set_tick_period_milliseconds', () => {
  it('calls on_tick(root) every period once set', async () => {
    const t = startedRoot();
    expect(run(t, t.root, 'set_tick', 20)).toBe(Status.OK);
    expect(ticks(t)).toBe(0);
    await until(() => ticks(t) >= 3);
    expect(new Set(events(t).slice(3))).toEqual(new Set(['tick(1)']));
    run(t, t.root, 'set_tick', 0);
  });

  it('stops the timer when set to 0', async () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot({}, { ports: { scheduler } });
    run(t, t.root, 'set_tick', 20);
    await until(() => ticks(t) >= 1);
    expect(run(t, t.root, 'set_tick', 0)).toBe(Status.OK);
    const seen = ticks(t);
    await sleep(80);
    expect(ticks(t)).toBe(seen);
    expect(scheduler.running).toBe(0);
  });

  it('sets the timer of the stream’s root when a stream calls it', async () => {
    const t = startedRoot({}, {});
    const stream = t.vm.createStream(t.root, new TestStream());
    expect(run(t, stream, 'set_tick', 20)).toBe(Status.OK);
    await until(() => ticks(t) >= 2);
    expect(events(t).filter((e) => e.startsWith('tick'))).toEqual(['tick(1)', 'tick(1)']);
    run(t, t.root, 'set_tick', 0);
  });

  it('replaces the previous period rather than adding a second timer', () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot({}, { ports: { scheduler } });
    run(t, t.root, 'set_tick', 50);
    run(t, t.root, 'set_tick', 20);
    expect(scheduler.running).toBe(1);
    run(t, t.root, 'set_tick', 0);
  });
});

describe('a failed VM', () => {
  const trapping = { onRequestHeaders: 'unreachable' };

  it('is not what a guest returning -1 (0xffffffff) from a stream callback gets: only a trap fails the VM', () => {
    const t = startedRoot({ onRequestHeaders: '(return (i32.const -1))' });
    const stream = t.vm.createStream(t.root, new TestStream());
    expect(stream.onRequestHeaders(0, true)).not.toBe(CALL_FAILED);
    expect(t.vm.failed).toBe(false);
  });

  it('skips every later callback of the failing stream and of other streams', () => {
    const t = startedRoot(trapping);
    const failing = t.vm.createStream(t.root, new TestStream());
    const other = t.vm.createStream(t.root, new TestStream());
    expect(failing.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(t.vm.failed).toBe(true);
    failing.finish();
    expect(other.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(other.onResponseHeaders(0, true)).toBe(CALL_FAILED);
    other.finish();
    expect(events(t).slice(3)).toEqual(['context_create(2, 1)', 'request_headers(2, 0)']);
    expect(t.vm.contexts.has(failing.id)).toBe(false);
  });

  it('stops ticking, skips on_done and on_delete at shutdown, and refuses new plugins', async () => {
    const scheduler = new CountingScheduler();
    const t = startedRoot(trapping, { ports: { scheduler } });
    run(t, t.root, 'set_tick', 10);
    await until(() => ticks(t) >= 1);
    t.vm.createStream(t.root, new TestStream()).onRequestHeaders(0, true);
    const seen = events(t);
    expect(scheduler.running).toBe(0);
    await sleep(50);
    t.root.shutdown();
    expect(events(t)).toEqual(seen);
    expect(t.root.alive).toBe(false);
    expect(() => t.vm.createRoot(plugin('late'))).toThrow(expect.objectContaining({ code: 'GW_ERR_ABI_VM_FAILED' }));
  });
});

describe('logging and time', () => {
  it('passes proxy_log’s exact message and level to the logger, with the plugin as origin', () => {
    const t = startVm(recorder(), { vmId: 'vm-7' });
    const root = t.vm.createRoot(plugin('auth'));
    const message = Buffer.from('héllo, wörld ✓');
    t.vm.mem.write(MESSAGE, message);
    expect(run(t, root, 'log', LogLevel.WARN, MESSAGE, message.length)).toBe(Status.OK);
    expect(t.logger.lines).toHaveLength(1);
    const line = t.logger.lines[0];
    expect([line.level, line.message]).toEqual([LogLevel.WARN, 'héllo, wörld ✓']);
    expect(line.origin).toBe(root);
    expect([line.origin!.pluginName, line.origin!.rootId, line.origin!.vmId]).toEqual(['auth', 'auth-root', 'vm-7']);
  });

  it('logs a stream’s message on behalf of its plugin', () => {
    const t = startedRoot();
    const stream = t.vm.createStream(t.root, new TestStream());
    t.vm.mem.write(MESSAGE, text('from a stream'));
    expect(run(t, stream, 'log', LogLevel.INFO, MESSAGE, 13)).toBe(Status.OK);
    expect(t.logger.lines).toEqual([{ level: LogLevel.INFO, message: 'from a stream', origin: t.root }]);
  });

  it('returns BAD_ARGUMENT for a level above 5 and logs nothing', () => {
    const t = startedRoot();
    t.vm.mem.write(MESSAGE, text('nope'));
    expect(run(t, t.root, 'log', 6, MESSAGE, 4)).toBe(Status.BAD_ARGUMENT);
    expect(run(t, t.root, 'log', -1, MESSAGE, 4)).toBe(Status.BAD_ARGUMENT);
    expect(run(t, t.root, 'log', LogLevel.CRITICAL, MESSAGE, 4)).toBe(Status.OK);
    expect(t.logger.lines.map((l) => [l.level, l.message])).toEqual([[LogLevel.CRITICAL, 'nope']]);
  });

  it('answers OK but drops messages below the logger’s level', () => {
    const t = startedRoot({}, { ports: { logger: new RecordingLogger(LogLevel.WARN) } });
    t.vm.mem.write(MESSAGE, text('quiet'));
    expect(run(t, t.root, 'log', LogLevel.INFO, MESSAGE, 5)).toBe(Status.OK);
    expect(run(t, t.root, 'log', LogLevel.ERROR, MESSAGE, 5)).toBe(Status.OK);
    const logger = t.vm.ports.logger as RecordingLogger;
    expect(logger.lines.map((l) => l.level)).toEqual([LogLevel.ERROR]);
  });

  it('proxy_get_log_level writes the logger’s level as a u32', () => {
    const t = startedRoot({}, { ports: { logger: new RecordingLogger(LogLevel.ERROR) } });
    t.vm.mem.setU32(LOG_LEVEL, 0xaaaaaaaa);
    expect(run(t, t.root, 'log_level')).toBe(Status.OK);
    expect(t.vm.mem.u32(LOG_LEVEL)).toBe(4);
  });

  it('proxy_get_current_time_nanoseconds writes the wall-clock time in ns as a u64', () => {
    const t = startedRoot();
    const before = BigInt(Date.now()) * 1_000_000n;
    expect(run(t, t.root, 'now')).toBe(Status.OK);
    const after = BigInt(Date.now()) * 1_000_000n;
    const ns = t.vm.mem.current().readBigUInt64LE(NOW);
    expect(ns).toBeGreaterThanOrEqual(before - 1_000_000_000n);
    expect(ns).toBeLessThanOrEqual(after + 1_000_000_000n);
  });

  it('proxy_get_current_time_nanoseconds writes the clock port’s value byte for byte', () => {
    const wall = 0x1788_9abc_def0_1234n;
    const t = startedRoot({}, { ports: { clock: { wallNs: () => wall, monotonicNs: () => 0n } } });
    expect(run(t, t.root, 'now')).toBe(Status.OK);
    expect(Buffer.from(t.vm.mem.current().subarray(NOW, NOW + 8)).toString('hex')).toBe('3412f0debc9a8817');
  });
});
