//! Hostile WASI guests written in WAT, run through `wasmc run --invoke`:
//! each export calls one `wasi_snapshot_preview1` function with the
//! arguments a buggy or malicious program might pass. A pointer or length
//! outside memory is a trap (the witx rule Wasmtime follows: "If an
//! out-of-bounds pointer is passed to a function and the function needs to
//! dereference it, the function shall trap"), reported once, naming the
//! WASI function, with status 134; never a panic or a signal.

use crate::common::{tmp_dir, wasmc};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The guest: one export per probe, each returning the errno (or what the
/// probe reads back).
const GUEST: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "hello\n")
  ;; 0xffffffff iovecs: the array runs past the end of memory.
  (func (export "iovs_len_huge") (result i32)
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const -1) (i32.const 100)))
  ;; One iovec whose buffer runs past the end of memory.
  (func (export "iov_buf_past_end") (result i32)
    (i32.store (i32.const 0) (i32.const 131066))
    (i32.store (i32.const 4) (i32.const 100))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))
  ;; The written count's pointer at memory_size - 2.
  (func (export "result_ptr_past_end") (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 131070)))
  (func (export "random_huge") (result i32)
    (call $random_get (i32.const 0) (i32.const -1)))
  ;; The last byte of memory is in bounds.
  (func (export "random_last_byte") (result i32)
    (call $random_get (i32.const 131071) (i32.const 1)))
  (func (export "exit") (param i32)
    (call $proc_exit (local.get 0)))
  ;; Writes $size of the 60,000 bytes at 65536 (a byte pattern) to stdout
  ;; $n times; exits with the errno of a failed write, 99 after a short one.
  (func (export "bulk") (param $n i32) (param $size i32)
    (local $e i32) (local $i i32)
    (loop $fill
      (i32.store8 (i32.add (i32.const 65536) (local.get $i)) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 60000))))
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (local.get $size))
    (loop $l
      (local.set $e (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))
      (if (local.get $e) (then (call $proc_exit (local.get $e))))
      (if (i32.ne (i32.load (i32.const 100)) (local.get $size))
        (then (call $proc_exit (i32.const 99))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n))))
  (func (export "raise") (result i32) (call $proc_raise (i32.const 6)))
  (func (export "yield") (result i32) (call $sched_yield))
  ;; Two readings of clock $id with precision $p: the errno of the first
  ;; that fails, else 1000 + 1 if the second is not before the first (and
  ;; neither is 0).
  (func (export "clock") (param $id i32) (param $p i64) (result i32)
    (local $e i32)
    (local.set $e (call $clock_time_get (local.get $id) (local.get $p) (i32.const 200)))
    (if (local.get $e) (then (return (local.get $e))))
    (local.set $e (call $clock_time_get (local.get $id) (local.get $p) (i32.const 208)))
    (if (local.get $e) (then (return (local.get $e))))
    (i32.add (i32.const 1000)
      (i32.and
        (i64.ne (i64.load (i32.const 200)) (i64.const 0))
        (i64.ge_u (i64.load (i32.const 208)) (i64.load (i32.const 200)))))))
"#;

/// `wasmc run --invoke NAME guest.wat ARGS...`: (status, stdout, stderr).
fn invoke(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    // Written once: the tests run in parallel.
    static WAT: OnceLock<PathBuf> = OnceLock::new();
    let wat = WAT.get_or_init(|| {
        let wat = tmp_dir("wasi-guest").join("guest.wat");
        std::fs::write(&wat, GUEST).unwrap();
        wat
    });
    let mut all = vec!["run", "--invoke", name, wat.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = wasmc(&all);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    )
}

#[test]
fn out_of_bounds_pointers_trap_once_naming_the_function() {
    for (name, function, what) in [
        ("iovs_len_huge", "fd_write", "Pointer out of bounds"),
        ("iov_buf_past_end", "fd_write", "Pointer out of bounds"),
        ("result_ptr_past_end", "fd_write", "Pointer out of bounds"),
        ("random_huge", "random_get", "Pointer out of bounds"),
    ] {
        let (code, _, stderr) = invoke(name, &[]);
        assert_eq!(code, Some(134), "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: calling `{name}`: ")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("wasi_snapshot_preview1::{function}")),
            "{name}: {stderr}"
        );
        // Said once: not once per layer of the error's chain.
        assert_eq!(stderr.matches(what).count(), 1, "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    }
    let (code, out, stderr) = invoke("random_last_byte", &[]);
    assert_eq!((code, out.as_str()), (Some(0), "0\n"), "{stderr}");
}

#[test]
fn proc_exit_statuses() {
    for status in ["0", "1", "125"] {
        let (code, _, stderr) = invoke("exit", &[status]);
        assert_eq!(code, Some(status.parse().unwrap()), "{stderr}");
        assert_eq!(stderr, "");
    }
    // WASI statuses stop at 125: a larger one (also one that is negative as
    // an i32) is the host function failing, said once.
    for status in ["126", "255", "256", "-1"] {
        let (code, _, stderr) = invoke("exit", &[status]);
        assert_eq!(code, Some(134), "exit({status}): {stderr}");
        assert_eq!(
            stderr.matches("exit with invalid exit status").count(),
            1,
            "exit({status}): {stderr}"
        );
        assert!(
            stderr.contains("wasi_snapshot_preview1::proc_exit"),
            "{stderr}"
        );
    }
}

/// Prints the environment's strings (as `environ_get` gives them,
/// NUL-terminated) to stdout.
const PRINT_ENV: &str = r#"
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $get (i32.const 1024) (i32.const 4096)))
    (i32.store (i32.const 8) (i32.const 4096))
    (i32.store (i32.const 12) (i32.load (i32.const 4)))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))))
"#;

#[test]
fn env_name_without_value_passes_wasmcs_own_value() {
    // As `wasmtime run`: `--env NAME=VALUE` sets, `--env NAME` passes the
    // variable wasmc was given (nothing else is inherited), or nothing
    // when it has none; `=` may appear in a value, a value may be empty.
    let wat = tmp_dir("wasi-guest").join("print-env.wat");
    std::fs::write(&wat, PRINT_ENV).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .args([
            "run",
            "--env",
            "A=b=c",
            "--env",
            "EMPTY=",
            "--env",
            "FROM_HOST",
        ])
        .args(["--env", "UNSET_ON_HOST", "--env", "LAST=1"])
        .arg(&wat)
        .env_clear()
        .env("FROM_HOST", "host value")
        .env("NOT_ASKED_FOR", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "A=b=c\0EMPTY=\0FROM_HOST=host value\0LAST=1\0"
    );
}

/// `wasmc run --invoke NAME guest.wat ARGS...` with stdout piped to `read`.
fn invoke_reading<R>(
    name: &str,
    args: &[&str],
    read: impl FnOnce(std::process::ChildStdout) -> R,
) -> (Option<i32>, R, String) {
    invoke(name, &[]); // writes the .wat
    let wat = tmp_dir("wasi-guest").join("guest.wat");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmc"))
        .args(["run", "--invoke", name])
        .arg(&wat)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let r = read(child.stdout.take().unwrap());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    (o.status.code(), r, stderr)
}

#[test]
fn megabytes_to_a_slow_reader_arrive_whole() {
    use std::io::Read;
    // 8.6 MB in 60,000-byte writes, read 4 KiB at a time with pauses:
    // every write is whole (the pipe blocks, nothing is dropped).
    let n = 144;
    let (code, got, stderr) = invoke_reading("bulk", &[&n.to_string(), "60000"], |mut out| {
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match out.read(&mut buf).unwrap() {
                0 => break got,
                k => got.extend_from_slice(&buf[..k]),
            }
            if got.len() % (256 << 10) < 4096 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    });
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(got.len(), n * 60000);
    let chunk: Vec<u8> = (0..60000).map(|i| i as u8).collect();
    assert!(got.chunks(60000).all(|c| c == chunk));
}

#[test]
fn a_closed_stdout_is_epipe_to_the_program() {
    use std::io::Read;
    // The reader takes a little and goes away (`wasmc run ... | head`):
    // the program's next write fails with EPIPE (64), which it exits
    // with; wasmc neither panics nor dies of SIGPIPE. (Writes of 100
    // bytes: a pipe takes them whole or not at all.)
    let (code, (), stderr) = invoke_reading("bulk", &["100000", "100"], |mut out| {
        let mut buf = [0; 100];
        out.read_exact(&mut buf).unwrap();
    });
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn clocks_sched_yield_and_proc_raise() {
    // The realtime and monotonic clocks at any precision (0, 1 ns,
    // u64::MAX): two readings in order. The CPU-time clocks are not
    // supported (EBADF, as in Wasmtime).
    for (id, expected) in [("0", "1001\n"), ("1", "1001\n"), ("2", "8\n"), ("3", "8\n")] {
        for precision in ["0", "1", "-1"] {
            let (code, out, stderr) = invoke("clock", &[id, precision]);
            assert_eq!(
                (code, out.as_str()),
                (Some(0), expected),
                "clock {id}: {stderr}"
            );
        }
    }
    let (code, out, _) = invoke("yield", &[]);
    assert_eq!((code, out.as_str()), (Some(0), "0\n"));
    // proc_raise is unsupported (as in Wasmtime): a trap, named.
    let (code, _, stderr) = invoke("raise", &[]);
    assert_eq!(code, Some(134));
    assert!(
        stderr.contains("wasi_snapshot_preview1::proc_raise: proc_raise unsupported"),
        "{stderr}"
    );
}
