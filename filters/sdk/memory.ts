/**
 * Guest memory shared with the host: the allocator the host calls for returned values, the
 * return slots hostcalls write through, and a scratch area for the strings the SDK passes in.
 *
 * Ownership (reference §2.3, §6.3): the host fills a block it got from
 * `proxy_on_memory_allocate` and never frees it. That block is a raw TLSF block (`heap.alloc`),
 * not a garbage-collected object, so the SDK copies the bytes out (`takeBytes`, `takeString`,
 * `takePairs`) and frees the block at once: no result a wrapper reads outlives the hostcall, and
 * nothing is left for the collector. Every wrapper that passes return slots either takes or
 * discards what the host wrote, whatever the status.
 *
 * NB: hostcalls never re-enter guest code except through `proxy_on_memory_allocate`, which does
 * not touch the slots or the scratch area, so both are safe to share across wrappers.
 */

const SLOTS = memory.data(32, 8);
/** u32 slot: address of a host-filled block (0 for an empty value). */
export const RET_PTR: usize = SLOTS;
/** u32 slot: length of that block. */
export const RET_LEN: usize = SLOTS + 4;
/** u32 slot for ids, tokens, sizes and flags. */
export const RET_U32: usize = SLOTS + 8;
/** second u32 slot (CAS, buffer flags). */
export const RET_U32_B: usize = SLOTS + 12;
/** u64 slot (8-aligned) for time and metric values. */
export const RET_U64: usize = SLOTS + 16;

/**
 * The allocator the host uses for every value it returns (reference §2.3). Exact size; the block
 * belongs to the guest, and the SDK frees it as soon as it has read it.
 */
export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size);
}

/** Zeroes the pointer and length slots before a hostcall that may fill them. */
@inline export function clearReturn(): void {
  store<u64>(RET_PTR, 0);
}

/** Frees whatever block the host handed back (after an error, or when the value is unused). */
export function discardReturned(): void {
  const ptr = <usize>load<u32>(RET_PTR);
  if (ptr != 0) heap.free(ptr);
  store<u64>(RET_PTR, 0);
}

/** The returned value as a new ArrayBuffer (empty for ptr 0); frees the host's block. */
export function takeBytes(): ArrayBuffer {
  const ptr = <usize>load<u32>(RET_PTR);
  const len = ptr == 0 ? 0 : <i32>load<u32>(RET_LEN);
  const out = new ArrayBuffer(len);
  if (ptr != 0) {
    memory.copy(changetype<usize>(out), ptr, <usize>len);
    heap.free(ptr);
  }
  store<u64>(RET_PTR, 0);
  return out;
}

/** The returned value decoded as UTF-8 ("" for ptr 0); frees the host's block. */
export function takeString(): string {
  const ptr = <usize>load<u32>(RET_PTR);
  if (ptr == 0) return "";
  const s = String.UTF8.decodeUnsafe(ptr, <usize>load<u32>(RET_LEN));
  heap.free(ptr);
  store<u64>(RET_PTR, 0);
  return s;
}

// ---- outgoing strings ---------------------------------------------------------------------------

let scratchPtr: usize = 0;
let scratchCap: usize = 0;

/** A scratch area of at least `size` bytes, valid until the next call (raw memory, never collected). */
export function scratch(size: usize): usize {
  if (size > scratchCap) {
    if (scratchPtr != 0) heap.free(scratchPtr);
    let cap = scratchCap < 256 ? <usize>256 : scratchCap;
    while (cap < size) cap <<= 1;
    scratchPtr = heap.alloc(cap);
    scratchCap = cap;
  }
  return scratchPtr;
}

/** Bytes of `s` in UTF-8. */
@inline export function utf8Length(s: string): usize {
  return <usize>String.UTF8.byteLength(s);
}

/** Writes `s` as UTF-8 at `dst` and returns the number of bytes written. */
@inline export function writeUtf8(s: string, dst: usize): usize {
  return String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, dst);
}

/** Address and length of the strings placed by `stage` (valid until the next `stage`). */
export let staged0: usize = 0;
export let staged0Len: usize = 0;
export let staged1: usize = 0;
export let staged1Len: usize = 0;
export let staged2: usize = 0;
export let staged2Len: usize = 0;

/** Encodes up to three strings back to back in the scratch area, for one hostcall. */
export function stage(a: string, b: string = "", c: string = ""): void {
  staged0Len = utf8Length(a);
  staged1Len = utf8Length(b);
  staged2Len = utf8Length(c);
  const base = scratch(staged0Len + staged1Len + staged2Len);
  staged0 = base;
  staged1 = base + staged0Len;
  staged2 = staged1 + staged1Len;
  writeUtf8(a, staged0);
  writeUtf8(b, staged1);
  writeUtf8(c, staged2);
}

/** Encodes a property path: segments joined by single NUL bytes, no trailing NUL (§3.13). */
export function stagePath(path: string[]): void {
  let total: usize = 0;
  for (let i = 0; i < path.length; i++) total += utf8Length(unchecked(path[i])) + (i > 0 ? 1 : 0);
  const base = scratch(total);
  let at = base;
  for (let i = 0; i < path.length; i++) {
    if (i > 0) store<u8>(at++, 0);
    at += writeUtf8(unchecked(path[i]), at);
  }
  staged0 = base;
  staged0Len = total;
}

/** Address of a buffer's bytes (0 for null), for passing to a hostcall. */
@inline export function bufferPtr(buf: ArrayBuffer | null): usize {
  return buf === null ? 0 : changetype<usize>(buf);
}

/** Length of a buffer (0 for null). */
@inline export function bufferLen(buf: ArrayBuffer | null): usize {
  return buf === null ? 0 : <usize>buf.byteLength;
}
