/** WAT → Wasm bytes for the benchmark guests (kept apart from test/helpers so bench/ stands alone). */
import wabtInit from 'wabt';

const wabt = await wabtInit();

/**
 * Assembles `text`; `names` keeps the name section, as SDK builds do by default (it is part of
 * what a real module weighs and what V8 decodes).
 */
export function watToBytes(text: string, name = 'bench.wat', names = true): Uint8Array<ArrayBuffer> {
  const parsed = wabt.parseWat(name, text, { mutable_globals: true, sat_float_to_int: true, sign_extension: true, bulk_memory: true });
  try {
    parsed.resolveNames();
    parsed.validate();
    const { buffer } = parsed.toBinary({ write_debug_names: names });
    return new Uint8Array(buffer);
  } finally {
    parsed.destroy();
  }
}

/**
 * Appends a custom section "bench-nonce" with 8 payload bytes at the end of `bytes`, and returns
 * the copy plus the offset of those 8 bytes. Changing them makes the module distinct for V8's
 * native-module cache (keyed by the wire bytes) without changing what is compiled.
 */
export function withNonceSection(bytes: Uint8Array): { bytes: Uint8Array<ArrayBuffer>; nonceAt: number } {
  const name = new TextEncoder().encode('bench-nonce');
  const payload = 1 + name.length + 8; // name length (1-byte LEB) + name + nonce
  const section = new Uint8Array(2 + payload);
  section[0] = 0; // custom section id
  section[1] = payload; // < 128: one-byte LEB
  section[2] = name.length;
  section.set(name, 3);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes, 0);
  out.set(section, bytes.length);
  return { bytes: out, nonceAt: bytes.length + 3 + name.length };
}
