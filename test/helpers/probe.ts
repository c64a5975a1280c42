/**
 * A guest that forwards to hostcalls, for hostcall unit tests. For each listed hostcall the guest
 * imports it and exports `call_<name>` with the same parameters, whose body calls the import and
 * returns its status; the call therefore really comes from inside the guest, with whichever
 * context the test makes current:
 *
 *   probe.call(stream, 'proxy_get_header_map_value', 0, ...probe.input(':path'), RET_PTR, RET_SIZE)
 *
 * The guest's allocator counts its calls (`allocations()`), and `body` can add scenario-specific
 * exports that use the imports by their ABI names (`call $proxy_log`). Addresses below 64 KiB are
 * the test's scratch space: `input()` places bytes there, the heap starts at 64 KiB.
 */
import type { Context } from '../../gateway/abi/context.js';
import type { GuestFn } from '../../gateway/abi/callbacks.js';
import type { WasmVm } from '../../gateway/abi/vm.js';
import { startVm, type TestVm } from './host.js';
import { guestWat } from './wat.js';

/** i32 parameter counts of the hostcalls a probe can forward to (all return an i32 status). */
export const ARITY: Readonly<Record<string, number>> = {
  proxy_log: 3,
  proxy_get_header_map_value: 5,
  proxy_get_header_map_pairs: 3,
  proxy_set_header_map_pairs: 3,
  proxy_add_header_map_value: 5,
  proxy_replace_header_map_value: 5,
  proxy_remove_header_map_value: 3,
  proxy_get_header_map_size: 2,
  proxy_get_buffer_bytes: 5,
  proxy_get_buffer_status: 3,
  proxy_set_buffer_bytes: 5,
  proxy_get_configuration: 2,
  proxy_set_effective_context: 1,
  proxy_done: 0,
  proxy_continue_stream: 1,
  proxy_close_stream: 1,
  proxy_continue_request: 0,
  proxy_continue_response: 0,
  proxy_clear_route_cache: 0,
  proxy_send_local_response: 8,
  proxy_get_status: 3,
  proxy_get_property: 4,
  proxy_set_property: 4,
  proxy_call_foreign_function: 6,
};

/** Output slots the tests pass to hostcalls (u32 each). */
export const RET_PTR = 0x10;
export const RET_SIZE = 0x14;
/** A pointer past the end of the guest's 2 pages of memory. */
export const OUT_OF_BOUNDS = 0x20000;
/** What a slot holds before a hostcall that must not write it. */
export const POISON = 0xaaaaaaaa;

function params(n: number): string {
  return n === 0 ? '' : `(param ${Array(n).fill('i32').join(' ')})`;
}

/** WAT of a probe guest forwarding to `names`, plus `body` (callbacks, scenario exports). */
export function probeWat(names: readonly string[], opts: { abi?: '0_1_0' | '0_2_0' | '0_2_1'; body?: string } = {}): string {
  const imports = names.map((n) => `(import "env" "${n}" (func $${n} ${params(ARITY[n])} (result i32)))`).join('\n  ');
  const forwarders = names.map((n) => {
    const args = Array.from({ length: ARITY[n] }, (_, i) => `(local.get ${i})`).join(' ');
    return `(func (export "call_${n}") ${params(ARITY[n])} (result i32) (call $${n} ${args}))`;
  }).join('\n  ');
  return guestWat({
    abi: opts.abi,
    imports,
    allocator: 'bump_allocate',
    body: `
  (global $allocations (mut i32) (i32.const 0))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (global.set $allocations (i32.add (global.get $allocations) (i32.const 1)))
    (call $alloc (local.get $n)))
  (func (export "allocations") (result i32) (global.get $allocations))
  ${forwarders}
  ${opts.body ?? ''}`,
  });
}

export class Probe {
  private next = 0x100;

  constructor(readonly vm: WasmVm) {}

  /** Runs the guest's `call_<name>` with `ctx` current; returns the hostcall's status. */
  call(ctx: Context, name: string, ...args: number[]): number {
    return this.run(ctx, `call_${name}`, ...args);
  }

  /** Runs any guest export with `ctx` current (vm.call passes at most five arguments, so wrap). */
  run(ctx: Context, exportName: string, ...args: number[]): number {
    const fn = this.vm.instance.exports[exportName] as GuestFn | undefined;
    if (fn === undefined) throw new Error(`probe guest exports no ${exportName}`);
    return this.vm.call(ctx, () => fn(...args));
  }

  /** How many times the host called the guest allocator so far. */
  allocations(): number {
    return (this.vm.instance.exports.allocations as () => number)();
  }

  /** Places bytes (a string is taken byte-for-byte, latin1) in scratch memory: [ptr, len]. */
  input(data: string | Uint8Array): [number, number] {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const ptr = this.next;
    this.vm.mem.write(ptr, bytes);
    this.next += (bytes.length + 15) & ~7;
    return [ptr, bytes.length];
  }

  u32(ptr: number): number {
    return this.vm.mem.u32(ptr);
  }

  setU32(ptr: number, value: number): void {
    this.vm.mem.setU32(ptr, value);
  }

  /** Poisons the output slots so a test can tell whether a hostcall wrote them. */
  poison(...ptrs: number[]): void {
    for (const p of ptrs.length ? ptrs : [RET_PTR, RET_SIZE]) this.setU32(p, POISON);
  }

  /** The bytes a hostcall returned through (ptrPtr, sizePtr), read from guest memory. */
  returned(ptrPtr = RET_PTR, sizePtr = RET_SIZE): { ptr: number; size: number; bytes: Buffer } {
    const ptr = this.u32(ptrPtr);
    const size = this.u32(sizePtr);
    return { ptr, size, bytes: Buffer.from(this.vm.mem.current().subarray(ptr, ptr + size)) };
  }

  /** The returned bytes as a byte string. */
  returnedText(ptrPtr = RET_PTR, sizePtr = RET_SIZE): string {
    return this.returned(ptrPtr, sizePtr).bytes.toString('latin1');
  }
}

/** Starts a VM from a probe guest: `startVm` plus a `Probe` on it. */
export function startProbe(names: readonly string[],
  opts: NonNullable<Parameters<typeof probeWat>[1]> & NonNullable<Parameters<typeof startVm>[1]> = {}): TestVm & { probe: Probe } {
  const { abi, body, ...vmOptions } = opts;
  const t = startVm(probeWat(names, { abi, body }), vmOptions);
  return { ...t, probe: new Probe(t.vm) };
}
