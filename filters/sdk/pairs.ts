/**
 * The pairs codec for header maps (reference §5.10):
 *
 *   u32 LE count N, then N × (u32 LE key length, u32 LE value length),
 *   then N × (key bytes, 0x00, value bytes, 0x00)
 *
 * Used by get/set_header_map_pairs and by the headers and trailers of local responses, http
 * calls and gRPC calls.
 */
import { Header } from "./types";
import { RET_LEN, RET_PTR, utf8Length, writeUtf8 } from "./memory";

/** Serialises `pairs` in map order (an empty list is the 4-byte count 0, as Rust and Go send). */
export function serializePairs(pairs: Header[]): ArrayBuffer {
  const n = pairs.length;
  let size: usize = 4 + 8 * <usize>n;
  for (let i = 0; i < n; i++) {
    const h = unchecked(pairs[i]);
    size += utf8Length(h.name) + utf8Length(h.value) + 2;
  }
  const out = new ArrayBuffer(<i32>size);
  const base = changetype<usize>(out);
  store<u32>(base, <u32>n);
  let strings = base + 4 + 8 * <usize>n;
  for (let i = 0; i < n; i++) {
    const h = unchecked(pairs[i]);
    const keyLen = writeUtf8(h.name, strings);
    strings += keyLen;
    store<u8>(strings++, 0);
    const valueLen = writeUtf8(h.value, strings);
    strings += valueLen;
    store<u8>(strings++, 0);
    store<u32>(base + 4 + 8 * <usize>i, <u32>keyLen);
    store<u32>(base + 8 + 8 * <usize>i, <u32>valueLen);
  }
  return out;
}

/**
 * Decodes `len` bytes at `ptr`. A buffer shorter than the count word is an empty map; anything
 * else malformed (lengths past the end, a missing NUL) aborts, since only the host produces it.
 */
export function deserializePairs(ptr: usize, len: usize): Header[] {
  if (ptr == 0 || len < 4) return [];
  const n = <usize>load<u32>(ptr);
  const end = ptr + len;
  if (n > (len - 4) / 10) abort("malformed header map: " + n.toString() + " pairs in " + len.toString() + " bytes");
  const out = new Array<Header>(<i32>n);
  let strings = ptr + 4 + 8 * n;
  for (let i: usize = 0; i < n; i++) {
    const keyLen = <usize>load<u32>(ptr + 4 + 8 * i);
    const valueLen = <usize>load<u32>(ptr + 8 + 8 * i);
    if (keyLen + valueLen + 2 > end - strings) abort("malformed header map: pair " + i.toString() + " runs past the end");
    const name = String.UTF8.decodeUnsafe(strings, keyLen);
    strings += keyLen;
    if (load<u8>(strings++) != 0) abort("malformed header map: key " + i.toString() + " is not NUL-terminated");
    const value = String.UTF8.decodeUnsafe(strings, valueLen);
    strings += valueLen;
    if (load<u8>(strings++) != 0) abort("malformed header map: value " + i.toString() + " is not NUL-terminated");
    unchecked(out[<i32>i] = new Header(name, value));
  }
  return out;
}

/** The map the host returned through the return slots; frees the host's block. */
export function takePairs(): Header[] {
  const ptr = <usize>load<u32>(RET_PTR);
  if (ptr == 0) return [];
  const pairs = deserializePairs(ptr, <usize>load<u32>(RET_LEN));
  heap.free(ptr);
  store<u64>(RET_PTR, 0);
  return pairs;
}
