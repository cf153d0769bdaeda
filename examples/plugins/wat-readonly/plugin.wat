;; wat-readonly: an example weir plugin in hand-written WebAssembly text, to show that the ABI
;; needs no SDK and no JSON. It denies object writes (any method but GET and HEAD, on a
;; request that names a key) in buckets whose name starts with "archive-", and passes the
;; rest. Offsets are those documented in sdk/abi: the request record is read at 1024.
;;
;; Build: wat2wasm plugin.wat -o plugin.wasm
(module
  (import "weir_v1" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "weir_v1" "reason_write" (func $reason_write (param i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "objects in archive-* buckets are read-only")
  (data (i32.const 64) "archive-")

  (global $rec i32 (i32.const 1024)) ;; where the record goes

  ;; ABI 1.0
  (func (export "weir_abi_version") (result i32) (i32.const 0x00010000))

  ;; str_off/str_len read string slot $slot (40 + 8*i) of the record.
  (func $str_off (param $slot i32) (result i32)
    (i32.add (global.get $rec) (i32.load (i32.add (global.get $rec) (local.get $slot)))))
  (func $str_len (param $slot i32) (result i32)
    (i32.load (i32.add (global.get $rec) (i32.add (local.get $slot) (i32.const 4)))))

  (func (export "weir_decide") (result i32)
    (local $len i32) (local $room i32) (local $m i32)
    ;; Read the record; if it does not fit, grow memory and read again.
    (local.set $room (i32.sub (i32.mul (memory.size) (i32.const 65536)) (global.get $rec)))
    (local.set $len (call $input_read (global.get $rec) (local.get $room)))
    (if (i32.gt_u (local.get $len) (local.get $room))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $len) (local.get $room)) (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then (unreachable)))
        (local.set $room (i32.sub (i32.mul (memory.size) (i32.const 65536)) (global.get $rec)))
        (local.set $len (call $input_read (global.get $rec) (local.get $room)))))

    ;; A request without a key (slot 88) is not an object write.
    (if (i32.eqz (call $str_len (i32.const 88))) (then (return (i32.const 0))))
    ;; GET and HEAD (slot 120: method) read.
    (local.set $m (i32.load8_u (call $str_off (i32.const 120))))
    (if (i32.or (i32.eq (local.get $m) (i32.const 0x47)) (i32.eq (local.get $m) (i32.const 0x48)))
      (then (return (i32.const 0))))
    ;; Bucket (slot 64) starting with the 8 bytes "archive-"?
    (if (i32.lt_u (call $str_len (i32.const 64)) (i32.const 8)) (then (return (i32.const 0))))
    (if (i64.ne (i64.load (call $str_off (i32.const 64))) (i64.load (i32.const 64)))
      (then (return (i32.const 0))))
    (call $reason_write (i32.const 0) (i32.const 42))
    (i32.const 2)) ;; deny
)
