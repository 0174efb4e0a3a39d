;; Instantiation order with several memories: segments apply in order (elements
;; first), a trap keeps the earlier writes to imported memories and tables.
(module $M
  (memory (export "m") 1)
  (memory (export "m64") i64 1)
  (table (export "t") 2 funcref)
  (global (export "g64") i64 (i64.const 1))
  (func (export "ld") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "ld64") (param i64) (result i32) (i32.load8_u 1 (local.get 0)))
  (func (export "tnull") (param i32) (result i32) (ref.is_null (table.get (local.get 0)))))
(register "M" $M)
;; earlier data segments into an imported memory stay written when a later one traps
(assert_trap (module
  (import "M" "m" (memory 1))
  (memory 1)
  (data (memory 0) (i32.const 0) "a")
  (data (memory 1) (i32.const 100) "image")
  (data (memory 0) (i32.const 65536) "b")) "out of bounds memory access")
(assert_return (invoke $M "ld" (i32.const 0)) (i32.const 97))
;; a defined-memory segment that is out of bounds stops the ones after it
(assert_trap (module
  (import "M" "m" (memory 1))
  (memory 1)
  (data (memory 1) (i32.const 65535) "xx")
  (data (memory 0) (i32.const 1) "c")) "out of bounds memory access")
(assert_return (invoke $M "ld" (i32.const 1)) (i32.const 0))
;; the same through a 64-bit imported memory and an extended-const offset
(assert_trap (module
  (import "M" "m64" (memory i64 1))
  (import "M" "g64" (global $g i64))
  (data (i64.add (global.get $g) (i64.const 1)) "d")
  (data (i64.mul (global.get $g) (i64.const 65536)) "e")) "out of bounds memory access")
(assert_return (invoke $M "ld64" (i64.const 2)) (i32.const 100))
;; element segments are applied before data segments
(assert_trap (module
  (import "M" "m" (memory 1))
  (import "M" "t" (table 2 funcref))
  (func $f)
  (elem (i32.const 0) $f)
  (elem (i32.const 2) $f)
  (data (i32.const 2) "z")) "out of bounds table access")
(assert_return (invoke $M "ld" (i32.const 2)) (i32.const 0))
(assert_return (invoke $M "tnull" (i32.const 0)) (i32.const 0))
;; data OOB after elements: the table keeps them
(assert_trap (module
  (import "M" "m" (memory 1))
  (import "M" "t" (table 2 funcref))
  (func $f)
  (elem (i32.const 1) $f)
  (data (i32.const 65536) "z")) "out of bounds memory access")
(assert_return (invoke $M "tnull" (i32.const 1)) (i32.const 0))
;; start function runs after segments; a trap in it keeps them
(assert_trap (module
  (import "M" "m" (memory 1))
  (data (i32.const 3) "s")
  (start $s) (func $s unreachable)) "unreachable")
(assert_return (invoke $M "ld" (i32.const 3)) (i32.const 115))
