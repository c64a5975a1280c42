/**
 * Copying results out to the guest (reference §2.3, §6.3): one allocation per returned value, of
 * the exact length, through the guest's allocator; zero length is written as ptr=0/len=0 with no
 * allocation. The output slots are checked before allocating so a bad slot pointer leaks nothing.
 */
import { decodePairs, encodePairsInto, pairsSize, type Pairs } from './pairs.js';
import type { WasmVm } from './vm.js';

/**
 * Allocates `len` bytes in the guest (none for 0) and writes the pointer and length into the
 * guest's two out slots; returns the pointer the caller fills.
 */
function reserve(vm: WasmVm, ptrPtr: number, sizePtr: number, len: number): number {
  vm.mem.check(ptrPtr, 4);
  vm.mem.check(sizePtr, 4);
  const ptr = len === 0 ? 0 : vm.allocate(len);
  vm.mem.setU32(ptrPtr, ptr);
  vm.mem.setU32(sizePtr, len);
  return ptr;
}

export function returnBytes(vm: WasmVm, ptrPtr: number, sizePtr: number, data: Uint8Array): void {
  const ptr = reserve(vm, ptrPtr, sizePtr, data.length);
  if (ptr !== 0) vm.mem.write(ptr, data);
}

export function returnLatin1(vm: WasmVm, ptrPtr: number, sizePtr: number, text: string): void {
  const ptr = reserve(vm, ptrPtr, sizePtr, text.length);
  if (ptr !== 0) vm.mem.writeLatin1(ptr, text);
}

export function returnPairs(vm: WasmVm, ptrPtr: number, sizePtr: number, pairs: Pairs): void {
  const ptr = reserve(vm, ptrPtr, sizePtr, pairsSize(pairs));
  if (ptr !== 0) encodePairsInto(pairs, vm.mem.current(), ptr);
}

/** Pairs read from guest memory; null when malformed (callers answer BAD_ARGUMENT). */
export function readPairs(vm: WasmVm, ptr: number, len: number): Pairs | null {
  if (len === 0) return [];
  vm.mem.check(ptr, len);
  return decodePairs(vm.mem.current().subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0)));
}
