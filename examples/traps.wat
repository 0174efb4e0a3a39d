;; Fixture for `wasmc inspect`: functions that trap in each of the common ways,
;; a memory with active and passive data segments, and a table filled by an
;; element segment. Compile it with `--bounds-checks explicit` to also get
;; explicit out-of-bounds trap sites for the loads.
(module $traps
  (type $binop (func (param i32 i32) (result i32)))
  (memory (export "memory") 1 4)
  (data (i32.const 0) "\01\02\03\04")
  (data (i32.const 1024) "hello from the data segment")
  (data $later "passive bytes")

  (table $t (export "table") 4 funcref)
  (elem (table $t) (i32.const 0) func $div $rem $add)

  ;; IntegerDivisionByZero and IntegerOverflow.
  (func $div (export "div") (type $binop)
    (i32.div_s (local.get 0) (local.get 1)))

  ;; IntegerDivisionByZero.
  (func $rem (export "rem") (type $binop)
    (i32.rem_u (local.get 0) (local.get 1)))

  (func $add (type $binop)
    (i32.add (local.get 0) (local.get 1)))

  ;; UnreachableCodeReached.
  (func $boom (export "boom")
    (unreachable))

  ;; MemoryOutOfBounds: a guard-page fault site or an explicit check.
  (func $load (export "load") (param i32) (result i32)
    (i32.load (local.get 0)))

  ;; call_indirect: table bounds, null entry and signature checks.
  (func $apply (export "apply") (param i32 i32 i32) (result i32)
    (call_indirect (type $binop) (local.get 1) (local.get 2) (local.get 0)))

  ;; memory.init of the passive segment goes through a builtin.
  (func $init (export "init") (param i32)
    (memory.init $later (local.get 0) (i32.const 0) (i32.const 13)))
)
