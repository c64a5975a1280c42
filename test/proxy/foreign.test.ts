import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { GuestFn } from '../../gateway/abi/callbacks.js';
import { Status } from '../../gateway/abi/enums.js';
import { MAX_COMPRESS_INPUT_BYTES, MAX_UNCOMPRESS_OUTPUT_BYTES } from '../../gateway/abi/limits.js';
import { gatewayForeignFunctions } from '../../gateway/proxy/foreign.js';
import { startVm, text } from '../helpers/host.js';

const RET_PTR = 16;
const RET_SIZE = 20;
const MIB = 1024 * 1024;

/**
 * A guest whose allocator grows its memory as far as asked (as a real SDK's does), so whatever
 * a foreign function returns really lands in guest memory; `call` forwards to
 * proxy_call_foreign_function with the result slots at 16 and 20.
 */
const ZLIB_GUEST = `(module
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32) (local $pages i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.set $pages (i32.sub (i32.shr_u (i32.add (global.get $heap) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "call") (param i32 i32 i32 i32) (result i32)
    (call $foreign (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const ${RET_PTR}) (i32.const ${RET_SIZE}))))`;

function zlibGuest() {
  const { vm } = startVm(ZLIB_GUEST, { ports: { foreignFunctions: gatewayForeignFunctions() } });
  const root = vm.createRoot({ name: 'zlib', rootId: '', configuration: new Uint8Array(0) });
  const exports = vm.instance.exports as Record<string, GuestFn>;
  const place = (bytes: Uint8Array): [number, number] => {
    const ptr = vm.call(root, exports.proxy_on_memory_allocate, bytes.length);
    vm.mem.write(ptr, bytes);
    return [ptr, bytes.length];
  };
  return {
    vm,
    /** Calls the foreign function from inside the guest: its status and the bytes it returned. */
    call(name: string, args: Uint8Array): { status: number; result: Buffer } {
      vm.mem.setU32(RET_PTR, 0);
      vm.mem.setU32(RET_SIZE, 0);
      const at = [...place(text(name)), ...place(args)];
      const status = vm.call(root, exports.call, ...at);
      const ptr = vm.mem.u32(RET_PTR);
      return { status, result: Buffer.from(vm.mem.current().subarray(ptr, ptr + vm.mem.u32(RET_SIZE))) };
    },
  };
}

describe('the zlib foreign functions', () => {
  it('compress and uncompress round-trip through guest memory in zlib format, as Envoy\'s', () => {
    const g = zlibGuest();
    const data = Buffer.from('edge-gateway '.repeat(1000));
    const packed = g.call('compress', data);
    expect(packed.status).toBe(Status.OK);
    expect(packed.result.length).toBeLessThan(data.length / 10);
    expect(packed.result.subarray(0, 2)).toEqual(Buffer.from([0x78, 0x9c]));
    const unpacked = g.call('uncompress', packed.result);
    expect(unpacked).toMatchObject({ status: Status.OK, result: data });
  });

  it('answers SERIALIZATION_FAILURE for bytes that are not zlib data', () => {
    expect(zlibGuest().call('uncompress', text('not zlib at all')).status).toBe(Status.SERIALIZATION_FAILURE);
  });

  it(`refuses a zlib bomb with BAD_ARGUMENT after ${MAX_UNCOMPRESS_OUTPUT_BYTES / MIB} MiB of output, writing nothing into the guest`, () => {
    const g = zlibGuest();
    const bomb = deflateSync(Buffer.alloc(64 * MIB)); // 64 KB that inflate to 64 MiB
    expect(bomb.length).toBeLessThan(MIB / 8);
    const before = g.vm.mem.size;
    const out = g.call('uncompress', bomb);
    expect(out.status).toBe(Status.BAD_ARGUMENT);
    expect(out.result.length).toBe(0);
    // Nothing was allocated for a result: the guest grew only for the bomb it passed in.
    expect(g.vm.mem.size - before).toBeLessThanOrEqual(bomb.length + 64 * 1024);
  });

  it('uncompresses exactly the cap and refuses one byte more', () => {
    const g = zlibGuest();
    const full = g.call('uncompress', deflateSync(Buffer.alloc(MAX_UNCOMPRESS_OUTPUT_BYTES, 1)));
    expect(full.status).toBe(Status.OK);
    expect(full.result.length).toBe(MAX_UNCOMPRESS_OUTPUT_BYTES);
    expect(g.call('uncompress', deflateSync(Buffer.alloc(MAX_UNCOMPRESS_OUTPUT_BYTES + 1, 1))).status).toBe(Status.BAD_ARGUMENT);
  });

  it(`compresses up to ${MAX_COMPRESS_INPUT_BYTES / MIB} MiB and refuses a larger input with BAD_ARGUMENT without compressing it`, () => {
    const g = zlibGuest();
    expect(g.call('compress', Buffer.alloc(MAX_COMPRESS_INPUT_BYTES, 7)).status).toBe(Status.OK);
    const over = g.call('compress', Buffer.alloc(MAX_COMPRESS_INPUT_BYTES + 1, 7));
    expect(over.status).toBe(Status.BAD_ARGUMENT);
    expect(over.result.length).toBe(0);
  });

  it('answers clear_route_cache with OK and nothing', () => {
    expect(zlibGuest().call('clear_route_cache', new Uint8Array(0))).toMatchObject({ status: Status.OK, result: Buffer.alloc(0) });
  });
});
