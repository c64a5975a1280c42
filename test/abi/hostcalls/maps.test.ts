import { describe, expect, it } from 'vitest';
import { MapType, Status } from '../../../gateway/abi/enums.js';
import { encodePairs } from '../../../gateway/abi/pairs.js';
import { HeaderMap } from '../../../gateway/abi/header-map.js';
import { TestStream, text } from '../../helpers/host.js';
import { OUT_OF_BOUNDS, POISON, RET_PTR, RET_SIZE, startProbe, type Probe } from '../../helpers/probe.js';

const MAP_CALLS = [
  'proxy_get_header_map_value', 'proxy_get_header_map_pairs', 'proxy_set_header_map_pairs',
  'proxy_add_header_map_value', 'proxy_replace_header_map_value', 'proxy_remove_header_map_value',
  'proxy_get_header_map_size', 'proxy_set_effective_context',
];

/** A probe VM with one root and one stream whose request headers are `headers`. */
function setup(headers: Array<[string, string]> = [], opts: { abi?: '0_1_0' | '0_2_1'; body?: string } = {}) {
  const t = startProbe(MAP_CALLS, opts);
  const root = t.vm.createRoot({ name: 'p', rootId: 'r', configuration: new Uint8Array(0) });
  const host = new TestStream(headers);
  const stream = t.vm.createStream(root, host);
  return { ...t, root, host, stream };
}

type Ctx = Parameters<Probe['call']>[0];

function getValue(p: Probe, ctx: Ctx, type: number, key: string): number {
  return p.call(ctx, 'proxy_get_header_map_value', type, ...p.input(key), RET_PTR, RET_SIZE);
}
function getPairs(p: Probe, ctx: Ctx, type: number): number {
  return p.call(ctx, 'proxy_get_header_map_pairs', type, RET_PTR, RET_SIZE);
}
function setPairs(p: Probe, ctx: Ctx, type: number, blob: Uint8Array): number {
  return p.call(ctx, 'proxy_set_header_map_pairs', type, ...p.input(blob));
}
function add(p: Probe, ctx: Ctx, type: number, key: string, value: string): number {
  return p.call(ctx, 'proxy_add_header_map_value', type, ...p.input(key), ...p.input(value));
}
function replace(p: Probe, ctx: Ctx, type: number, key: string, value: string): number {
  return p.call(ctx, 'proxy_replace_header_map_value', type, ...p.input(key), ...p.input(value));
}
function remove(p: Probe, ctx: Ctx, type: number, key: string): number {
  return p.call(ctx, 'proxy_remove_header_map_value', type, ...p.input(key));
}
function size(p: Probe, ctx: Ctx, type: number): number {
  return p.call(ctx, 'proxy_get_header_map_size', type, RET_PTR);
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

describe('proxy_get_header_map_value', () => {
  it('returns OK and the value for a present key', () => {
    const { probe, stream } = setup([[':path', '/hello'], ['x-id', '42']]);
    expect(getValue(probe, stream, MapType.HTTP_REQUEST_HEADERS, 'x-id')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('42');
    expect(probe.allocations()).toBe(1);
  });

  it('returns OK with ptr=0 and len=0 for an empty value, without calling the allocator', () => {
    const { probe, stream } = setup([['x-empty', '']]);
    probe.poison();
    expect(getValue(probe, stream, 0, 'x-empty')).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(probe.allocations()).toBe(0);
  });

  it('returns NOT_FOUND for a missing key under ABI 0.2.1 and writes nothing', () => {
    const { probe, stream } = setup([['x-id', '42']]);
    probe.poison();
    expect(getValue(probe, stream, 0, 'x-missing')).toBe(Status.NOT_FOUND);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([POISON, POISON]);
    expect(probe.allocations()).toBe(0);
  });

  it('returns OK with an empty value for a missing key under ABI 0.1.0 (two-parameter headers callback)', () => {
    const { probe, stream } = setup([['x-id', '42']], {
      abi: '0_1_0',
      body: `
  (data (i32.const 0x8000) "x-missing")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (result i32)
    (i32.store (i32.const 0x40)
      (call $proxy_get_header_map_value (i32.const 0) (i32.const 0x8000) (i32.const 9) (i32.const 0x10) (i32.const 0x14)))
    (i32.const 0))`,
    });
    probe.poison(0x40, RET_PTR, RET_SIZE);
    expect(stream.onRequestHeaders(1, true)).toBe(0);
    expect(probe.u32(0x40)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
  });

  it('returns the first value when a key repeats', () => {
    const { probe, stream } = setup([['x-a', 'one'], ['x-b', 'other'], ['x-a', 'two']]);
    expect(getValue(probe, stream, 0, 'x-a')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('one');
  });

  it('looks keys up case-insensitively', () => {
    const { probe, stream } = setup([['Content-Type', 'text/plain']]);
    expect(getValue(probe, stream, 0, 'CONTENT-type')).toBe(Status.OK);
    expect(probe.returnedText()).toBe('text/plain');
  });

  it('returns header bytes exactly, including non-UTF-8 bytes', () => {
    const { probe, stream } = setup([['x-raw', '\xff\x00\xe9']]);
    expect(getValue(probe, stream, 0, 'x-raw')).toBe(Status.OK);
    expect(probe.returned().bytes).toEqual(Buffer.from([0xff, 0x00, 0xe9]));
  });

  it('returns BAD_ARGUMENT for a map that is not available now (map 2 before the response)', () => {
    const { probe, stream, root } = setup([['x-id', '42']]);
    expect(getValue(probe, stream, MapType.HTTP_RESPONSE_HEADERS, 'x-id')).toBe(Status.BAD_ARGUMENT);
    expect(getValue(probe, root, MapType.HTTP_REQUEST_HEADERS, 'x-id')).toBe(Status.BAD_ARGUMENT);
  });

  it('returns BAD_ARGUMENT for an unavailable map under ABI 0.1.0 outside on_log too', () => {
    const { probe, stream } = setup([], { abi: '0_1_0' });
    expect(getValue(probe, stream, MapType.HTTP_RESPONSE_HEADERS, 'x-id')).toBe(Status.BAD_ARGUMENT);
  });

  const onLogReadsResponseHeader = `
  (data (i32.const 0x8000) "x-id")
  (func (export "proxy_on_log") (param $ctx i32)
    (i32.store (i32.const 0x40)
      (call $proxy_get_header_map_value (i32.const 2) (i32.const 0x8000) (i32.const 4) (i32.const 0x10) (i32.const 0x14))))`;

  it('returns NOT_FOUND for an unavailable map during on_log under ABI 0.2.1 (Envoy access-log phase)', () => {
    const { probe, stream } = setup([], { body: onLogReadsResponseHeader });
    probe.poison(0x40);
    stream.finish();
    expect(probe.u32(0x40)).toBe(Status.NOT_FOUND);
  });

  it('returns OK with an empty value for an unavailable map during on_log under ABI 0.1.0', () => {
    const { probe, stream } = setup([], { abi: '0_1_0', body: onLogReadsResponseHeader });
    probe.poison(0x40, RET_PTR, RET_SIZE);
    stream.finish();
    expect(probe.u32(0x40)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
  });
});

describe('proxy_get_header_map_pairs', () => {
  it('returns the whole map in the pairs format, repeated keys in map order (golden bytes)', () => {
    const { probe, stream } = setup([[':path', '/a'], ['x', '1'], ['X', '22']]);
    expect(getPairs(probe, stream, 0)).toBe(Status.OK);
    expect(probe.returned().bytes).toEqual(hex(`
      03000000 | 05000000 02000000 | 01000000 01000000 | 01000000 02000000
      3a70617468 00 2f61 00 | 78 00 31 00 | 78 00 3232 00`));
    expect(probe.u32(RET_SIZE)).toBe(46);
    expect(probe.allocations()).toBe(1);
  });

  it('returns OK with ptr=0 and len=0 for an empty map, without calling the allocator', () => {
    const { probe, stream } = setup([]);
    probe.poison();
    expect(getPairs(probe, stream, 0)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(probe.allocations()).toBe(0);
  });

  it('returns OK with ptr=0 and len=0 for an unavailable map (map 2, and map 6 outside a delivery)', () => {
    const { probe, stream, root } = setup([['x', '1']]);
    for (const [ctx, type] of [[stream, 2], [stream, 6], [root, 0], [root, 7]] as const) {
      probe.poison();
      expect(getPairs(probe, ctx, type)).toBe(Status.OK);
      expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    }
    expect(probe.allocations()).toBe(0);
  });
});

describe('proxy_set_header_map_pairs', () => {
  it('replaces the whole map, pseudo-headers included, and lower-cases the keys', () => {
    const { probe, stream, host } = setup([[':path', '/a'], [':method', 'GET'], ['x-old', '1']]);
    expect(setPairs(probe, stream, 0, encodePairs(['X-New', 'v', 'Other', 'W', 'x-new', 'v2']))).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['x-new', 'v', 'other', 'W', 'x-new', 'v2']);
  });

  it('clears the map for an empty input given as (ptr=0, len=0)', () => {
    const { probe, stream, host } = setup([[':path', '/a']]);
    expect(probe.call(stream, 'proxy_set_header_map_pairs', 0, 0, 0)).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual([]);
  });

  it.each([
    ['a terminator that is not NUL', '01000000 01000000 01000000 61 58 62 00'],
    ['a length past the end', '01000000 05000000 01000000 61 00 62 00'],
    ['trailing bytes', '01000000 01000000 01000000 61 00 62 00 00'],
    ['a count larger than the table', '02000000 01000000 01000000 61 00 62 00'],
  ])('refuses a blob with %s with BAD_ARGUMENT and leaves the map untouched', (_what, blob) => {
    const { probe, stream, host } = setup([[':path', '/a'], ['x', '1']]);
    expect(setPairs(probe, stream, 0, hex(blob))).toBe(Status.BAD_ARGUMENT);
    expect(host.maps[0]!.pairs).toEqual([':path', '/a', 'x', '1']);
  });

  it('returns BAD_ARGUMENT for map 6 even while an http-call answer is being delivered', () => {
    const { probe, root } = setup();
    root.callout = { headers: [':status', '200'], body: text(''), trailers: [] };
    try {
      expect(setPairs(probe, root, MapType.HTTP_CALL_RESPONSE_HEADERS, encodePairs(['a', 'b']))).toBe(Status.BAD_ARGUMENT);
    } finally {
      root.callout = null;
    }
    expect(root.callout).toBeNull();
  });

  it('returns BAD_ARGUMENT for a map that is not available or is read-only now', () => {
    const { probe, stream, host } = setup([['x', '1']]);
    expect(setPairs(probe, stream, MapType.HTTP_RESPONSE_HEADERS, encodePairs(['a', 'b']))).toBe(Status.BAD_ARGUMENT);
    host.writable[0] = false;
    expect(setPairs(probe, stream, 0, encodePairs(['a', 'b']))).toBe(Status.BAD_ARGUMENT);
    expect(host.maps[0]!.pairs).toEqual(['x', '1']);
  });
});

describe('proxy_add/replace/remove_header_map_value', () => {
  it('add appends another entry, keeps existing values and lower-cases the key', () => {
    const { probe, stream, host } = setup([['x-a', '1'], ['y', '0']]);
    expect(add(probe, stream, 0, 'X-A', '2')).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['x-a', '1', 'y', '0', 'x-a', '2']);
  });

  it('replace leaves exactly one value, in the place of the first occurrence', () => {
    const { probe, stream, host } = setup([['x-a', '1'], ['y', '0'], ['x-a', '2']]);
    expect(replace(probe, stream, 0, 'X-a', '3')).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['x-a', '3', 'y', '0']);
  });

  it('replace adds the key when it is absent', () => {
    const { probe, stream, host } = setup([['y', '0']]);
    expect(replace(probe, stream, 0, 'Powered-By', 'edge')).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['y', '0', 'powered-by', 'edge']);
  });

  it('remove drops every entry of the key, case-insensitively', () => {
    const { probe, stream, host } = setup([['x-a', '1'], ['y', '0'], ['x-a', '2']]);
    expect(remove(probe, stream, 0, 'X-A')).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['y', '0']);
  });

  it('remove is OK for an absent key', () => {
    const { probe, stream, host } = setup([['y', '0']]);
    expect(remove(probe, stream, 0, 'content-length')).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['y', '0']);
  });

  it('all three return BAD_ARGUMENT for an unavailable, read-only or callout map', () => {
    const { probe, stream, host, root } = setup([['y', '0']]);
    host.writable[0] = false;
    root.callout = { headers: [':status', '200'], body: text(''), trailers: [] };
    try {
      for (const type of [0, MapType.HTTP_RESPONSE_HEADERS, MapType.HTTP_CALL_RESPONSE_HEADERS]) {
        expect(add(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
        expect(replace(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
        expect(remove(probe, stream, type, 'y')).toBe(Status.BAD_ARGUMENT);
      }
    } finally {
      root.callout = null;
    }
    expect(host.maps[0]!.pairs).toEqual(['y', '0']);
    expect(root.callout).toBeNull();
  });
});

describe('writes to the maps of a callout answer (4–7)', () => {
  it.each([4, 5, 6, 7])('map %i refuses every write from a stream and leaves all four stream maps as they were', (type) => {
    const { probe, stream, host, root } = setup([['x', '1']]);
    host.maps[1] = HeaderMap.from([['x-req-t', '1']]);
    host.maps[2] = HeaderMap.from([[':status', '200']]);
    host.maps[3] = HeaderMap.from([['x-resp-t', '1']]);
    root.callout = { headers: [':status', '200'], body: text(''), trailers: ['x-t', '1'] };
    try {
      expect(add(probe, stream, type, 'x-leak', 'a')).toBe(Status.BAD_ARGUMENT);
      expect(replace(probe, stream, type, 'x-leak', 'b')).toBe(Status.BAD_ARGUMENT);
      expect(remove(probe, stream, type, 'x-resp-t')).toBe(Status.BAD_ARGUMENT);
      expect(setPairs(probe, stream, type, encodePairs(['x-leak', 'c']))).toBe(Status.BAD_ARGUMENT);
    } finally {
      root.callout = null;
    }
    expect(host.maps.map((m) => m!.pairs)).toEqual([['x', '1'], ['x-req-t', '1'], [':status', '200'], ['x-resp-t', '1']]);
  });
});

describe('proxy_get_header_map_size', () => {
  it('writes the byte size of keys plus values (Envoy HeaderMap::byteSize), not the serialised size', () => {
    const { probe, stream } = setup([[':path', '/a'], ['x', '1']]);
    expect(size(probe, stream, 0)).toBe(Status.OK);
    expect(probe.u32(RET_PTR)).toBe(5 + 2 + 1 + 1);
  });

  it('returns BAD_ARGUMENT for an unavailable map', () => {
    const { probe, stream } = setup();
    expect(size(probe, stream, MapType.HTTP_RESPONSE_TRAILERS)).toBe(Status.BAD_ARGUMENT);
  });
});

describe('map types', () => {
  it.each([8, 100, -1])('every map call returns BAD_ARGUMENT for map type %i', (type) => {
    const { probe, stream, host } = setup([['x', '1']]);
    expect(getValue(probe, stream, type, 'x')).toBe(Status.BAD_ARGUMENT);
    expect(getPairs(probe, stream, type)).toBe(Status.BAD_ARGUMENT);
    expect(setPairs(probe, stream, type, encodePairs(['a', 'b']))).toBe(Status.BAD_ARGUMENT);
    expect(add(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
    expect(replace(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
    expect(remove(probe, stream, type, 'x')).toBe(Status.BAD_ARGUMENT);
    expect(size(probe, stream, type)).toBe(Status.BAD_ARGUMENT);
    expect(host.maps[0]!.pairs).toEqual(['x', '1']);
  });
});

describe('http-call and gRPC maps (6/7, 4/5)', () => {
  const answer = { headers: [':status', '200', 'content-type', 'text/plain'], body: text('ok'), trailers: ['x-t', 'end'] };

  it('maps 6 and 7 are readable from the root while an http-call answer is being delivered', () => {
    const { probe, root } = setup();
    root.callout = answer;
    try {
      expect(getValue(probe, root, MapType.HTTP_CALL_RESPONSE_HEADERS, ':status')).toBe(Status.OK);
      expect(probe.returnedText()).toBe('200');
      expect(getPairs(probe, root, MapType.HTTP_CALL_RESPONSE_TRAILERS)).toBe(Status.OK);
      expect(probe.returned().bytes).toEqual(hex('01000000 03000000 03000000 782d74 00 656e64 00'));
      expect(size(probe, root, MapType.HTTP_CALL_RESPONSE_HEADERS)).toBe(Status.OK);
      expect(probe.u32(RET_PTR)).toBe(7 + 3 + 12 + 10);
    } finally {
      root.callout = null;
    }
  });

  it('maps 6 and 7 are unavailable from the root once the delivery is over', () => {
    const { probe, root } = setup();
    root.callout = answer;
    root.callout = null;
    expect(getValue(probe, root, MapType.HTTP_CALL_RESPONSE_HEADERS, ':status')).toBe(Status.BAD_ARGUMENT);
    expect(size(probe, root, MapType.HTTP_CALL_RESPONSE_TRAILERS)).toBe(Status.BAD_ARGUMENT);
    probe.poison();
    expect(getPairs(probe, root, MapType.HTTP_CALL_RESPONSE_HEADERS)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
  });

  it('map 6 stays readable after the root sets the effective context to its stream', () => {
    const { probe, root, stream } = setup([], {
      body: `
  (data (i32.const 0x8000) "content-type")
  (func (export "read_as") (param $ctx i32) (result i32)
    (if (call $proxy_set_effective_context (local.get $ctx)) (then unreachable))
    (call $proxy_get_header_map_value (i32.const 6) (i32.const 0x8000) (i32.const 12) (i32.const 0x10) (i32.const 0x14)))`,
    });
    root.callout = answer;
    try {
      expect(probe.run(root, 'read_as', stream.id)).toBe(Status.OK);
    } finally {
      root.callout = null;
    }
    expect(probe.returnedText()).toBe('text/plain');
  });

  it('maps 4 and 5 read the gRPC metadata being delivered', () => {
    const { probe, root } = setup();
    root.grpc = { initialMetadata: ['x-md', 'first'], message: null, trailingMetadata: ['grpc-status', '0'] };
    try {
      expect(getValue(probe, root, MapType.GRPC_RECEIVE_INITIAL_METADATA, 'x-md')).toBe(Status.OK);
      expect(probe.returnedText()).toBe('first');
      expect(getValue(probe, root, MapType.GRPC_RECEIVE_TRAILING_METADATA, 'grpc-status')).toBe(Status.OK);
      expect(probe.returnedText()).toBe('0');
    } finally {
      root.grpc = null;
    }
    expect(getValue(probe, root, MapType.GRPC_RECEIVE_INITIAL_METADATA, 'x-md')).toBe(Status.BAD_ARGUMENT);
  });
});

describe('guest memory', () => {
  it('returns INVALID_MEMORY_ACCESS for a key outside guest memory', () => {
    const { probe, stream } = setup([['x', '1']]);
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, OUT_OF_BOUNDS, 1, RET_PTR, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, 0x1fffe, 4, RET_PTR, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, 0x100, -1, RET_PTR, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_remove_header_map_value', 0, OUT_OF_BOUNDS, 1)).toBe(Status.INVALID_MEMORY_ACCESS);
  });

  it('returns INVALID_MEMORY_ACCESS for an output slot outside guest memory, before allocating', () => {
    const { probe, stream } = setup([['x', '1']]);
    const [key, keyLen] = probe.input('x');
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, key, keyLen, OUT_OF_BOUNDS, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, key, keyLen, RET_PTR, OUT_OF_BOUNDS)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_header_map_pairs', 0, RET_PTR, OUT_OF_BOUNDS)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_header_map_size', 0, OUT_OF_BOUNDS)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.allocations()).toBe(0);
  });

  it('returns INVALID_MEMORY_ACCESS for input bytes outside guest memory and leaves the map untouched', () => {
    const { probe, stream, host } = setup([['x', '1']]);
    const [key, keyLen] = probe.input('y');
    expect(probe.call(stream, 'proxy_set_header_map_pairs', 0, OUT_OF_BOUNDS, 8)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_add_header_map_value', 0, key, keyLen, OUT_OF_BOUNDS, 1)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_replace_header_map_value', 0, key, keyLen, OUT_OF_BOUNDS, 1)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(host.maps[0]!.pairs).toEqual(['x', '1']);
  });

  it('accepts (ptr=0, len=0) as an empty key or value', () => {
    const { probe, stream, host } = setup([]);
    const [key, keyLen] = probe.input('x-empty');
    expect(probe.call(stream, 'proxy_add_header_map_value', 0, key, keyLen, 0, 0)).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['x-empty', '']);
    expect(probe.call(stream, 'proxy_get_header_map_value', 0, 0, 0, RET_PTR, RET_SIZE)).toBe(Status.NOT_FOUND);
  });
});

describe('header writes the host cannot send', () => {
  it('add and replace answer BAD_ARGUMENT for CR, LF, NUL or a control byte in a value, and leave the map as it was', () => {
    const { probe, stream, host } = setup([[':path', '/'], ['y', '0']]);
    for (const value of ['a\r\nx-injected: 1', 'a\rb', 'a\nb', 'a\0b', 'a\x01b', 'a\x7fb']) {
      expect(add(probe, stream, 0, 'x-a', value)).toBe(Status.BAD_ARGUMENT);
      expect(replace(probe, stream, 0, 'y', value)).toBe(Status.BAD_ARGUMENT);
    }
    expect(host.maps[0]!.pairs).toEqual([':path', '/', 'y', '0']);
    // HTAB, obs-text and an empty value are field content (RFC 9110 §5.5).
    expect(add(probe, stream, 0, 'x-a', 'a\tb\xe9')).toBe(Status.OK);
    expect(add(probe, stream, 0, 'x-e', '')).toBe(Status.OK);
  });

  it('refuses a name that is not a token (empty, space, colon inside, CRLF) in every stream map', () => {
    const { probe, stream, host } = setup([['y', '0']]);
    for (const type of [0, 2]) {
      for (const name of ['', 'x a', 'x:a', 'x-a\r\nb', 'x(a)', 'x\u00e9']) {
        expect(add(probe, stream, type, name, '1')).toBe(Status.BAD_ARGUMENT);
      }
    }
    expect(host.maps[0]!.pairs).toEqual(['y', '0']);
  });

  it('checks the pseudo-headers of each map: :path, :method, :authority on requests, :status on responses, none in trailers', () => {
    const { probe, stream, host } = setup([[':method', 'GET'], [':path', '/'], [':authority', 'a.test']]);
    host.maps[2] = HeaderMap.from([[':status', '200']]);
    host.maps[3] = HeaderMap.from([]);
    const refused: Array<[number, string, string]> = [
      [0, ':path', '/a b'], [0, ':path', '/a\rb'], [0, ':path', '/a\nb'], [0, ':path', ''], [0, ':path', '/\0'],
      [0, ':method', ''], [0, ':method', 'GE T'], [0, ':authority', 'evil\r\nx: 1'], [0, ':authority', 'a\0'],
      [0, ':status', '200'], [0, ':unknown', 'x'],
      [2, ':status', 'abc'], [2, ':status', '99999'], [2, ':status', '42'], [2, ':status', '101'], [2, ':status', '600'],
      [2, ':path', '/'], [3, ':status', '200'], [0, 'content-length', '2, 3'], [2, 'content-length', '-1'],
    ];
    for (const [type, name, value] of refused) expect([type, name, value, replace(probe, stream, type, name, value)]).toEqual([type, name, value, Status.BAD_ARGUMENT]);
    expect(host.maps[0]!.pairs).toEqual([':method', 'GET', ':path', '/', ':authority', 'a.test']);
    expect(host.maps[2]!.pairs).toEqual([':status', '200']);
    expect(host.maps[3]!.pairs).toEqual([]);
    for (const [type, name, value] of [[0, ':path', '/v2/x?q=%20'], [0, ':path', '*'], [0, ':path', 'http://a.test/x'],
      [0, ':method', 'PURGE'], [0, ':authority', '[::1]:8080'],
      [2, ':status', '418'], [2, 'content-length', '0']] as const) {
      expect(replace(probe, stream, type, name, value)).toBe(Status.OK);
    }
  });

  it('refuses a write that would grow a map past 60 KiB, and a set_header_map_pairs with one bad entry', () => {
    const { probe, stream, host } = setup([['y', '0']]);
    expect(add(probe, stream, 0, 'x-big', 'a'.repeat(60 * 1024))).toBe(Status.BAD_ARGUMENT);
    expect(add(probe, stream, 0, 'x-big', 'a'.repeat(30 * 1024))).toBe(Status.OK);
    expect(add(probe, stream, 0, 'x-big2', 'a'.repeat(30 * 1024))).toBe(Status.BAD_ARGUMENT);
    expect(setPairs(probe, stream, 0, encodePairs(['x-a', '1', 'x-b', '1\r\n2']))).toBe(Status.BAD_ARGUMENT);
    expect(host.maps[0]!.count).toBe(2);
    expect(setPairs(probe, stream, 0, encodePairs(['X-A', '1']))).toBe(Status.OK);
    expect(host.maps[0]!.pairs).toEqual(['x-a', '1']);
  });

  it('writes no map above the stream maps (Envoy getMap has none): 4..7 answer BAD_ARGUMENT', () => {
    const { probe, stream } = setup([['y', '0']]);
    for (const type of [4, 5, 6, 7]) {
      expect(add(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
      expect(replace(probe, stream, type, 'a', 'b')).toBe(Status.BAD_ARGUMENT);
      expect(remove(probe, stream, type, 'a')).toBe(Status.BAD_ARGUMENT);
    }
  });
});

describe('header writes of what a peer sent', () => {
  it('lets a guest write back every map a client or upstream could have sent (the Go SDK replaces whole maps)', () => {
    const { probe, stream, host } = setup([[':method', 'OPTIONS'], [':path', '*'], [':authority', 'a.test:8080'], [':scheme', 'http'],
      ['user-agent', 'curl/8 (x\ty)'], ['x-latin1', 'caf\xe9'], ['x-empty', '']]);
    for (const path of ['*', 'http://a.test/x?y=1', '/caf\xe9/%2e%2e/', '//double']) {
      const pairs = [...host.maps[0]!.pairs];
      pairs[3] = path;
      expect([path, setPairs(probe, stream, 0, encodePairs(pairs))]).toEqual([path, Status.OK]);
    }
    host.maps[2] = HeaderMap.from([[':status', '599'], ['set-cookie', 'a=1; Path=/'], ['content-length', '0']]);
    expect(setPairs(probe, stream, 2, encodePairs(host.maps[2]!.pairs))).toBe(Status.OK);
  });
});
