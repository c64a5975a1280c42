/**
 * Copying results out to the guest (reference §2.3, §6.3): one allocation per returned value, of
 * the exact length, through the guest's allocator; zero length is written as ptr=0/len=0 with no
 * allocation. The output slots are checked before allocating so a bad slot pointer leaks nothing.
 */
import { decodePairs, encodePairsInto, pairsSize, type Pairs } from './pairs.js';
import type { WasmVm } from './vm.js';

function slots(vm: WasmVm, ptrPtr: number, sizePtr: number): void {
  vm.mem.check(ptrPtr, 4);
  vm.mem.check(sizePtr, 4);
}

export function returnBytes(vm: WasmVm, ptrPtr: number, sizePtr: number, data: Uint8Array): void {
  slots(vm, ptrPtr, sizePtr);
  const len = data.length;
  const ptr = len === 0 ? 0 : vm.allocate(len);
  if (len !== 0) vm.mem.write(ptr, data);
  vm.mem.setU32(ptrPtr, ptr);
  vm.mem.setU32(sizePtr, len);
}

export function returnLatin1(vm: WasmVm, ptrPtr: number, sizePtr: number, text: string): void {
  slots(vm, ptrPtr, sizePtr);
  const len = text.length;
  const ptr = len === 0 ? 0 : vm.allocate(len);
  if (len !== 0) vm.mem.writeLatin1(ptr, text);
  vm.mem.setU32(ptrPtr, ptr);
  vm.mem.setU32(sizePtr, len);
}

export function returnPairs(vm: WasmVm, ptrPtr: number, sizePtr: number, pairs: Pairs): void {
  slots(vm, ptrPtr, sizePtr);
  const len = pairsSize(pairs);
  const ptr = len === 0 ? 0 : vm.allocate(len);
  if (len !== 0) encodePairsInto(pairs, vm.mem.current(), ptr);
  vm.mem.setU32(ptrPtr, ptr);
  vm.mem.setU32(sizePtr, len);
}

/** Pairs read from guest memory; null when malformed (callers answer BAD_ARGUMENT). */
export function readPairs(vm: WasmVm, ptr: number, len: number): Pairs | null {
  if (len === 0) return [];
  vm.mem.check(ptr, len);
  return decodePairs(vm.mem.current().subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0)));
}
