;; Example filter (ABI 0.2.1): stamps requests with `x-edge-stamp: <plugin configuration>` and
;; responses with `x-served-by: edge-gateway`. Written in WAT so it builds with no toolchain.
(module
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (global $config_ptr (mut i32) (i32.const 0))
  (global $config_len (mut i32) (i32.const 0))
  (data (i32.const 16) "x-edge-stamp")        ;; 12 bytes
  (data (i32.const 32) "x-served-by")         ;; 11 bytes
  (data (i32.const 48) "edge-gateway")        ;; 12 bytes
  ;; A bump allocator that wraps: what the host allocates here is read within the same callback.
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 4096))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; Keep the configuration: copy it below the heap so later allocations cannot overwrite it.
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
      (then
        (global.set $config_len (i32.load (i32.const 4)))
        (if (i32.gt_u (global.get $config_len) (i32.const 1024)) (then (global.set $config_len (i32.const 1024))))
        (memory.copy (i32.const 1024) (i32.load (i32.const 0)) (global.get $config_len))
        (global.set $config_ptr (i32.const 1024))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 0) (i32.const 16) (i32.const 12) (global.get $config_ptr) (global.get $config_len)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 32) (i32.const 11) (i32.const 48) (i32.const 12)))
    (i32.const 0)))
