;; Example filter (ABI 0.2.1): answers 403 itself, without the upstream, for paths that start with
;; "/admin"; every other request continues.
(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) ":path")                 ;; 5 bytes
  (data (i32.const 32) "/admin")                ;; 6 bytes
  (data (i32.const 48) "forbidden by the deny filter\n") ;; 29 bytes
  ;; pairs: 1 header "x-denied-by: deny"
  (data (i32.const 96) "\01\00\00\00\0b\00\00\00\04\00\00\00x-denied-by\00deny\00")
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 4096))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; true when the 6 bytes at $p equal "/admin"
  (func $is_admin (param $p i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $len) (i32.const 6)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.eq (local.get $i) (i32.const 6)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i)))
                    (i32.load8_u (i32.add (i32.const 32) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.eqz (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 0) (i32.const 4)))
      (then
        (if (call $is_admin (i32.load (i32.const 0)) (i32.load (i32.const 4)))
          (then
            (drop (call $reply (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 48) (i32.const 29)
                               (i32.const 96) (i32.const 29) (i32.const -1)))
            (return (i32.const 1))))))
    (i32.const 0)))
