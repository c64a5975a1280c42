/** WAT → Wasm for test guests (one tiny guest per scenario, as cpp-host's test_data). */
import wabtInit from 'wabt';

const wabt = await wabtInit();

/** `features` turns on more wabt proposals (e.g. `{ exceptions: true, simd: true, threads: true, tail_call: true }`). */
export function watToBytes(text: string, name = 'guest.wat', features: Record<string, boolean> = {}): Uint8Array {
  const parsed = wabt.parseWat(name, text, { mutable_globals: true, sat_float_to_int: true, sign_extension: true, bulk_memory: true, ...features });
  try {
    parsed.resolveNames();
    parsed.validate();
    return new Uint8Array(parsed.toBinary({ write_debug_names: true }).buffer);
  } finally {
    parsed.destroy();
  }
}

export function compileWat(text: string, name?: string): WebAssembly.Module {
  return new WebAssembly.Module(watToBytes(text, name) as Uint8Array<ArrayBuffer>);
}

/**
 * A minimal Proxy-Wasm guest: exported memory (2 pages), a bump allocator exported as
 * `proxy_on_memory_allocate` (or `malloc`), the ABI marker, plus `body` (imports must come first
 * in WAT, so pass them in `imports`). Heap starts at 64 KiB and wraps when full (tests only).
 * Static data goes at offsets below 64 KiB through `(data (i32.const N) "...")` in `body`.
 */
export function guestWat(opts: { imports?: string; body: string; abi?: '0_1_0' | '0_2_0' | '0_2_1'; allocator?: string }): string {
  return `(module
  ${opts.imports ?? ''}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func $alloc (export "${opts.allocator ?? 'proxy_on_memory_allocate'}") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 65536))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_${opts.abi ?? '0_2_1'}"))
  ${opts.body}
)`;
}
