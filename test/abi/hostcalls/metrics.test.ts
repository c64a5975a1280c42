import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../../gateway/abi/callbacks.js';
import type { Context, RootContext } from '../../../gateway/abi/context.js';
import { LogLevel, MetricType, Status } from '../../../gateway/abi/enums.js';
import { MAX_GUEST_METRICS } from '../../../gateway/abi/limits.js';
import type { MetricCell, MetricsSink, PluginOrigin } from '../../../gateway/abi/ports.js';
import { MemoryMetrics, TestStream, startVm, text, type TestVm } from '../../helpers/host.js';
import { guestWat } from '../../helpers/wat.js';

const RET_ID = 0x10;
const RET_VALUE = 0x18; // u64
const POISON = 0xaaaaaaaa;

/** An export that calls `hostcall(id, i64.const value)`: i64 arguments are spelled out in WAT. */
type Step = [hostcall: 'increment' | 'record', value: bigint];

/** A guest with `define(type, name_ptr, name_len)`, `get(id)` and one export per step. */
function metricsGuest(steps: Record<string, Step> = {}): string {
  const exports = Object.entries(steps).map(([name, [hostcall, value]]) =>
    `(func (export "${name}") (param $id i32) (result i32) (call $${hostcall} (local.get $id) (i64.const ${value})))`);
  return guestWat({
    imports: `
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $get (param i32 i32) (result i32)))`,
    body: `
  (func (export "define") (param $type i32) (param $name i32) (param $len i32) (result i32)
    (call $define (local.get $type) (local.get $name) (local.get $len) (i32.const ${RET_ID})))
  (func (export "get") (param $id i32) (result i32)
    (call $get (local.get $id) (i32.const ${RET_VALUE})))
  ${exports.join('\n  ')}`,
  });
}

class Guest {
  private next = 0x1000;
  readonly root: RootContext;

  constructor(readonly t: TestVm) {
    this.root = t.vm.createRoot({ name: 'metrics-plugin', rootId: 'm', configuration: new Uint8Array(0) });
  }

  run(name: string, ...args: number[]): number {
    return this.runAs(this.root, name, ...args);
  }

  runAs(ctx: Context, name: string, ...args: number[]): number {
    return this.t.vm.call(ctx, this.t.vm.instance.exports[name] as GuestFn, ...args);
  }

  /** proxy_define_metric's status, and the id it wrote (POISON if none). */
  define(type: number, name: string, ctx: Context = this.root): { status: number; id: number } {
    const bytes = text(name);
    const ptr = this.next;
    this.t.vm.mem.write(ptr, bytes);
    this.next += bytes.length + 8;
    this.t.vm.mem.setU32(RET_ID, POISON);
    const status = this.runAs(ctx, 'define', type, ptr, bytes.length);
    return { status, id: this.t.vm.mem.u32(RET_ID) };
  }

  /** Defines a metric that must succeed; its id. */
  id(type: number, name: string): number {
    const { status, id } = this.define(type, name);
    expect(status).toBe(Status.OK);
    return id;
  }

  /** proxy_get_metric's status and the u64 it wrote. */
  get(id: number): { status: number; value: bigint } {
    this.t.vm.mem.write(RET_VALUE, new Uint8Array(8).fill(0xaa));
    const status = this.run('get', id);
    return { status, value: this.t.vm.mem.current().readBigUInt64LE(RET_VALUE) };
  }

  value(id: number): number {
    const { status, value } = this.get(id);
    expect(status).toBe(Status.OK);
    return Number(value);
  }
}

const guest = (steps?: Record<string, Step>, options: Parameters<typeof startVm>[1] = {}): Guest =>
  new Guest(startVm(metricsGuest(steps), options));

describe('proxy_define_metric', () => {
  it('gives counters ids 4 and 8, the first gauge 5 and the first histogram 6', () => {
    const g = guest();
    expect(g.define(MetricType.COUNTER, 'requests')).toEqual({ status: Status.OK, id: 4 });
    expect(g.define(MetricType.COUNTER, 'errors')).toEqual({ status: Status.OK, id: 8 });
    expect(g.define(MetricType.GAUGE, 'active')).toEqual({ status: Status.OK, id: 5 });
    expect(g.define(MetricType.HISTOGRAM, 'latency')).toEqual({ status: Status.OK, id: 6 });
    expect([...g.t.metrics.cells.entries()].map(([name, cell]) => [name, cell.type]))
      .toEqual([['requests', 0], ['errors', 0], ['active', 1], ['latency', 2]]);
  });

  it('returns BAD_ARGUMENT for a metric type above 2 and writes no id', () => {
    const g = guest();
    expect(g.define(3, 'odd')).toEqual({ status: Status.BAD_ARGUMENT, id: POISON });
    expect(g.define(-1, 'odd')).toEqual({ status: Status.BAD_ARGUMENT, id: POISON });
    expect(g.t.metrics.cells.size).toBe(0);
  });

  it('gives a name defined twice (from the root or a stream) the same id and the same cell', () => {
    const g = guest({ add5: ['increment', 5n], add2: ['increment', 2n] });
    const first = g.id(MetricType.COUNTER, 'hits');
    const second = g.id(MetricType.COUNTER, 'hits');
    const fromStream = g.define(MetricType.COUNTER, 'hits', g.t.vm.createStream(g.root, new TestStream()));
    expect([first, second, fromStream]).toEqual([4, 4, { status: Status.OK, id: 4 }]);
    expect(g.run('add5', first)).toBe(Status.OK);
    expect(g.run('add2', second)).toBe(Status.OK);
    expect(g.value(first)).toBe(7);
    expect(g.t.metrics.cells.size).toBe(1);
    expect(g.t.metrics.cells.get('hits')!.value).toBe(7);
    // The same name as another type is another metric (the sink decides whether it may exist).
    expect(g.id(MetricType.GAUGE, 'hits')).toBe(5);
    expect(g.t.vm.metrics.size).toBe(2);
  });

  it(`refuses a VM's metric number ${MAX_GUEST_METRICS + 1} with INTERNAL_FAILURE and one warning, and keeps the defined ones`, () => {
    const g = guest({ add1: ['increment', 1n] });
    const ids = Array.from({ length: MAX_GUEST_METRICS }, (_, i) => g.id(MetricType.COUNTER, `m${i}`));
    expect(ids.at(-1)).toBe(4 * MAX_GUEST_METRICS);
    expect(g.define(MetricType.COUNTER, 'one-more')).toEqual({ status: Status.INTERNAL_FAILURE, id: POISON });
    expect(g.define(MetricType.HISTOGRAM, 'and-another')).toEqual({ status: Status.INTERNAL_FAILURE, id: POISON });
    expect(g.t.metrics.cells.size).toBe(MAX_GUEST_METRICS);
    // Defined names still answer their id, and their cells still count.
    expect(g.define(MetricType.COUNTER, 'm7')).toEqual({ status: Status.OK, id: ids[7] });
    expect(g.run('add1', ids[7])).toBe(Status.OK);
    expect(g.value(ids[7])).toBe(1);
    const warnings = g.t.logger.lines.filter((l) => l.level === LogLevel.WARN).map((l) => l.message);
    expect(warnings).toEqual([`proxy_define_metric refused "one-more" in module test.wasm: at most ${MAX_GUEST_METRICS} metrics per VM and per plugin; new names answer INTERNAL_FAILURE, defined ones keep working`]);
  });

  it('answers INTERNAL_FAILURE and takes no id when the sink refuses a new metric', () => {
    const memory = new MemoryMetrics();
    const metrics: MetricsSink = { define: (type, name) => (name === 'refused' ? null : memory.define(type, name)) };
    const g = guest({}, { ports: { metrics } });
    expect(g.define(MetricType.COUNTER, 'refused')).toEqual({ status: Status.INTERNAL_FAILURE, id: POISON });
    expect(g.define(MetricType.COUNTER, 'kept')).toEqual({ status: Status.OK, id: 4 });
    expect(g.t.logger.lines.filter((l) => l.level === LogLevel.WARN)).toHaveLength(1);
  });

  it('defines metrics on behalf of the plugin, the root of the calling stream', () => {
    const memory = new MemoryMetrics();
    const origins: PluginOrigin[] = [];
    const metrics: MetricsSink = {
      define(type: MetricType, name: string, origin: PluginOrigin): MetricCell {
        origins.push(origin);
        return memory.define(type, name);
      },
    };
    const g = guest({}, { vmId: 'vm-1', ports: { metrics } });
    const stream = g.t.vm.createStream(g.root, new TestStream());
    expect(g.define(MetricType.COUNTER, 'from-stream', stream).status).toBe(Status.OK);
    expect(origins).toHaveLength(1);
    expect(origins[0]).toBe(g.root);
    expect([origins[0].pluginName, origins[0].rootId, origins[0].vmId]).toEqual(['metrics-plugin', 'm', 'vm-1']);
  });

  it('returns UNIMPLEMENTED without a metrics port', () => {
    const g = guest({}, { ports: { metrics: undefined } });
    expect(g.define(MetricType.COUNTER, 'c')).toEqual({ status: Status.UNIMPLEMENTED, id: POISON });
  });
});

describe('proxy_increment_metric', () => {
  it('adds a positive offset to a counter', () => {
    const g = guest({ add5: ['increment', 5n] });
    const id = g.id(MetricType.COUNTER, 'c');
    expect(g.run('add5', id)).toBe(Status.OK);
    expect(g.run('add5', id)).toBe(Status.OK);
    expect(g.value(id)).toBe(10);
  });

  it('returns BAD_ARGUMENT for a counter offset of 0 or less and leaves the counter alone', () => {
    const g = guest({ add1: ['increment', 1n], add0: ['increment', 0n], sub1: ['increment', -1n] });
    const id = g.id(MetricType.COUNTER, 'c');
    g.run('add1', id);
    expect(g.run('add0', id)).toBe(Status.BAD_ARGUMENT);
    expect(g.run('sub1', id)).toBe(Status.BAD_ARGUMENT);
    expect(g.value(id)).toBe(1);
  });

  it('adds to a gauge, and subtracts a negative offset', () => {
    const g = guest({ add10: ['increment', 10n], sub3: ['increment', -3n] });
    const id = g.id(MetricType.GAUGE, 'g');
    expect(g.run('add10', id)).toBe(Status.OK);
    expect(g.run('sub3', id)).toBe(Status.OK);
    expect(g.value(id)).toBe(7);
  });

  it('returns BAD_ARGUMENT for a histogram', () => {
    const g = guest({ add1: ['increment', 1n] });
    const id = g.id(MetricType.HISTOGRAM, 'h');
    expect(g.run('add1', id)).toBe(Status.BAD_ARGUMENT);
    expect(g.t.metrics.cells.get('h')!.samples).toEqual([]);
  });
});

describe('proxy_record_metric', () => {
  it('adds the value to a counter, as Envoy does, rather than setting it', () => {
    const g = guest({ add5: ['increment', 5n], record7: ['record', 7n] });
    const id = g.id(MetricType.COUNTER, 'c');
    g.run('add5', id);
    expect(g.run('record7', id)).toBe(Status.OK);
    expect(g.value(id)).toBe(12);
  });

  it('sets a gauge', () => {
    const g = guest({ add10: ['increment', 10n], record3: ['record', 3n] });
    const id = g.id(MetricType.GAUGE, 'g');
    g.run('add10', id);
    expect(g.run('record3', id)).toBe(Status.OK);
    expect(g.value(id)).toBe(3);
  });

  it('records one sample per call on a histogram', () => {
    const g = guest({ record250: ['record', 250n], record10: ['record', 10n] });
    const id = g.id(MetricType.HISTOGRAM, 'latency');
    expect(g.run('record250', id)).toBe(Status.OK);
    expect(g.run('record10', id)).toBe(Status.OK);
    expect(g.t.metrics.cells.get('latency')!.samples).toEqual([250, 10]);
  });

  it('reads the value as a u64', () => {
    const g = guest({ recordMax: ['record', -1n] });
    const id = g.id(MetricType.HISTOGRAM, 'big');
    expect(g.run('recordMax', id)).toBe(Status.OK);
    expect(g.t.metrics.cells.get('big')!.samples).toEqual([Number(2n ** 64n - 1n)]);
  });
});

describe('proxy_get_metric', () => {
  it('writes a counter’s value as a little-endian u64', () => {
    const g = guest({ add258: ['increment', 258n] });
    const id = g.id(MetricType.COUNTER, 'c');
    g.run('add258', id);
    expect(g.get(id)).toEqual({ status: Status.OK, value: 258n });
    expect([...g.t.vm.mem.current().subarray(RET_VALUE, RET_VALUE + 8)]).toEqual([2, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('reads 0 for a metric never changed', () => {
    const g = guest();
    expect(g.get(g.id(MetricType.GAUGE, 'g'))).toEqual({ status: Status.OK, value: 0n });
  });

  it('returns BAD_ARGUMENT for a histogram and writes nothing', () => {
    const g = guest();
    const id = g.id(MetricType.HISTOGRAM, 'h');
    expect(g.get(id)).toEqual({ status: Status.BAD_ARGUMENT, value: 0xaaaaaaaaaaaaaaaan });
  });
});

describe('an unknown metric id', () => {
  it('is NOT_FOUND for increment, record and get', () => {
    const g = guest({ add1: ['increment', 1n], record1: ['record', 1n] });
    g.id(MetricType.COUNTER, 'c'); // id 4 exists; 8 and 5 do not
    for (const id of [8, 5, 6, 0, 44]) {
      expect(g.run('add1', id)).toBe(Status.NOT_FOUND);
      expect(g.run('record1', id)).toBe(Status.NOT_FOUND);
      expect(g.get(id).status).toBe(Status.NOT_FOUND);
    }
  });
});
