/**
 * The guests the benchmarks run, as WAT. Each is shaped like what an SDK emits for the same
 * job (return slots on a shadow stack, a real allocator with free, callbacks the host always
 * calls), so the numbers are what a filter pays, not what a toy pays.
 */

/** Size-class allocator (16-byte classes up to 1 KiB, free lists, bump beyond), like dlmalloc's fast path. */
const ALLOCATOR = `
  ;; Free-list heads for classes 1..64 at 2048 + class*4; heap from 128 KiB; shadow stack below 64 KiB.
  (global $sp (mut i32) (i32.const 65536))
  (global $brk (mut i32) (i32.const 131072))
  (func $malloc (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $class i32) (local $head i32) (local $p i32) (local $have i32)
    (local.set $class (i32.shr_u (i32.add (local.get $n) (i32.const 15)) (i32.const 4)))
    (if (i32.eqz (local.get $class)) (then (local.set $class (i32.const 1))))
    (if (i32.le_u (local.get $class) (i32.const 64))
      (then
        (local.set $head (i32.add (i32.const 2048) (i32.shl (local.get $class) (i32.const 2))))
        (local.set $p (i32.load (local.get $head)))
        (if (local.get $p)
          (then
            (i32.store (local.get $head) (i32.load (local.get $p)))
            (return (local.get $p))))))
    ;; 8-byte header, class in the word before the block.
    (local.set $p (i32.add (global.get $brk) (i32.const 8)))
    (global.set $brk (i32.add (local.get $p) (i32.shl (local.get $class) (i32.const 4))))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (global.get $brk) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $brk) (local.get $have)) (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (i32.store (i32.sub (local.get $p) (i32.const 4)) (local.get $class))
    (local.get $p))
  (func $free (export "free") (param $p i32)
    (local $class i32) (local $head i32)
    (if (i32.eqz (local.get $p)) (then (return)))
    (local.set $class (i32.load (i32.sub (local.get $p) (i32.const 4))))
    (if (i32.gt_u (local.get $class) (i32.const 64)) (then (return)))
    (local.set $head (i32.add (i32.const 2048) (i32.shl (local.get $class) (i32.const 2))))
    (i32.store (local.get $p) (i32.load (local.get $head)))
    (i32.store (local.get $head) (local.get $p)))`;

/** The context callbacks every SDK exports, trivial here: the host calls them on every request. */
const LIFECYCLE = `
  (global $contexts (mut i32) (i32.const 0))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (global.set $contexts (i32.add (global.get $contexts) (i32.const 1))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param $ctx i32)
    (global.set $contexts (i32.sub (global.get $contexts) (i32.const 1))))`;

/** `loop(n)` macro: calls `$hc` n times with a 4/8-byte out slot at 16; returns the sum of statuses. */
function hostcallLoop(exportName: string, callee: string): string {
  return `
  (func (export "${exportName}") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call ${callee} (i32.const 16))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc))`;
}

/**
 * Row 1. A Proxy-Wasm guest whose exports loop over a trivial hostcall; one guest call amortises
 * the vm.call() bookkeeping over N hostcalls so the per-call figure is the hostcall itself.
 */
export const HOSTCALL_GUEST = `(module
  (import "env" "proxy_get_log_level" (func $log_level (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (memory (export "memory") 17)
  ${ALLOCATOR}
  (func (export "proxy_abi_version_0_2_1"))
  ${hostcallLoop('loop_log_level', '$log_level')}
  ${hostcallLoop('loop_time', '$now')}
)`;

/**
 * Row 1 baseline: the same loop calling an empty JS function with the same (i32)->i32 signature,
 * so hostcall / baseline isolates the host's own work from V8's wasm→JS transition.
 */
export const BASELINE_GUEST = `(module
  (import "bench" "noop" (func $noop (param i32) (result i32)))
  (memory (export "memory") 1)
  ${hostcallLoop('loop_noop', '$noop')}
)`;

/**
 * Row 2. What `if let Some(p) = self.get_http_request_header(":path") { self.add_http_request_header("x-path", &p) }`
 * compiles to: return slots on the shadow stack, the value copied in through the allocator, the
 * guest frees it after use.
 */
export const HEADER_FILTER_GUEST = `(module
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_value (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 17)
  (data (i32.const 1024) ":path")
  (data (i32.const 1040) "x-path")
  ${ALLOCATOR}
  ${LIFECYCLE}
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $frame i32) (local $ptr i32) (local $len i32)
    (local.set $frame (i32.sub (global.get $sp) (i32.const 16)))
    (global.set $sp (local.get $frame))
    (if (i32.eqz (call $get_value (i32.const 0) (i32.const 1024) (i32.const 5)
                   (local.get $frame) (i32.add (local.get $frame) (i32.const 4))))
      (then
        (local.set $ptr (i32.load (local.get $frame)))
        (local.set $len (i32.load offset=4 (local.get $frame)))
        (drop (call $add_value (i32.const 0) (i32.const 1040) (i32.const 6) (local.get $ptr) (local.get $len)))
        (call $free (local.get $ptr))))
    (global.set $sp (i32.add (local.get $frame) (i32.const 16)))
    (i32.const 0))
)`;

// ---- the large module (rows 3 and 4) ---------------------------------------------------------

/** Deterministic constants so two runs build byte-identical modules. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

/**
 * Six body shapes found in SDK-built filters: a byte-hash loop, a copy/transform loop, a
 * br_table dispatcher with calls, an i64 mixing round, a struct walker with call_indirect, and
 * f64 arithmetic. Each calls earlier functions of its shape, as real call graphs do.
 */
function largeFunction(i: number, rnd: () => number): string {
  const k = () => rnd() & 0x7fffffff;
  const prev = (shape: number) => (i - 6 >= 0 && (i - 6) % 6 === shape ? `$f${i - 6}` : null);
  switch (i % 6) {
    case 0: {
      const callee = prev(0);
      return `(func $f${i} (type $hash) (param $p i32) (param $len i32) (result i32)
    (local $h i32) (local $end i32)
    (local.set $h (i32.const ${k()}))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $p))) (i32.const 16777619)))
      (local.set $h (i32.rotl (local.get $h) (i32.const ${1 + (k() % 31)})))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    ${callee ? `(local.set $h (i32.xor (local.get $h) (call ${callee} (i32.const ${4096 + (k() % 1024)}) (i32.const ${k() % 64}))))` : ''}
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const ${1 + (k() % 16)}))))`;
    }
    case 1:
      return `(func $f${i} (param $dst i32) (param $src i32) (param $n i32) (result i32)
    (local $i i32) (local $b i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $b) (i32.const 65)) (i32.le_u (local.get $b) (i32.const 90)))
        (then (local.set $b (i32.or (local.get $b) (i32.const 32)))))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (i32.xor (local.get $b) (i32.const ${k() % 256})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.add (local.get $n) (i32.const ${k() % 4096})))`;
    case 2: {
      const callee = prev(2);
      const call = callee ? `(call ${callee} (i32.const ${k() % 8}) (local.get $a) (local.get $b))` : `(i32.const ${k()})`;
      return `(func $f${i} (type $dispatch) (param $op i32) (param $a i32) (param $b i32) (result i32)
    (block $c7 (block $c6 (block $c5 (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
      (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 (i32.and (local.get $op) (i32.const 7))))
      (return (i32.add (local.get $a) (i32.const ${k()}))))
      (return (i32.mul (local.get $a) (local.get $b))))
      (return (i32.xor (i32.shl (local.get $a) (i32.const ${k() % 31})) (local.get $b))))
      (return (select (local.get $a) (local.get $b) (i32.lt_s (local.get $a) (local.get $b)))))
      (return (i32.sub ${call} (i32.const ${k()}))))
      (return (i32.load (i32.and (i32.add (local.get $a) (i32.const ${k() % 4096})) (i32.const 65532)))))
      (return (i32.div_u (local.get $a) (i32.or (local.get $b) (i32.const 1)))))
    (i32.popcnt (i32.or (local.get $a) (i32.const ${k()}))))`;
    }
    case 3:
      return `(func $f${i} (param $x i64) (result i64)
    (local $v0 i64) (local $v1 i64)
    (local.set $v0 (i64.xor (local.get $x) (i64.const 0x${k().toString(16).padStart(8, '0')}${k().toString(16).padStart(8, '0')})))
    (local.set $v1 (i64.add (local.get $x) (i64.const ${k()})))
    (local.set $v0 (i64.add (local.get $v0) (local.get $v1)))
    (local.set $v1 (i64.rotl (local.get $v1) (i64.const 13)))
    (local.set $v1 (i64.xor (local.get $v1) (local.get $v0)))
    (local.set $v0 (i64.rotl (local.get $v0) (i64.const 32)))
    (local.set $v0 (i64.mul (local.get $v0) (i64.const ${k()})))
    (local.set $v1 (i64.xor (local.get $v1) (i64.shr_u (local.get $v0) (i64.const ${1 + (k() % 63)}))))
    (i64.xor (local.get $v0) (local.get $v1)))`;
    case 4: {
      return `(func $f${i} (param $ptr i32) (result i32)
    (local $tag i32) (local $len i32) (local $r i32)
    (local.set $tag (i32.load (local.get $ptr)))
    (local.set $len (i32.load offset=4 (local.get $ptr)))
    (if (i32.gt_u (local.get $len) (i32.const ${256 + (k() % 4096)}))
      (then (return (i32.const -1))))
    (local.set $r (call_indirect (type $dispatch)
      (local.get $tag) (local.get $len) (i32.load offset=8 (local.get $ptr))
      (i32.and (local.get $tag) (i32.const 63))))
    (i32.store offset=12 (local.get $ptr) (local.get $r))
    (if (result i32) (i32.eqz (local.get $r))
      (then (i32.const ${k() % 1000}))
      (else (i32.add (local.get $r) (i32.load offset=16 (local.get $ptr))))))`;
    }
    default:
      return `(func $f${i} (param $x f64) (param $y f64) (result f64)
    (local $t f64)
    (local.set $t (f64.add (f64.mul (local.get $x) (f64.const ${(k() % 1000) / 7})) (local.get $y)))
    (local.set $t (f64.add (f64.mul (local.get $t) (local.get $x)) (f64.const ${(k() % 1000) / 13})))
    (if (f64.gt (local.get $t) (f64.const 1e9)) (then (local.set $t (f64.sqrt (local.get $t)))))
    (f64.div (local.get $t) (f64.add (f64.abs (local.get $y)) (f64.const 1))))`;
  }
}

/** Messages and format strings, as `.rodata` holds them (~6 KB). */
function rodata(rnd: () => number): string {
  const words = ['invalid', 'header', 'token', 'expired', 'route', 'upstream', 'config', 'missing', 'field', 'value',
    'json', 'parse', 'error', 'at', 'line', 'column', 'unexpected', 'end', 'of', 'input', 'panicked', 'unwrap'];
  let text = '';
  while (text.length < 6000) text += words[rnd() % words.length] + (rnd() % 7 === 0 ? '\\n' : ' ');
  return text;
}

/**
 * A Proxy-Wasm module of `count` generated functions: ABI marker, allocator, lifecycle callbacks,
 * realistic imports, a function table for call_indirect, 6 KB of data, 17 pages of memory.
 */
export function largeModuleWat(count: number): string {
  const rnd = lcg(0x5eed);
  const funcs: string[] = [];
  for (let i = 0; i < count; i++) funcs.push(largeFunction(i, rnd));
  const dispatchers: string[] = [];
  for (let i = 2; i < count && dispatchers.length < 64; i += 6) dispatchers.push(`$f${i}`);
  while (dispatchers.length < 64) dispatchers.push(dispatchers[dispatchers.length % Math.max(1, dispatchers.length)] ?? '$f2');
  return `(module
  (type $hash (func (param i32 i32) (result i32)))
  (type $dispatch (func (param i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc_metric (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 17)
  (table 64 funcref)
  (elem (i32.const 0) func ${dispatchers.join(' ')})
  (data (i32.const 4096) "${rodata(rnd)}")
  ${ALLOCATOR}
  ${LIFECYCLE}
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize")
    (drop (call $f0 (i32.const 4096) (i32.const 256))))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (i32.and (call $f2 (local.get $n) (local.get $ctx) (local.get $eos)) (i32.const 0)))
  ${funcs.join('\n  ')}
)`;
}
