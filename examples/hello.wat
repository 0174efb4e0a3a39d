;; Hello world for WASI preview 1: writes one line to stdout with fd_write.
;;   wasmc run examples/hello.wat
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; the iovec {buf = 16, len = 13} at 0, the text at 16
  (data (i32.const 0) "\10\00\00\00\0d\00\00\00")
  (data (i32.const 16) "Hello, WASI!\n")
  (func (export "_start")
    ;; fd_write(stdout, iovs = 0, iovs_len = 1, nwritten = 8)
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
