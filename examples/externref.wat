;; Fixture for `wasmc inspect`: a function that holds an `externref` across a
;; call, so the artifact carries a stack map (one safepoint, one slot), and a
;; host import taking an `externref`.
(module $externref
  (import "host" "observe" (func $observe (param externref)))
  (table $refs (export "refs") 2 externref)
  (global $last (export "last") (mut externref) (ref.null extern))

  (func $g)

  ;; `$r` is live across the call to `$g`: one safepoint, one slot.
  (func $keep (export "keep") (param $r externref) (result externref)
    (call $g)
    (local.get $r))

  ;; Passes the reference to the host.
  (func $pass (export "pass") (param $r externref)
    (call $observe (local.get $r)))

  ;; Stores into a table and a global: precise reference counting builtins.
  (func $store (export "store") (param $r externref)
    (table.set $refs (i32.const 0) (local.get $r))
    (global.set $last (local.get $r)))
)
