import { describe, expect, it } from 'vitest';
import { LogLevel, Status } from '../../../gateway/abi/enums.js';
import type { ForeignCallContext, ForeignFunction, PluginOrigin, PropertySource } from '../../../gateway/abi/ports.js';
import { propBool, propDouble, propInt, propList, propMap, propString, splitPath } from '../../../gateway/abi/properties.js';
import { TestStream, text } from '../../helpers/host.js';
import { OUT_OF_BOUNDS, POISON, RET_PTR, RET_SIZE, startProbe, type Probe } from '../../helpers/probe.js';

const PROPERTY_CALLS = ['proxy_get_property', 'proxy_set_property', 'proxy_call_foreign_function', 'proxy_set_effective_context'];

const key = (path: readonly string[]): string => JSON.stringify(path);

/** A stream whose properties are keyed by their exact segments, recording every path asked for. */
class PathStream extends TestStream {
  readonly asked: string[][] = [];
  readonly values = new Map<string, Uint8Array>();
  setStatus: Status = Status.OK;
  override property(path: readonly string[]): Uint8Array | undefined {
    this.asked.push([...path]);
    return this.values.get(key(path));
  }
  override setProperty(path: readonly string[], value: Uint8Array): Status {
    if (this.setStatus === Status.OK) this.values.set(key(path), value);
    return this.setStatus;
  }
}

/** VM-wide properties, recording who asked for what. */
class RecordingSource implements PropertySource {
  readonly asked: Array<{ path: string[]; origin: PluginOrigin }> = [];
  readonly values = new Map<string, Uint8Array>();
  property(path: readonly string[], origin: PluginOrigin): Uint8Array | undefined {
    this.asked.push({ path: [...path], origin });
    return this.values.get(key(path));
  }
}

function setup(opts: { body?: string; foreign?: Map<string, ForeignFunction>; vmId?: string } = {}) {
  const source = new RecordingSource();
  const t = startProbe(PROPERTY_CALLS, {
    body: opts.body, vmId: opts.vmId ?? 'vm-1', ports: { properties: source, foreignFunctions: opts.foreign },
  });
  const root = t.vm.createRoot({ name: 'edge-auth', rootId: 'auth_root', configuration: new Uint8Array(0) });
  const host = new PathStream();
  const stream = t.vm.createStream(root, host);
  return { ...t, source, root, host, stream };
}

type Ctx = Parameters<Probe['call']>[0];

function getProperty(p: Probe, ctx: Ctx, path: string): number {
  return p.call(ctx, 'proxy_get_property', ...p.input(path), RET_PTR, RET_SIZE);
}
function setProperty(p: Probe, ctx: Ctx, path: string, value: string): number {
  return p.call(ctx, 'proxy_set_property', ...p.input(path), ...p.input(value));
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

describe('proxy_get_property: the Wasm attributes', () => {
  it('answers plugin_name, plugin_root_id and plugin_vm_id in the root\'s on_context_create (the AS SDK traps otherwise)', () => {
    const { probe } = setup({
      body: `
  (data (i32.const 0x8000) "plugin_name")
  (data (i32.const 0x8010) "plugin_root_id")
  (data (i32.const 0x8020) "plugin_vm_id")
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent) (then (return)))
    (if (call $proxy_get_property (i32.const 0x8000) (i32.const 11) (i32.const 0x20) (i32.const 0x24)) (then unreachable))
    (if (call $proxy_get_property (i32.const 0x8010) (i32.const 14) (i32.const 0x28) (i32.const 0x2c)) (then unreachable))
    (if (call $proxy_get_property (i32.const 0x8020) (i32.const 12) (i32.const 0x30) (i32.const 0x34)) (then unreachable)))`,
    });
    expect(probe.returnedText(0x20, 0x24)).toBe('edge-auth');
    expect(probe.returnedText(0x28, 0x2c)).toBe('auth_root');
    expect(probe.returnedText(0x30, 0x34)).toBe('vm-1');
  });

  it('answers them from a stream as well, without asking the stream or the property source', () => {
    const { probe, stream, host, source } = setup();
    expect(getProperty(probe, stream, 'plugin_root_id')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('auth_root');
    expect(host.asked).toEqual([]);
    expect(source.asked).toEqual([]);
  });

  it('returns OK with ptr=0 and len=0 for an empty vm id, without calling the allocator', () => {
    const { probe, root } = setup({ vmId: '' });
    probe.poison();
    expect(getProperty(probe, root, 'plugin_vm_id')).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(probe.allocations()).toBe(0);
  });
});

describe('proxy_get_property: paths', () => {
  it('splits a NUL-separated path into segments before asking the stream', () => {
    const { probe, stream, host } = setup();
    host.values.set(key(['request', 'headers', 'user-agent']), text('curl/8'));
    expect(getProperty(probe, stream, 'request\0headers\0user-agent')).toBe(Status.OK);
    expect(host.asked).toEqual([['request', 'headers', 'user-agent']]);
    expect(probe.returnedText()).toBe('curl/8');
  });

  it('looks "request.path" up as one segment: NOT_FOUND unless that exact name is provided', () => {
    const { probe, stream, host } = setup();
    host.values.set(key(['request', 'path']), text('/x'));
    expect(getProperty(probe, stream, 'request.path')).toBe(Status.NOT_FOUND);
    expect(host.asked).toEqual([['request.path']]);
    host.values.set(key(['request.path']), text('state'));
    expect(getProperty(probe, stream, 'request.path')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('state');
  });

  it('returns NOT_FOUND for an unknown path, from a stream and from the root, and writes nothing', () => {
    const { probe, stream, root } = setup();
    probe.poison();
    expect(getProperty(probe, stream, 'no\0such')).toBe(Status.NOT_FOUND);
    expect(getProperty(probe, root, 'no\0such')).toBe(Status.NOT_FOUND);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([POISON, POISON]);
    expect(probe.allocations()).toBe(0);
  });

  it('asks the VM property source, with the root as origin, when the stream has no value', () => {
    const { probe, stream, root, source } = setup();
    source.values.set(key(['xds', 'cluster_name']), text('backend'));
    expect(getProperty(probe, stream, 'xds\0cluster_name')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('backend');
    expect(source.asked).toEqual([{ path: ['xds', 'cluster_name'], origin: root }]);
  });

  it('prefers the stream\'s value over the property source\'s', () => {
    const { probe, stream, host, source } = setup();
    host.values.set(key(['x']), text('stream'));
    source.values.set(key(['x']), text('vm'));
    expect(getProperty(probe, stream, 'x')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('stream');
    expect(source.asked).toEqual([]);
  });

  it('answers a root only from the property source', () => {
    const { probe, root, host, source } = setup();
    source.values.set(key(['node', 'id']), text('n1'));
    expect(getProperty(probe, root, 'node\0id')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('n1');
    expect(host.asked).toEqual([]);
  });

  it('returns property bytes exactly (an 8-byte integer)', () => {
    const { probe, stream, host } = setup();
    host.values.set(key(['response', 'code']), propInt(404));
    expect(getProperty(probe, stream, 'response\0code')).toBe(Status.OK);
    expect(probe.returned().bytes).toEqual(hex('9401000000000000'));
  });

  it('returns INVALID_MEMORY_ACCESS for a path or output slot outside guest memory, before allocating', () => {
    const { probe, stream } = setup();
    expect(probe.call(stream, 'proxy_get_property', OUT_OF_BOUNDS, 4, RET_PTR, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    const [path, len] = probe.input('plugin_name');
    expect(probe.call(stream, 'proxy_get_property', path, len, OUT_OF_BOUNDS, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.allocations()).toBe(0);
  });
});

describe('proxy_set_property', () => {
  it('stores the value through the stream, path split into segments, and reads it back', () => {
    const { probe, stream, host } = setup();
    expect(setProperty(probe, stream, 'my\0key', 'v1')).toBe(Status.OK);
    expect([...host.values.keys()]).toEqual([key(['my', 'key'])]);
    expect(getProperty(probe, stream, 'my\0key')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('v1');
  });

  it('keeps a copy of the value, not a view of guest memory', () => {
    const { probe, stream, host } = setup();
    const [path, pathLen] = probe.input('k');
    const [value, valueLen] = probe.input('before');
    expect(probe.call(stream, 'proxy_set_property', path, pathLen, value, valueLen)).toBe(Status.OK);
    probe.vm.mem.write(value, text('AFTER!'));
    expect(Buffer.from(host.values.get(key(['k']))!).toString()).toBe('before');
  });

  it('returns NOT_FOUND from a root context, which has no stream to store it in', () => {
    const { probe, root, host } = setup();
    expect(setProperty(probe, root, 'my\0key', 'v1')).toBe(Status.NOT_FOUND);
    expect(host.values.size).toBe(0);
  });

  it('stores on the stream the root made effective', () => {
    const { probe, root, stream, host } = setup({
      body: `
  (data (i32.const 0x8000) "k")
  (data (i32.const 0x8010) "v")
  (func (export "set_as") (param $ctx i32) (result i32)
    (if (call $proxy_set_effective_context (local.get $ctx)) (then unreachable))
    (call $proxy_set_property (i32.const 0x8000) (i32.const 1) (i32.const 0x8010) (i32.const 1)))`,
    });
    expect(probe.run(root, 'set_as', stream.id)).toBe(Status.OK);
    expect(Buffer.from(host.values.get(key(['k']))!).toString()).toBe('v');
  });

  it('passes on the stream\'s refusal (BAD_ARGUMENT for a value a declared schema rejects)', () => {
    const { probe, stream, host } = setup();
    host.setStatus = Status.BAD_ARGUMENT;
    expect(setProperty(probe, stream, 'typed', 'x')).toBe(Status.BAD_ARGUMENT);
  });

  it('returns INVALID_MEMORY_ACCESS for a value outside guest memory', () => {
    const { probe, stream, host } = setup();
    const [path, len] = probe.input('k');
    expect(probe.call(stream, 'proxy_set_property', path, len, OUT_OF_BOUNDS, 1)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(host.values.size).toBe(0);
  });
});

describe('property serialisers (reference §5.11)', () => {
  it('propString is the raw UTF-8 bytes with no terminator', () => {
    expect(Buffer.from(propString('héllo'))).toEqual(hex('68c3a96c6c6f'));
    expect(propString('').length).toBe(0);
  });

  it('propInt is 8 bytes little-endian, negative numbers in two\'s complement', () => {
    expect(Buffer.from(propInt(1))).toEqual(hex('0100000000000000'));
    expect(Buffer.from(propInt(0x0102030405060708n))).toEqual(hex('0807060504030201'));
    expect(Buffer.from(propInt(-1))).toEqual(hex('ffffffffffffffff'));
    expect(Buffer.from(propInt(2n ** 62n + 1n))).toEqual(hex('0100000000000040'));
  });

  it('propDouble is 8 bytes IEEE-754 little-endian', () => {
    expect(Buffer.from(propDouble(1.5))).toEqual(hex('000000000000f83f'));
  });

  it('propBool is one byte', () => {
    expect(Buffer.from(propBool(true))).toEqual(hex('01'));
    expect(Buffer.from(propBool(false))).toEqual(hex('00'));
  });

  it('propMap is the pairs format (the 29-byte worked example)', () => {
    expect(Buffer.from(propMap(['a', '1', 'b', '22']))).toEqual(
      hex('02000000 | 01000000 01000000 | 01000000 02000000 | 61 00 31 00 | 62 00 3232 00'));
    expect(propMap([]).length).toBe(0);
  });

  it('propList is the pairs format with the elements as keys and empty values', () => {
    expect(Buffer.from(propList(['x', 'yz']))).toEqual(
      hex('02000000 | 01000000 00000000 | 02000000 00000000 | 78 00 00 | 797a 00 00'));
  });

  it('splitPath splits on NUL only', () => {
    expect(splitPath('request\0headers\0user-agent')).toEqual(['request', 'headers', 'user-agent']);
    expect(splitPath('request.path')).toEqual(['request.path']);
  });
});

describe('proxy_call_foreign_function', () => {
  function withFunctions(fns: Record<string, ForeignFunction>) {
    return setup({ foreign: new Map(Object.entries(fns)) });
  }
  function callForeign(p: Probe, ctx: Ctx, name: string, args: string | Uint8Array, ptrPtr = RET_PTR, sizePtr = RET_SIZE): number {
    return p.call(ctx, 'proxy_call_foreign_function', ...p.input(name), ...p.input(args), ptrPtr, sizePtr);
  }

  it('calls a registered function with the argument bytes and the caller, and returns its bytes', () => {
    const seen: Array<[Buffer, ForeignCallContext]> = [];
    const { probe, stream, root } = withFunctions({
      reverse: (args, ctx) => {
        seen.push([Buffer.from(args), ctx]);
        return Buffer.from(args).reverse();
      },
    });
    expect(callForeign(probe, stream, 'reverse', Uint8Array.of(0x61, 0x62, 0x00, 0xff))).toBe(Status.OK);
    expect(probe.returned().bytes).toEqual(hex('ff006261'));
    expect(seen).toEqual([[hex('616200ff'), { origin: root, contextId: stream.id }]]);
  });

  it('returns the status a function answers, with its result', () => {
    const { probe, root } = withFunctions({
      refuse: () => ({ status: Status.BAD_ARGUMENT }),
      partial: () => ({ status: Status.SERIALIZATION_FAILURE, result: text('why') }),
    });
    probe.poison();
    expect(callForeign(probe, root, 'refuse', '')).toBe(Status.BAD_ARGUMENT);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(callForeign(probe, root, 'partial', '')).toBe(Status.SERIALIZATION_FAILURE);
    expect(probe.returnedText()).toBe('why');
  });

  it('returns NOT_FOUND for an unknown name and writes nothing', () => {
    const { probe, root } = withFunctions({ known: () => text('x') });
    probe.poison();
    expect(callForeign(probe, root, 'compress', 'data')).toBe(Status.NOT_FOUND);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([POISON, POISON]);
  });

  it('returns NOT_FOUND when the VM has no foreign functions at all', () => {
    const { probe, root } = setup();
    expect(callForeign(probe, root, 'compress', 'data')).toBe(Status.NOT_FOUND);
  });

  it('writes only the size when the result pointer slot is 0, and allocates nothing', () => {
    const { probe, root } = withFunctions({ five: () => text('12345') });
    probe.poison(0, RET_SIZE);
    expect(callForeign(probe, root, 'five', '', 0, RET_SIZE)).toBe(Status.OK);
    expect(probe.u32(RET_SIZE)).toBe(5);
    expect(probe.u32(0)).toBe(POISON);
    expect(probe.allocations()).toBe(0);
  });

  it('writes nothing when both slots are 0, and still runs the function', () => {
    let calls = 0;
    const { probe, root } = withFunctions({ effect: () => { calls++; return text('ignored'); } });
    probe.poison(0, 4);
    expect(callForeign(probe, root, 'effect', 'x', 0, 0)).toBe(Status.OK);
    expect([probe.u32(0), probe.u32(4), calls]).toEqual([POISON, POISON, 1]);
    expect(probe.allocations()).toBe(0);
  });

  it('returns INTERNAL_FAILURE and logs an error when the function throws', () => {
    const { probe, root, logger } = withFunctions({ boom: () => { throw new Error('kaput'); } });
    expect(callForeign(probe, root, 'boom', '')).toBe(Status.INTERNAL_FAILURE);
    expect(logger.lines.filter((l) => l.level === LogLevel.ERROR).map((l) => l.message).join('\n')).toContain('kaput');
  });

  it('returns INVALID_MEMORY_ACCESS for a name outside guest memory without calling anything', () => {
    let calls = 0;
    const { probe, root } = withFunctions({ f: () => { calls++; return text(''); } });
    expect(probe.call(root, 'proxy_call_foreign_function', OUT_OF_BOUNDS, 1, 0, 0, RET_PTR, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(calls).toBe(0);
  });
});
