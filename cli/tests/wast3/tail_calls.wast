;; Tail calls: 10 million direct and indirect return_calls in constant stack,
;; return_call_indirect traps (type mismatch, null, out of bounds), multi-value
;; and v128 through a tail call, ping-pong between instances through a shared
;; table, and tail calls into a host function (also from the start function).
;; deep tail recursion, 10M
(module
  (func $count (export "count") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.const 42))
      (else (return_call $count (i64.sub (local.get 0) (i64.const 1))))))
  (type $t (func (param i64 i64) (result i64)))
  (table 2 funcref)
  (elem (i32.const 0) $acc)
  (func $acc (type $t)
    (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
      (else (return_call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i64.add (local.get 1) (i64.const 2)) (i32.const 0)))))
  (func (export "acc") (param i64) (result i64) (call $acc (local.get 0) (i64.const 0)))
  (type $other (func (param i32) (result i32)))
  (func (export "mismatch") (result i32) (return_call_indirect (type $other) (i32.const 1) (i32.const 0)))
  (func (export "null") (result i32) (return_call_indirect (type $other) (i32.const 1) (i32.const 1)))
  (func (export "oob") (result i32) (return_call_indirect (type $other) (i32.const 1) (i32.const 2)))
  (func (export "oob_big") (result i32) (return_call_indirect (type $other) (i32.const 1) (i32.const -1)))
  ;; multi-value through tail call
  (func $mv (param i32) (result i32 i64 f64) (local.get 0) (i64.const 7) (f64.const 1.5))
  (func (export "mv") (param i32) (result i32 i64 f64) (return_call $mv (local.get 0)))
  ;; v128 through tail call
  (func $vv (param v128 v128) (result v128) (i32x4.add (local.get 0) (local.get 1)))
  (func (export "vv") (result v128) (return_call $vv (v128.const i32x4 1 2 3 4) (v128.const i32x4 10 20 30 40)))
  ;; non-tail recursion still exhausts
  (func $rec (export "rec") (param i32) (result i32) (i32.add (call $rec (local.get 0)) (i32.const 1)))
)
(assert_return (invoke "count" (i64.const 10000000)) (i64.const 42))
(assert_return (invoke "acc" (i64.const 5000000)) (i64.const 10000000))
(assert_trap (invoke "mismatch") "indirect call type mismatch")
(assert_trap (invoke "null") "uninitialized element")
(assert_trap (invoke "oob") "undefined element")
(assert_trap (invoke "oob_big") "undefined element")
(assert_return (invoke "mv" (i32.const 3)) (i32.const 3) (i64.const 7) (f64.const 1.5))
(assert_return (invoke "vv") (v128.const i32x4 11 22 33 44))
(assert_exhaustion (invoke "rec" (i32.const 0)) "call stack exhausted")
(assert_return (invoke "count" (i64.const 1)) (i64.const 42))

;; tail calls across instances, through a shared table, 2M hops
(module $T
  (table (export "t") 4 funcref)
  (memory (export "m") 1))
(register "T" $T)
(module $A
  (type $t (func (param i64 i64) (result i64)))
  (import "T" "t" (table 4 funcref))
  (elem (i32.const 0) $ping)
  (func $ping (export "ping") (type $t)
    (if (result i64) (i64.eqz (local.get 0)) (then (local.get 1))
      (else (return_call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i64.add (local.get 1) (i64.const 1)) (i32.const 1)))))
)
(register "A" $A)
(module $B
  (type $t (func (param i64 i64) (result i64)))
  (import "T" "t" (table 4 funcref))
  (import "A" "ping" (func $ping (type $t)))
  (elem (i32.const 1) $pong)
  (func $pong (export "pong") (type $t)
    (if (result i64) (i64.eqz (local.get 0)) (then (i64.mul (local.get 1) (i64.const 1000)))
      (else (return_call $ping (i64.sub (local.get 0) (i64.const 1)) (i64.add (local.get 1) (i64.const 1))))))
  (func (export "go") (param i64) (result i64) (return_call $ping (local.get 0) (i64.const 0)))
)
(assert_return (invoke $B "go" (i64.const 2000000)) (i64.const 2000000))
(assert_return (invoke $B "go" (i64.const 3)) (i64.const 3000))
(assert_return (invoke $A "ping" (i64.const 4) (i64.const 0)) (i64.const 4))

;; tail call into an imported spectest host function, and an imported func in a table
(module
  (import "spectest" "print_i32" (func $p (param i32)))
  (type $v (func (param i32)))
  (table 1 funcref)
  (elem (i32.const 0) $p)
  (func (export "direct") (return_call $p (i32.const 1)))
  (func (export "indirect") (return_call_indirect (type $v) (i32.const 2) (i32.const 0)))
  (start $s)
  (func $s (return_call $p (i32.const 3)))
)
(assert_return (invoke "direct"))
(assert_return (invoke "indirect"))

;; Tail calls that change the number of stack arguments, from the outermost
;; frame (called by the host) and alternating a million times: the stack
;; must neither creep nor be corrupted.
(module
  (func $wide (param $n i64) (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n))
      (then
        (i64.add (i64.add (i64.add (local.get 1) (i64.mul (local.get 2) (i64.const 2)))
                          (i64.add (i64.mul (local.get 8) (i64.const 8)) (i64.mul (local.get 14) (i64.const 14))))
                 (i64.mul (local.get 15) (i64.const 15))))
      (else (return_call $narrow (i64.sub (local.get $n) (i64.const 1)) (local.get 15)))))
  (func $narrow (param $n i64) (param $x i64) (result i64)
    (return_call $wide (local.get $n) (local.get $x) (i64.const 2) (i64.const 3) (i64.const 4) (i64.const 5)
      (i64.const 6) (i64.const 7) (i64.const 8) (i64.const 9) (i64.const 10) (i64.const 11) (i64.const 12)
      (i64.const 13) (i64.const 14) (i64.add (local.get $x) (i64.const 1))))
  (func (export "fan") (param i64 i64) (result i64) (return_call $narrow (local.get 0) (local.get 1)))
  (func (export "fan_nested") (param i64 i64) (result i64)
    (i64.add (call $narrow (local.get 0) (local.get 1)) (i64.const 1000)))
)
;; n = 0: x=1: 1 + 4 + 64 + 196 + 15*2 = 295
(assert_return (invoke "fan" (i64.const 0) (i64.const 1)) (i64.const 295))
;; each round trip adds 1 to x: after n rounds x = 1 + n, and 16x + 279
(assert_return (invoke "fan" (i64.const 1000000) (i64.const 1)) (i64.const 16000295))
(assert_return (invoke "fan_nested" (i64.const 1000000) (i64.const 1)) (i64.const 16001295))

;; Recursion that alternates a call and a tail call still exhausts the
;; stack cleanly, also when each tail call passes twenty stack arguments.
(module
  (func $f (export "f") (param i32) (result i32) (i32.add (call $g (local.get 0)) (i32.const 1)))
  (func $g (param i32) (result i32) (return_call $f (local.get 0)))
  (func $h (export "h") (param i64) (result i64) (i64.add (call $wide (local.get 0) (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4) (i64.const 5) (i64.const 6) (i64.const 7) (i64.const 8) (i64.const 9) (i64.const 10) (i64.const 11) (i64.const 12) (i64.const 13) (i64.const 14) (i64.const 15) (i64.const 16) (i64.const 17) (i64.const 18) (i64.const 19)) (i64.const 1)))
  (func $wide (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64) (return_call $h (local.get 19)))
)
(assert_exhaustion (invoke "f" (i32.const 0)) "call stack exhausted")
(assert_exhaustion (invoke "h" (i64.const 0)) "call stack exhausted")
(assert_exhaustion (invoke "f" (i32.const 0)) "call stack exhausted")

;; v128 and f64 stack arguments (more than the vector registers) through
;; direct and indirect tail calls.
(module
  (func $many (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 f64 v128) (result v128)
    (i32x4.add (i32x4.add (local.get 0) (local.get 9))
      (i32x4.add (local.get 10) (i32x4.add (local.get 12) (i32x4.splat (i32.trunc_f64_s (local.get 11)))))))
  (func $one (param i32) (result v128)
    (return_call $many (i32x4.splat (local.get 0)) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)
      (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)
      (v128.const i32x4 10 20 30 40) (v128.const i32x4 100 200 300 400) (f64.const 7) (v128.const i32x4 1000 2000 3000 4000)))
  (func (export "go") (param i32) (result v128) (return_call $one (local.get 0)))
  (func (export "nested") (param i32) (result v128) (i32x4.add (call $one (local.get 0)) (v128.const i32x4 1 1 1 1)))
  (type $t (func (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 v128 f64 v128) (result v128)))
  (table 1 funcref) (elem (i32.const 0) $many)
  (func (export "ind") (param i32) (result v128)
    (return_call_indirect (type $t) (i32x4.splat (local.get 0)) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)
      (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0) (v128.const i64x2 0 0)
      (v128.const i32x4 10 20 30 40) (v128.const i32x4 100 200 300 400) (f64.const 7) (v128.const i32x4 1000 2000 3000 4000) (i32.const 0)))
)
(assert_return (invoke "go" (i32.const 1)) (v128.const i32x4 1118 2228 3338 4448))
(assert_return (invoke "nested" (i32.const 1)) (v128.const i32x4 1119 2229 3339 4449))
(assert_return (invoke "ind" (i32.const 2)) (v128.const i32x4 1119 2229 3339 4449))
