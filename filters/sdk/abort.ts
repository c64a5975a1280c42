/**
 * The abort handler every filter is built with (`--use abort=filters/sdk/abort/proxyAbort`): it
 * replaces AssemblyScript's `env.abort` import, which Envoy does not provide. It logs
 * "abort: <message> at <file>:<line>:<column>" at critical level, which hosts keep as the reason
 * the VM failed (edge-gateway: "guest said: …"), then traps.
 *
 * It allocates nothing: an abort may come from the allocator itself (out of memory), so the
 * message is encoded into a static buffer, truncated at 1 KiB.
 */
import { proxy_log } from "./imports";

const CAPACITY: usize = 1024;
const buffer = memory.data(1024);
const digits = memory.data(10);

/** Appends a UTF-16 string as UTF-8 at `at`; returns the new end (never past the buffer). */
function put(at: usize, s: usize, len: usize): usize {
  const end = buffer + CAPACITY;
  for (let i: usize = 0; i < len; i++) {
    let c = <u32>load<u16>(s + (i << 1));
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < len) {
      const d = <u32>load<u16>(s + ((i + 1) << 1));
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    const need: usize = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (at + need > end) return at;
    if (need == 1) {
      store<u8>(at, <u8>c);
    } else if (need == 2) {
      store<u8>(at, <u8>(0xc0 | (c >> 6)));
      store<u8>(at + 1, <u8>(0x80 | (c & 0x3f)));
    } else if (need == 3) {
      store<u8>(at, <u8>(0xe0 | (c >> 12)));
      store<u8>(at + 1, <u8>(0x80 | ((c >> 6) & 0x3f)));
      store<u8>(at + 2, <u8>(0x80 | (c & 0x3f)));
    } else {
      store<u8>(at, <u8>(0xf0 | (c >> 18)));
      store<u8>(at + 1, <u8>(0x80 | ((c >> 12) & 0x3f)));
      store<u8>(at + 2, <u8>(0x80 | ((c >> 6) & 0x3f)));
      store<u8>(at + 3, <u8>(0x80 | (c & 0x3f)));
    }
    at += need;
  }
  return at;
}

function putString(at: usize, s: string | null): usize {
  if (s === null) return at;
  return put(at, changetype<usize>(s), <usize>s.length);
}

/** Appends the decimal digits of `n`. */
function putNumber(at: usize, n: u32): usize {
  let count: usize = 0;
  do {
    store<u8>(digits + count++, <u8>(0x30 + n % 10));
    n /= 10;
  } while (n != 0);
  while (count > 0 && at < buffer + CAPACITY) store<u8>(at++, load<u8>(digits + --count));
  return at;
}

/** Logs the abort at critical level and traps; never returns. */
export function proxyAbort(message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0): void {
  let at = putString(buffer, "abort: ");
  at = putString(at, message === null ? "(no message)" : message);
  if (fileName !== null) {
    at = putString(at, " at ");
    at = putString(at, fileName);
    at = putString(at, ":");
    at = putNumber(at, line);
    at = putString(at, ":");
    at = putNumber(at, column);
  }
  proxy_log(5, buffer, at - buffer);
  unreachable();
}
