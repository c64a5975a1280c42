import { describe, expect, it } from 'vitest';
import { BodyBuffer } from '../../../gateway/abi/body-buffer.js';
import { BufferType, Status } from '../../../gateway/abi/enums.js';
import { TestStream, text } from '../../helpers/host.js';
import { OUT_OF_BOUNDS, POISON, RET_PTR, RET_SIZE, startProbe, type Probe } from '../../helpers/probe.js';

const BUFFER_CALLS = ['proxy_get_buffer_bytes', 'proxy_get_buffer_status', 'proxy_set_buffer_bytes'];

/** A probe VM with one root and one stream whose request body (buffer 0) is `body`. */
function setup(body: string | null = 'hello world', opts: { body?: string; vmConfiguration?: Uint8Array; configuration?: string } = {}) {
  const t = startProbe(BUFFER_CALLS, { body: opts.body, vmConfiguration: opts.vmConfiguration });
  const root = t.vm.createRoot({ name: 'p', rootId: 'r', configuration: text(opts.configuration ?? '') });
  const host = new TestStream();
  if (body !== null) host.bodies[0] = new BodyBuffer(text(body));
  const stream = t.vm.createStream(root, host);
  return { ...t, root, host, stream };
}

type Ctx = Parameters<Probe['call']>[0];

function getBytes(p: Probe, ctx: Ctx, type: number, start: number, max: number): number {
  return p.call(ctx, 'proxy_get_buffer_bytes', type, start, max, RET_PTR, RET_SIZE);
}
function setBytes(p: Probe, ctx: Ctx, type: number, start: number, size: number, data: string): number {
  return p.call(ctx, 'proxy_set_buffer_bytes', type, start, size, ...p.input(data));
}
function bodyText(host: TestStream, type = 0): string {
  return host.bodies[type]!.bytes().toString('latin1');
}

describe('proxy_get_buffer_bytes', () => {
  it('returns the whole body for start 0 and max_size 0xFFFFFFFF (Rust "everything")', () => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, 0, 0, 0xffffffff)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('hello world');
    expect(probe.allocations()).toBe(1);
  });

  it('returns the whole body for start 0 and max_size 0x7FFFFFFF (Go "everything")', () => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, 0, 0, 0x7fffffff)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('hello world');
  });

  it('returns the rest of the body for start 6 and max_size 0xFFFFFFFF: start + max_size is summed in 64 bits and never wraps', () => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, 0, 6, 0xffffffff)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('world');
  });

  it('returns exactly max_size bytes from start when they exist', () => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, 0, 6, 3)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('wor');
    expect(probe.u32(RET_SIZE)).toBe(3);
  });

  it('clamps to size - start when start + max_size is past the end', () => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, 0, 3, 100)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('lo world');
  });

  it.each([
    ['start == size', 11, 10],
    ['start > size', 12, 10],
    ['start 0xFFFFFFFF', 0xffffffff, 0xffffffff],
    ['max_size 0', 0, 0],
  ])('returns OK with ptr=0 and len=0 for %s, without calling the allocator', (_what, start, max) => {
    const { probe, stream } = setup();
    probe.poison();
    expect(getBytes(probe, stream, 0, start, max)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(probe.allocations()).toBe(0);
  });

  it('returns OK with ptr=0 and len=0 for an empty buffer', () => {
    const { probe, stream } = setup('');
    probe.poison();
    expect(getBytes(probe, stream, 0, 0, 0xffffffff)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0]);
    expect(probe.allocations()).toBe(0);
  });

  it('reads across the chunks a body arrived in', () => {
    const { probe, stream, host } = setup('hel');
    host.bodies[0]!.append(text('lo'));
    expect(getBytes(probe, stream, 0, 2, 2)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('ll');
  });

  it.each([9, 100, -1])('returns BAD_ARGUMENT for buffer type %i', (type) => {
    const { probe, stream } = setup();
    expect(getBytes(probe, stream, type, 0, 10)).toBe(Status.BAD_ARGUMENT);
  });

  it('returns NOT_FOUND for a buffer that is not available (response body now, request body from the root)', () => {
    const { probe, stream, root } = setup();
    probe.poison();
    expect(getBytes(probe, stream, BufferType.HTTP_RESPONSE_BODY, 0, 10)).toBe(Status.NOT_FOUND);
    expect(getBytes(probe, root, BufferType.HTTP_REQUEST_BODY, 0, 10)).toBe(Status.NOT_FOUND);
    expect(getBytes(probe, root, BufferType.HTTP_CALL_RESPONSE_BODY, 0, 10)).toBe(Status.NOT_FOUND);
    expect(getBytes(probe, root, BufferType.GRPC_RECEIVE_BUFFER, 0, 10)).toBe(Status.NOT_FOUND);
    expect(getBytes(probe, root, BufferType.FOREIGN_FUNCTION_ARGUMENTS, 0, 10)).toBe(Status.NOT_FOUND);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([POISON, POISON]);
  });

  it('reads buffer 4 (http-call body) from the root while the answer is being delivered', () => {
    const { probe, root, stream } = setup();
    root.callout = { headers: [':status', '200'], body: text('{"ok":true}'), trailers: [] };
    try {
      expect(getBytes(probe, root, BufferType.HTTP_CALL_RESPONSE_BODY, 0, 0xffffffff)).toBe(Status.OK);
      expect(probe.returnedText()).toBe('{"ok":true}');
      expect(getBytes(probe, stream, BufferType.HTTP_CALL_RESPONSE_BODY, 1, 4)).toBe(Status.OK);
      expect(probe.returnedText()).toBe('"ok"');
    } finally {
      root.callout = null;
    }
  });

  it('reads buffer 5 (gRPC message) from the root while it is being delivered', () => {
    const { probe, root } = setup();
    root.grpc = { initialMetadata: null, message: Uint8Array.of(0x08, 0x96, 0x01), trailingMetadata: null };
    try {
      expect(getBytes(probe, root, BufferType.GRPC_RECEIVE_BUFFER, 0, 0xffffffff)).toBe(Status.OK);
      expect(probe.returned().bytes).toEqual(Buffer.from([0x08, 0x96, 0x01]));
    } finally {
      root.grpc = null;
    }
  });

  it('returns INVALID_MEMORY_ACCESS for an output slot outside guest memory, before allocating', () => {
    const { probe, stream } = setup();
    expect(probe.call(stream, 'proxy_get_buffer_bytes', 0, 0, 5, OUT_OF_BOUNDS, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.call(stream, 'proxy_get_buffer_bytes', 0, 0, 5, RET_PTR, OUT_OF_BOUNDS)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(probe.allocations()).toBe(0);
  });
});

describe('configuration buffers (6 and 7)', () => {
  // on_vm_start reads buffers 6 and 7 into (0x20, 0x24) and (0x28, 0x2c), statuses at 0x40/0x44;
  // on_configure reads buffer 7 into (0x30, 0x34), status at 0x48.
  const configGuest = `
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (i32.store (i32.const 0x40) (call $proxy_get_buffer_bytes (i32.const 6) (i32.const 0) (local.get $size) (i32.const 0x20) (i32.const 0x24)))
    (i32.store (i32.const 0x44) (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (i32.const -1) (i32.const 0x28) (i32.const 0x2c)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (i32.store (i32.const 0x48) (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0x30) (i32.const 0x34)))
    (i32.const 1))`;

  it('buffer 6 holds the VM configuration in on_vm_start', () => {
    const { probe } = setup(null, { body: configGuest, vmConfiguration: text('vm-config'), configuration: 'plugin-config' });
    expect(probe.u32(0x40)).toBe(Status.OK);
    expect(probe.returnedText(0x20, 0x24)).toBe('vm-config');
  });

  it('buffer 6 stays readable after start-up, from the root and from a stream', () => {
    const { probe, root, stream } = setup(null, { body: configGuest, vmConfiguration: text('vm-config') });
    expect(getBytes(probe, root, BufferType.VM_CONFIGURATION, 0, 0xffffffff)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('vm-config');
    expect(getBytes(probe, stream, BufferType.VM_CONFIGURATION, 3, 6)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('config');
  });

  it('buffer 7 holds the plugin configuration in on_configure and nowhere else', () => {
    const { probe, root, stream } = setup(null, { body: configGuest, vmConfiguration: text('vm-config'), configuration: 'plugin-config' });
    expect(probe.u32(0x48)).toBe(Status.OK);
    expect(probe.returnedText(0x30, 0x34)).toBe('plugin-config');
    expect(probe.u32(0x44)).toBe(Status.NOT_FOUND); // in on_vm_start
    expect(getBytes(probe, root, BufferType.PLUGIN_CONFIGURATION, 0, 0xffffffff)).toBe(Status.NOT_FOUND);
    expect(getBytes(probe, stream, BufferType.PLUGIN_CONFIGURATION, 0, 0xffffffff)).toBe(Status.NOT_FOUND);
  });

  it('ABI 0.1.0 proxy_get_configuration returns the VM configuration in on_vm_start and the plugin configuration in on_configure', () => {
    const t = startProbe(['proxy_get_configuration'], {
      abi: '0_1_0',
      vmConfiguration: text('vm-config'),
      body: `
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.store (i32.const 0x40) (call $proxy_get_configuration (i32.const 0x20) (i32.const 0x24)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.store (i32.const 0x44) (call $proxy_get_configuration (i32.const 0x30) (i32.const 0x34)))
    (i32.const 1))`,
    });
    t.vm.createRoot({ name: 'p', rootId: 'r', configuration: text('plugin-config') });
    expect(t.probe.u32(0x40)).toBe(Status.OK);
    expect(t.probe.returnedText(0x20, 0x24)).toBe('vm-config');
    expect(t.probe.u32(0x44)).toBe(Status.OK);
    expect(t.probe.returnedText(0x30, 0x34)).toBe('plugin-config');
  });
});

describe('proxy_get_buffer_status', () => {
  it('writes the buffer length and flags 0', () => {
    const { probe, stream } = setup();
    probe.poison();
    expect(probe.call(stream, 'proxy_get_buffer_status', 0, RET_PTR, RET_SIZE)).toBe(Status.OK);
    expect([probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([11, 0]);
  });

  it('follows the same error rules as get_buffer_bytes', () => {
    const { probe, stream } = setup();
    expect(probe.call(stream, 'proxy_get_buffer_status', 9, RET_PTR, RET_SIZE)).toBe(Status.BAD_ARGUMENT);
    expect(probe.call(stream, 'proxy_get_buffer_status', BufferType.HTTP_RESPONSE_BODY, RET_PTR, RET_SIZE)).toBe(Status.NOT_FOUND);
    expect(probe.call(stream, 'proxy_get_buffer_status', 0, OUT_OF_BOUNDS, RET_SIZE)).toBe(Status.INVALID_MEMORY_ACCESS);
  });
});

describe('proxy_set_buffer_bytes', () => {
  it('prepends for (start 0, size 0)', () => {
    const { probe, stream, host } = setup('hello');
    expect(setBytes(probe, stream, 0, 0, 0, '>> ')).toBe(Status.OK);
    expect(bodyText(host)).toBe('>> hello');
  });

  it.each([5, 6, 0x7fffffff, -1])('appends for start %i (>= length)', (start) => {
    const { probe, stream, host } = setup('hello');
    expect(setBytes(probe, stream, 0, start, 0, '!')).toBe(Status.OK);
    expect(bodyText(host)).toBe('hello!');
  });

  it.each([5, 100, 0x7fffffff, -1])('replaces everything for (start 0, size %i)', (size) => {
    const { probe, stream, host } = setup('hello');
    expect(setBytes(probe, stream, 0, 0, size, 'bye')).toBe(Status.OK);
    expect(bodyText(host)).toBe('bye');
  });

  it('drains the body for (0, length) with empty data given as (ptr=0, len=0)', () => {
    const { probe, stream, host } = setup('hello');
    expect(probe.call(stream, 'proxy_set_buffer_bytes', 0, 0, 5, 0, 0)).toBe(Status.OK);
    expect(host.bodies[0]!.length).toBe(0);
  });

  it('edits the response body and TCP data buffers too', () => {
    const { probe, stream, host } = setup(null);
    host.bodies[1] = new BodyBuffer(text('resp'));
    host.bodies[2] = new BodyBuffer(text('tcp'));
    expect(setBytes(probe, stream, BufferType.HTTP_RESPONSE_BODY, 0, 4, 'new')).toBe(Status.OK);
    expect(setBytes(probe, stream, BufferType.DOWNSTREAM_DATA, 3, 0, '!')).toBe(Status.OK);
    expect([bodyText(host, 1), bodyText(host, 2)]).toEqual(['new', 'tcp!']);
  });

  it.each([4, 5, 6, 7, 8])('returns BAD_ARGUMENT for read-only buffer %i, even while it is readable', (type) => {
    const { probe, root } = setup(null, { vmConfiguration: text('vm') });
    root.callout = { headers: [':status', '200'], body: text('callout'), trailers: [] };
    root.grpc = { initialMetadata: null, message: text('grpc'), trailingMetadata: null };
    try {
      expect(setBytes(probe, root, type, 0, 0, 'x')).toBe(Status.BAD_ARGUMENT);
      expect(Buffer.from(root.callout.body).toString()).toBe('callout');
      expect(Buffer.from(root.grpc.message!).toString()).toBe('grpc');
    } finally {
      root.callout = null;
      root.grpc = null;
    }
    expect(vmConfigNow(probe, root)).toBe('vm');
  });

  it('returns BAD_ARGUMENT for buffer types above 8', () => {
    const { probe, stream, host } = setup('hello');
    expect(setBytes(probe, stream, 9, 0, 0, 'x')).toBe(Status.BAD_ARGUMENT);
    expect(setBytes(probe, stream, -1, 0, 0, 'x')).toBe(Status.BAD_ARGUMENT);
    expect(bodyText(host)).toBe('hello');
  });

  it('returns NOT_FOUND for a buffer that is not available', () => {
    const { probe, stream, root } = setup('hello');
    expect(setBytes(probe, stream, BufferType.HTTP_RESPONSE_BODY, 0, 0, 'x')).toBe(Status.NOT_FOUND);
    expect(setBytes(probe, root, BufferType.HTTP_REQUEST_BODY, 0, 0, 'x')).toBe(Status.NOT_FOUND);
  });

  it('returns INVALID_MEMORY_ACCESS for data outside guest memory and leaves the body untouched', () => {
    const { probe, stream, host } = setup('hello');
    expect(probe.call(stream, 'proxy_set_buffer_bytes', 0, 0, 5, OUT_OF_BOUNDS, 3)).toBe(Status.INVALID_MEMORY_ACCESS);
    expect(bodyText(host)).toBe('hello');
  });
});

/** Buffer 6 as the root reads it now (to show a refused write left it alone). */
function vmConfigNow(probe: Probe, root: Ctx): string {
  expect(getBytes(probe, root, BufferType.VM_CONFIGURATION, 0, 0xffffffff)).toBe(Status.OK);
  return probe.returnedText();
}
